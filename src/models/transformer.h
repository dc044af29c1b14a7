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
// The same angles with sin in columns [0, d/2) and cos in [d/2, d) (Marian).
Tensor sinusoidal_halves_table(int64_t positions, int64_t d);

// What incremental decoding keeps between steps (inference only). Rows are the sequences being
// decoded (sentences x beams). Per decoder layer: the self-attention keys and values of the
// positions so far and the cross-attention keys and values of the encoder memory. Consecutive
// groups of rows_per_memory rows (the beams of one sentence) share one memory row and its padding
// mask, so beams never copy the memory.
class DecoderState {
 public:
  DecoderState() = default;
  // Move-only: a copy would share the cache buffers that decode_step appends to.
  DecoderState(DecoderState&&) = default;
  DecoderState& operator=(DecoderState&&) = default;
  DecoderState(const DecoderState&) = delete;
  DecoderState& operator=(const DecoderState&) = delete;

  int64_t rows() const { return layers_.empty() ? 0 : layers_.front().self.rows(); }
  // Positions decoded so far: the position of the next token.
  int64_t length() const { return layers_.empty() ? 0 : layers_.front().self.length(); }
  // Row i continues old row rows[i] (repeats allowed): follows beam reordering, expands a row into
  // beams, drops finished sentences.
  void reorder(const std::vector<int64_t>& rows);

 private:
  friend class Transformer;
  std::vector<nn::BlockCache> layers_;
  Tensor memory_valid_;  // u8 [memory rows, S]; undefined without an encoder or a source mask
  int64_t rows_per_memory_ = 1;
};

class Transformer : public nn::Module {
 public:
  // Parameters from `init`: an Rng for training, nn::Init::placeholders() for loaders that assign
  // every parameter afterwards (no memory is allocated for weights that would be overwritten).
  Transformer(const ArchConfig& config, const nn::Init& init);

  const ArchConfig& config() const { return cfg_; }

  // `hidden_states`, when given, receives what Hugging Face's output_hidden_states holds: the
  // embedding output (after the embedding norm), then each layer's output, the last one after
  // the stack's final norm.
  // src ids i64 [B, S] -> memory [B, S, d] (after the final norm if configured).
  Var encode(const Tensor& src, const Tensor* src_valid, const ForwardContext& ctx,
             std::vector<Var>* hidden_states = nullptr) const;
  // tgt ids i64 [B, T] -> hidden [B, T, d]. memory/src_valid only for encoder-decoder layouts.
  Var decode(const Tensor& tgt, const Tensor* tgt_valid, const Var& memory, const Tensor* src_valid,
             const ForwardContext& ctx, std::vector<Var>* hidden_states = nullptr) const;
  // hidden [..., d] -> logits [..., vocab] (through the output transform and bias if configured).
  // project(h) = linear(head_input(h), output_weight(), output_bias()): the parts let a search
  // consume the output projection in blocks (kernels::linear_top_k) instead of whole logits.
  Var project(const Var& hidden) const;
  Var head_input(const Var& hidden) const;
  const Var& output_weight() const { return lm_head_ ? lm_head_->weight : target_table().weight; }
  const Var& output_bias() const { return output_bias_; }

  // Encoder-decoder convenience: logits [B, T, vocab] with padding masks from pad_id.
  Var forward(const Tensor& src, const Tensor& tgt_in, const ForwardContext& ctx) const;

  // ---- incremental decoding (inference only) ----
  // Encoder-decoder: one row per memory row; memory [N, S, d] and src_valid (or null) as passed to
  // decode(). capacity: the expected number of positions (the caches grow if it is exceeded).
  DecoderState start_decoding(const Var& memory, const Tensor* src_valid, int64_t capacity) const;
  // Decoder-only: `rows` empty sequences.
  DecoderState start_decoding(int64_t rows, int64_t capacity) const;
  // Feeds each row's next tokens, i64 [N] (one position) or [N, T] (e.g. a prompt), at positions
  // state.length() onwards and returns the logits of the last one, [N, vocab]: the last position
  // of project(decode(every token so far)), without recomputing the prefix.
  Tensor decode_step(const Tensor& tokens, DecoderState& state) const;
  // decode_step without the output projection: head_input of the last position, [N, width].
  Tensor decode_step_features(const Tensor& tokens, DecoderState& state) const;

 private:
  // Token embeddings (scaled if configured) plus the positions first_position, first_position+1, ...
  // (Sinusoidal/Learned) and token type 0, then the stack's embedding norm and the projection of
  // factorized embeddings to d_model, if configured.
  Var embed(const nn::Embedding& table, const nn::Embedding* positions, const nn::Norm* norm, const Tensor& ids,
            const ForwardContext& ctx, int64_t first_position = 0) const;
  // The decoder's learned position table: its own in encoder-decoders.
  const nn::Embedding* target_positions() const { return tgt_pos_embed_ ? tgt_pos_embed_.get() : pos_embed_.get(); }
  const nn::Embedding& target_table() const { return tgt_embed_ ? *tgt_embed_ : *src_embed_; }
  // Decoder layer i of cfg_.dec_layers (with shared layers, the one block every time).
  const nn::TransformerBlock& decoder_layer(int64_t i) const { return *decoder_[size_t(i) % decoder_.size()]; }
  // One KV cache per decoder layer for `rows` rows; memory (cross-attention) may be undefined.
  DecoderState empty_decoder_state(int64_t rows, int64_t capacity, const Var& memory) const;
  // Runs `count` layers; a stack with shared layers holds one block and runs it `count` times.
  Var run_stack(const std::vector<std::unique_ptr<nn::TransformerBlock>>& layers, int64_t count,
                const nn::Norm* final_norm, Var x, const Tensor* x_valid, const Var& memory, const Tensor* memory_valid,
                const ForwardContext& ctx, std::vector<Var>* hidden_states, const Var& position_bias) const;
  // RelativeBuckets: the bias [heads, queries, keys] for queries at first_query, ... against keys
  // at 0, ...; undefined without a table.
  Var position_bias(const nn::Embedding* table, int64_t first_query, int64_t queries, int64_t keys,
                    bool bidirectional) const;

  ArchConfig cfg_;
  Tensor sinusoids_;
  std::unique_ptr<nn::Embedding> src_embed_, tgt_embed_, pos_embed_, tgt_pos_embed_, type_embed_;
  std::unique_ptr<nn::Linear> embed_proj_;  // factorized embeddings -> d_model
  std::vector<std::unique_ptr<nn::TransformerBlock>> encoder_, decoder_;
  std::unique_ptr<nn::Norm> encoder_norm_, decoder_norm_;
  std::unique_ptr<nn::Norm> encoder_embed_norm_, decoder_embed_norm_;
  std::unique_ptr<nn::Embedding> encoder_relative_bias_, decoder_relative_bias_;  // [buckets, heads]
  std::unique_ptr<nn::Linear> lm_head_;
  std::unique_ptr<nn::Linear> head_dense_;  // output transform
  std::unique_ptr<nn::Norm> head_norm_;
  Var output_bias_;
  // Registration containers so parameter names read "encoder.layers.3.ffn.up.weight".
  struct Stack : nn::Module {
    void add(const std::string& name, nn::Module& m) { add_module(name, m); }
  };
  Stack encoder_stack_, encoder_layers_, decoder_stack_, decoder_layers_, head_;
};

}  // namespace tcat::models
