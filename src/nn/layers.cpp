#include "nn/layers.h"

#include <cmath>

namespace tcat::nn {

Tensor xavier_uniform(int64_t fan_out, int64_t fan_in, Rng& rng) {
  Tensor t = Tensor::empty({fan_out, fan_in});
  const float bound = std::sqrt(6.0f / float(fan_in + fan_out));
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = (2.0f * rng.uniform() - 1.0f) * bound;
  return t;
}

Tensor normal_init(const Shape& shape, float std, Rng& rng) {
  Tensor t = Tensor::empty(shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng.normal() * std;
  return t;
}

void store_weights_bf16(Module& model) {
  for (Var& param : model.parameters())
    if (param.value().ndim() == 2) param.value() = param.value().to(DType::BF16);
}

Linear::Linear(int64_t in, int64_t out, bool with_bias, Rng& rng) {
  weight = add_parameter("weight", xavier_uniform(out, in, rng));
  if (with_bias) bias = add_parameter("bias", Tensor::zeros({out}));
}

Embedding::Embedding(int64_t vocab, int64_t dim, float init_std, Rng& rng) {
  weight = add_parameter("weight", normal_init({vocab, dim}, init_std, rng));
}

Norm::Norm(NormKind k, int64_t dim, float e, bool with_bias) : kind(k), eps(e) {
  weight = add_parameter("weight", Tensor::full({dim}, 1.0f));
  if (with_bias && kind == NormKind::LayerNorm) bias = add_parameter("bias", Tensor::zeros({dim}));
}

Var Norm::forward(const Var& x) const {
  return kind == NormKind::LayerNorm ? ag::layer_norm(x, weight, bias, eps) : ag::rms_norm(x, weight, eps);
}

Var activate(const Var& x, Activation a) {
  switch (a) {
    case Activation::ReLU: return ag::relu(x);
    case Activation::GELU: return ag::gelu(x, kernels::GeluApprox::Erf);
    case Activation::GELUTanh: return ag::gelu(x, kernels::GeluApprox::Tanh);
    case Activation::SiLU: return ag::silu(x);
  }
  fail("unknown activation {}", int(a));
}

FeedForward::FeedForward(int64_t d_model, int64_t d_ff, Activation act, bool gated, bool bias, float dropout,
                         Rng& rng)
    : act_(act), dropout_(dropout), up_(d_model, d_ff, bias, rng), down_(d_ff, d_model, bias, rng) {
  add_module("up", up_);
  add_module("down", down_);
  if (gated) {
    gate_ = std::make_unique<Linear>(d_model, d_ff, bias, rng);
    add_module("gate", *gate_);
  }
}

Var FeedForward::forward(const Var& x, const ForwardContext& ctx) const {
  Var h = gate_ ? ag::mul(activate(gate_->forward(x), act_), up_.forward(x)) : activate(up_.forward(x), act_);
  if (ctx.training) h = ag::dropout(h, dropout_, *ctx.rng);
  return down_.forward(h);
}

}  // namespace tcat::nn
