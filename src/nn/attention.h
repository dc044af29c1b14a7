// Multi-head attention (MHA / MQA / GQA) as one module: self-attention uses one fused QKV
// projection, cross-attention a Q projection and a fused KV projection of the memory.
#pragma once
#include "nn/layers.h"

namespace tcat::nn {

struct AttentionOptions {
  int64_t d_model = 0, heads = 0, kv_heads = 0;  // kv_heads 0 = heads
  bool bias = true;
  bool cross = false;  // attends to a separate memory sequence
};

class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(const AttentionOptions& opt, Rng& rng);
  // x [B, T, d]; key_valid optional u8 [B, T_keys] (0 = padding).
  Var self_attention(const Var& x, bool causal, const Tensor* key_valid) const;
  Var cross_attention(const Var& x, const Var& memory, const Tensor* memory_valid) const;

  int64_t heads() const { return heads_; }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t head_dim() const { return head_dim_; }

 private:
  int64_t heads_, kv_heads_, head_dim_;
  std::unique_ptr<Linear> qkv_, q_, kv_;
  Linear out_;
};

}  // namespace tcat::nn
