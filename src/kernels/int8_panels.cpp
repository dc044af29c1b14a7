#include "kernels/int8_panels.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/cpu.h"

namespace tcat::kernels::detail {
namespace {

// Rows per register tile: 4 rows x 16 columns are 8 int32 accumulators, plus 2 weight vectors,
// the broadcast activations, the ones vector and 2 products: 14 of the 16 AVX2 registers.
constexpr int kTileRows = 4;

// Sums of MR rows over NP panels read side by side. The small loops carry unroll pragmas: GCC keeps
// the accumulator arrays in registers only when every index is a constant.
template <int MR, int NP>
__attribute__((target("avx2,fma"), always_inline)) inline void dot_panels_avx2(const uint8_t* x, int64_t ldx,
                                                                              const int8_t* const (&panels)[NP],
                                                                              int64_t K4,
                                                                              const int8_t* const (&prefetch)[NP],
                                                                              __m256i (&acc)[NP][MR][2]) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i lo[NP * MR], hi[NP * MR];
#pragma GCC unroll 8
  for (int i = 0; i < NP * MR; ++i) lo[i] = hi[i] = _mm256_setzero_si256();
#pragma GCC unroll 2
  for (int64_t k = 0; k < K4; k += kPanelDepth) {
    const int64_t offset = k * kPanelColumns;
    __m256i w_lo[NP], w_hi[NP];
#pragma GCC unroll 4
    for (int p = 0; p < NP; ++p) {
      w_lo[p] = _mm256_load_si256(reinterpret_cast<const __m256i*>(panels[p] + offset));
      w_hi[p] = _mm256_load_si256(reinterpret_cast<const __m256i*>(panels[p] + offset + 32));
      if (prefetch[p]) _mm_prefetch(reinterpret_cast<const char*>(prefetch[p] + offset), _MM_HINT_T1);
    }
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      int32_t four;
      std::memcpy(&four, x + m * ldx + k, sizeof four);
      const __m256i xb = _mm256_set1_epi32(four);
#pragma GCC unroll 4
      for (int p = 0; p < NP; ++p) {
        // Exact: pairs of u8 x 7-bit products fit int16, vpmaddwd widens their sums to int32.
        lo[p * MR + m] = _mm256_add_epi32(lo[p * MR + m], _mm256_madd_epi16(_mm256_maddubs_epi16(xb, w_lo[p]), ones));
        hi[p * MR + m] = _mm256_add_epi32(hi[p * MR + m], _mm256_madd_epi16(_mm256_maddubs_epi16(xb, w_hi[p]), ones));
      }
    }
  }
#pragma GCC unroll 4
  for (int p = 0; p < NP; ++p)
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) acc[p][m][0] = lo[p * MR + m], acc[p][m][1] = hi[p * MR + m];
}

// 8 outputs of one row from 8 sums; `o` is read only when beta != 0, `bias` may be null.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 dequantize8_avx2(__m256i sum, const int32_t* comp,
                                                                                float row_scale,
                                                                                const float* col_scales,
                                                                                const float* bias, float beta,
                                                                                const float* o) {
  const __m256i exact = _mm256_add_epi32(sum, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(comp)));
  const __m256 scaled = _mm256_mul_ps(_mm256_cvtepi32_ps(exact), _mm256_set1_ps(row_scale));
  __m256 v = bias ? _mm256_fmadd_ps(scaled, _mm256_loadu_ps(col_scales), _mm256_loadu_ps(bias))
                  : _mm256_mul_ps(scaled, _mm256_loadu_ps(col_scales));
  if (beta != 0.0f) v = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(o), v);
  return v;
}

// The MR x 16 outputs at tile rows m0.., columns n... A panel cut short by the tile's end goes
// through a 16-wide copy, so the same instructions produce every output.
template <int MR>
__attribute__((target("avx2,fma"), always_inline)) inline void store_tile_avx2(__m256i (&acc)[MR][2], int64_t m0,
                                                                              int64_t n, int64_t n0, int64_t valid,
                                                                              const Int8Epilogue& e) {
  alignas(32) float bias_copy[kPanelColumns], out_copy[kPanelColumns];
  for (int m = 0; m < MR; ++m) {
    float* o = e.out + (m0 + m) * e.ldo + (n - n0);
    const float* bias = e.bias ? e.bias + n : nullptr;
    float* target = o;
    if (valid < kPanelColumns) {
      std::fill(bias_copy, bias_copy + kPanelColumns, 0.0f);
      std::fill(out_copy, out_copy + kPanelColumns, 0.0f);
      if (bias) std::copy(bias, bias + valid, bias_copy);
      if (e.beta != 0.0f) std::copy(o, o + valid, out_copy);
      bias = bias ? bias_copy : nullptr;
      target = out_copy;
    }
    const float s = e.row_scales[m0 + m];
    for (int half = 0; half < 2; ++half) {
      const int64_t c = half * 8;
      _mm256_storeu_ps(target + c, dequantize8_avx2(acc[m][half], e.comp + n + c, s, e.col_scales + n + c,
                                                    bias ? bias + c : nullptr, e.beta, target + c));
    }
    if (target != o) std::copy(out_copy, out_copy + valid, o);
  }
}

// Rows m0 .. m0 + MR - 1 times the NP panels starting at columns n[p] (valid[p] of them real).
template <int MR, int NP>
__attribute__((target("avx2,fma"))) void panel_rows_avx2(int64_t m0, const uint8_t* xq, int64_t ldx,
                                                         const int8_t* const (&panels)[NP], int64_t K4,
                                                         const int8_t* const (&prefetch)[NP], const int64_t (&n)[NP],
                                                         int64_t n0, const int64_t (&valid)[NP],
                                                         const Int8Epilogue& e) {
  __m256i acc[NP][MR][2];
  dot_panels_avx2<MR, NP>(xq + m0 * ldx, ldx, panels, K4, prefetch, acc);
  for (int p = 0; p < NP; ++p) store_tile_avx2<MR>(acc[p], m0, n[p], n0, valid[p], e);
}

// One row: the weights come from memory and are used once, so the speed is how fast a core reads.
// The range is cut into kOneRowStreams parts read side by side, a panel of each at a time: a core
// reading several distant streams gets more from memory than from one (58101 x 512 weights, 2
// threads: 1.14x the single stream, as fast as the Rows layout's four-stream few-row kernel).
constexpr int kOneRowStreams = 4;

__attribute__((target("avx2,fma"))) void int8_panels_one_row_avx2(const uint8_t* xq, const int8_t* panels, int64_t K4,
                                                                  int64_t n0, int64_t cols, const Int8Epilogue& e) {
  const int64_t count = (cols + kPanelColumns - 1) / kPanelColumns;
  const int64_t stride = (count + kOneRowStreams - 1) / kOneRowStreams * kPanelColumns;  // columns between streams
  const int64_t end = n0 + cols;
  for (int64_t first = n0; first < n0 + stride; first += kPanelColumns) {
    int64_t n[kOneRowStreams], valid[kOneRowStreams];
    const int8_t* panel[kOneRowStreams];
    const int8_t* next[kOneRowStreams];
    int live = 0;  // streams still inside the range; only the last ones run out
    for (int s = 0; s < kOneRowStreams; ++s) {
      n[s] = first + s * stride;
      if (n[s] >= end) break;
      live = s + 1;
      panel[s] = panels + n[s] * K4;
      const bool more = n[s] + kPanelColumns < std::min(end, n0 + (s + 1) * stride);
      next[s] = more ? panel[s] + kPanelColumns * K4 : nullptr;
      valid[s] = std::min(kPanelColumns, end - n[s]);
    }
    if (live == kOneRowStreams) {
      panel_rows_avx2<1, kOneRowStreams>(0, xq, 0, panel, K4, next, n, n0, valid, e);
      continue;
    }
    for (int s = 0; s < live; ++s)
      panel_rows_avx2<1, 1>(0, xq, 0, {panel[s]}, K4, {next[s]}, {n[s]}, n0, {valid[s]}, e);
  }
}

__attribute__((target("avx2,fma"))) void int8_panels_avx2(int64_t M, const uint8_t* xq, int64_t ldx,
                                                          const int8_t* panels, int64_t K4, int64_t n0, int64_t cols,
                                                          const Int8Epilogue& e) {
  if (M == 1) {
    int8_panels_one_row_avx2(xq, panels, K4, n0, cols, e);
    return;
  }
  // Panel by panel: its weights (16 x K4 bytes) stay in L1 while all rows pass over them. The
  // first rows' pass fetches the next panel meanwhile, a line per step: with few rows the weights
  // come from memory, and a single stream read on demand would leave the multipliers waiting.
  for (int64_t n = n0; n < n0 + cols; n += kPanelColumns) {
    const int8_t* const panel[1] = {panels + n * K4};
    const int8_t* next = n + kPanelColumns < n0 + cols ? panel[0] + kPanelColumns * K4 : nullptr;
    const int64_t valid = std::min(kPanelColumns, n0 + cols - n);
    const auto rows = [&](auto tile_rows, int64_t m) {
      panel_rows_avx2<tile_rows(), 1>(m, xq, ldx, panel, K4, {m == 0 ? next : nullptr}, {n}, n0, {valid}, e);
    };
    int64_t m = 0;
    for (; m + kTileRows <= M; m += kTileRows) rows(std::integral_constant<int, kTileRows>{}, m);
    switch (M - m) {
      case 3: rows(std::integral_constant<int, 3>{}, m); break;
      case 2: rows(std::integral_constant<int, 2>{}, m); break;
      case 1: rows(std::integral_constant<int, 1>{}, m); break;
      default: break;
    }
  }
}

void int8_panels_plain(int64_t M, const uint8_t* xq, int64_t ldx, const int8_t* panels, int64_t K4, int64_t n0,
                       int64_t cols, const Int8Epilogue& e) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = n0; n < n0 + cols; ++n) {
      const int8_t* w = panels + (n - n % kPanelColumns) * K4 + n % kPanelColumns * kPanelDepth;
      int32_t sum = e.comp[n];
      for (int64_t k = 0; k < K4; ++k)
        sum += int32_t(xq[m * ldx + k]) * int32_t(w[k / kPanelDepth * kPanelColumns * kPanelDepth + k % kPanelDepth]);
      const float scaled = float(sum) * e.row_scales[m];
      const float v = e.bias ? std::fma(scaled, e.col_scales[n], e.bias[n]) : scaled * e.col_scales[n];
      float& o = e.out[m * e.ldo + n - n0];
      o = e.beta != 0.0f ? std::fma(e.beta, o, v) : v;
    }
}

}  // namespace

void int8_panels(int64_t M, const uint8_t* xq, int64_t ldx, const int8_t* panels, int64_t K4, int64_t n0,
                 int64_t cols, const Int8Epilogue& epilogue) {
  if (cpu_features().avx2 && cpu_features().fma)
    int8_panels_avx2(M, xq, ldx, panels, K4, n0, cols, epilogue);
  else
    int8_panels_plain(M, xq, ldx, panels, K4, n0, cols, epilogue);
}

}  // namespace tcat::kernels::detail
