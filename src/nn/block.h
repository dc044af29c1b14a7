// One Transformer layer: self-attention, optional cross-attention, feed-forward; each sublayer
// wrapped in a residual connection with pre- or post-normalisation, or attention and FFN run in
// parallel from the same input (GPT-J / GPT-NeoX / PaLM).
#pragma once
#include <functional>

#include "nn/attention.h"

namespace tcat::nn {

struct BlockOptions {
  int64_t d_model = 0, heads = 0, kv_heads = 0, d_ff = 0;
  bool causal = false;        // masked self-attention (decoder)
  bool cross = false;         // encoder-decoder attention after self-attention
  NormKind norm = NormKind::LayerNorm;
  float norm_eps = 1e-5f;
  bool pre_norm = false;
  bool parallel = false;      // x + attn(norm1 x) + ffn(norm2 x)
  Activation activation = Activation::ReLU;
  bool gated_ffn = false;
  bool bias = true;
  float dropout = 0.0f;
  kernels::RotarySpec rotary{};  // self-attention position schemes (AttentionOptions)
  bool alibi = false;
  int64_t head_dim = 0;          // AttentionOptions::head_dim and ::scale, for both attentions
  float attention_scale = 0;
};

// One block's state during incremental decoding.
struct BlockCache {
  KVCache self;   // keys and values of the positions decoded so far
  KVCache cross;  // keys and values of the encoder memory (blocks with cross-attention)
};

class TransformerBlock : public Module {
 public:
  TransformerBlock(const BlockOptions& opt, const Init& init);
  // x [B, T, d]; x_valid masks padded keys of x; memory/memory_valid for cross-attention;
  // position_bias (optional) for self-attention, see MultiHeadAttention::self_attention.
  Var forward(const Var& x, const Tensor* x_valid, const Var& memory, const Tensor* memory_valid,
              const ForwardContext& ctx, const Var& position_bias = Var()) const;

  // ---- incremental decoding (inference only) ----
  // An empty cache for `rows` sequences with room for `capacity` positions; memory [M, S, d]
  // (cross-attention blocks only, else undefined) has its keys and values computed here once.
  BlockCache start_cache(int64_t rows, int64_t capacity, const Var& memory) const;
  // x [N, T, d]: the next T positions of each row, given everything cached before them. Same
  // sublayers as forward(); rows_per_memory consecutive rows share one memory row.
  Var step(const Var& x, BlockCache& cache, const Tensor* memory_valid, int64_t rows_per_memory,
           const Var& position_bias = Var()) const;

 private:
  using Sublayer = std::function<Var(const Var&)>;
  // The residual wiring shared by forward() and step().
  Var sublayers(const Var& x, const Sublayer& self, const Sublayer& cross, const ForwardContext& ctx) const;
  Var residual(const Var& x, const Norm& norm, const Sublayer& sublayer, const ForwardContext& ctx) const;

  BlockOptions opt_;
  MultiHeadAttention self_attn_;
  std::unique_ptr<MultiHeadAttention> cross_attn_;
  FeedForward ffn_;
  Norm norm_self_, norm_ffn_;
  std::unique_ptr<Norm> norm_cross_;
};

}  // namespace tcat::nn
