#include "nn/layers.h"

#include <cmath>

#include "kernels/int8.h"

namespace tcat::nn {

namespace {

Tensor placeholder(const Shape& shape) { return Tensor::zeros({}).expand(shape); }

}  // namespace

Tensor Init::xavier_uniform(int64_t fan_out, int64_t fan_in) const {
  if (!rng_) return placeholder({fan_out, fan_in});
  Tensor t = Tensor::empty({fan_out, fan_in});
  const float bound = std::sqrt(6.0f / float(fan_in + fan_out));
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = (2.0f * rng_->uniform() - 1.0f) * bound;
  return t;
}

Tensor Init::normal(const Shape& shape, float std) const {
  if (!rng_) return placeholder(shape);
  Tensor t = Tensor::empty(shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng_->normal() * std;
  return t;
}

Tensor Init::constant(const Shape& shape, float value) const {
  return rng_ ? Tensor::full(shape, value) : placeholder(shape);
}

WeightStorage parse_weight_storage(const std::string& name) {
  if (name == "f32") return WeightStorage::F32;
  if (name == "bf16") return WeightStorage::BF16;
  if (name == "int8") return WeightStorage::Int8;
  throw UsageError(fmt::format("weight storage '{}': expected f32, bf16 or int8", name));
}

void store_weights(Module& model, WeightStorage storage) {
  if (storage == WeightStorage::F32) return;
  for (Var& param : model.parameters()) {
    if (param.value().ndim() != 2) continue;
    param.value() = storage == WeightStorage::BF16 ? param.value().to(DType::BF16)
                                                   : kernels::quantize_weight_int8(param.value());
  }
}

Linear::Linear(int64_t in, int64_t out, bool with_bias, const Init& init) {
  weight = add_parameter("weight", init.xavier_uniform(out, in));
  if (with_bias) bias = add_parameter("bias", init.constant({out}, 0.0f));
}

Embedding::Embedding(int64_t vocab, int64_t dim, float init_std, const Init& init) {
  weight = add_parameter("weight", init.normal({vocab, dim}, init_std));
}

Norm::Norm(NormKind k, int64_t dim, float e, bool with_bias, const Init& init) : kind(k), eps(e) {
  weight = add_parameter("weight", init.constant({dim}, 1.0f));
  if (with_bias && kind == NormKind::LayerNorm) bias = add_parameter("bias", init.constant({dim}, 0.0f));
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
                         const Init& init)
    : act_(act), dropout_(dropout), up_(d_model, d_ff, bias, init), down_(d_ff, d_model, bias, init) {
  add_module("up", up_);
  add_module("down", down_);
  if (gated) {
    gate_ = std::make_unique<Linear>(d_model, d_ff, bias, init);
    add_module("gate", *gate_);
  }
}

Var FeedForward::forward(const Var& x, const ForwardContext& ctx) const {
  Var h = gate_ ? ag::mul(activate(gate_->forward(x), act_), up_.forward(x)) : activate(up_.forward(x), act_);
  if (ctx.training) h = ag::dropout(h, dropout_, *ctx.rng);
  return down_.forward(h);
}

}  // namespace tcat::nn
