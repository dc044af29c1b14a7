// Softmax and log-softmax over the last dimension, the cross-entropy loss built on them, and the
// choice of the best next tokens from an output projection. Every row is shifted by its maximum
// before exponentiating, so large logits cannot overflow and -inf entries give probability 0.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "kernels/dispatch.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/ops_common.h"
#include "kernels/vecmath.h"

namespace tcat::kernels {

using detail::f32_contiguous;

namespace {

[[gnu::always_inline]] inline float row_max(const float* x, int64_t n) {
  return vmax(n, [x](int64_t i) { return x[i]; });
}

TCAT_DISPATCH void softmax_row(const float* __restrict x, float* __restrict y, int64_t n) {
  const float m = row_max(x, n);
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) {
    const float e = vexp(x[i] - m);
    y[i] = e;
    s += e;
  }
  const float inv = 1.0f / s;
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

// log(sum(exp(x))) = max + log_sum; shifted_sum = sum(x - max) feeds the label-smoothing term.
// The sums run in double: vocabulary-sized rows keep log_sum accurate to ~1 ulp.
struct RowLse {
  float max, log_sum, shifted_sum;
};

TCAT_DISPATCH RowLse row_lse(const float* x, int64_t n) {
  const float m = row_max(x, n);
  double s = 0.0, shifted = 0.0;
#pragma omp simd reduction(+ : s, shifted)
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - m;
    s += double(vexp(d));
    shifted += double(d);
  }
  return {m, float(std::log(s)), float(shifted)};
}

// sum(exp(x - max)) of a block of a row, for a log-sum-exp put together from blocks.
struct ExpSum {
  float max;
  double sum;
};

TCAT_DISPATCH ExpSum exp_sum(const float* x, int64_t n) {
  const float m = row_max(x, n);
  if (m == -std::numeric_limits<float>::infinity()) {  // each entry -inf or NaN (row_max skips NaN)
    const bool nan = std::any_of(x, x + n, [](float v) { return std::isnan(v); });
    return {m, nan ? std::numeric_limits<double>::quiet_NaN() : 0.0};
  }
  // A block is at most a few thousand entries: 32 float partial sums keep it to ~1e-7 relative,
  // and the blocks are put together in double.
  return {m, double(vsum(n, [x, m](int64_t i) { return vexp(x[i] - m); }))};
}

// The log-sum-exp of a row from its blocks' ExpSums: {max, log_sum} as RowLse has them.
std::pair<float, float> merge_exp_sums(const ExpSum* blocks, int64_t count) {
  float top = -std::numeric_limits<float>::infinity();
  bool nan = false;
  for (int64_t b = 0; b < count; ++b) {
    top = std::max(top, blocks[b].max);
    nan = nan || std::isnan(blocks[b].sum);
  }
  if (nan) return {top, std::numeric_limits<float>::quiet_NaN()};
  double total = 0.0;
  for (int64_t b = 0; b < count; ++b)
    if (blocks[b].sum > 0.0) total += blocks[b].sum * std::exp(double(blocks[b].max) - double(top));
  return {top, float(std::log(total))};
}

// value = max(value, candidate), atomically.
void raise_to(std::atomic<float>& value, float candidate) {
  float seen = value.load(std::memory_order_relaxed);
  while (candidate > seen && !value.compare_exchange_weak(seen, candidate, std::memory_order_relaxed)) {
  }
}

// y = (x - max) - log_sum, in PyTorch's order: exact for the largest entries.
TCAT_DISPATCH void write_log_softmax(const float* __restrict x, RowLse lse, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - lse.max) - lse.log_sum;
}

TCAT_DISPATCH void softmax_backward_row(const float* __restrict y, const float* __restrict dy, float* __restrict dx,
                                        int64_t n) {
  const float dot = vsum(n, [y, dy](int64_t i) { return y[i] * dy[i]; });
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] * (dy[i] - dot);
}

TCAT_DISPATCH void log_softmax_backward_row(const float* __restrict y, const float* __restrict dy, float* __restrict dx,
                                            int64_t n) {
  const float s = vsum(n, [dy](int64_t i) { return dy[i]; });
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] - vexp(y[i]) * s;
}

// dx = scale * (softmax - e/V) everywhere, minus scale*(1-e) at the target.
TCAT_DISPATCH void cross_entropy_backward_row(const float* __restrict log_probs, float* __restrict dx, int64_t n,
                                              int64_t target, float scale, float smoothing) {
  const float uniform = smoothing / float(n);
  for (int64_t i = 0; i < n; ++i) dx[i] = scale * (vexp(log_probs[i]) - uniform);
  dx[target] -= scale * (1.0f - smoothing);
}

using RowBackward = void (*)(const float*, const float*, float*, int64_t);

Tensor row_backward(const char* op, const Tensor& y_in, const Tensor& dy_in, RowBackward row) {
  const Tensor y = f32_contiguous(y_in, op, "y");
  const Tensor dy = f32_contiguous(dy_in, op, "dy");
  detail::check_same_shape(op, dy, "dy", y, "y");
  const int64_t d = detail::row_length(y, op);
  Tensor dx = Tensor::empty(y.shape());
  const float* py = y.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  detail::parallel_rows(y.numel() / d, d, [&](int64_t r) { row(py + r * d, pdy + r * d, pdx + r * d, d); });
  return dx;
}

// Targets as int64 after checking shape [rows] and range; `counted` = rows not ignored.
std::vector<int64_t> checked_targets(const char* op, const Tensor& targets, int64_t rows, int64_t classes,
                                     int64_t ignore_index, int64_t* counted) {
  std::vector<int64_t> ids = detail::read_ids(targets, op, "targets");
  TCAT_CHECK(targets.shape() == Shape{rows}, "{}: targets {} do not match the {} rows of the logits", op,
             targets.desc(), rows);
  *counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = ids[size_t(r)];
    if (t == ignore_index) continue;
    TCAT_CHECK(t >= 0 && t < classes, "{}: target {} at row {} is outside [0, {})", op, t, r, classes);
    ++*counted;
  }
  return ids;
}

// [N, V] with V > 0.
void check_logits(const char* op, const Tensor& t, const char* name) {
  TCAT_CHECK(t.ndim() == 2 && t.dim(1) > 0, "{}: {} {} must be [N, V] with V > 0", op, name, t.desc());
}

}  // namespace

namespace {

// Applies row(x_row, y_row, d) to every row of the last dimension.
template <typename RowFn>
Tensor row_forward(const char* op, const Tensor& x_in, RowFn row) {
  const Tensor x = f32_contiguous(x_in, op, "x");
  const int64_t d = detail::row_length(x, op);
  Tensor y = Tensor::empty(x.shape());
  const float* px = x.data<float>();
  float* py = y.data<float>();
  detail::parallel_rows(x.numel() / d, d, [&](int64_t r) { row(px + r * d, py + r * d, d); });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x) { return row_forward("softmax", x, softmax_row); }

Tensor softmax_backward(const Tensor& y, const Tensor& dy) {
  return row_backward("softmax_backward", y, dy, softmax_backward_row);
}

Tensor log_softmax(const Tensor& x) {
  return row_forward("log_softmax", x, [](const float* xr, float* yr, int64_t d) {
    write_log_softmax(xr, row_lse(xr, d), yr, d);
  });
}

Tensor log_softmax_backward(const Tensor& y, const Tensor& dy) {
  return row_backward("log_softmax_backward", y, dy, log_softmax_backward_row);
}

// Mean over counted rows; 0 when every row is ignored (PyTorch returns NaN, 0/0, there).
float cross_entropy(const Tensor& logits_in, const Tensor& targets, float label_smoothing, int64_t ignore_index,
                    CrossEntropySaved* saved) {
  const char* op = "cross_entropy";
  const Tensor logits = f32_contiguous(logits_in, op, "logits");
  check_logits(op, logits, "logits");
  TCAT_CHECK(label_smoothing >= 0.0f && label_smoothing <= 1.0f, "{}: label_smoothing {} is outside [0, 1]", op,
             label_smoothing);
  const int64_t rows = logits.dim(0), classes = logits.dim(1);
  int64_t counted = 0;
  const std::vector<int64_t> ids = checked_targets(op, targets, rows, classes, ignore_index, &counted);
  Tensor log_probs = saved ? Tensor::empty(logits.shape()) : Tensor();
  const float* px = logits.data<float>();
  float* plp = saved ? log_probs.data<float>() : nullptr;
  const double e = label_smoothing;
  std::vector<double> row_loss(size_t(rows), 0.0);
  detail::parallel_rows(rows, classes, [&](int64_t r) {
    const float* x = px + r * classes;
    const RowLse lse = row_lse(x, classes);
    if (plp) write_log_softmax(x, lse, plp + r * classes, classes);
    const int64_t t = ids[size_t(r)];
    if (t == ignore_index) return;
    const double nll = double(lse.log_sum) - double(x[t] - lse.max);
    // Without smoothing the (possibly infinite) smoothing term is not formed at all, as in PyTorch.
    row_loss[size_t(r)] =
        e > 0 ? (1 - e) * nll + e * (double(lse.log_sum) - double(lse.shifted_sum) / double(classes)) : nll;
  });
  double sum = 0;
  for (double l : row_loss) sum += l;
  if (saved) {
    saved->log_probs = log_probs;
    saved->count = counted;
  }
  return counted > 0 ? float(sum / double(counted)) : 0.0f;
}

TCAT_DISPATCH void best_tokens(const float* row, int64_t size, int64_t n, std::vector<ScoredToken>& out, float floor) {
  constexpr int64_t kChunk = 32;
  constexpr float kNever = -std::numeric_limits<float>::infinity();
  out.clear();
  float threshold = floor > kNever ? std::nextafter(floor, kNever) : kNever;  // taken: entries above it
  for (int64_t begin = 0; begin < size; begin += kChunk) {
    const int64_t end = std::min(begin + kChunk, size);
    // Once `out` is full almost no chunk holds a better entry: a vectorised max skips them.
    float chunk_max = threshold;
#pragma omp simd reduction(max : chunk_max)
    for (int64_t v = begin; v < end; ++v) chunk_max = row[v] > chunk_max ? row[v] : chunk_max;  // NaN ignored
    if (!(chunk_max > threshold)) continue;
    for (int64_t v = begin; v < end; ++v) {
      if (!(row[v] > threshold)) continue;
      const auto at = std::find_if(out.begin(), out.end(), [&](const ScoredToken& t) { return t.score < row[v]; });
      out.insert(at, {row[v], v});
      if (int64_t(out.size()) > n) out.pop_back();
      if (int64_t(out.size()) == n) threshold = out.back().score;
    }
  }
}

std::vector<RowTopK> linear_top_k(const Tensor& x, const Tensor& w, const Tensor* bias, int64_t n,
                                  std::span<const int64_t> excluded, bool log_sum_exp) {
  const char* op = "linear_top_k";
  TCAT_CHECK(n >= 1, "{}: asks for {} best tokens", op, n);
  TCAT_CHECK(x.ndim() == 2 && w.ndim() == 2, "{}: input {} and weight {} must be matrices", op, x.desc(), w.desc());
  const int64_t R = x.dim(0), N = w.dim(0);
  for (int64_t id : excluded) TCAT_CHECK(id >= 0 && id < N, "{}: excluded token {} outside [0, {})", op, id, N);
  // Per (row, block): the block's ExpSum and up to n best entries. Merged in block order below, so
  // the result does not depend on which thread took which block.
  const int64_t blocks = column_block_count(R, N);
  const size_t slots = size_t(R * blocks);
  std::vector<ExpSum> sums(log_sum_exp ? slots : 0);
  std::vector<ScoredToken> candidates(slots * size_t(n));
  std::vector<int64_t> found(slots, 0);
  // Per row, the n-th best logit of any block seen so far: nothing below it can make the row's n
  // best, so later blocks skip it (without it every block would rebuild a list from scratch).
  // Which blocks have been seen varies from run to run; what the merge below selects does not.
  std::vector<std::atomic<float>> floors(static_cast<size_t>(R));
  for (auto& f : floors) f.store(-std::numeric_limits<float>::infinity(), std::memory_order_relaxed);
  linear_by_column_blocks(x, w, bias, [&](int64_t block, int64_t n0, int64_t cols, float* values) {
    thread_local std::vector<ScoredToken> best;
    for (int64_t r = 0; r < R; ++r) {
      float* row = values + r * cols;
      const size_t slot = size_t(r * blocks + block);
      if (log_sum_exp) sums[slot] = exp_sum(row, cols);
      for (int64_t id : excluded)
        if (id >= n0 && id < n0 + cols) row[id - n0] = -std::numeric_limits<float>::infinity();
      std::atomic<float>& floor = floors[size_t(r)];
      const float below = floor.load(std::memory_order_relaxed);
      // Most blocks of a wide row hold nothing above the floor: their maximum (known from the exp
      // sum) says so without a scan.
      if (log_sum_exp && sums[slot].max < below) continue;  // found[slot] stays 0
      best_tokens(row, cols, n, best, below);
      for (size_t i = 0; i < best.size(); ++i) candidates[slot * size_t(n) + i] = {best[i].score, best[i].token + n0};
      found[slot] = int64_t(best.size());
      if (int64_t(best.size()) == n) raise_to(floor, best.back().score);
    }
  });
  std::vector<RowTopK> out(static_cast<size_t>(R));
  detail::parallel_rows(R, blocks * n, [&](int64_t r) {
    RowTopK& row = out[size_t(r)];
    const size_t first = size_t(r * blocks);
    if (log_sum_exp) {
      std::tie(row.max, row.log_sum) = merge_exp_sums(sums.data() + first, blocks);
      if (std::isnan(row.log_sum)) return;
    }
    for (int64_t b = 0; b < blocks; ++b) {
      const ScoredToken* c = candidates.data() + (first + size_t(b)) * size_t(n);
      row.best.insert(row.best.end(), c, c + found[first + size_t(b)]);
    }
    const auto better = [](const ScoredToken& a, const ScoredToken& b) {
      return a.score > b.score || (a.score == b.score && a.token < b.token);
    };
    const size_t keep = std::min(row.best.size(), size_t(n));
    std::partial_sort(row.best.begin(), row.best.begin() + ptrdiff_t(keep), row.best.end(), better);
    row.best.resize(keep);
  });
  return out;
}

Tensor cross_entropy_backward(const CrossEntropySaved& saved, const Tensor& targets, float label_smoothing,
                              int64_t ignore_index, float dloss) {
  const char* op = "cross_entropy_backward";
  const Tensor log_probs = f32_contiguous(saved.log_probs, op, "saved log_probs");
  check_logits(op, log_probs, "saved log_probs");
  const int64_t rows = log_probs.dim(0), classes = log_probs.dim(1);
  int64_t counted = 0;
  const std::vector<int64_t> ids = checked_targets(op, targets, rows, classes, ignore_index, &counted);
  TCAT_CHECK(counted == saved.count, "{}: {} targets count but the forward counted {}", op, counted, saved.count);
  Tensor grad = Tensor::empty(log_probs.shape());
  const float scale = counted > 0 ? dloss / float(counted) : 0.0f;
  const float* plp = log_probs.data<float>();
  float* pg = grad.data<float>();
  detail::parallel_rows(rows, classes, [&](int64_t r) {
    float* g = pg + r * classes;
    const int64_t t = ids[size_t(r)];
    if (t == ignore_index) {
      std::fill_n(g, classes, 0.0f);
      return;
    }
    cross_entropy_backward_row(plp + r * classes, g, classes, t, scale, label_smoothing);
  });
  return grad;
}

}  // namespace tcat::kernels
