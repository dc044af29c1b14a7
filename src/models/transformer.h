// The one architecture builder: a Transformer assembled from ArchConfig knobs. Encoder-decoder
// (Vaswani et al.), encoder-only and decoder-only models are all this class.
#pragma once
#include <memory>
#include <vector>

#include "models/config.h"
#include "nn/block.h"

namespace tcat::models {

using nn::ForwardContext;
using nn::Var;

// u8 [B, T]: 1 where ids != pad_id.
Tensor padding_mask(const Tensor& ids, int64_t pad_id);
// The sinusoidal position table of Vaswani et al.: [positions, d], sin on even, cos on odd columns.
Tensor sinusoidal_table(int64_t positions, int64_t d);

class Transformer : public nn::Module {
 public:
  Transformer(const ArchConfig& config, Rng& init_rng);

  const ArchConfig& config() const { return cfg_; }

  // src ids i64 [B, S] -> memory [B, S, d] (after the final norm if configured).
  Var encode(const Tensor& src, const Tensor* src_valid, const ForwardContext& ctx) const;
  // tgt ids i64 [B, T] -> hidden [B, T, d]. memory/src_valid only for encoder-decoder layouts.
  Var decode(const Tensor& tgt, const Tensor* tgt_valid, const Var& memory, const Tensor* src_valid,
             const ForwardContext& ctx) const;
  // hidden [..., d] -> logits [..., vocab].
  Var project(const Var& hidden) const;

  // Encoder-decoder convenience: logits [B, T, vocab] with padding masks from pad_id.
  Var forward(const Tensor& src, const Tensor& tgt_in, const ForwardContext& ctx) const;

 private:
  Var embed(const nn::Embedding& table, const Tensor& ids, const ForwardContext& ctx) const;
  Var run_stack(const std::vector<std::unique_ptr<nn::TransformerBlock>>& layers, const nn::Norm* final_norm,
                Var x, const Tensor* x_valid, const Var& memory, const Tensor* memory_valid,
                const ForwardContext& ctx) const;

  ArchConfig cfg_;
  Tensor sinusoids_;
  std::unique_ptr<nn::Embedding> src_embed_, tgt_embed_, pos_embed_;
  std::vector<std::unique_ptr<nn::TransformerBlock>> encoder_, decoder_;
  std::unique_ptr<nn::Norm> encoder_norm_, decoder_norm_;
  std::unique_ptr<nn::Linear> lm_head_;
  // Registration containers so parameter names read "encoder.layers.3.ffn.up.weight".
  struct Stack : nn::Module {
    void add(const std::string& name, nn::Module& m) { add_module(name, m); }
  };
  Stack encoder_stack_, encoder_layers_, decoder_stack_, decoder_layers_;
};

}  // namespace tcat::models
