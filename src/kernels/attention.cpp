// Fused attention (see attention.h).
//  forward:  one task per (batch, head, block of up to 64 queries). Keys are visited 64 at a
//            time with an online softmax (running max, running sum, rescaled accumulator); a
//            thread holds the scores of 4 query rows x 64 keys at a time.
//  backward: one task per (batch, kv head), FlashAttention-2 style: for each block of keys the
//            probabilities of every query of the heads sharing that kv head are recomputed from
//            the saved log-sum-exp. The task owns dk/dv of its kv head and dq of those heads, so
//            no two threads write the same element and every sum runs in a fixed order: results
//            do not depend on the number of threads.
// Block products run as register tiles (4 rows x 16 columns) against a transposed copy of the
// key/value block. Keys no query may see (causal future, padding-only blocks) are never touched.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/vecmath.h"

namespace tcat::kernels {
namespace {

constexpr int64_t kKeyBlock = 64;
constexpr int64_t kQueryBlock = 64;
constexpr int64_t kTileRows = 4;
constexpr int64_t kTileCols = 16;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

// Eight floats; gcc lowers this to one AVX2 register, half an AVX-512 one, or two SSE ones in
// the respective clone. Explicit vectors keep the register tile below in registers, which the
// auto-vectoriser does not reliably do for a tile with a run-time depth. f32x8_in_memory reads
// and writes them at any float address.
using f32x8 = float __attribute__((vector_size(32)));
using f32x8_in_memory = float __attribute__((vector_size(32), aligned(4), may_alias));

// c[r][0:n] = (accumulate ? c[r][0:n] : 0) + sum_{p < depth} a[r][p] * b[p][0:n] for r < R.
// The R x 16 accumulator tile stays in registers across the whole depth.
template <int R>
[[gnu::always_inline]] inline void gemm_strip(int64_t depth, int64_t n, const float* __restrict a, int64_t lda,
                                              const float* __restrict b, int64_t ldb, float* __restrict c,
                                              int64_t ldc, bool accumulate) {
  static_assert(kTileCols == 16, "the tile is two 8-float vectors wide");
  int64_t c0 = 0;
  for (; c0 + kTileCols <= n; c0 += kTileCols) {
    f32x8 acc[R][2];
    for (int r = 0; r < R; ++r) {
      const auto* c_row = reinterpret_cast<const f32x8_in_memory*>(c + r * ldc + c0);
      acc[r][0] = accumulate ? c_row[0] : f32x8{};
      acc[r][1] = accumulate ? c_row[1] : f32x8{};
    }
    for (int64_t p = 0; p < depth; ++p) {
      const auto* b_row = reinterpret_cast<const f32x8_in_memory*>(b + p * ldb + c0);
      const f32x8 b0 = b_row[0], b1 = b_row[1];
      for (int r = 0; r < R; ++r) {
        const float a_rp = a[r * lda + p];
        acc[r][0] += a_rp * b0;
        acc[r][1] += a_rp * b1;
      }
    }
    for (int r = 0; r < R; ++r) {
      auto* c_row = reinterpret_cast<f32x8_in_memory*>(c + r * ldc + c0);
      c_row[0] = acc[r][0];
      c_row[1] = acc[r][1];
    }
  }
  if (c0 == n) return;
  for (int r = 0; r < R; ++r) {  // fewer than 16 columns left (head_dim not a multiple of 16)
    float* c_row = c + r * ldc;
    if (!accumulate) std::fill(c_row + c0, c_row + n, 0.0f);
    for (int64_t p = 0; p < depth; ++p) {
      const float a_rp = a[r * lda + p];
      const float* b_row = b + p * ldb;
      for (int64_t x = c0; x < n; ++x) c_row[x] += a_rp * b_row[x];
    }
  }
}

// The same for any number of rows: strips of 4, then the remainder.
TCAT_DISPATCH void gemm_rows(int64_t rows, int64_t depth, int64_t n, const float* a, int64_t lda, const float* b,
                             int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  int64_t r0 = 0;
  for (; r0 + kTileRows <= rows; r0 += kTileRows)
    gemm_strip<kTileRows>(depth, n, a + r0 * lda, lda, b, ldb, c + r0 * ldc, ldc, accumulate);
  switch (rows - r0) {
    case 3: gemm_strip<3>(depth, n, a + r0 * lda, lda, b, ldb, c + r0 * ldc, ldc, accumulate); break;
    case 2: gemm_strip<2>(depth, n, a + r0 * lda, lda, b, ldb, c + r0 * ldc, ldc, accumulate); break;
    case 1: gemm_strip<1>(depth, n, a + r0 * lda, lda, b, ldb, c + r0 * ldc, ldc, accumulate); break;
    default: break;
  }
}

// out[j] = x . rows[j] for j < n, rows `stride` floats apart (decoding: one query row, where
// transposing the key block would cost as much as using it).
[[gnu::always_inline]] inline void dot_rows(const float* __restrict x, const float* __restrict rows,
                                            int64_t stride, int64_t n, int64_t dim, float* __restrict out) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* r0 = rows + j * stride;
    const float* r1 = r0 + stride;
    const float* r2 = r1 + stride;
    const float* r3 = r2 + stride;
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
    for (int64_t d = 0; d < dim; ++d) {
      a0 += x[d] * r0[d];
      a1 += x[d] * r1[d];
      a2 += x[d] * r2[d];
      a3 += x[d] * r3[d];
    }
    out[j] = a0;
    out[j + 1] = a1;
    out[j + 2] = a2;
    out[j + 3] = a3;
  }
  for (; j < n; ++j) {
    const float* r = rows + j * stride;
    float a = 0;
#pragma omp simd reduction(+ : a)
    for (int64_t d = 0; d < dim; ++d) a += x[d] * r[d];
    out[j] = a;
  }
}

// Transposes 8 rows of 8 floats.
[[gnu::always_inline]] inline void transpose8x8(f32x8 (&m)[8]) {
  f32x8 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(m[i], m[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(m[i], m[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4)
    for (int k = 0; k < 2; ++k) {
      u[i + 2 * k] = __builtin_shufflevector(t[i + k], t[i + k + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      u[i + 2 * k + 1] = __builtin_shufflevector(t[i + k], t[i + k + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int i = 0; i < 4; ++i) {
    m[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    m[i + 4] = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// dst[d][j] = src[j][d] for j < n, d < dim (dst rows kKeyBlock long); columns n up to the next
// multiple of 16 are zeroed so register tiles may run over them.
TCAT_DISPATCH void transpose_block(const float* src, int64_t stride, int64_t n, int64_t dim, float* dst) {
  int64_t j0 = 0;
  if (dim % 8 == 0) {
    for (; j0 + 8 <= n; j0 += 8)
      for (int64_t d0 = 0; d0 < dim; d0 += 8) {
        f32x8 m[8];
        for (int i = 0; i < 8; ++i) m[i] = *reinterpret_cast<const f32x8_in_memory*>(src + (j0 + i) * stride + d0);
        transpose8x8(m);
        for (int i = 0; i < 8; ++i) *reinterpret_cast<f32x8_in_memory*>(dst + (d0 + i) * kKeyBlock + j0) = m[i];
      }
  }
  for (int64_t j = j0; j < n; ++j)
    for (int64_t d = 0; d < dim; ++d) dst[d * kKeyBlock + j] = src[j * stride + d];
  const int64_t padded = round_up(n, kTileCols);
  for (int64_t d = 0; d < dim; ++d) std::fill(dst + d * kKeyBlock + n, dst + d * kKeyBlock + padded, 0.0f);
}

// The call's shapes and masks, resolved once.
struct Problem {
  int64_t batch, heads, kv_heads, group, q_len, kv_len, dim;
  bool causal;
  int64_t causal_offset;  // query i sees keys j <= i + causal_offset
  const uint8_t* key_valid;
  const float* alibi_slopes;
  float scale;

  // Keys [0, key_end(i)) are the ones query i may see before padding.
  int64_t key_end(int64_t i) const {
    return causal ? std::clamp<int64_t>(i + causal_offset + 1, 0, kv_len) : kv_len;
  }
  // First query allowed to see key j.
  int64_t first_query_seeing(int64_t j) const {
    return causal ? std::clamp<int64_t>(j - causal_offset, 0, q_len) : 0;
  }
  // How many of the n keys from j0 query i may see (before padding).
  int64_t visible_keys(int64_t i, int64_t j0, int64_t n) const { return std::clamp<int64_t>(key_end(i) - j0, 0, n); }
};

// bias[j] = 0 for a valid key j0 + j, -inf for padding; false when all n keys are padding.
bool padding_bias(const Problem& p, int64_t b, int64_t j0, int64_t n, float* bias) {
  if (!p.key_valid) {
    std::fill(bias, bias + n, 0.0f);
    return true;
  }
  const uint8_t* valid = p.key_valid + b * p.kv_len + j0;
  for (int64_t j = 0; j < n; ++j) bias[j] = valid[j] ? 0.0f : kNegInf;
  return std::any_of(valid, valid + n, [](uint8_t v) { return v != 0; });
}

// The padding bias plus, with ALiBi, head h's slope times the key index (a per-row constant
// shift of slope * query index would not change the softmax, so the key index alone suffices).
bool key_bias(const Problem& p, int64_t b, int64_t h, int64_t j0, int64_t n, float* bias) {
  const bool any_valid = padding_bias(p, b, j0, n, bias);
  if (p.alibi_slopes) {
    const float slope = p.alibi_slopes[h];
    for (int64_t j = 0; j < n; ++j) bias[j] += slope * float(j0 + j);
  }
  return any_valid;
}

float* at(const HeadView& v, int64_t b, int64_t t, int64_t h) {
  return v.data + b * v.batch_stride + t * v.time_stride + h * v.head_stride;
}

Problem make_problem(const char* op, const AttentionShape& s, const AttentionMask& mask, float scale) {
  TCAT_CHECK(s.batch >= 0 && s.q_len >= 0 && s.kv_len >= 0, "{}: negative size (batch {}, q_len {}, kv_len {})",
             op, s.batch, s.q_len, s.kv_len);
  TCAT_CHECK(s.heads > 0 && s.head_dim > 0, "{}: heads ({}) and head_dim ({}) must be positive", op, s.heads,
             s.head_dim);
  const int64_t kv_heads = s.kv_heads == 0 ? s.heads : s.kv_heads;
  TCAT_CHECK(kv_heads > 0 && s.heads % kv_heads == 0, "{}: kv_heads ({}) must divide heads ({})", op, kv_heads,
             s.heads);
  return Problem{s.batch,    s.heads,     kv_heads,           s.heads / kv_heads, s.q_len,           s.kv_len,
                 s.head_dim, mask.causal, s.kv_len - s.q_len, mask.key_valid,     mask.alibi_slopes, scale};
}

void check_views(const char* op, std::initializer_list<std::pair<const char*, const HeadView*>> views) {
  for (const auto& [name, view] : views) TCAT_CHECK(view->data != nullptr, "{}: {} has no data", op, name);
}

// One query row meets one key block in the online softmax: row[0:n] holds raw dot products on
// entry and the unnormalised probabilities on exit (zeros for keys the row may not see).
[[gnu::always_inline]] inline void online_softmax_step(float* __restrict row, int64_t n, int64_t visible,
                                                       const float* __restrict bias, float scale, float& row_max,
                                                       float& row_sum, float* __restrict acc, int64_t dim) {
  float block_max = kNegInf;
#pragma omp simd reduction(max : block_max)
  for (int64_t j = 0; j < n; ++j) {
    row[j] = blend(j < visible, row[j] * scale + bias[j], kNegInf);
    block_max = std::max(block_max, row[j]);
  }
  if (block_max == kNegInf) {  // nothing visible here: the row adds nothing to the accumulator
    std::fill(row, row + n, 0.0f);
    return;
  }
  const float new_max = std::max(row_max, block_max);
  float block_sum = 0;
#pragma omp simd reduction(+ : block_sum)
  for (int64_t j = 0; j < n; ++j) {
    row[j] = vexp(row[j] - new_max);
    block_sum += row[j];
  }
  if (new_max != row_max) {
    const float correction = std::exp(row_max - new_max);  // 0 on the row's first visible block
    row_sum *= correction;
    for (int64_t d = 0; d < dim; ++d) acc[d] *= correction;
  }
  row_max = new_max;
  row_sum += block_sum;
}

// Per-thread scratch of the forward.
struct ForwardScratch {
  std::vector<float> acc, row_max, row_sum, keys_t, scores, bias;
  explicit ForwardScratch(int64_t dim)
      : acc(size_t(kQueryBlock * dim)),
        row_max(kQueryBlock),
        row_sum(kQueryBlock),
        keys_t(size_t(dim * kKeyBlock)),
        scores(kTileRows * kKeyBlock),
        bias(kKeyBlock) {}
};

// Queries [q0, q1) of head h in batch b against all the keys they may see.
TCAT_DISPATCH void forward_query_block(const Problem& p, const HeadView& q, const HeadView& k, const HeadView& v,
                                       const HeadView& out, float* lse, int64_t b, int64_t h, int64_t q0,
                                       int64_t q1, ForwardScratch& s) {
  const int64_t dim = p.dim, kvh = h / p.group, nq = q1 - q0;
  const bool tiled = nq >= kTileRows;
  float* acc = s.acc.data();
  float* scores = s.scores.data();
  std::fill(acc, acc + nq * dim, 0.0f);
  std::fill(s.row_max.begin(), s.row_max.begin() + nq, kNegInf);
  std::fill(s.row_sum.begin(), s.row_sum.begin() + nq, 0.0f);

  const int64_t keys_end = p.key_end(q1 - 1);  // the last query sees the most keys
  for (int64_t j0 = 0; j0 < keys_end; j0 += kKeyBlock) {
    const int64_t nk = std::min(kKeyBlock, keys_end - j0);
    if (!key_bias(p, b, h, j0, nk, s.bias.data())) continue;
    const float* kb = at(k, b, j0, kvh);
    const float* vb = at(v, b, j0, kvh);
    if (tiled) transpose_block(kb, k.time_stride, nk, dim, s.keys_t.data());
    for (int64_t r0 = 0; r0 < nq; r0 += kTileRows) {
      const int64_t rows = std::min(kTileRows, nq - r0);
      const int64_t strip_keys = p.visible_keys(q0 + r0 + rows - 1, j0, nk);
      if (strip_keys == 0) continue;
      const float* q_rows = at(q, b, q0 + r0, h);
      if (tiled) {
        gemm_rows(rows, dim, round_up(strip_keys, kTileCols), q_rows, q.time_stride, s.keys_t.data(), kKeyBlock,
                  scores, kKeyBlock, false);
      } else {
        for (int64_t r = 0; r < rows; ++r)
          dot_rows(q_rows + r * q.time_stride, kb, k.time_stride, strip_keys, dim, scores + r * kKeyBlock);
      }
      for (int64_t r = 0; r < rows; ++r)
        online_softmax_step(scores + r * kKeyBlock, strip_keys, p.visible_keys(q0 + r0 + r, j0, nk), s.bias.data(),
                            p.scale, s.row_max[r0 + r], s.row_sum[r0 + r], acc + (r0 + r) * dim, dim);
      gemm_rows(rows, strip_keys, dim, scores, kKeyBlock, vb, v.time_stride, acc + r0 * dim, dim, true);
    }
  }

  for (int64_t r = 0; r < nq; ++r) {
    const bool any_key = s.row_sum[r] > 0;
    const float inv_sum = any_key ? 1.0f / s.row_sum[r] : 0.0f;
    float* o = at(out, b, q0 + r, h);
    for (int64_t d = 0; d < dim; ++d) o[d] = acc[r * dim + d] * inv_sum;
    if (lse) lse[(b * p.heads + h) * p.q_len + q0 + r] = any_key ? s.row_max[r] + std::log(s.row_sum[r]) : kNegInf;
  }
}

// Per-thread scratch of the backward: transposed keys/values and gradient accumulators of one key
// block, the key-major probability / score-gradient tiles of one query block, and
// delta_i = rowsum(dout_i * out_i) for every query of the task.
struct BackwardScratch {
  std::vector<float> keys_t, values_t, dk_acc, dv_acc, probs_t, dscores_t, scores, dprobs, bias, delta;
  BackwardScratch(int64_t dim, int64_t group, int64_t q_len)
      : keys_t(size_t(dim * kKeyBlock)),
        values_t(size_t(dim * kKeyBlock)),
        dk_acc(size_t(kKeyBlock * dim)),
        dv_acc(size_t(kKeyBlock * dim)),
        probs_t(kKeyBlock * kQueryBlock),
        dscores_t(kKeyBlock * kQueryBlock),
        scores(kTileRows * kKeyBlock),
        dprobs(kTileRows * kKeyBlock),
        bias(kKeyBlock),
        delta(size_t(group * q_len)) {}
};

struct BackwardArgs {
  const HeadView &q, &k, &v, &out, &dout;
  const float* lse;
  const HeadView &dq, &dk, &dv;
};

// Keys [j0, j0 + nk) against queries [q0, q1) of head h: adds into the dq rows and into the key
// block's dk/dv accumulators.
[[gnu::always_inline]] inline void backward_query_block(const Problem& p, const BackwardArgs& a, int64_t b,
                                                        int64_t h, int64_t j0, int64_t nk, int64_t q0, int64_t q1,
                                                        BackwardScratch& s) {
  const int64_t dim = p.dim, kvh = h / p.group, nq = q1 - q0;
  const float* kb = at(a.k, b, j0, kvh);
  const float* delta = s.delta.data() + (h - kvh * p.group) * p.q_len;
  const float* bias = s.bias.data();
  float* probs_t = s.probs_t.data();
  float* dscores_t = s.dscores_t.data();
  for (int64_t r0 = 0; r0 < nq; r0 += kTileRows) {
    const int64_t rows = std::min(kTileRows, nq - r0);
    const int64_t strip_keys = p.visible_keys(q0 + r0 + rows - 1, j0, nk);
    const int64_t cols = round_up(strip_keys, kTileCols);
    gemm_rows(rows, dim, cols, at(a.q, b, q0 + r0, h), a.q.time_stride, s.keys_t.data(), kKeyBlock,
              s.scores.data(), kKeyBlock, false);
    gemm_rows(rows, dim, cols, at(a.dout, b, q0 + r0, h), a.dout.time_stride, s.values_t.data(), kKeyBlock,
              s.dprobs.data(), kKeyBlock, false);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = q0 + r0 + r;
      const float row_lse = a.lse[(b * p.heads + h) * p.q_len + i];
      const int64_t visible = row_lse == kNegInf ? 0 : p.visible_keys(i, j0, nk);
      const float row_delta = delta[i];
      // In place: the score row becomes scale * dS (the input of the dq product), the dP row P.
      float* score = s.scores.data() + r * kKeyBlock;
      float* dprob = s.dprobs.data() + r * kKeyBlock;
#pragma omp simd
      for (int64_t j = 0; j < strip_keys; ++j) {
        const float prob = blend(j < visible, vexp(score[j] * p.scale + bias[j] - row_lse), 0.0f);
        score[j] = p.scale * prob * (dprob[j] - row_delta);
        dprob[j] = prob;
      }
      for (int64_t j = 0; j < nk; ++j) {
        probs_t[j * kQueryBlock + i - q0] = j < strip_keys ? dprob[j] : 0.0f;
        dscores_t[j * kQueryBlock + i - q0] = j < strip_keys ? score[j] : 0.0f;
      }
    }
    gemm_rows(rows, strip_keys, dim, s.scores.data(), kKeyBlock, kb, a.k.time_stride, at(a.dq, b, q0 + r0, h),
              a.dq.time_stride, true);
  }
  gemm_rows(nk, nq, dim, probs_t, kQueryBlock, at(a.dout, b, q0, h), a.dout.time_stride, s.dv_acc.data(), dim, true);
  gemm_rows(nk, nq, dim, dscores_t, kQueryBlock, at(a.q, b, q0, h), a.q.time_stride, s.dk_acc.data(), dim, true);
}

// Everything of kv head kvh in batch b: dk, dv of that head and dq of its query heads.
TCAT_DISPATCH void backward_kv_head(const Problem& p, const BackwardArgs& a, int64_t b, int64_t kvh,
                                    BackwardScratch& s) {
  const int64_t dim = p.dim;
  for (int64_t g = 0; g < p.group; ++g) {
    const int64_t h = kvh * p.group + g;
    for (int64_t i = 0; i < p.q_len; ++i) {
      const float* o = at(a.out, b, i, h);
      const float* dout_row = at(a.dout, b, i, h);
      float row_delta = 0;
#pragma omp simd reduction(+ : row_delta)
      for (int64_t d = 0; d < dim; ++d) row_delta += dout_row[d] * o[d];
      s.delta[g * p.q_len + i] = row_delta;
      std::fill_n(at(a.dq, b, i, h), dim, 0.0f);
    }
  }
  for (int64_t j0 = 0; j0 < p.kv_len; j0 += kKeyBlock) {
    const int64_t nk = std::min(kKeyBlock, p.kv_len - j0);
    std::fill_n(s.dk_acc.begin(), nk * dim, 0.0f);
    std::fill_n(s.dv_acc.begin(), nk * dim, 0.0f);
    const int64_t first_query = p.first_query_seeing(j0);
    if (first_query < p.q_len && padding_bias(p, b, j0, nk, s.bias.data())) {
      transpose_block(at(a.k, b, j0, kvh), a.k.time_stride, nk, dim, s.keys_t.data());
      transpose_block(at(a.v, b, j0, kvh), a.v.time_stride, nk, dim, s.values_t.data());
      for (int64_t h = kvh * p.group; h < (kvh + 1) * p.group; ++h) {
        if (p.alibi_slopes) key_bias(p, b, h, j0, nk, s.bias.data());
        for (int64_t q0 = first_query; q0 < p.q_len; q0 += kQueryBlock)
          backward_query_block(p, a, b, h, j0, nk, q0, std::min(q0 + kQueryBlock, p.q_len), s);
      }
    }
    for (int64_t j = 0; j < nk; ++j) {
      std::copy_n(s.dk_acc.begin() + j * dim, dim, at(a.dk, b, j0 + j, kvh));
      std::copy_n(s.dv_acc.begin() + j * dim, dim, at(a.dv, b, j0 + j, kvh));
    }
  }
}

}  // namespace

void attention_forward(const AttentionShape& s, const HeadView& q, const HeadView& k, const HeadView& v,
                       const HeadView& out, const AttentionMask& mask, float scale, float* lse) {
  const Problem p = make_problem("attention_forward", s, mask, scale);
  if (p.batch == 0 || p.q_len == 0) return;
  check_views("attention_forward", {{"q", &q}, {"out", &out}});
  if (p.kv_len > 0) check_views("attention_forward", {{"k", &k}, {"v", &v}});
  const int64_t query_blocks = (p.q_len + kQueryBlock - 1) / kQueryBlock;
  const int64_t tasks = p.batch * p.heads * query_blocks;
#pragma omp parallel
  {
    ForwardScratch scratch(p.dim);
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t qb = t % query_blocks, bh = t / query_blocks;
      const int64_t q0 = qb * kQueryBlock;
      forward_query_block(p, q, k, v, out, lse, bh / p.heads, bh % p.heads, q0,
                          std::min(q0 + kQueryBlock, p.q_len), scratch);
    }
  }
}

void attention_backward(const AttentionShape& s, const HeadView& q, const HeadView& k, const HeadView& v,
                        const HeadView& out, const HeadView& dout, const float* lse, const AttentionMask& mask,
                        float scale, const HeadView& dq, const HeadView& dk, const HeadView& dv) {
  const Problem p = make_problem("attention_backward", s, mask, scale);
  if (p.batch == 0) return;
  if (p.q_len > 0) {
    TCAT_CHECK(lse != nullptr, "attention_backward: lse from the forward is required");
    check_views("attention_backward", {{"q", &q}, {"out", &out}, {"dout", &dout}, {"dq", &dq}});
  }
  if (p.kv_len > 0) check_views("attention_backward", {{"k", &k}, {"v", &v}, {"dk", &dk}, {"dv", &dv}});
  const BackwardArgs args{q, k, v, out, dout, lse, dq, dk, dv};
  const int64_t tasks = p.batch * p.kv_heads;
#pragma omp parallel
  {
    BackwardScratch scratch(p.dim, p.group, p.q_len);
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) backward_kv_head(p, args, t / p.kv_heads, t % p.kv_heads, scratch);
  }
}

}  // namespace tcat::kernels
