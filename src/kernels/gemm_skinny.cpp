// Skinny matrix product out[M, N] (+)= x[M, K] * w[N, K]^T for few rows (decoding steps): each
// weight row is read from memory once for all M rows, so the product runs at memory bandwidth
// where a general GEMM packs and re-reads. Threads split N. bf16 weights are widened in registers.
// Each core reads several distant runs of rows at once and prefetches ahead of its reads, so the
// loop streams at the memory's rate rather than at the hardware prefetcher's.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

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
using v8u32 = uint32_t __attribute__((vector_size(32)));

[[gnu::always_inline]] inline v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

[[gnu::always_inline]] inline float horizontal_sum(const v8f& v) {
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

// One step of the k loop per weight type: kStep weights of each of R rows against the matching
// x values of MB rows. x is given in the weight type's lane order (see lane_order).
template <typename W>
struct Lanes;

template <>
struct Lanes<float> {
  static constexpr int64_t kStep = 8;
  template <int MB, int R>
  [[gnu::always_inline]] static void step(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t k,
                                          v8f (&acc)[MB][R]) {
    v8f xv[MB];
    for (int m = 0; m < MB; ++m) xv[m] = load8(x + m * ldx + k);
    for (int r = 0; r < R; ++r) {
      const v8f wv = load8(w + r * ldw + k);
      for (int m = 0; m < MB; ++m) acc[m][r] = xv[m] * wv + acc[m][r];
    }
  }
};

// Sixteen bf16 weights are read as eight 32-bit words: word i holds element 2i in its low half
// and element 2i + 1 in its high half, so a shift and a mask widen them to two fp32 vectors
// (even and odd elements) with no lane shuffles, which the ISA clones all do well. x arrives
// with each block of 16 values reordered to match: the 8 even-indexed values, then the 8 odd.
template <>
struct Lanes<bf16> {
  static constexpr int64_t kStep = 16;
  template <int MB, int R>
  [[gnu::always_inline]] static void step(const float* x, int64_t ldx, const bf16* w, int64_t ldw, int64_t k,
                                          v8f (&acc)[MB][R]) {
    v8f even_x[MB], odd_x[MB];
    for (int m = 0; m < MB; ++m) {
      even_x[m] = load8(x + m * ldx + k);
      odd_x[m] = load8(x + m * ldx + k + 8);
    }
    for (int r = 0; r < R; ++r) {
      v8u32 words;  // one 32-byte load (an array of these went through the stack)
      std::memcpy(&words, w + r * ldw + k, sizeof words);
      const v8f even = reinterpret_cast<v8f>(words << 16), odd = reinterpret_cast<v8f>(words & 0xffff0000u);
      for (int m = 0; m < MB; ++m) acc[m][r] = odd_x[m] * odd + (even_x[m] * even + acc[m][r]);
    }
  }
};

[[gnu::always_inline]] inline float widen(float v) { return v; }
[[gnu::always_inline]] inline float widen(bf16 v) { return bf16_to_float(v); }

// Weight elements per cache line: the k loop below consumes one line of each weight row per pass.
template <typename W>
constexpr int64_t kLineElements = 64 / int64_t(sizeof(W));
// How far ahead of its read position each stream prefetches (see tile).
constexpr int64_t kPrefetchBytes = 512;

// MB rows of x against R weight rows, `stride` elements apart (each row from its own stream, see
// row_groups); output r goes to out[r * out_stride]. MB*R vector accumulators plus the operands
// fit the 16 AVX2 registers for (MB, R) = (1..2, 4) and (3..4, 2). With `prefetch`, each pass
// prefetches one line kPrefetchBytes ahead in each row, running on into the row after it (the
// next tile's row of the same part, ldw further) unless this is the part's last tile: the
// hardware prefetcher alone does not keep up with rows this short (a few KB), least of all with
// bf16 rows.
template <int MB, int R, typename W>
[[gnu::always_inline]] inline void tile(const float* x, int64_t ldx, const W* w, int64_t stride, int64_t ldw,
                                        int64_t K, float* out, int64_t out_stride, int64_t ldo, bool accumulate,
                                        bool prefetch, bool last) {
  constexpr int64_t line = kLineElements<W>, step = Lanes<W>::kStep, ahead = kPrefetchBytes / int64_t(sizeof(W));
  v8f acc[MB][R] = {};
  int64_t k = 0;
  for (; k + line <= K; k += line) {
    if (prefetch && (k + ahead < K || !last)) {
      const W* target = k + ahead < K ? w + k + ahead : w + ldw + std::min(k + ahead - K, K - 1);
      for (int r = 0; r < R; ++r) __builtin_prefetch(target + r * stride, 0, 0);
    }
    for (int64_t s = 0; s < line; s += step) Lanes<W>::template step<MB, R>(x, ldx, w, stride, k + s, acc);
  }
  for (; k + step <= K; k += step) Lanes<W>::template step<MB, R>(x, ldx, w, stride, k, acc);
  for (int m = 0; m < MB; ++m) {
    for (int r = 0; r < R; ++r) {
      float s = horizontal_sum(acc[m][r]);
      for (int64_t t = k; t < K; ++t) s += x[m * ldx + t] * widen(w[r * stride + t]);
      float& o = out[m * ldo + r * out_stride];
      o = accumulate ? o + s : s;
    }
  }
}

// All M rows against R weight rows, M in chunks of 4 (later chunks re-read the R weight rows
// from cache, not memory, so only the first prefetches).
template <int R, typename W>
[[gnu::always_inline]] inline void rows_against(int64_t M, const float* x, int64_t ldx, const W* w, int64_t stride,
                                                int64_t ldw, int64_t K, float* out, int64_t out_stride, int64_t ldo,
                                                bool accumulate, bool last) {
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const float* xm = x + m0 * ldx;
    float* om = out + m0 * ldo;
    const bool prefetch = m0 == 0;
    switch (std::min<int64_t>(4, M - m0)) {
      case 1: tile<1, R>(xm, ldx, w, stride, ldw, K, om, out_stride, ldo, accumulate, prefetch, last); break;
      case 2: tile<2, R>(xm, ldx, w, stride, ldw, K, om, out_stride, ldo, accumulate, prefetch, last); break;
      case 3: tile<3, R>(xm, ldx, w, stride, ldw, K, om, out_stride, ldo, accumulate, prefetch, last); break;
      default: tile<4, R>(xm, ldx, w, stride, ldw, K, om, out_stride, ldo, accumulate, prefetch, last); break;
    }
  }
}

// Output columns [n0, n1) of the product; returns the first column not done. The range is cut
// into R parts of equal length, and each tile takes one row from each part: a core then reads R
// distant regions at once, which memory serves faster than one region walked in order (Zen 3,
// 2 threads: a plain sum over 119 MB ran 15-25% faster as 4 interleaved streams per thread).
template <int R, typename W>
[[gnu::always_inline]] inline int64_t row_groups(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* x,
                                                 int64_t ldx, const W* w, int64_t ldw, float* out, int64_t ldo,
                                                 bool accumulate) {
  const int64_t part = (n1 - n0) / R;
  for (int64_t n = n0; n < n0 + part; ++n)
    rows_against<R>(M, x, ldx, w + n * ldw, part * ldw, ldw, K, out + n, part, ldo, accumulate, n + 1 == n0 + part);
  return n0 + part * R;
}

template <typename W>
[[gnu::always_inline]] inline void columns(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* x, int64_t ldx,
                                           const W* w, int64_t ldw, float* out, int64_t ldo, bool accumulate) {
  const int64_t n = M <= 2 ? row_groups<4>(M, n0, n1, K, x, ldx, w, ldw, out, ldo, accumulate)
                           : row_groups<2>(M, n0, n1, K, x, ldx, w, ldw, out, ldo, accumulate);
  row_groups<1>(M, n, n1, K, x, ldx, w, ldw, out, ldo, accumulate);
}

TCAT_DISPATCH void columns_f32(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* x, int64_t ldx,
                               const float* w, int64_t ldw, float* out, int64_t ldo, bool accumulate) {
  columns(M, n0, n1, K, x, ldx, w, ldw, out, ldo, accumulate);
}

TCAT_DISPATCH void columns_bf16(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* x, int64_t ldx,
                                const bf16* w, int64_t ldw, float* out, int64_t ldo, bool accumulate) {
  columns(M, n0, n1, K, x, ldx, w, ldw, out, ldo, accumulate);
}

// Shares N among the threads in blocks of 16 columns (whole cache lines of each output row),
// guided: each thread claims a contiguous range of 1/(2 x team) of the blocks still unclaimed,
// at least kMinClaimBlocks, so each streams long runs of w and a thread that runs slower (a
// busier core, a vCPU the host is also using) ends up with less work instead of holding up the
// join. (An even static split left one thread spinning for ~15% of batch-1 translation steps.)
constexpr int64_t kMinClaimBlocks = 8;

template <typename W, typename Columns>
void split_columns(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const W* w, int64_t ldw, float* out,
                   int64_t ldo, bool accumulate, Columns run) {
  // Below ~64 KB of weights a parallel region costs more than it saves.
  const bool parallel =
      N * K * int64_t(sizeof(W)) >= (int64_t(1) << 16) && omp_get_max_threads() > 1 && !omp_in_parallel();
  const int64_t blocks = (N + 15) / 16;
  std::atomic<int64_t> next_block{0};
#pragma omp parallel if (parallel)
  {
    const int64_t team = omp_get_num_threads();
    int64_t b0 = next_block.load(std::memory_order_relaxed), b1 = 0;
    for (;;) {
      do {
        b1 = std::min(blocks, b0 + std::max(kMinClaimBlocks, (blocks - b0) / (2 * team)));
      } while (b0 < blocks && !next_block.compare_exchange_weak(b0, b1, std::memory_order_relaxed));
      if (b0 >= blocks) break;
      run(M, b0 * 16, std::min(N, b1 * 16), K, x, ldx, w, ldw, out, ldo, accumulate);
      b0 = next_block.load(std::memory_order_relaxed);
    }
  }
}

// x [M, K] (row stride ldx) as Lanes<bf16> reads it, densely: within each whole block of 16 the
// even-indexed values, then the odd ones; the last K % 16 values in place.
std::vector<float> bf16_lane_order(int64_t M, int64_t K, const float* x, int64_t ldx) {
  constexpr int64_t block = Lanes<bf16>::kStep, half = block / 2;
  std::vector<float> out(size_t(M * K));
  for (int64_t m = 0; m < M; ++m) {
    const float* src = x + m * ldx;
    float* dst = out.data() + m * K;
    int64_t k = 0;
    for (; k + block <= K; k += block)
      for (int64_t i = 0; i < half; ++i) {
        dst[k + i] = src[k + 2 * i];
        dst[k + half + i] = src[k + 2 * i + 1];
      }
    std::copy(src + k, src + K, dst + k);
  }
  return out;
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
  const std::vector<float> x_lanes = bf16_lane_order(M, K, x, ldx);
  split_columns(M, N, K, x_lanes.data(), K, w, ldw, out, ldo, accumulate, columns_bf16);
}

}  // namespace tcat::kernels
