#include "nn/block.h"

namespace tcat::nn {

TransformerBlock::TransformerBlock(const BlockOptions& o, Rng& rng)
    : opt_(o),
      self_attn_({o.d_model, o.heads, o.kv_heads, o.bias, false}, rng),
      ffn_(o.d_model, o.d_ff, o.activation, o.gated_ffn, o.bias, o.dropout, rng),
      norm_self_(o.norm, o.d_model, o.norm_eps, o.bias),
      norm_ffn_(o.norm, o.d_model, o.norm_eps, o.bias) {
  TCAT_CHECK(!(o.parallel && o.cross), "a parallel block cannot have cross-attention");
  add_module("self_attn", self_attn_);
  add_module("norm_self", norm_self_);
  if (o.cross) {
    cross_attn_ = std::make_unique<MultiHeadAttention>(AttentionOptions{o.d_model, o.heads, o.kv_heads, o.bias, true},
                                                       rng);
    norm_cross_ = std::make_unique<Norm>(o.norm, o.d_model, o.norm_eps, o.bias);
    add_module("cross_attn", *cross_attn_);
    add_module("norm_cross", *norm_cross_);
  }
  add_module("ffn", ffn_);
  add_module("norm_ffn", norm_ffn_);
}

Var TransformerBlock::residual(const Var& x, const Norm& norm, const std::function<Var(const Var&)>& sublayer,
                               const ForwardContext& ctx) const {
  auto drop = [&](const Var& v) { return ctx.training ? ag::dropout(v, opt_.dropout, *ctx.rng) : v; };
  if (opt_.pre_norm) return ag::add(x, drop(sublayer(norm.forward(x))));
  return norm.forward(ag::add(x, drop(sublayer(x))));
}

Var TransformerBlock::forward(const Var& x, const Tensor* x_valid, const Var& memory, const Tensor* memory_valid,
                              const ForwardContext& ctx) const {
  auto self = [&](const Var& h) { return self_attn_.self_attention(h, opt_.causal, x_valid); };
  auto ffn = [&](const Var& h) { return ffn_.forward(h, ctx); };
  if (opt_.parallel) {
    auto drop = [&](const Var& v) { return ctx.training ? ag::dropout(v, opt_.dropout, *ctx.rng) : v; };
    return ag::add(ag::add(x, drop(self(norm_self_.forward(x)))), drop(ffn(norm_ffn_.forward(x))));
  }
  Var h = residual(x, norm_self_, self, ctx);
  if (cross_attn_) {
    TCAT_CHECK(memory.defined(), "decoder block with cross-attention needs the encoder output");
    h = residual(h, *norm_cross_, [&](const Var& v) { return cross_attn_->cross_attention(v, memory, memory_valid); },
                 ctx);
  }
  return residual(h, norm_ffn_, ffn, ctx);
}

}  // namespace tcat::nn
