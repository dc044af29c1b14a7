// LayerNorm and RMSNorm over the last dimension, forward and backward. The backward sums
// dgamma/dbeta over rows into one buffer per thread and adds the buffers up afterwards, so
// there are no races and no atomics.
#include <omp.h>

#include <cmath>

#include "kernels/dispatch.h"
#include "kernels/ops.h"
#include "kernels/ops_common.h"
#include "kernels/vecmath.h"

namespace tcat::kernels {

using detail::f32_contiguous;

namespace {

// Mean, then the biased variance as the mean of squared deviations (two passes over a row in
// cache: no cancellation for rows with a large mean).
TCAT_DISPATCH void layer_norm_row(const float* __restrict x, const float* __restrict gamma,
                                  const float* __restrict beta, int64_t n, float eps, float* __restrict y,
                                  float* mean_out, float* rstd_out) {
  const float mean = vsum(n, [x](int64_t i) { return x[i]; }) / float(n);
  const float sq = vsum(n, [x, mean](int64_t i) { return (x[i] - mean) * (x[i] - mean); });
  const float rstd = 1.0f / std::sqrt(sq / float(n) + eps);
  if (beta) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * gamma[i];
  }
  *mean_out = mean;
  *rstd_out = rstd;
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma, xhat = (x - mean) * rstd.
TCAT_DISPATCH void layer_norm_backward_row(const float* __restrict dy, const float* __restrict x,
                                           const float* __restrict gamma, float mean, float rstd, int64_t n,
                                           float* __restrict dx, float* __restrict dgamma_acc,
                                           float* __restrict dbeta_acc) {
  const float mean_g = vsum(n, [dy, gamma](int64_t i) { return dy[i] * gamma[i]; }) / float(n);
  const float mean_gx = vsum(n, [=](int64_t i) { return dy[i] * gamma[i] * (x[i] - mean) * rstd; }) / float(n);
  for (int64_t i = 0; i < n; ++i) {
    const float xhat = (x[i] - mean) * rstd;
    dx[i] = rstd * (dy[i] * gamma[i] - mean_g - xhat * mean_gx);
    dgamma_acc[i] += dy[i] * xhat;
    dbeta_acc[i] += dy[i];
  }
}

TCAT_DISPATCH void rms_norm_row(const float* __restrict x, const float* __restrict gamma, int64_t n, float eps,
                                float* __restrict y, float* rstd_out) {
  const float sq = vsum(n, [x](int64_t i) { return x[i] * x[i]; });
  const float rstd = 1.0f / std::sqrt(sq / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * rstd * gamma[i];
  *rstd_out = rstd;
}

// dx = rstd * (g - xhat * mean(g * xhat)), g = dy * gamma, xhat = x * rstd.
TCAT_DISPATCH void rms_norm_backward_row(const float* __restrict dy, const float* __restrict x,
                                         const float* __restrict gamma, float rstd, int64_t n, float* __restrict dx,
                                         float* __restrict dgamma_acc) {
  const float mean_gx = vsum(n, [=](int64_t i) { return dy[i] * gamma[i] * x[i] * rstd; }) / float(n);
  for (int64_t i = 0; i < n; ++i) {
    const float xhat = x[i] * rstd;
    dx[i] = rstd * (dy[i] * gamma[i] - xhat * mean_gx);
    dgamma_acc[i] += dy[i] * xhat;
  }
}

// Per-thread row sums of a [D] parameter gradient, added into `grad` at the end. They are
// computed even when `grad` is undefined (and then dropped): one fused row loop serves both cases.
class ParamGradSums {
 public:
  ParamGradSums(const char* op, Tensor& grad, const char* name, int64_t d, int threads)
      : grad_(grad), d_(d), sums_(static_cast<size_t>(threads * d), 0.0f) {
    if (grad.defined()) detail::check_output(op, grad, name, {d});
  }
  float* for_thread(int t) { return sums_.data() + t * d_; }
  void add_into_grad() {
    if (!grad_.defined()) return;
    float* g = grad_.data<float>();
    const int64_t threads = int64_t(sums_.size()) / d_;
    for (int64_t t = 0; t < threads; ++t) {
      for (int64_t i = 0; i < d_; ++i) g[i] += sums_[size_t(t * d_ + i)];
    }
  }

 private:
  Tensor& grad_;
  int64_t d_;
  std::vector<float> sums_;
};

// The inputs of a normalisation backward: dy and x contiguous and of one shape, row length D.
struct NormBackwardArgs {
  Tensor dy, x, gamma;
  int64_t d, rows;
};

NormBackwardArgs norm_backward_args(const char* op, const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                    const NormStats& stats, bool needs_mean) {
  NormBackwardArgs a;
  a.dy = f32_contiguous(dy, op, "dy");
  a.x = f32_contiguous(x, op, "x");
  detail::check_same_shape(op, a.dy, "dy", a.x, "x");
  a.d = detail::row_length(a.x, op);
  a.rows = a.x.numel() / a.d;
  a.gamma = detail::row_param(gamma, op, "gamma", a.x, a.d);
  const Shape row_shape{a.rows};
  TCAT_CHECK(stats.rstd.defined() && stats.rstd.dtype() == DType::F32 && stats.rstd.shape() == row_shape,
             "{}: stats.rstd {} must be f32{} for x {}", op, stats.rstd.desc(), shape_str(row_shape), a.x.desc());
  TCAT_CHECK(
      !needs_mean || (stats.mean.defined() && stats.mean.dtype() == DType::F32 && stats.mean.shape() == row_shape),
      "{}: stats.mean {} must be f32{} for x {}", op, stats.mean.desc(), shape_str(row_shape), a.x.desc());
  return a;
}

int threads_for(int64_t work) { return work > detail::kParallelMin ? omp_get_max_threads() : 1; }

}  // namespace

Tensor layer_norm(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in, float eps, NormStats* stats) {
  const char* op = "layer_norm";
  const Tensor x = f32_contiguous(x_in, op, "x");
  const int64_t d = detail::row_length(x, op);
  const int64_t rows = x.numel() / d;
  const Tensor gamma = detail::row_param(gamma_in, op, "gamma", x, d);
  const Tensor beta = beta_in.defined() ? detail::row_param(beta_in, op, "beta", x, d) : Tensor();
  Tensor y = Tensor::empty(x.shape());
  Tensor mean = Tensor::empty({rows}), rstd = Tensor::empty({rows});
  const float* px = x.data<float>();
  const float* pg = gamma.data<float>();
  const float* pb = beta.defined() ? beta.data<float>() : nullptr;
  float* py = y.data<float>();
  float* pm = mean.data<float>();
  float* pr = rstd.data<float>();
  detail::parallel_rows(rows, d,
                        [&](int64_t r) { layer_norm_row(px + r * d, pg, pb, d, eps, py + r * d, pm + r, pr + r); });
  if (stats) *stats = {mean, rstd};
  return y;
}

Tensor layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const NormStats& stats,
                           Tensor& dgamma, Tensor& dbeta) {
  const char* op = "layer_norm_backward";
  const NormBackwardArgs a = norm_backward_args(op, dy, x, gamma, stats, true);
  const int threads = threads_for(a.x.numel());
  ParamGradSums gamma_sums(op, dgamma, "dgamma", a.d, threads), beta_sums(op, dbeta, "dbeta", a.d, threads);
  Tensor dx = Tensor::empty(a.x.shape());
  const Tensor mean = stats.mean.contiguous(), rstd = stats.rstd.contiguous();
  const float* pdy = a.dy.data<float>();
  const float* px = a.x.data<float>();
  const float* pg = a.gamma.data<float>();
  const float* pm = mean.data<float>();
  const float* pr = rstd.data<float>();
  float* pdx = dx.data<float>();
  const int64_t d = a.d;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int t = omp_get_thread_num();
    float* dgamma_acc = gamma_sums.for_thread(t);
    float* dbeta_acc = beta_sums.for_thread(t);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < a.rows; ++r) {
      layer_norm_backward_row(pdy + r * d, px + r * d, pg, pm[r], pr[r], d, pdx + r * d, dgamma_acc, dbeta_acc);
    }
  }
  gamma_sums.add_into_grad();
  beta_sums.add_into_grad();
  return dx;
}

// stats->mean is left undefined.
Tensor rms_norm(const Tensor& x_in, const Tensor& gamma_in, float eps, NormStats* stats) {
  const char* op = "rms_norm";
  const Tensor x = f32_contiguous(x_in, op, "x");
  const int64_t d = detail::row_length(x, op);
  const int64_t rows = x.numel() / d;
  const Tensor gamma = detail::row_param(gamma_in, op, "gamma", x, d);
  Tensor y = Tensor::empty(x.shape());
  Tensor rstd = Tensor::empty({rows});
  const float* px = x.data<float>();
  const float* pg = gamma.data<float>();
  float* py = y.data<float>();
  float* pr = rstd.data<float>();
  detail::parallel_rows(rows, d, [&](int64_t r) { rms_norm_row(px + r * d, pg, d, eps, py + r * d, pr + r); });
  if (stats) *stats = {Tensor(), rstd};
  return y;
}

Tensor rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const NormStats& stats,
                         Tensor& dgamma) {
  const char* op = "rms_norm_backward";
  const NormBackwardArgs a = norm_backward_args(op, dy, x, gamma, stats, false);
  const int threads = threads_for(a.x.numel());
  ParamGradSums gamma_sums(op, dgamma, "dgamma", a.d, threads);
  Tensor dx = Tensor::empty(a.x.shape());
  const Tensor rstd = stats.rstd.contiguous();
  const float* pdy = a.dy.data<float>();
  const float* px = a.x.data<float>();
  const float* pg = a.gamma.data<float>();
  const float* pr = rstd.data<float>();
  float* pdx = dx.data<float>();
  const int64_t d = a.d;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    float* dgamma_acc = gamma_sums.for_thread(omp_get_thread_num());
#pragma omp for schedule(static)
    for (int64_t r = 0; r < a.rows; ++r) {
      rms_norm_backward_row(pdy + r * d, px + r * d, pg, pr[r], d, pdx + r * d, dgamma_acc);
    }
  }
  gamma_sums.add_into_grad();
  return dx;
}

}  // namespace tcat::kernels
