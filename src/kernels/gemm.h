// Matrix multiplication through oneDNN. Row-major throughout.
#pragma once
#include <cstdint>
#include <functional>

#include "core/tensor.h"

namespace tcat::kernels {

// Precision of the multiply: fp32, or bf16 inputs with fp32 accumulation and fp32 output.
enum class MatmulPrecision { F32, BF16 };

// C[M,N] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T; A is M x K after op.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Same with bf16 inputs; uses AMX or AVX512-BF16 when oneDNN has them for this CPU, otherwise
// widens to fp32 (same result up to fp32 summation order).
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A,
               int64_t lda, const bf16* B, int64_t ldb, float beta, float* C, int64_t ldc);

// True when bf16 GEMMs run on native bf16 hardware paths (else they are widened to fp32).
bool bf16_gemm_native();

// a: [..., M, K] (or [..., K, M] with trans_a), b: [..., K, N] (or [..., N, K] with trans_b);
// leading batch dimensions broadcast. Inputs may be f32 or bf16 (both the same); output f32.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

// out[m, n] (+)= sum_k x[m, k] * w[n, k] for at most kSkinnyMaxRows rows (decoding steps), row
// strides ldx, ldw, ldo: reads each weight once for all rows, so it runs at memory bandwidth;
// threads split N. bf16 weights are widened to fp32 on the fly (half the bytes to read).
constexpr int64_t kSkinnyMaxRows = 8;
void skinny_gemm(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const float* w, int64_t ldw,
                 float* out, int64_t ldo, bool accumulate);
void skinny_gemm(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const bf16* w, int64_t ldw,
                 float* out, int64_t ldo, bool accumulate);

// out[M, N] = x[M, K] * w[N, K]^T + beta * out (dense rows) with bf16 weights, in fp32 on any
// CPU: blocks of weight rows are widened into a cache-sized buffer just before sgemm reads them,
// never the whole matrix at once.
void sgemm_bf16_weights(int64_t M, int64_t N, int64_t K, const float* x, const bf16* w, float beta, float* out);

// out[..., N] (+)= x[..., K] * w[N, K]^T (+ bias[N]). With accumulate, adds into `out`. In F32
// precision w may be f32 or bf16 (bf16 weights stay bf16 in memory); few rows use skinny_gemm.
// An int8 weight (kernels/int8.h) multiplies in int8 whatever the precision.
void linear_into(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out, bool accumulate,
                 MatmulPrecision precision);
Tensor linear(const Tensor& x, const Tensor& w, const Tensor* bias,
              MatmulPrecision precision = MatmulPrecision::F32);

// linear(x, w, bias) for x [R, K] consumed block by block, for products too wide to be worth
// writing out (an output projection onto a vocabulary): consume(block, n0, cols, values) receives
// columns [n0, n0 + cols) of every row, values[r * cols + c], on the thread that computed them,
// while they are still in its cache, and may overwrite them. Blocks are numbered from the left,
// 0 .. column_block_count(R, N) - 1, and run in parallel in any order; after an error (from a
// product or from consume) no further block starts and the first error is rethrown. w may be f32,
// bf16 (linear_into's products on each block) or int8 (activations quantized once).
using ColumnBlockConsumer = std::function<void(int64_t block, int64_t n0, int64_t cols, float* values)>;
int64_t column_block_count(int64_t R, int64_t N);
void linear_by_column_blocks(const Tensor& x, const Tensor& w, const Tensor* bias, const ColumnBlockConsumer& consume);

}  // namespace tcat::kernels
