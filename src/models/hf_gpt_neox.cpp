// GPT-NeoX: parallel attention and FFN from one input, partial rotary (rotary_pct, half-split),
// untied output (embed_out). query_key_value rows are grouped per head.
#include <fmt/format.h>

#include "models/hf_family.h"

namespace tcat::models {
namespace {

ArchConfig to_arch(const HfConfigReader& r) {
  ArchConfig c = hf_decoder_base();
  c.vocab = r.size("vocab_size");
  c.d_model = r.size("hidden_size");
  c.heads = r.size("num_attention_heads");
  r.require_divides("num_attention_heads", c.heads, "hidden_size", c.d_model);
  c.dec_layers = r.size("num_hidden_layers");
  c.d_ff = r.size("intermediate_size");
  c.max_positions = r.size_or("max_position_embeddings", 2048);
  c.norm_eps = float(r.positive_number_or("layer_norm_eps", 1e-5));
  c.activation = r.activation("hidden_act", "gelu");
  c.parallel_block = r.flag_or("use_parallel_residual", true);
  c.position = PositionKind::Rotary;
  c.rotary_fraction = float(r.positive_number_or("rotary_pct", 0.25));
  if (c.rotary_fraction > 1.0f) r.reject("rotary_pct", "must be at most 1");
  c.rotary_base = float(r.positive_number_or("rotary_emb_base", 10000.0));
  const int64_t rotary_dim = c.rotary_dim();
  if (rotary_dim < 2 || rotary_dim % 2 != 0)
    r.reject("rotary_pct", fmt::format("gives {} rotary dimensions of {} (needs an even number >= 2)", rotary_dim,
                                       c.head_dim()));
  c.tie_output = r.flag_or("tie_word_embeddings", false);
  r.require_value("rope_scaling", nullptr);
  return c;
}

nlohmann::json to_hf_config(const ArchConfig& c) {
  return {{"vocab_size", c.vocab},
          {"hidden_size", c.d_model},
          {"num_attention_heads", c.heads},
          {"num_hidden_layers", c.dec_layers},
          {"intermediate_size", c.d_ff},
          {"max_position_embeddings", c.max_positions},
          {"layer_norm_eps", c.norm_eps},
          {"hidden_act", hf_activation_name(c.activation)},
          {"use_parallel_residual", c.parallel_block},
          {"rotary_pct", c.rotary_fraction},
          {"rotary_emb_base", c.rotary_base},
          {"rope_scaling", nullptr},
          {"tie_word_embeddings", c.tie_output}};
}

std::vector<HfMapping> tensors(const ArchConfig& c) {
  const int64_t d = c.d_model, ff = c.d_ff;
  HfTensorMap m;
  m.same("embed.weight", "gpt_neox.embed_in.weight", {c.vocab, d});
  for (int64_t i = 0; i < c.dec_layers; ++i) {
    const std::string t = fmt::format("decoder.layers.{}.", i), h = fmt::format("gpt_neox.layers.{}.", i);
    m.norm(t + "norm_self", h + "input_layernorm", d, true);
    m.interleaved(t + "self_attn.qkv.weight", h + "attention.query_key_value.weight", {3 * d, d}, c.heads);
    m.interleaved(t + "self_attn.qkv.bias", h + "attention.query_key_value.bias", {3 * d}, c.heads);
    m.linear(t + "self_attn.out", h + "attention.dense", d, d, true);
    m.norm(t + "norm_ffn", h + "post_attention_layernorm", d, true);
    m.linear(t + "ffn.up", h + "mlp.dense_h_to_4h", ff, d, true);
    m.linear(t + "ffn.down", h + "mlp.dense_4h_to_h", d, ff, true);
  }
  m.norm("decoder.final_norm", "gpt_neox.final_layer_norm", d, true);
  if (!c.tie_output) m.same("lm_head.weight", "embed_out.weight", {c.vocab, d});
  return m.take();
}

}  // namespace

const HfFamily& gpt_neox_family() {
  static const HfFamily f{"gpt_neox", "GPTNeoXForCausalLM", "gpt_neox.", to_arch, to_hf_config, tensors};
  return f;
}

}  // namespace tcat::models
