// BART and Marian: post-norm encoder-decoders with one shared token table, tied output and a
// final_logits_bias. BART: learned positions per stack starting 2 rows in, a LayerNorm after the
// embeddings of each stack. Marian: sin/cos halves position table (computed, never stored) and
// embeddings scaled by sqrt(d_model).
#include <fmt/format.h>

#include "models/hf_family.h"

namespace tcat::models {
namespace {

constexpr int64_t kBartPositionOffset = 2;

// The config.json fields both families share.
ArchConfig bart_arch(const HfConfigReader& r) {
  ArchConfig c;
  c.layout = Layout::EncoderDecoder;
  c.vocab = r.size("vocab_size");
  c.d_model = r.size("d_model");
  c.enc_layers = r.size("encoder_layers");
  c.dec_layers = r.size("decoder_layers");
  c.heads = r.size("encoder_attention_heads");
  r.require_divides("encoder_attention_heads", c.heads, "d_model", c.d_model);
  r.require_value("decoder_attention_heads", c.heads);
  c.d_ff = r.size("encoder_ffn_dim");
  r.require_value("decoder_ffn_dim", c.d_ff);
  c.max_positions = r.size("max_position_embeddings");
  c.activation = r.activation("activation_function", "gelu");
  c.scale_embeddings = r.flag_or("scale_embedding", false);
  c.tie_output = r.flag_or("tie_word_embeddings", true);
  c.share_embeddings = true;
  c.pre_norm = false;
  c.final_norm = false;
  c.norm_eps = 1e-5f;
  c.output_bias = true;
  c.dropout = 0.0f;
  c.pad_id = 0;
  return c;
}

nlohmann::json bart_config(const ArchConfig& c) {
  return {{"vocab_size", c.vocab},
          {"d_model", c.d_model},
          {"encoder_layers", c.enc_layers},
          {"decoder_layers", c.dec_layers},
          {"encoder_attention_heads", c.heads},
          {"decoder_attention_heads", c.heads},
          {"encoder_ffn_dim", c.d_ff},
          {"decoder_ffn_dim", c.d_ff},
          {"max_position_embeddings", c.max_positions},
          {"activation_function", hf_activation_name(c.activation)},
          {"scale_embedding", c.scale_embeddings},
          {"tie_word_embeddings", c.tie_output},
          {"is_encoder_decoder", true}};
}

void bart_layers(HfTensorMap& m, const ArchConfig& c) {
  const int64_t d = c.d_model, ff = c.d_ff;
  auto common = [&](const std::string& t, const std::string& h) {
    m.separate_qkv(t + "self_attn.qkv", h + "self_attn.q_proj", h + "self_attn.k_proj", h + "self_attn.v_proj", c);
    m.linear(t + "self_attn.out", h + "self_attn.out_proj", d, d, true);
    m.norm(t + "norm_self", h + "self_attn_layer_norm", d, true);
    m.linear(t + "ffn.up", h + "fc1", ff, d, true);
    m.linear(t + "ffn.down", h + "fc2", d, ff, true);
    m.norm(t + "norm_ffn", h + "final_layer_norm", d, true);
  };
  for (int64_t i = 0; i < c.enc_layers; ++i)
    common(fmt::format("encoder.layers.{}.", i), fmt::format("model.encoder.layers.{}.", i));
  for (int64_t i = 0; i < c.dec_layers; ++i) {
    const std::string t = fmt::format("decoder.layers.{}.", i), h = fmt::format("model.decoder.layers.{}.", i);
    common(t, h);
    m.separate_cross(t + "cross_attn", h + "encoder_attn.q_proj", h + "encoder_attn.k_proj", h + "encoder_attn.v_proj",
                     c);
    m.linear(t + "cross_attn.out", h + "encoder_attn.out_proj", d, d, true);
    m.norm(t + "norm_cross", h + "encoder_attn_layer_norm", d, true);
  }
}

void bart_output(HfTensorMap& m, const ArchConfig& c) {
  m.row_vector("output_bias", "final_logits_bias", c.vocab);
  if (!c.tie_output) m.same("lm_head.weight", "lm_head.weight", {c.vocab, c.d_model});
}

ArchConfig bart_to_arch(const HfConfigReader& r) {
  ArchConfig c = bart_arch(r);
  c.position = PositionKind::Learned;
  c.position_offset = kBartPositionOffset;
  c.embed_norm = true;
  return c;
}

std::vector<HfMapping> bart_tensors(const ArchConfig& c) {
  const int64_t d = c.d_model, rows = c.max_positions + kBartPositionOffset;
  HfTensorMap m;
  m.same("embed.weight", "model.shared.weight", {c.vocab, d});
  m.same("src_pos_embed.weight", "model.encoder.embed_positions.weight", {rows, d});
  m.same("tgt_pos_embed.weight", "model.decoder.embed_positions.weight", {rows, d});
  m.norm("encoder.embed_norm", "model.encoder.layernorm_embedding", d, true);
  m.norm("decoder.embed_norm", "model.decoder.layernorm_embedding", d, true);
  bart_layers(m, c);
  bart_output(m, c);
  return m.take();
}

ArchConfig marian_to_arch(const HfConfigReader& r) {
  ArchConfig c = bart_arch(r);
  c.position = PositionKind::SinusoidalHalves;
  r.require_value("decoder_vocab_size", c.vocab);
  r.require_value("share_encoder_decoder_embeddings", true);
  r.require_value("normalize_embedding", false);
  r.require_value("static_position_embeddings", true);
  return c;
}

nlohmann::json marian_config(const ArchConfig& c) {
  nlohmann::json j = bart_config(c);
  j["decoder_vocab_size"] = c.vocab;
  j["share_encoder_decoder_embeddings"] = true;
  return j;
}

std::vector<HfMapping> marian_tensors(const ArchConfig& c) {
  HfTensorMap m;
  m.same("embed.weight", "model.shared.weight", {c.vocab, c.d_model});
  bart_layers(m, c);
  bart_output(m, c);
  return m.take();
}

}  // namespace

const HfFamily& bart_family() {
  static const HfFamily f{"bart", "BartForConditionalGeneration", "model.", bart_to_arch, bart_config, bart_tensors};
  return f;
}

const HfFamily& marian_family() {
  static const HfFamily f{"marian", "MarianMTModel", "model.", marian_to_arch, marian_config, marian_tensors};
  return f;
}

}  // namespace tcat::models
