// Int8 weights for inference: products of fp32 activations with int8 weight matrices (on AVX2
// about 1.6-2x the fp32 rate, and a quarter of the bytes).
//
// Format: a [N, K] weight matrix becomes a DType::I8 tensor [N, K] of values q with |q| <= 63 and
// w[n, k] ~= q[n, k] * scale[n] (scale = max |w[n, :]| / 63). Its bytes are in one of two layouts
// (read them only through this header): Rows, row-major [N, K], for CPUs with AVX-512 VNNI, where
// oneDNN's u8 x s8 GEMM is fastest; Panels (kernels/int8_panels.h) for the others, where tcat's own
// kernel on pre-packed weights beats oneDNN's (which packs both operands on every call). After the
// values the storage holds the scales (f32), the compensations -128 * sum_k q[n, k] (i32), the layout.
// Weights use 7 bits because CPUs without VNNI multiply with vpmaddubsw, whose 16-bit sums of two
// 8-bit x 8-bit products saturate; 7 bits on every CPU keeps results the same everywhere.
//
// Activations are quantized per row at each product: x[m, :] ~= a * scale_x[m] with |a| <= 127,
// stored as a + 128 (u8). The GEMM sums (a + 128) * q, and adding the compensation removes the
// +128 again, exactly, in integers. In the Rows layout up to kSkinnyMaxRows rows (decoding steps)
// run tcat's own kernel (int8_rows.h: each weight read once for all rows), more rows oneDNN's; the
// Panels layout has one kernel for any number of rows. Every path sums the same integers exactly,
// so a row's result does not depend on how many rows share the product.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tcat::kernels {

constexpr int kInt8WeightMax = 63;

enum class Int8Layout : int32_t { Rows = 1, Panels = 2 };

// The layout this CPU multiplies fastest: Rows with AVX-512 VNNI, else Panels.
Int8Layout preferred_int8_layout();

// An f32 or bf16 [N, K] matrix in the format above.
Tensor quantize_weight_int8(const Tensor& w, Int8Layout layout = preferred_int8_layout());

// The layout of an int8 weight.
Int8Layout int8_weight_layout(const Tensor& w);

// True for a tensor in the format above (a whole one: not a view into one).
bool is_int8_weight(const Tensor& w);

// The N row scales of an int8 weight.
const float* int8_weight_scales(const Tensor& w);

// out[0..K) = the dequantized row `row` of an int8 weight.
void dequantize_int8_row(const Tensor& w, int64_t row, float* out);

// Activations quantized once for any number of products with int8 weights.
struct Int8Activations {
  int64_t rows = 0, K = 0;
  int64_t stride = 0;           // K rounded up to 4, as the Panels layout reads them
  std::vector<uint8_t> values;  // rows x stride, each value + 128 (so the padding is 0)
  std::vector<float> scales;    // one per row
};
Int8Activations quantize_activations_int8(int64_t M, int64_t K, const float* x, int64_t ldx);

// One tile of the product, on the calling thread: out[rows, cols] (row stride ldo) = activation
// rows [m0, m0 + rows) times dequant(weight rows [n0, n0 + cols))^T (+ bias[n0, n0 + cols) if not
// null) + beta * out. `w` must be an int8 weight of K columns (the caller checks). Returns null, or
// the reason the product failed (the caller raises the error: tiles run inside parallel regions).
// In the Panels layout n0 must be a multiple of 16.
const char* int8_tile(const Int8Activations& x, int64_t m0, int64_t rows, const Tensor& w, int64_t n0, int64_t cols,
                      const float* bias, float beta, float* out, int64_t ldo);

// out[M, N] (row stride ldo) = x[M, K] (row stride ldx) * dequant(w)^T (+ bias[N] if not null)
// + beta * out.
void gemm_int8_weights(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const Tensor& w,
                       const float* bias, float beta, float* out, int64_t ldo);

}  // namespace tcat::kernels
