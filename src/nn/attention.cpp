#include "nn/attention.h"

namespace tcat::nn {

static int64_t checked_head_dim(const AttentionOptions& o) {
  const int64_t kvh = o.kv_heads ? o.kv_heads : o.heads;
  TCAT_CHECK(o.d_model > 0 && o.heads > 0 && o.d_model % o.heads == 0,
             "attention: {} heads do not divide d_model {}", o.heads, o.d_model);
  TCAT_CHECK(kvh > 0 && o.heads % kvh == 0, "attention: {} kv heads do not divide {} heads", kvh, o.heads);
  return o.d_model / o.heads;
}

MultiHeadAttention::MultiHeadAttention(const AttentionOptions& o, Rng& rng)
    : heads_(o.heads),
      kv_heads_(o.kv_heads ? o.kv_heads : o.heads),
      head_dim_(checked_head_dim(o)),
      out_(o.heads * head_dim_, o.d_model, o.bias, rng) {
  const int64_t q_width = heads_ * head_dim_, kv_width = kv_heads_ * head_dim_;
  if (o.cross) {
    q_ = std::make_unique<Linear>(o.d_model, q_width, o.bias, rng);
    kv_ = std::make_unique<Linear>(o.d_model, 2 * kv_width, o.bias, rng);
    add_module("q", *q_);
    add_module("kv", *kv_);
  } else {
    qkv_ = std::make_unique<Linear>(o.d_model, q_width + 2 * kv_width, o.bias, rng);
    add_module("qkv", *qkv_);
  }
  add_module("out", out_);
}

Var MultiHeadAttention::self_attention(const Var& x, bool causal, const Tensor* key_valid) const {
  TCAT_CHECK(qkv_, "self_attention called on a cross-attention module");
  const Var qkv = qkv_->forward(x);
  const int64_t kv_width = kv_heads_ * head_dim_, q_width = heads_ * head_dim_;
  ag::AttentionSpec spec{heads_, kv_heads_, head_dim_, causal, key_valid, 0.0f};
  Var y = ag::attention({qkv, 0}, {qkv, q_width}, {qkv, q_width + kv_width}, spec);
  return out_.forward(y);
}

Var MultiHeadAttention::cross_attention(const Var& x, const Var& memory, const Tensor* memory_valid) const {
  TCAT_CHECK(q_, "cross_attention called on a self-attention module");
  const Var q = q_->forward(x);
  const Var kv = kv_->forward(memory);
  ag::AttentionSpec spec{heads_, kv_heads_, head_dim_, false, memory_valid, 0.0f};
  Var y = ag::attention({q, 0}, {kv, 0}, {kv, kv_heads_ * head_dim_}, spec);
  return out_.forward(y);
}

}  // namespace tcat::nn
