// Skinny matrix product out[M, N] (+)= x[M, K] * w[N, K]^T for few rows (decoding steps): each
// weight row is read from memory once for all M rows, so the product runs at memory bandwidth
// where a general GEMM packs and re-reads. Threads split N. bf16 weights are widened in registers.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/gemm.h"

// The products below are written as a * b + c on vector types; contraction turns them into FMAs
// in the AVX2 and AVX-512 clones (ISO C++ mode turns contraction off by default).
#pragma GCC optimize("fp-contract=fast")
// The 32-byte vector helpers are always inlined into their ISA clone; no vector crosses a call.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace tcat::kernels {
namespace {

using v8f = float __attribute__((vector_size(32)));
using v8u16 = uint16_t __attribute__((vector_size(16)));
using v8u32 = uint32_t __attribute__((vector_size(32)));

[[gnu::always_inline]] inline v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

[[gnu::always_inline]] inline v8f load8(const bf16* p) {
  v8u16 h;
  std::memcpy(&h, p, sizeof h);
  return reinterpret_cast<v8f>(__builtin_convertvector(h, v8u32) << 16);
}

[[gnu::always_inline]] inline float widen(float v) { return v; }
[[gnu::always_inline]] inline float widen(bf16 v) { return bf16_to_float(v); }

[[gnu::always_inline]] inline float horizontal_sum(const v8f& v) {
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

// MB rows of x against R rows of w: MB*R vector accumulators plus MB + 1 operands fit the 16
// AVX2 registers for (MB, R) = (1..2, 4) and (3..4, 2).
template <int MB, int R, typename W>
[[gnu::always_inline]] inline void tile(const float* x, int64_t ldx, const W* w, int64_t ldw, int64_t K, float* out,
                                        int64_t ldo, bool accumulate) {
  v8f acc[MB][R] = {};
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    v8f xv[MB];
    for (int m = 0; m < MB; ++m) xv[m] = load8(x + m * ldx + k);
    for (int r = 0; r < R; ++r) {
      const v8f wv = load8(w + r * ldw + k);
      for (int m = 0; m < MB; ++m) acc[m][r] = xv[m] * wv + acc[m][r];
    }
  }
  for (int m = 0; m < MB; ++m) {
    for (int r = 0; r < R; ++r) {
      float s = horizontal_sum(acc[m][r]);
      for (int64_t t = k; t < K; ++t) s += x[m * ldx + t] * widen(w[r * ldw + t]);
      float& o = out[m * ldo + r];
      o = accumulate ? o + s : s;
    }
  }
}

// All M rows against R weight rows starting at w, M in chunks of 4 (later chunks re-read the R
// weight rows from cache, not memory).
template <int R, typename W>
[[gnu::always_inline]] inline void rows_against(int64_t M, const float* x, int64_t ldx, const W* w, int64_t ldw,
                                                int64_t K, float* out, int64_t ldo, bool accumulate) {
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const float* xm = x + m0 * ldx;
    float* om = out + m0 * ldo;
    switch (std::min<int64_t>(4, M - m0)) {
      case 1: tile<1, R>(xm, ldx, w, ldw, K, om, ldo, accumulate); break;
      case 2: tile<2, R>(xm, ldx, w, ldw, K, om, ldo, accumulate); break;
      case 3: tile<3, R>(xm, ldx, w, ldw, K, om, ldo, accumulate); break;
      default: tile<4, R>(xm, ldx, w, ldw, K, om, ldo, accumulate); break;
    }
  }
}

// Output columns [n0, n1) of the product.
template <typename W>
[[gnu::always_inline]] inline void columns(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* x, int64_t ldx,
                                           const W* w, int64_t ldw, float* out, int64_t ldo, bool accumulate) {
  int64_t n = n0;
  if (M <= 2) {
    for (; n + 4 <= n1; n += 4) rows_against<4>(M, x, ldx, w + n * ldw, ldw, K, out + n, ldo, accumulate);
  } else {
    for (; n + 2 <= n1; n += 2) rows_against<2>(M, x, ldx, w + n * ldw, ldw, K, out + n, ldo, accumulate);
  }
  for (; n < n1; ++n) rows_against<1>(M, x, ldx, w + n * ldw, ldw, K, out + n, ldo, accumulate);
}

TCAT_DISPATCH void columns_f32(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* x, int64_t ldx,
                               const float* w, int64_t ldw, float* out, int64_t ldo, bool accumulate) {
  columns(M, n0, n1, K, x, ldx, w, ldw, out, ldo, accumulate);
}

TCAT_DISPATCH void columns_bf16(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* x, int64_t ldx,
                                const bf16* w, int64_t ldw, float* out, int64_t ldo, bool accumulate) {
  columns(M, n0, n1, K, x, ldx, w, ldw, out, ldo, accumulate);
}

// Splits N over the threads in blocks of 16 columns (whole cache lines of each output row), one
// contiguous range per thread so each streams its own part of w.
template <typename W, typename Columns>
void split_columns(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const W* w, int64_t ldw, float* out,
                   int64_t ldo, bool accumulate, Columns run) {
  // Below ~64 KB of weights a parallel region costs more than it saves.
  const bool parallel = N * K * int64_t(sizeof(W)) >= (int64_t(1) << 16) && omp_get_max_threads() > 1;
#pragma omp parallel if (parallel)
  {
    const int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t blocks = (N + 15) / 16;
    const int64_t n0 = std::min(N, blocks * t / team * 16), n1 = std::min(N, blocks * (t + 1) / team * 16);
    if (n0 < n1) run(M, n0, n1, K, x, ldx, w, ldw, out, ldo, accumulate);
  }
}

}  // namespace

void skinny_gemm(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const float* w, int64_t ldw,
                 float* out, int64_t ldo, bool accumulate) {
  TCAT_CHECK(M >= 0 && M <= kSkinnyMaxRows, "skinny_gemm: M={} rows, at most {} supported", M, kSkinnyMaxRows);
  if (M == 0 || N == 0) return;
  split_columns(M, N, K, x, ldx, w, ldw, out, ldo, accumulate, columns_f32);
}

void skinny_gemm(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const bf16* w, int64_t ldw,
                 float* out, int64_t ldo, bool accumulate) {
  TCAT_CHECK(M >= 0 && M <= kSkinnyMaxRows, "skinny_gemm: M={} rows, at most {} supported", M, kSkinnyMaxRows);
  if (M == 0 || N == 0) return;
  split_columns(M, N, K, x, ldx, w, ldw, out, ldo, accumulate, columns_bf16);
}

}  // namespace tcat::kernels
