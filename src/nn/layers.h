// Basic layers: Linear, Embedding, Norm, FeedForward.
#pragma once
#include "autograd/ops.h"
#include "nn/module.h"

namespace tcat::nn {

// How module constructors fill their parameters. From an Rng (implicitly, so `Linear(in, out,
// bias, rng)` reads as before): random matrices and constant vectors, for training. Placeholders:
// every parameter has its shape but no memory of its own (a broadcast zero), for a model whose
// parameters are all about to be replaced by loaded weights; such a model must not be used until
// each parameter has been assigned.
class Init {
 public:
  Init(Rng& rng) : rng_(&rng) {}
  static Init placeholders() { return Init(nullptr); }

  // Xavier/Glorot uniform [fan_out, fan_in], as nn.Transformer initialises its matrices.
  Tensor xavier_uniform(int64_t fan_out, int64_t fan_in) const;
  Tensor normal(const Shape& shape, float std) const;
  Tensor constant(const Shape& shape, float value) const;

 private:
  explicit Init(Rng* rng) : rng_(rng) {}
  Rng* rng_;  // null: placeholders
};

// How the matrices of a model are kept for inference. BF16 halves the bytes each decoding step
// reads, products stay fp32. Int8 quarters them and multiplies in int8 with fp32 scales per row
// (kernels/int8.h): faster and smaller, at a small cost in accuracy (measured in RESULTS.md).
enum class WeightStorage { F32, BF16, Int8 };

// "f32", "bf16" or "int8"; anything else is a UsageError naming the choices.
WeightStorage parse_weight_storage(const std::string& name);

// Converts every matrix parameter of `model` (Linear weights and embedding tables) once. For
// no-grad forwards only (not for training).
void store_weights(Module& model, WeightStorage storage);

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, const Init& init);
  Var forward(const Var& x) const { return ag::linear(x, weight, bias); }
  Var weight, bias;  // weight [out, in]; bias [out] or undefined
};

class Embedding : public Module {
 public:
  Embedding(int64_t vocab, int64_t dim, float init_std, const Init& init);
  Var forward(const Tensor& ids) const { return ag::embedding(weight, ids); }
  Var weight;  // [vocab, dim]
};

enum class NormKind { LayerNorm, RMSNorm };

class Norm : public Module {
 public:
  Norm(NormKind kind, int64_t dim, float eps, bool bias, const Init& init);
  Var forward(const Var& x) const;
  NormKind kind;
  float eps;
  Var weight, bias;
};

enum class Activation { ReLU, GELU, GELUTanh, SiLU };
Var activate(const Var& x, Activation a);

// x -> down(dropout(act(up(x)))) or, gated, down(dropout(act(gate(x)) * up(x))).
class FeedForward : public Module {
 public:
  FeedForward(int64_t d_model, int64_t d_ff, Activation act, bool gated, bool bias, float dropout,
              const Init& init);
  Var forward(const Var& x, const ForwardContext& ctx) const;

 private:
  Activation act_;
  float dropout_;
  Linear up_, down_;
  std::unique_ptr<Linear> gate_;
};

}  // namespace tcat::nn
