// Llama: RMSNorm, rotary positions (half-split), SwiGLU, grouped-query attention, no biases.
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
  c.kv_heads = r.size_or("num_key_value_heads", c.heads);
  r.require_divides("num_key_value_heads", c.kv_heads, "num_attention_heads", c.heads);
  c.dec_layers = r.size("num_hidden_layers");
  c.d_ff = r.size("intermediate_size");
  c.max_positions = r.size_or("max_position_embeddings", 2048);
  c.norm = nn::NormKind::RMSNorm;
  c.norm_eps = float(r.positive_number_or("rms_norm_eps", 1e-6));
  c.activation = r.activation("hidden_act", "silu");
  c.gated_ffn = true;
  c.bias = false;
  c.position = PositionKind::Rotary;
  c.rotary_base = float(r.positive_number_or("rope_theta", 10000.0));
  c.tie_output = r.flag_or("tie_word_embeddings", false);
  r.require_value("attention_bias", false);
  r.require_value("rope_scaling", nullptr);
  return c;
}

nlohmann::json to_hf_config(const ArchConfig& c) {
  return {{"vocab_size", c.vocab},
          {"hidden_size", c.d_model},
          {"num_attention_heads", c.heads},
          {"num_key_value_heads", c.kv_heads ? c.kv_heads : c.heads},
          {"num_hidden_layers", c.dec_layers},
          {"intermediate_size", c.d_ff},
          {"max_position_embeddings", c.max_positions},
          {"rms_norm_eps", c.norm_eps},
          {"hidden_act", hf_activation_name(c.activation)},
          {"rope_theta", c.rotary_base},
          {"rope_scaling", nullptr},
          {"attention_bias", false},
          {"tie_word_embeddings", c.tie_output}};
}

std::vector<HfMapping> tensors(const ArchConfig& c) {
  const int64_t d = c.d_model, ff = c.d_ff;
  HfTensorMap m;
  m.same("embed.weight", "model.embed_tokens.weight", {c.vocab, d});
  for (int64_t i = 0; i < c.dec_layers; ++i) {
    const std::string t = fmt::format("decoder.layers.{}.", i), h = fmt::format("model.layers.{}.", i);
    m.norm(t + "norm_self", h + "input_layernorm", d, false);
    m.separate_qkv(t + "self_attn.qkv", h + "self_attn.q_proj", h + "self_attn.k_proj", h + "self_attn.v_proj", c);
    m.linear(t + "self_attn.out", h + "self_attn.o_proj", d, d, false);
    m.norm(t + "norm_ffn", h + "post_attention_layernorm", d, false);
    m.linear(t + "ffn.gate", h + "mlp.gate_proj", ff, d, false);
    m.linear(t + "ffn.up", h + "mlp.up_proj", ff, d, false);
    m.linear(t + "ffn.down", h + "mlp.down_proj", d, ff, false);
  }
  m.norm("decoder.final_norm", "model.norm", d, false);
  if (!c.tie_output) m.same("lm_head.weight", "lm_head.weight", {c.vocab, d});
  return m.take();
}

}  // namespace

const HfFamily& llama_family() {
  static const HfFamily f{"llama", "LlamaForCausalLM", "model.", to_arch, to_hf_config, tensors};
  return f;
}

}  // namespace tcat::models
