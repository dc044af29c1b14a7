#include "nn/block.h"

namespace tcat::nn {

TransformerBlock::TransformerBlock(const BlockOptions& o, const Init& init)
    : opt_(o),
      self_attn_({o.d_model, o.heads, o.kv_heads, o.bias, false, o.head_dim, o.attention_scale, o.rotary, o.alibi}, init),
      ffn_(o.d_model, o.d_ff, o.activation, o.gated_ffn, o.bias, o.dropout, init),
      norm_self_(o.norm, o.d_model, o.norm_eps, o.bias, init),
      norm_ffn_(o.norm, o.d_model, o.norm_eps, o.bias, init) {
  TCAT_CHECK(!(o.parallel && o.cross), "a parallel block cannot have cross-attention");
  add_module("self_attn", self_attn_);
  add_module("norm_self", norm_self_);
  if (o.cross) {
    cross_attn_ = std::make_unique<MultiHeadAttention>(
        AttentionOptions{o.d_model, o.heads, o.kv_heads, o.bias, true, o.head_dim, o.attention_scale}, init);
    norm_cross_ = std::make_unique<Norm>(o.norm, o.d_model, o.norm_eps, o.bias, init);
    add_module("cross_attn", *cross_attn_);
    add_module("norm_cross", *norm_cross_);
  }
  add_module("ffn", ffn_);
  add_module("norm_ffn", norm_ffn_);
}

Var TransformerBlock::residual(const Var& x, const Norm& norm, const Sublayer& sublayer,
                               const ForwardContext& ctx) const {
  auto drop = [&](const Var& v) { return ctx.training ? ag::dropout(v, opt_.dropout, *ctx.rng) : v; };
  if (opt_.pre_norm) return ag::add(x, drop(sublayer(norm.forward(x))));
  return norm.forward(ag::add(x, drop(sublayer(x))));
}

Var TransformerBlock::sublayers(const Var& x, const Sublayer& self, const Sublayer& cross,
                                const ForwardContext& ctx) const {
  auto ffn = [&](const Var& h) { return ffn_.forward(h, ctx); };
  if (opt_.parallel) {
    auto drop = [&](const Var& v) { return ctx.training ? ag::dropout(v, opt_.dropout, *ctx.rng) : v; };
    return ag::add(ag::add(x, drop(self(norm_self_.forward(x)))), drop(ffn(norm_ffn_.forward(x))));
  }
  Var h = residual(x, norm_self_, self, ctx);
  if (cross_attn_) h = residual(h, *norm_cross_, cross, ctx);
  return residual(h, norm_ffn_, ffn, ctx);
}

Var TransformerBlock::forward(const Var& x, const Tensor* x_valid, const Var& memory, const Tensor* memory_valid,
                              const ForwardContext& ctx, const Var& position_bias) const {
  TCAT_CHECK(!cross_attn_ || memory.defined(), "decoder block with cross-attention needs the encoder output");
  return sublayers(
      x, [&](const Var& h) { return self_attn_.self_attention(h, opt_.causal, x_valid, position_bias); },
      [&](const Var& h) { return cross_attn_->cross_attention(h, memory, memory_valid); }, ctx);
}

BlockCache TransformerBlock::start_cache(int64_t rows, int64_t capacity, const Var& memory) const {
  TCAT_CHECK(opt_.causal, "incremental decoding needs causal self-attention (a decoder block)");
  TCAT_CHECK(!cross_attn_ || memory.defined(), "decoder block with cross-attention needs the encoder output");
  BlockCache cache{KVCache(rows, capacity, self_attn_.kv_heads() * self_attn_.head_dim()), {}};
  if (cross_attn_) cache.cross = cross_attn_->memory_cache(memory);
  return cache;
}

Var TransformerBlock::step(const Var& x, BlockCache& cache, const Tensor* memory_valid, int64_t rows_per_memory,
                           const Var& position_bias) const {
  return sublayers(
      x, [&](const Var& h) { return self_attn_.self_attention_step(h, cache.self, position_bias); },
      [&](const Var& h) { return cross_attn_->cross_attention_step(h, cache.cross, memory_valid, rows_per_memory); },
      ForwardContext{});
}

}  // namespace tcat::nn
