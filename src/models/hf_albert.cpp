// ALBERT: BERT's embeddings at a narrower width (embedding_size) mapped up to the hidden size, and
// one layer whose parameters every layer shares; its MLM head maps back to embedding_size before
// the decoder tied to the word embeddings.
#include <fmt/format.h>

#include "models/hf_family.h"

namespace tcat::models {
namespace {

ArchConfig to_arch(const HfConfigReader& r) {
  ArchConfig c = hf_encoder_base();
  c.vocab = r.size("vocab_size");
  c.d_model = r.size("hidden_size");
  c.embed_dim = r.size_or("embedding_size", 128);
  c.heads = r.size("num_attention_heads");
  r.require_divides("num_attention_heads", c.heads, "hidden_size", c.d_model);
  c.enc_layers = r.size("num_hidden_layers");
  c.d_ff = r.size("intermediate_size");
  c.max_positions = r.size_or("max_position_embeddings", 512);
  c.type_vocab = r.size_or("type_vocab_size", 2);
  c.norm_eps = float(r.positive_number_or("layer_norm_eps", 1e-12));
  c.activation = r.activation("hidden_act", "gelu_new");
  c.tie_output = r.flag_or("tie_word_embeddings", true);
  c.share_layers = true;
  r.require_value("num_hidden_groups", 1);
  r.require_value("inner_group_num", 1);
  r.require_value("position_embedding_type", "absolute");
  mlm_head_only_for(r, {"AlbertForMaskedLM", "AlbertForPreTraining"}, c);
  return c;
}

nlohmann::json to_hf_config(const ArchConfig& c) {
  return {{"vocab_size", c.vocab},
          {"hidden_size", c.d_model},
          {"embedding_size", c.embed_dim},
          {"num_attention_heads", c.heads},
          {"num_hidden_layers", c.enc_layers},
          {"num_hidden_groups", 1},
          {"inner_group_num", 1},
          {"intermediate_size", c.d_ff},
          {"max_position_embeddings", c.max_positions},
          {"type_vocab_size", c.type_vocab},
          {"layer_norm_eps", c.norm_eps},
          {"hidden_act", hf_activation_name(c.activation)},
          {"position_embedding_type", "absolute"},
          {"tie_word_embeddings", c.tie_output}};
}

std::vector<HfMapping> tensors(const ArchConfig& c) {
  const int64_t d = c.d_model, ff = c.d_ff;
  HfTensorMap m;
  bert_embeddings(m, "albert.", c);
  m.linear("embed_proj", "albert.encoder.embedding_hidden_mapping_in", d, c.embed_dim, true);
  const std::string t = "encoder.layers.0.", h = "albert.encoder.albert_layer_groups.0.albert_layers.0.";
  m.separate_qkv(t + "self_attn.qkv", h + "attention.query", h + "attention.key", h + "attention.value", c);
  m.linear(t + "self_attn.out", h + "attention.dense", d, d, true);
  m.norm(t + "norm_self", h + "attention.LayerNorm", d, true);
  m.linear(t + "ffn.up", h + "ffn", ff, d, true);
  m.linear(t + "ffn.down", h + "ffn_output", d, ff, true);
  m.norm(t + "norm_ffn", h + "full_layer_layer_norm", d, true);
  mlm_head(m, "predictions.dense", "predictions.LayerNorm", "predictions.bias", "predictions.decoder.weight", c);
  return m.take();
}

}  // namespace

const HfFamily& albert_family() {
  static const HfFamily f{"albert", "AlbertForMaskedLM", "albert.", to_arch, to_hf_config, tensors, "AlbertModel"};
  return f;
}

}  // namespace tcat::models
