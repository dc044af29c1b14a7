// BLOOM: ALiBi instead of position embeddings, a LayerNorm right after the word embeddings,
// GELU (tanh), tied output. query_key_value rows are grouped per head.
#include <fmt/format.h>

#include "models/hf_family.h"

namespace tcat::models {
namespace {

// BLOOM has no position limit of its own (ALiBi); tcat's caches need one.
constexpr int64_t kBloomDefaultPositions = 2048;

ArchConfig to_arch(const HfConfigReader& r) {
  ArchConfig c = hf_decoder_base();
  c.vocab = r.size("vocab_size");
  c.d_model = r.has("n_embed") ? r.size("n_embed") : r.size("hidden_size");
  c.heads = r.size("n_head");
  r.require_divides("n_head", c.heads, r.has("n_embed") ? "n_embed" : "hidden_size", c.d_model);
  c.dec_layers = r.size("n_layer");
  c.d_ff = 4 * c.d_model;
  c.max_positions = r.size_or("seq_length", kBloomDefaultPositions);
  c.norm_eps = float(r.positive_number_or("layer_norm_epsilon", 1e-5));
  c.activation = nn::Activation::GELUTanh;
  c.position = PositionKind::ALiBi;
  c.embed_norm = true;
  c.tie_output = r.flag_or("tie_word_embeddings", true);
  r.require_value("apply_residual_connection_post_layernorm", false);
  return c;
}

nlohmann::json to_hf_config(const ArchConfig& c) {
  return {{"vocab_size", c.vocab},
          {"hidden_size", c.d_model},
          {"n_head", c.heads},
          {"n_layer", c.dec_layers},
          {"seq_length", c.max_positions},
          {"layer_norm_epsilon", c.norm_eps},
          {"apply_residual_connection_post_layernorm", false},
          {"tie_word_embeddings", c.tie_output}};
}

std::vector<HfMapping> tensors(const ArchConfig& c) {
  const int64_t d = c.d_model, ff = c.d_ff;
  HfTensorMap m;
  m.same("embed.weight", "transformer.word_embeddings.weight", {c.vocab, d});
  m.norm("decoder.embed_norm", "transformer.word_embeddings_layernorm", d, true);
  for (int64_t i = 0; i < c.dec_layers; ++i) {
    const std::string t = fmt::format("decoder.layers.{}.", i), h = fmt::format("transformer.h.{}.", i);
    m.norm(t + "norm_self", h + "input_layernorm", d, true);
    m.interleaved(t + "self_attn.qkv.weight", h + "self_attention.query_key_value.weight", {3 * d, d}, c.heads);
    m.interleaved(t + "self_attn.qkv.bias", h + "self_attention.query_key_value.bias", {3 * d}, c.heads);
    m.linear(t + "self_attn.out", h + "self_attention.dense", d, d, true);
    m.norm(t + "norm_ffn", h + "post_attention_layernorm", d, true);
    m.linear(t + "ffn.up", h + "mlp.dense_h_to_4h", ff, d, true);
    m.linear(t + "ffn.down", h + "mlp.dense_4h_to_h", d, ff, true);
  }
  m.norm("decoder.final_norm", "transformer.ln_f", d, true);
  if (!c.tie_output) m.same("lm_head.weight", "lm_head.weight", {c.vocab, d});
  return m.take();
}

}  // namespace

const HfFamily& bloom_family() {
  static const HfFamily f{"bloom", "BloomForCausalLM", "transformer.", to_arch, to_hf_config, tensors};
  return f;
}

}  // namespace tcat::models
