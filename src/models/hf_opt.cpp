// OPT: learned positions whose table starts 2 rows in, ReLU, tied output; pre-norm
// (do_layer_norm_before) with a final norm, or post-norm without one.
#include <fmt/format.h>

#include "models/hf_family.h"

namespace tcat::models {
namespace {

constexpr int64_t kOptPositionOffset = 2;

ArchConfig to_arch(const HfConfigReader& r) {
  ArchConfig c = hf_decoder_base();
  c.vocab = r.size("vocab_size");
  c.d_model = r.size("hidden_size");
  c.heads = r.size("num_attention_heads");
  r.require_divides("num_attention_heads", c.heads, "hidden_size", c.d_model);
  c.dec_layers = r.size("num_hidden_layers");
  c.d_ff = r.size("ffn_dim");
  c.max_positions = r.size("max_position_embeddings");
  if (r.size_or("word_embed_proj_dim", c.d_model) != c.d_model)
    r.reject("word_embed_proj_dim", "only word_embed_proj_dim = hidden_size is supported (no project_in/out)");
  c.activation = r.activation("activation_function", "relu");
  c.pre_norm = r.flag_or("do_layer_norm_before", true);
  c.final_norm = c.pre_norm && !r.flag_or("_remove_final_layer_norm", false);
  c.position = PositionKind::Learned;
  c.position_offset = kOptPositionOffset;
  c.tie_output = r.flag_or("tie_word_embeddings", true);
  r.require_value("enable_bias", true);
  r.require_value("layer_norm_elementwise_affine", true);
  return c;
}

nlohmann::json to_hf_config(const ArchConfig& c) {
  return {{"vocab_size", c.vocab},
          {"hidden_size", c.d_model},
          {"word_embed_proj_dim", c.d_model},
          {"num_attention_heads", c.heads},
          {"num_hidden_layers", c.dec_layers},
          {"ffn_dim", c.d_ff},
          {"max_position_embeddings", c.max_positions},
          {"activation_function", hf_activation_name(c.activation)},
          {"do_layer_norm_before", c.pre_norm},
          {"_remove_final_layer_norm", c.pre_norm && !c.final_norm},
          {"enable_bias", true},
          {"layer_norm_elementwise_affine", true},
          {"tie_word_embeddings", c.tie_output}};
}

std::vector<HfMapping> tensors(const ArchConfig& c) {
  const int64_t d = c.d_model, ff = c.d_ff;
  HfTensorMap m;
  m.same("embed.weight", "model.decoder.embed_tokens.weight", {c.vocab, d});
  m.same("pos_embed.weight", "model.decoder.embed_positions.weight", {c.max_positions + kOptPositionOffset, d});
  for (int64_t i = 0; i < c.dec_layers; ++i) {
    const std::string t = fmt::format("decoder.layers.{}.", i), h = fmt::format("model.decoder.layers.{}.", i);
    m.norm(t + "norm_self", h + "self_attn_layer_norm", d, true);
    m.separate_qkv(t + "self_attn.qkv", h + "self_attn.q_proj", h + "self_attn.k_proj", h + "self_attn.v_proj", c);
    m.linear(t + "self_attn.out", h + "self_attn.out_proj", d, d, true);
    m.norm(t + "norm_ffn", h + "final_layer_norm", d, true);
    m.linear(t + "ffn.up", h + "fc1", ff, d, true);
    m.linear(t + "ffn.down", h + "fc2", d, ff, true);
  }
  if (c.final_norm) m.norm("decoder.final_norm", "model.decoder.final_layer_norm", d, true);
  if (!c.tie_output) m.same("lm_head.weight", "lm_head.weight", {c.vocab, d});
  return m.take();
}

}  // namespace

const HfFamily& opt_family() {
  static const HfFamily f{"opt", "OPTForCausalLM", "model.", to_arch, to_hf_config, tensors};
  return f;
}

}  // namespace tcat::models
