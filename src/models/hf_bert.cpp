// BERT and the families that keep its module names: post-norm LayerNorm layers, learned positions,
// token-type embeddings and an embedding LayerNorm, an MLM head (dense, activation, LayerNorm,
// decoder tied to the word embeddings, bias). RoBERTa's positions start at pad_token_id + 1;
// ELECTRA's embeddings may be narrower than the hidden size and are then projected up.
// Checkpoints of base classes (BertModel, ElectraForPreTraining, ...) load without the head.
#include <fmt/format.h>

#include "models/hf_family.h"

namespace tcat::models {
namespace {

// The config.json fields the three families share.
ArchConfig bert_arch(const HfConfigReader& r) {
  ArchConfig c = hf_encoder_base();
  c.vocab = r.size("vocab_size");
  c.d_model = r.size("hidden_size");
  c.heads = r.size("num_attention_heads");
  r.require_divides("num_attention_heads", c.heads, "hidden_size", c.d_model);
  c.enc_layers = r.size("num_hidden_layers");
  c.d_ff = r.size("intermediate_size");
  c.max_positions = r.size("max_position_embeddings");
  c.type_vocab = r.size_or("type_vocab_size", 2);
  c.norm_eps = float(r.positive_number_or("layer_norm_eps", 1e-12));
  c.activation = r.activation("hidden_act", "gelu");
  c.tie_output = r.flag_or("tie_word_embeddings", true);
  r.require_value("position_embedding_type", "absolute");
  r.require_value("is_decoder", false);
  r.require_value("add_cross_attention", false);
  return c;
}

nlohmann::json bert_config(const ArchConfig& c) {
  return {{"vocab_size", c.vocab},
          {"hidden_size", c.d_model},
          {"num_attention_heads", c.heads},
          {"num_hidden_layers", c.enc_layers},
          {"intermediate_size", c.d_ff},
          {"max_position_embeddings", c.max_positions + c.position_offset},
          {"type_vocab_size", c.type_vocab},
          {"layer_norm_eps", c.norm_eps},
          {"hidden_act", hf_activation_name(c.activation)},
          {"position_embedding_type", "absolute"},
          {"tie_word_embeddings", c.tie_output}};
}

// Encoder layers "<prefix>encoder.layer.{i}." in BERT's module names.
void bert_layers(HfTensorMap& m, const std::string& prefix, const ArchConfig& c) {
  const int64_t d = c.d_model, ff = c.d_ff;
  for (int64_t i = 0; i < c.enc_layers; ++i) {
    const std::string t = fmt::format("encoder.layers.{}.", i), h = fmt::format("{}encoder.layer.{}.", prefix, i);
    m.separate_qkv(t + "self_attn.qkv", h + "attention.self.query", h + "attention.self.key",
                   h + "attention.self.value", c);
    m.linear(t + "self_attn.out", h + "attention.output.dense", d, d, true);
    m.norm(t + "norm_self", h + "attention.output.LayerNorm", d, true);
    m.linear(t + "ffn.up", h + "intermediate.dense", ff, d, true);
    m.linear(t + "ffn.down", h + "output.dense", d, ff, true);
    m.norm(t + "norm_ffn", h + "output.LayerNorm", d, true);
  }
}

// RoBERTa and ELECTRA hard-wire gelu in their MLM heads; tcat's head uses the model's activation.
void require_gelu(const HfConfigReader& r, const ArchConfig& c) {
  if (c.activation != nn::Activation::GELU) r.reject("hidden_act", "only gelu is supported by this family's MLM head");
}

ArchConfig bert_to_arch(const HfConfigReader& r) {
  ArchConfig c = bert_arch(r);
  mlm_head_only_for(r, {"BertForMaskedLM", "BertForPreTraining"}, c);
  return c;
}

std::vector<HfMapping> bert_tensors(const ArchConfig& c) {
  HfTensorMap m;
  bert_embeddings(m, "bert.", c);
  bert_layers(m, "bert.", c);
  mlm_head(m, "cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias",
           "cls.predictions.decoder.weight", c);
  return m.take();
}

ArchConfig roberta_to_arch(const HfConfigReader& r) {
  ArchConfig c = bert_arch(r);
  require_gelu(r, c);
  c.type_vocab = r.size_or("type_vocab_size", 1);
  // Position ids count from pad_token_id + 1; the first rows of the table are never read.
  c.position_offset = r.index_or("pad_token_id", 1) + 1;
  c.max_positions -= c.position_offset;
  if (c.max_positions <= 0)
    r.reject("max_position_embeddings", fmt::format("leaves no positions after the offset {}", c.position_offset));
  mlm_head_only_for(r, {"RobertaForMaskedLM"}, c);
  return c;
}

std::vector<HfMapping> roberta_tensors(const ArchConfig& c) {
  HfTensorMap m;
  bert_embeddings(m, "roberta.", c);
  bert_layers(m, "roberta.", c);
  mlm_head(m, "lm_head.dense", "lm_head.layer_norm", "lm_head.bias", "lm_head.decoder.weight", c);
  return m.take();
}

ArchConfig electra_to_arch(const HfConfigReader& r) {
  ArchConfig c = bert_arch(r);
  require_gelu(r, c);
  const int64_t embedding_size = r.size_or("embedding_size", c.d_model);
  c.embed_dim = embedding_size != c.d_model ? embedding_size : 0;  // ELECTRA projects only when they differ
  mlm_head_only_for(r, {"ElectraForMaskedLM"}, c);
  return c;
}

nlohmann::json electra_config(const ArchConfig& c) {
  nlohmann::json j = bert_config(c);
  j["embedding_size"] = c.embed_width();
  return j;
}

std::vector<HfMapping> electra_tensors(const ArchConfig& c) {
  HfTensorMap m;
  bert_embeddings(m, "electra.", c);
  if (c.embed_dim > 0) m.linear("embed_proj", "electra.embeddings_project", c.d_model, c.embed_dim, true);
  bert_layers(m, "electra.", c);
  mlm_head(m, "generator_predictions.dense", "generator_predictions.LayerNorm", "generator_lm_head.bias",
           "generator_lm_head.weight", c);
  return m.take();
}

}  // namespace

const HfFamily& bert_family() {
  static const HfFamily f{"bert", "BertForMaskedLM", "bert.", bert_to_arch, bert_config, bert_tensors, "BertModel"};
  return f;
}

const HfFamily& roberta_family() {
  static const HfFamily f{"roberta",   "RobertaForMaskedLM", "roberta.", roberta_to_arch,
                          bert_config, roberta_tensors,      "RobertaModel"};
  return f;
}

const HfFamily& electra_family() {
  static const HfFamily f{"electra",      "ElectraForMaskedLM", "electra.", electra_to_arch,
                          electra_config, electra_tensors,      "ElectraModel"};
  return f;
}

}  // namespace tcat::models
