// Plain scalar double-precision references for the kernels in kernels/ops.h (tests only). Written
// straight from the definitions (PyTorch's formulas), with no attempt at speed.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace tcat::ref {

using Vec = std::vector<double>;

inline Vec values(const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  return Vec(v.begin(), v.end());
}

// ---- broadcasting ----

// Offset into a tensor of shape `s` (right-aligned against `out`) for the output index `idx`.
inline int64_t broadcast_offset(const Shape& s, const Shape& out, const std::vector<int64_t>& idx) {
  int64_t off = 0;
  const size_t lead = out.size() - s.size();
  for (size_t i = 0; i < s.size(); ++i) off = off * s[i] + (s[i] == 1 ? 0 : idx[lead + i]);
  return off;
}

// Calls fn(out_index_vector, flat_out_index) for every element of `shape` in row-major order.
inline void for_each_index(const Shape& shape, const std::function<void(const std::vector<int64_t>&, int64_t)>& fn) {
  const int64_t n = shape_numel(shape);
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t flat = 0; flat < n; ++flat) {
    fn(idx, flat);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

inline Vec broadcast_binary(const Vec& a, const Shape& as, const Vec& b, const Shape& bs, const Shape& out,
                            const std::function<double(double, double)>& f) {
  Vec r(size_t(shape_numel(out)));
  for_each_index(out, [&](const std::vector<int64_t>& idx, int64_t flat) {
    r[size_t(flat)] = f(a[size_t(broadcast_offset(as, out, idx))], b[size_t(broadcast_offset(bs, out, idx))]);
  });
  return r;
}

inline Vec sum_to_shape(const Vec& g, const Shape& gs, const Shape& shape) {
  Vec r(size_t(shape_numel(shape)), 0.0);
  for_each_index(gs, [&](const std::vector<int64_t>& idx, int64_t flat) {
    r[size_t(broadcast_offset(shape, gs, idx))] += g[size_t(flat)];
  });
  return r;
}

// ---- activations and their derivatives ----

constexpr double kPi = 3.14159265358979323846;

inline double relu(double x) { return x > 0 ? x : 0; }
inline double relu_grad(double x) { return x > 0 ? 1 : 0; }

// PyTorch's GELU formulas with 1 + erf(z) written as erfc(-z) and 1 + tanh(u) as 2*sigmoid(2u):
// the same functions, but the sums cancel in double for x < -6 and would make the reference
// less accurate than the fp32 kernel.
inline double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

inline double gelu_erf(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }
inline double gelu_erf_grad(double x) {
  return 0.5 * std::erfc(-x / std::sqrt(2.0)) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * kPi);
}

inline double gelu_tanh_inner(double x) { return std::sqrt(2 / kPi) * (x + 0.044715 * x * x * x); }
inline double gelu_tanh(double x) { return x * sigmoid(2 * gelu_tanh_inner(x)); }
// d/dx 0.5*x*(1 + tanh(u)) = 0.5*(1 + tanh(u)) + 0.5*x*(1 - tanh(u)^2)*du/dx, 1 - tanh^2 = 1/cosh^2.
inline double gelu_tanh_grad(double x) {
  const double u = gelu_tanh_inner(x);
  const double du = std::sqrt(2 / kPi) * (1 + 3 * 0.044715 * x * x);
  return sigmoid(2 * u) + 0.5 * x * du / (std::cosh(u) * std::cosh(u));
}

inline double silu(double x) { return x * sigmoid(x); }
inline double silu_grad(double x) { return sigmoid(x) * (1 + x * (1 - sigmoid(x))); }

inline Vec map(const Vec& x, double (*f)(double)) {
  Vec r(x.size());
  for (size_t i = 0; i < x.size(); ++i) r[i] = f(x[i]);
  return r;
}

// dx = dy * f'(x)
inline Vec map_grad(const Vec& x, const Vec& dy, double (*fprime)(double)) {
  Vec r(x.size());
  for (size_t i = 0; i < x.size(); ++i) r[i] = dy[i] * fprime(x[i]);
  return r;
}

// ---- row-wise ops over the last dimension (length d) ----

inline Vec log_softmax(const Vec& x, int64_t d) {
  Vec y(x.size());
  for (size_t r = 0; r < x.size() / size_t(d); ++r) {
    const double* row = &x[r * size_t(d)];
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < d; ++i) m = std::max(m, row[i]);
    for (int64_t i = 0; i < d; ++i) s += std::exp(row[i] - m);
    for (int64_t i = 0; i < d; ++i) y[r * size_t(d) + size_t(i)] = row[i] - m - std::log(s);
  }
  return y;
}

inline Vec softmax(const Vec& x, int64_t d) {
  Vec y = log_softmax(x, d);
  for (double& v : y) v = std::exp(v);
  return y;
}

// y = softmax(x): dx_i = y_i * (dy_i - sum_j dy_j y_j)
inline Vec softmax_backward(const Vec& y, const Vec& dy, int64_t d) {
  Vec dx(y.size());
  for (size_t r = 0; r < y.size() / size_t(d); ++r) {
    const size_t o = r * size_t(d);
    double dot = 0;
    for (int64_t i = 0; i < d; ++i) dot += dy[o + size_t(i)] * y[o + size_t(i)];
    for (int64_t i = 0; i < d; ++i) dx[o + size_t(i)] = y[o + size_t(i)] * (dy[o + size_t(i)] - dot);
  }
  return dx;
}

// y = log_softmax(x): dx_i = dy_i - exp(y_i) * sum_j dy_j
inline Vec log_softmax_backward(const Vec& y, const Vec& dy, int64_t d) {
  Vec dx(y.size());
  for (size_t r = 0; r < y.size() / size_t(d); ++r) {
    const size_t o = r * size_t(d);
    double s = 0;
    for (int64_t i = 0; i < d; ++i) s += dy[o + size_t(i)];
    for (int64_t i = 0; i < d; ++i) dx[o + size_t(i)] = dy[o + size_t(i)] - std::exp(y[o + size_t(i)]) * s;
  }
  return dx;
}

// ---- normalisation ----

struct Norm {
  Vec y, mean, rstd;
};

// beta may be empty (no shift).
inline Norm layer_norm(const Vec& x, const Vec& gamma, const Vec& beta, int64_t d, double eps) {
  const size_t rows = x.size() / size_t(d);
  Norm n{Vec(x.size()), Vec(rows), Vec(rows)};
  for (size_t r = 0; r < rows; ++r) {
    const double* row = &x[r * size_t(d)];
    double mean = 0, var = 0;
    for (int64_t i = 0; i < d; ++i) mean += row[i];
    mean /= double(d);
    for (int64_t i = 0; i < d; ++i) var += (row[i] - mean) * (row[i] - mean);
    var /= double(d);
    const double rstd = 1 / std::sqrt(var + eps);
    for (int64_t i = 0; i < d; ++i) {
      n.y[r * size_t(d) + size_t(i)] = (row[i] - mean) * rstd * gamma[size_t(i)] + (beta.empty() ? 0 : beta[size_t(i)]);
    }
    n.mean[r] = mean;
    n.rstd[r] = rstd;
  }
  return n;
}

struct NormGrads {
  Vec dx, dgamma, dbeta;
};

inline NormGrads layer_norm_backward(const Vec& dy, const Vec& x, const Vec& gamma, int64_t d, double eps) {
  const Norm n = layer_norm(x, gamma, {}, d, eps);
  NormGrads g{Vec(x.size()), Vec(size_t(d), 0.0), Vec(size_t(d), 0.0)};
  for (size_t r = 0; r < x.size() / size_t(d); ++r) {
    const size_t o = r * size_t(d);
    double mean_g = 0, mean_gx = 0;
    for (int64_t i = 0; i < d; ++i) {
      const double xhat = (x[o + size_t(i)] - n.mean[r]) * n.rstd[r];
      const double gi = dy[o + size_t(i)] * gamma[size_t(i)];
      mean_g += gi / double(d);
      mean_gx += gi * xhat / double(d);
      g.dgamma[size_t(i)] += dy[o + size_t(i)] * xhat;
      g.dbeta[size_t(i)] += dy[o + size_t(i)];
    }
    for (int64_t i = 0; i < d; ++i) {
      const double xhat = (x[o + size_t(i)] - n.mean[r]) * n.rstd[r];
      g.dx[o + size_t(i)] = n.rstd[r] * (dy[o + size_t(i)] * gamma[size_t(i)] - mean_g - xhat * mean_gx);
    }
  }
  return g;
}

inline Norm rms_norm(const Vec& x, const Vec& gamma, int64_t d, double eps) {
  const size_t rows = x.size() / size_t(d);
  Norm n{Vec(x.size()), {}, Vec(rows)};
  for (size_t r = 0; r < rows; ++r) {
    const double* row = &x[r * size_t(d)];
    double ms = 0;
    for (int64_t i = 0; i < d; ++i) ms += row[i] * row[i];
    const double rstd = 1 / std::sqrt(ms / double(d) + eps);
    for (int64_t i = 0; i < d; ++i) n.y[r * size_t(d) + size_t(i)] = row[i] * rstd * gamma[size_t(i)];
    n.rstd[r] = rstd;
  }
  return n;
}

inline NormGrads rms_norm_backward(const Vec& dy, const Vec& x, const Vec& gamma, int64_t d, double eps) {
  const Norm n = rms_norm(x, gamma, d, eps);
  NormGrads g{Vec(x.size()), Vec(size_t(d), 0.0), {}};
  for (size_t r = 0; r < x.size() / size_t(d); ++r) {
    const size_t o = r * size_t(d);
    double mean_gx = 0;
    for (int64_t i = 0; i < d; ++i) {
      const double xhat = x[o + size_t(i)] * n.rstd[r];
      mean_gx += dy[o + size_t(i)] * gamma[size_t(i)] * xhat / double(d);
      g.dgamma[size_t(i)] += dy[o + size_t(i)] * xhat;
    }
    for (int64_t i = 0; i < d; ++i) {
      const double xhat = x[o + size_t(i)] * n.rstd[r];
      g.dx[o + size_t(i)] = n.rstd[r] * (dy[o + size_t(i)] * gamma[size_t(i)] - xhat * mean_gx);
    }
  }
  return g;
}

// ---- embedding ----

inline Vec embedding(const Vec& weight, const std::vector<int64_t>& ids, int64_t d) {
  Vec out;
  for (int64_t id : ids) out.insert(out.end(), weight.begin() + id * d, weight.begin() + (id + 1) * d);
  return out;
}

inline Vec embedding_backward(const std::vector<int64_t>& ids, const Vec& dy, int64_t vocab, int64_t d) {
  Vec dw(size_t(vocab * d), 0.0);
  for (size_t i = 0; i < ids.size(); ++i) {
    for (int64_t j = 0; j < d; ++j) dw[size_t(ids[i] * d + j)] += dy[i * size_t(d) + size_t(j)];
  }
  return dw;
}

// ---- cross-entropy (torch.nn.CrossEntropyLoss, reduction='mean') ----

// Mean over rows whose target is not ignore_index of (1-e)*(-logp[t]) + e*mean_v(-logp[v]);
// 0 when every row is ignored.
inline double cross_entropy(const Vec& logits, const std::vector<int64_t>& targets, int64_t classes, double e,
                            int64_t ignore_index) {
  const Vec lp = log_softmax(logits, classes);
  double sum = 0;
  int64_t count = 0;
  for (size_t r = 0; r < targets.size(); ++r) {
    if (targets[r] == ignore_index) continue;
    double mean_nlp = 0;
    for (int64_t v = 0; v < classes; ++v) mean_nlp -= lp[r * size_t(classes) + size_t(v)] / double(classes);
    sum += (1 - e) * -lp[r * size_t(classes) + size_t(targets[r])] + e * mean_nlp;
    ++count;
  }
  return count ? sum / double(count) : 0.0;
}

inline Vec cross_entropy_grad(const Vec& logits, const std::vector<int64_t>& targets, int64_t classes, double e,
                              int64_t ignore_index, double dloss) {
  const Vec p = softmax(logits, classes);
  int64_t count = 0;
  for (int64_t t : targets) count += t != ignore_index;
  Vec g(logits.size(), 0.0);
  for (size_t r = 0; r < targets.size(); ++r) {
    if (targets[r] == ignore_index) continue;
    for (int64_t v = 0; v < classes; ++v) {
      const double target_prob = (1 - e) * (v == targets[r]) + e / double(classes);
      g[r * size_t(classes) + size_t(v)] = dloss / double(count) * (p[r * size_t(classes) + size_t(v)] - target_prob);
    }
  }
  return g;
}

// ---- finite differences ----

// Gradient of sum_j w_j * f(x)_j with respect to x by central differences (double precision).
inline Vec numeric_vjp(const std::function<Vec(const Vec&)>& f, Vec x, const Vec& w, double h = 1e-6) {
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const Vec up = f(x);
    x[i] = saved - h;
    const Vec down = f(x);
    x[i] = saved;
    double s = 0;
    for (size_t j = 0; j < w.size(); ++j) s += w[j] * (up[j] - down[j]);
    g[i] = s / (2 * h);
  }
  return g;
}

}  // namespace tcat::ref
