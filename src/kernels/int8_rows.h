// The few-row int8 product behind gemm_int8_weights (kernels/int8.h) for decoding steps: internal
// to src/kernels.
#pragma once
#include <cstdint>

namespace tcat::kernels::detail {

// acc[m * ld_acc + n - n0] = sum_k xq[m * ldx + k] * w[n, k] + comp[n] for m < M <= 8, n in [n0, n1):
// u8 activations times s8 weights, exact in int32, the same sums oneDNN's u8 x s8 GEMM gives.
// Each weight row is read once for all M rows, so it runs at memory bandwidth. AVX2 when the CPU
// has it, else plain loops.
void int8_rows(int64_t M, int64_t n0, int64_t n1, int64_t K, const uint8_t* xq, int64_t ldx, const int8_t* w,
               const int32_t* comp, int32_t* acc, int64_t ld_acc);

}  // namespace tcat::kernels::detail
