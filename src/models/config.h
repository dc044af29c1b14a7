// ArchConfig: the knobs that tell one Transformer from another (DESIGN.md §3). Every model tcat
// builds is this config plus weights; checkpoints store it as JSON so they describe themselves.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "nn/layers.h"

namespace tcat::models {

enum class Layout { EncoderDecoder, EncoderOnly, DecoderOnly };
// Sinusoidal and Learned are added to the embeddings (sin/cos interleaved as in Vaswani et al., or
// SinusoidalHalves: sin in the first half of the columns, cos in the second, as Marian; learned
// tables are per stack in encoder-decoders); Rotary turns queries and keys inside self-attention;
// ALiBi biases the attention scores by distance; RelativeBuckets (T5) adds a learned bias per head
// and bucket of key-minus-query distance, one table per stack shared by its layers.
enum class PositionKind { Sinusoidal, SinusoidalHalves, Learned, Rotary, ALiBi, RelativeBuckets, None };

struct ArchConfig {
  Layout layout = Layout::EncoderDecoder;
  int64_t vocab = 32000, d_model = 512, heads = 8, kv_heads = 0, d_ff = 2048;
  int64_t enc_layers = 6, dec_layers = 6, max_positions = 1024;
  nn::NormKind norm = nn::NormKind::LayerNorm;
  bool pre_norm = false;
  bool final_norm = false;        // a norm after the last layer of each stack
  float norm_eps = 1e-5f;
  PositionKind position = PositionKind::Sinusoidal;
  int64_t position_offset = 0;    // Learned: position p reads row p + offset (OPT: 2)
  float rotary_fraction = 1.0f;   // Rotary: share of each head's dimensions that turn (NeoX rotary_pct)
  bool rotary_interleaved = false;  // Rotary: pairs (2i, 2i+1) instead of (i, i + rotary_dim/2)
  float rotary_base = 10000.0f;   // Rotary: theta (Llama rope_theta)
  int64_t relative_buckets = 32;        // RelativeBuckets: buckets (half per direction in the encoder)
  int64_t relative_max_distance = 128;  // RelativeBuckets: distances from here on share the last bucket
  int64_t attn_head_dim = 0;      // per-head width when it is not d_model / heads (T5's d_kv); 0 = d_model / heads
  bool scale_attention = true;    // scores divided by sqrt(head_dim) (T5: not)
  bool embed_norm = false;        // a norm right after the embeddings of each stack (BLOOM, BERT)
  // Factorized embeddings (ALBERT, ELECTRA): token/position/type tables embed_dim wide, normed at
  // that width, then projected to d_model. 0 = tables d_model wide and no projection.
  int64_t embed_dim = 0;
  int64_t type_vocab = 0;         // token-type (segment) table; every token is type 0 (BERT); 0 = none
  bool share_layers = false;      // all layers of a stack run one block's parameters (ALBERT)
  bool output_head = true;        // false: an encoder giving hidden states only, no output projection (HF base models)
  bool output_transform = false;  // dense to the embedding width, activation, norm before the output (MLM heads)
  bool output_bias = false;       // a bias [vocab] added to the logits (MLM decoders, BART's final_logits_bias)
  float output_scale = 1.0f;      // hidden states multiplied by it before the output projection (tied T5: d^-0.5)
  nn::Activation activation = nn::Activation::ReLU;
  bool gated_ffn = false;
  bool parallel_block = false;
  bool bias = true;
  bool share_embeddings = true;   // encoder-decoder: source and target use one table
  bool tie_output = true;         // output projection = (target) embedding matrix
  bool scale_embeddings = true;   // multiply token embeddings by sqrt(d_model)
  float dropout = 0.1f;
  int64_t pad_id = 0;

  int64_t head_dim() const { return attn_head_dim > 0 ? attn_head_dim : d_model / heads; }
  int64_t embed_width() const { return embed_dim > 0 ? embed_dim : d_model; }
  // Rotary: the leading dimensions of each head that turn (int(head_dim * rotary_fraction)).
  int64_t rotary_dim() const;

  // Throws UsageError naming the first impossible value (heads not dividing d_model, ...).
  void validate() const;
  nlohmann::json to_json() const;
  static ArchConfig from_json(const nlohmann::json& j);  // unknown keys and bad values are errors
};

// Named configurations: "transformer-base", "transformer-big" (Vaswani et al. 2017, Table 3),
// "transformer-tiny" (for tests and demos). Unknown names list the known ones.
ArchConfig preset(const std::string& name, int64_t vocab);
std::vector<std::string> preset_names();

}  // namespace tcat::models
