// Multi-head attention (MHA / MQA / GQA) as one module: self-attention uses one fused QKV
// projection, cross-attention a Q projection and a fused KV projection of the memory.
// Incremental decoding (inference only) reuses the same projections with a KVCache.
#pragma once
#include <vector>

#include "kernels/position.h"
#include "nn/layers.h"

namespace tcat::nn {

struct AttentionOptions {
  int64_t d_model = 0, heads = 0, kv_heads = 0;  // kv_heads 0 = heads
  bool bias = true;
  bool cross = false;  // attends to a separate memory sequence
  int64_t head_dim = 0;  // 0 = d_model / heads (T5's d_kv may differ)
  float scale = 0;       // scores are multiplied by it; 0 = 1/sqrt(head_dim) (T5: 1)
  // Position schemes inside self-attention (cross-attention has neither).
  kernels::RotarySpec rotary{};  // rotary_dim 0 = no rotary embedding
  bool alibi = false;            // ALiBi biases (kernels::alibi_slopes)
};

// Copies of rows `rows` (indices into dim 0, repeats allowed) of a contiguous tensor [R, T, ...];
// only the first `steps` entries of dim 1 are copied, the rest of the result is uninitialised.
Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& rows, int64_t steps);

// Keys and values of one attention layer for incremental decoding: a buffer
// [rows, capacity, 2 * kv_width] holding each step's K columns then V columns (the layout of the
// fused projections' K,V part), of which the first length() steps are filled.
class KVCache {
 public:
  KVCache() = default;
  // Empty, with room for `capacity` steps rounded up to a power of two (appending beyond it doubles
  // the capacity).
  KVCache(int64_t rows, int64_t capacity, int64_t kv_width);
  // Every step already filled: kv [rows, steps, 2 * kv_width] (the encoder memory's K/V).
  explicit KVCache(Tensor kv);

  int64_t rows() const { return buffer_.defined() ? buffer_.dim(0) : 0; }
  int64_t length() const { return length_; }
  int64_t capacity() const { return buffer_.defined() ? buffer_.dim(1) : 0; }
  int64_t kv_width() const { return buffer_.defined() ? buffer_.dim(2) / 2 : 0; }
  const Tensor& buffer() const { return buffer_; }

  // Appends the T steps of src [rows, T, width], columns [column, column + 2 * kv_width).
  void append(const Tensor& src, int64_t column);
  // Row i becomes old row rows[i] (beam reordering, dropping finished sentences).
  void reorder(const std::vector<int64_t>& rows);

 private:
  Tensor buffer_;
  int64_t length_ = 0;
};

class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(const AttentionOptions& opt, const Init& init);
  // x [B, T, d] at positions 0..T-1; key_valid optional u8 [B, T_keys] (0 = padding).
  // position_bias, when defined: [heads, T, T_keys] added to the scores (T5's relative positions).
  Var self_attention(const Var& x, bool causal, const Tensor* key_valid, const Var& position_bias = Var()) const;
  Var cross_attention(const Var& x, const Var& memory, const Tensor* memory_valid) const;

  // ---- incremental decoding (inference only) ----
  // x [N, T, d] holds the next T positions of each row: their keys and values are appended to
  // `cache`, then they attend causally over every cached step.
  // position_bias as in self_attention, for the new positions against every cached one.
  Var self_attention_step(const Var& x, KVCache& cache, const Var& position_bias = Var()) const;
  // The keys and values of memory [M, S, d], computed once for cross_attention_step.
  KVCache memory_cache(const Var& memory) const;
  // x [N, T, d] attends over the memory; rows_per_memory consecutive rows of x (the beams of one
  // sentence) share one memory row, so N = M * rows_per_memory. memory_valid: u8 [M, S] or null.
  Var cross_attention_step(const Var& x, const KVCache& memory, const Tensor* memory_valid,
                           int64_t rows_per_memory) const;

  int64_t heads() const { return heads_; }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t head_dim() const { return head_dim_; }

 private:
  // out(softmax(q K^T) V) for the queries in the first heads * head_dim columns of q [N, T, width]
  // against the cached keys; the N rows form `batch` groups (one per cache row) whose N / batch
  // rows are queries of the same sequence.
  Var attend_cached(const Tensor& q, const KVCache& cache, int64_t batch, bool causal,
                    const Tensor* key_valid) const;
  // The fused qkv projection with its query and key heads turned to positions first_position, ...
  Var rotate(const Var& qkv, int64_t first_position) const;
  // softmax(scale q k^T + position_bias + mask) v, unfused (the fused kernel takes no bias): q
  // [B, T, heads * head_dim], k and v [B, S, heads * head_dim]; query i sits at key position
  // S - T + i for the causal mask.
  Var biased_attention(const Var& q, const Var& k, const Var& v, const Var& position_bias, bool causal,
                       const Tensor* key_valid) const;

  int64_t heads_, kv_heads_, head_dim_;
  float scale_;
  kernels::RotarySpec rotary_;
  Tensor alibi_slopes_;  // f32 [heads], undefined without ALiBi
  std::unique_ptr<Linear> qkv_, q_, kv_;
  Linear out_;
};

}  // namespace tcat::nn
