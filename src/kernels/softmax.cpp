// Softmax and log-softmax over the last dimension, and the cross-entropy loss built on them.
// Every row is shifted by its maximum before exponentiating, so large logits cannot overflow and
// -inf entries give probability 0.
#include <cmath>

#include "kernels/dispatch.h"
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
