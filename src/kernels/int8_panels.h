// The int8 product on the Panels layout of kernels/int8.h (CPUs without VNNI): internal to
// src/kernels.
//
// Panel p holds weight rows [16p, 16p + 16) (output columns) for all K4 = K rounded up to 4: group
// g of 4 k is 64 bytes, column c's 4 values at bytes 4c..4c+3; padding is zero. With that, one
// 32-byte load gives 8 columns x 4 k, and a broadcast of 4 activation bytes multiplies them with
// vpmaddubsw + vpmaddwd into 8 int32 sums: no packing per product (oneDNN packs its operands on
// every call), and the sums are dequantized while they are still in registers.
#pragma once
#include <cstdint>

namespace tcat::kernels::detail {

constexpr int64_t kPanelColumns = 16;
constexpr int64_t kPanelDepth = 4;

// What turns the int32 sums of a tile into its fp32 output, indexed by absolute column n:
// out[m * ldo + n - n0] = fma(beta, out, fma(float(sum + comp[n]) * row_scales[m], col_scales[n], bias[n]))
// (without bias a product, the outer fma only when beta != 0), rounded as kernels/int8.cpp rounds.
// comp and col_scales cover whole panels (zero padded); bias (may be null) covers real columns only.
struct Int8Epilogue {
  const int32_t* comp;
  const float* row_scales;
  const float* col_scales;
  const float* bias;
  float beta;
  float* out;
  int64_t ldo;
};

// Rows [0, M) of xq (u8 activations + 128, row stride ldx >= K4, padded with 128) times weight
// columns [n0, n0 + cols) of `panels` (n0 a multiple of 16). AVX2 when the CPU has it, else plain loops.
void int8_panels(int64_t M, const uint8_t* xq, int64_t ldx, const int8_t* panels, int64_t K4, int64_t n0,
                 int64_t cols, const Int8Epilogue& epilogue);

}  // namespace tcat::kernels::detail
