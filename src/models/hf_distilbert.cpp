// DistilBERT: BERT's post-norm layers under other names, no token types, and an MLM head
// (vocab_transform, activation, vocab_layer_norm, vocab_projector tied to the word embeddings).
#include <fmt/format.h>

#include "models/hf_family.h"

namespace tcat::models {
namespace {

ArchConfig to_arch(const HfConfigReader& r) {
  ArchConfig c = hf_encoder_base();  // DistilBERT's LayerNorm eps is fixed at 1e-12
  c.vocab = r.size("vocab_size");
  c.d_model = r.size("dim");
  c.heads = r.size("n_heads");
  r.require_divides("n_heads", c.heads, "dim", c.d_model);
  c.enc_layers = r.size("n_layers");
  c.d_ff = r.size("hidden_dim");
  c.max_positions = r.size("max_position_embeddings");
  c.activation = r.activation("activation", "gelu");
  c.tie_output = r.flag_or("tie_word_embeddings", true);
  r.require_value("sinusoidal_pos_embds", false);
  mlm_head_only_for(r, {"DistilBertForMaskedLM"}, c);
  return c;
}

nlohmann::json to_hf_config(const ArchConfig& c) {
  return {{"vocab_size", c.vocab},
          {"dim", c.d_model},
          {"n_heads", c.heads},
          {"n_layers", c.enc_layers},
          {"hidden_dim", c.d_ff},
          {"max_position_embeddings", c.max_positions},
          {"activation", hf_activation_name(c.activation)},
          {"sinusoidal_pos_embds", false},
          {"tie_word_embeddings", c.tie_output}};
}

std::vector<HfMapping> tensors(const ArchConfig& c) {
  const int64_t d = c.d_model, ff = c.d_ff;
  HfTensorMap m;
  m.same("src_embed.weight", "distilbert.embeddings.word_embeddings.weight", {c.vocab, d});
  m.same("pos_embed.weight", "distilbert.embeddings.position_embeddings.weight", {c.max_positions, d});
  m.norm("encoder.embed_norm", "distilbert.embeddings.LayerNorm", d, true);
  for (int64_t i = 0; i < c.enc_layers; ++i) {
    const std::string t = fmt::format("encoder.layers.{}.", i), h = fmt::format("distilbert.transformer.layer.{}.", i);
    m.separate_qkv(t + "self_attn.qkv", h + "attention.q_lin", h + "attention.k_lin", h + "attention.v_lin", c);
    m.linear(t + "self_attn.out", h + "attention.out_lin", d, d, true);
    m.norm(t + "norm_self", h + "sa_layer_norm", d, true);
    m.linear(t + "ffn.up", h + "ffn.lin1", ff, d, true);
    m.linear(t + "ffn.down", h + "ffn.lin2", d, ff, true);
    m.norm(t + "norm_ffn", h + "output_layer_norm", d, true);
  }
  mlm_head(m, "vocab_transform", "vocab_layer_norm", "vocab_projector.bias", "vocab_projector.weight", c);
  return m.take();
}

}  // namespace

const HfFamily& distilbert_family() {
  static const HfFamily f{"distilbert", "DistilBertForMaskedLM", "distilbert.", to_arch,
                          to_hf_config, tensors,                 "DistilBertModel"};
  return f;
}

}  // namespace tcat::models
