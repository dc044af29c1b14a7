// Activations (ReLU, GELU, SiLU) and dropout, forward and backward.
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/ops.h"
#include "kernels/ops_common.h"
#include "kernels/vecmath.h"

namespace tcat::kernels {

using detail::f32_contiguous;

namespace {

constexpr float kSqrtHalf = 0.70710678118654752f;    // 1/sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143268f;  // 1/sqrt(2*pi)
constexpr float kGeluBeta = 0.79788456080286536f;    // sqrt(2/pi)
constexpr float kGeluKappa = 0.044715f;

// PyTorch's GELU formulas, rearranged to avoid cancellation for negative x:
//   erf:  0.5*x*(1 + erf(x/sqrt2)) = 0.5*x*erfc(-x/sqrt2)
//   tanh: 0.5*x*(1 + tanh(u))      = x*sigmoid(2u),  u = sqrt(2/pi)*(x + 0.044715*x^3)
// and 1 - tanh(u)^2 = 4*sigmoid(2u)*(1 - sigmoid(2u)) in the backward.

TCAT_DISPATCH void relu_span(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = blend(x[i] < 0.0f, 0.0f, x[i]);  // NaN passes through
}

TCAT_DISPATCH void relu_backward_span(const float* __restrict x, const float* __restrict dy, float* __restrict dx,
                                      int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = blend(x[i] > 0.0f, dy[i], 0.0f);
}

TCAT_DISPATCH void gelu_erf_span(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * verfc(-x[i] * kSqrtHalf);
}

TCAT_DISPATCH void gelu_erf_backward_span(const float* __restrict x, const float* __restrict dy, float* __restrict dx,
                                          int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float cdf = 0.5f * verfc(-v * kSqrtHalf);
    const float pdf = kInvSqrt2Pi * vexp(-0.5f * v * v);
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

TCAT_DISPATCH void gelu_tanh_span(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float u = kGeluBeta * (v + kGeluKappa * v * v * v);
    y[i] = v * vsigmoid(2.0f * u).s;
  }
}

TCAT_DISPATCH void gelu_tanh_backward_span(const float* __restrict x, const float* __restrict dy, float* __restrict dx,
                                           int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float u = kGeluBeta * (v + kGeluKappa * v * v * v);
    const SigmoidPair sg = vsigmoid(2.0f * u);
    const float du = kGeluBeta * (1.0f + 3.0f * kGeluKappa * v * v);
    dx[i] = dy[i] * (sg.s + 2.0f * v * sg.s * sg.complement * du);
  }
}

TCAT_DISPATCH void silu_span(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * vsigmoid(x[i]).s;
}

TCAT_DISPATCH void silu_backward_span(const float* __restrict x, const float* __restrict dy, float* __restrict dx,
                                      int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const SigmoidPair sg = vsigmoid(x[i]);
    dx[i] = dy[i] * sg.s * (1.0f + x[i] * sg.complement);
  }
}

// Counter-based random bits: element i gets the i-th output of splitmix64 started at `seed`, a
// pure function of (seed, i), so any split of the work over threads gives the same mask.
[[gnu::always_inline]] inline uint64_t splitmix64_at(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Keeps element i when its top 24 random bits are below keep_below = (1-p) * 2^24.
TCAT_DISPATCH void dropout_span(const float* __restrict x, float* __restrict y, uint8_t* __restrict mask, int64_t first,
                                int64_t n, uint64_t seed, uint32_t keep_below, float scale) {
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = uint32_t(splitmix64_at(seed, uint64_t(first + i)) >> 40) < keep_below;
    mask[i] = uint8_t(keep);
    y[i] = blend(keep, x[i] * scale, 0.0f);
  }
}

TCAT_DISPATCH void dropout_backward_span(const float* __restrict dy, const uint8_t* __restrict mask,
                                         float* __restrict dx, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) dx[i] = blend(mask[i] != 0, dy[i] * scale, 0.0f);
}

using UnarySpan = void (*)(const float*, float*, int64_t);
using BackwardSpan = void (*)(const float*, const float*, float*, int64_t);

Tensor map_unary(const char* op, const Tensor& x_in, UnarySpan span) {
  const Tensor x = f32_contiguous(x_in, op, "x");
  Tensor y = Tensor::empty(x.shape());
  const float* px = x.data<float>();
  float* py = y.data<float>();
  detail::parallel_chunks(x.numel(), [&](int64_t begin, int64_t len) { span(px + begin, py + begin, len); });
  return y;
}

Tensor map_backward(const char* op, const Tensor& x_in, const Tensor& dy_in, BackwardSpan span) {
  const Tensor x = f32_contiguous(x_in, op, "x");
  const Tensor dy = f32_contiguous(dy_in, op, "dy");
  detail::check_same_shape(op, dy, "dy", x, "x");
  Tensor dx = Tensor::empty(x.shape());
  const float* px = x.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  detail::parallel_chunks(x.numel(),
                          [&](int64_t begin, int64_t len) { span(px + begin, pdy + begin, pdx + begin, len); });
  return dx;
}

void check_dropout_p(const char* op, float p) {
  TCAT_CHECK(p >= 0.0f && p < 1.0f, "{}: p = {} is outside [0, 1)", op, p);
}

}  // namespace

Tensor relu(const Tensor& x) { return map_unary("relu", x, relu_span); }
Tensor relu_backward(const Tensor& x, const Tensor& dy) {
  return map_backward("relu_backward", x, dy, relu_backward_span);
}

Tensor gelu(const Tensor& x, GeluApprox approx) {
  return map_unary("gelu", x, approx == GeluApprox::Erf ? gelu_erf_span : gelu_tanh_span);
}
Tensor gelu_backward(const Tensor& x, const Tensor& dy, GeluApprox approx) {
  return map_backward("gelu_backward", x, dy,
                      approx == GeluApprox::Erf ? gelu_erf_backward_span : gelu_tanh_backward_span);
}

Tensor silu(const Tensor& x) { return map_unary("silu", x, silu_span); }
Tensor silu_backward(const Tensor& x, const Tensor& dy) {
  return map_backward("silu_backward", x, dy, silu_backward_span);
}

// p == 0 draws no seed from rng: the result is a copy and the mask all ones.
Tensor dropout(const Tensor& x_in, float p, Rng& rng, Tensor* mask) {
  check_dropout_p("dropout", p);
  const Tensor x = f32_contiguous(x_in, "dropout", "x");
  Tensor y = Tensor::empty(x.shape());
  Tensor keep = Tensor::empty(x.shape(), DType::U8);
  if (p == 0.0f) {
    y.copy_from(x);
    std::memset(keep.raw_data(), 1, size_t(x.numel()));
  } else {
    const uint64_t seed = rng.next_u64();
    const auto keep_below = uint32_t((1.0 - double(p)) * 16777216.0);
    const float scale = 1.0f / (1.0f - p);
    const float* px = x.data<float>();
    float* py = y.data<float>();
    uint8_t* pm = keep.data<uint8_t>();
    detail::parallel_chunks(x.numel(), [&](int64_t begin, int64_t len) {
      dropout_span(px + begin, py + begin, pm + begin, begin, len, seed, keep_below, scale);
    });
  }
  if (mask) *mask = keep;
  return y;
}

Tensor dropout_backward(const Tensor& dy_in, const Tensor& mask_in, float p) {
  check_dropout_p("dropout_backward", p);
  const Tensor dy = f32_contiguous(dy_in, "dropout_backward", "dy");
  TCAT_CHECK(mask_in.defined() && mask_in.dtype() == DType::U8, "dropout_backward: mask must be u8, got {}",
             mask_in.desc());
  detail::check_same_shape("dropout_backward", mask_in, "mask", dy, "dy");
  const Tensor mask = mask_in.contiguous();
  Tensor dx = Tensor::empty(dy.shape());
  const float scale = 1.0f / (1.0f - p);
  const float* pdy = dy.data<float>();
  const uint8_t* pm = mask.data<uint8_t>();
  float* pdx = dx.data<float>();
  detail::parallel_chunks(dy.numel(), [&](int64_t begin, int64_t len) {
    dropout_backward_span(pdy + begin, pm + begin, pdx + begin, len, scale);
  });
  return dx;
}

}  // namespace tcat::kernels
