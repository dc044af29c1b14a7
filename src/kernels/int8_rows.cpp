#include "kernels/int8_rows.h"

#include <immintrin.h>

#include <algorithm>

#include "core/cpu.h"

namespace tcat::kernels::detail {
namespace {

// Rows of x per pass: MB x R int32 accumulators plus R weight vectors, one x vector, one product
// and the ones vector fit the 16 AVX2 registers for MB = 2, R = 4.
constexpr int kRowsPerPass = 2;
constexpr int kWeightRows = 4;

// MB rows of xq against the R weight rows w + r * stride; out[m * ld_acc + r * out_stride].
// vpmaddubsw sums pairs of u8 x s8 products into int16 (exact: weights have 7 bits), vpmaddwd
// against ones widens the pairs' sums into int32.
template <int MB, int R>
__attribute__((target("avx2"), always_inline)) inline void pass_avx2(const uint8_t* xq, int64_t ldx, int64_t K,
                                                                      const int8_t* w, int64_t stride,
                                                                      const int32_t* comp, int32_t* out,
                                                                      int64_t out_stride, int64_t ld_acc) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[MB][R];
  for (int m = 0; m < MB; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = _mm256_setzero_si256();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    __m256i wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * stride + k));
    for (int m = 0; m < MB; ++m) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + m * ldx + k));
      for (int r = 0; r < R; ++r)
        acc[m][r] = _mm256_add_epi32(acc[m][r], _mm256_madd_epi16(_mm256_maddubs_epi16(xv, wv[r]), ones));
    }
  }
  for (int m = 0; m < MB; ++m)
    for (int r = 0; r < R; ++r) {
      const __m128i half = _mm_add_epi32(_mm256_castsi256_si128(acc[m][r]), _mm256_extracti128_si256(acc[m][r], 1));
      const __m128i quad = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4e));
      int32_t sum = _mm_cvtsi128_si32(_mm_add_epi32(quad, _mm_shuffle_epi32(quad, 0xb1)));
      for (int64_t t = k; t < K; ++t) sum += int32_t(xq[m * ldx + t]) * int32_t(w[r * stride + t]);
      out[m * ld_acc + r * out_stride] = sum + comp[r * out_stride];
    }
}

// Columns [n0, n1): the range is cut into R parts and each pass takes one row from each, so a core
// reads R distant regions at once (as the fp32 few-row kernel does; memory serves that faster).
template <int R>
__attribute__((target("avx2"), always_inline)) inline int64_t parts_avx2(int64_t M, int64_t n0, int64_t n1, int64_t K,
                                                                          const uint8_t* xq, int64_t ldx,
                                                                          const int8_t* w, const int32_t* comp,
                                                                          int32_t* acc,
                                                                          int64_t ld_acc) {
  const int64_t part = (n1 - n0) / R;
  for (int64_t n = n0; n < n0 + part; ++n)
    for (int64_t m0 = 0; m0 < M; m0 += kRowsPerPass) {
      const uint8_t* x = xq + m0 * ldx;
      int32_t* out = acc + m0 * ld_acc + (n - n0);
      if (M - m0 >= 2)
        pass_avx2<2, R>(x, ldx, K, w + n * K, part * K, comp + n, out, part, ld_acc);
      else
        pass_avx2<1, R>(x, ldx, K, w + n * K, part * K, comp + n, out, part, ld_acc);
    }
  return n0 + part * R;
}

__attribute__((target("avx2"))) void int8_rows_avx2(int64_t M, int64_t n0, int64_t n1, int64_t K, const uint8_t* xq,
                                                     int64_t ldx, const int8_t* w, const int32_t* comp, int32_t* acc,
                                                     int64_t ld_acc) {
  const int64_t n = parts_avx2<kWeightRows>(M, n0, n1, K, xq, ldx, w, comp, acc, ld_acc);
  parts_avx2<1>(M, n, n1, K, xq, ldx, w, comp, acc + (n - n0), ld_acc);
}

void int8_rows_plain(int64_t M, int64_t n0, int64_t n1, int64_t K, const uint8_t* xq, int64_t ldx, const int8_t* w,
                     const int32_t* comp, int32_t* acc, int64_t ld_acc) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = n0; n < n1; ++n) {
      int32_t sum = comp[n];
      for (int64_t k = 0; k < K; ++k) sum += int32_t(xq[m * ldx + k]) * int32_t(w[n * K + k]);
      acc[m * ld_acc + n - n0] = sum;
    }
}

}  // namespace

void int8_rows(int64_t M, int64_t n0, int64_t n1, int64_t K, const uint8_t* xq, int64_t ldx, const int8_t* w,
               const int32_t* comp, int32_t* acc, int64_t ld_acc) {
  if (cpu_features().avx2)
    int8_rows_avx2(M, n0, n1, K, xq, ldx, w, comp, acc, ld_acc);
  else
    int8_rows_plain(M, n0, n1, K, xq, ldx, w, comp, acc, ld_acc);
}

}  // namespace tcat::kernels::detail
