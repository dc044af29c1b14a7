// Basic layers: Linear, Embedding, Norm, FeedForward.
#pragma once
#include "autograd/ops.h"
#include "nn/module.h"

namespace tcat::nn {

// Xavier/Glorot uniform, as nn.Transformer initialises its matrices.
Tensor xavier_uniform(int64_t fan_out, int64_t fan_in, Rng& rng);
Tensor normal_init(const Shape& shape, float std, Rng& rng);

// Inference with bf16-stored weights: every matrix parameter of `model` (Linear weights and
// embedding tables) is converted to bf16 once, halving the bytes each decoding step reads;
// products still accumulate in fp32. For no-grad forwards only (not for training).
void store_weights_bf16(Module& model);

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Rng& rng);
  Var forward(const Var& x) const { return ag::linear(x, weight, bias); }
  Var weight, bias;  // weight [out, in]; bias [out] or undefined
};

class Embedding : public Module {
 public:
  Embedding(int64_t vocab, int64_t dim, float init_std, Rng& rng);
  Var forward(const Tensor& ids) const { return ag::embedding(weight, ids); }
  Var weight;  // [vocab, dim]
};

enum class NormKind { LayerNorm, RMSNorm };

class Norm : public Module {
 public:
  Norm(NormKind kind, int64_t dim, float eps, bool bias);
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
  FeedForward(int64_t d_model, int64_t d_ff, Activation act, bool gated, bool bias, float dropout, Rng& rng);
  Var forward(const Var& x, const ForwardContext& ctx) const;

 private:
  Activation act_;
  float dropout_;
  Linear up_, down_;
  std::unique_ptr<Linear> gate_;
};

}  // namespace tcat::nn
