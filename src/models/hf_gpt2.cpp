// GPT-2: learned positions, pre-norm LayerNorm, GELU (tanh), tied output. Its Conv1D weights are
// stored [in, out]; c_attn holds Q, K, V side by side.
#include <fmt/format.h>

#include "models/hf_family.h"

namespace tcat::models {
namespace {

ArchConfig to_arch(const HfConfigReader& r) {
  ArchConfig c = hf_decoder_base();
  c.vocab = r.size("vocab_size");
  c.d_model = r.size("n_embd");
  c.heads = r.size("n_head");
  r.require_divides("n_head", c.heads, "n_embd", c.d_model);
  c.dec_layers = r.size("n_layer");
  c.max_positions = r.size("n_positions");
  c.d_ff = r.size_or("n_inner", 4 * c.d_model);
  c.norm_eps = float(r.positive_number_or("layer_norm_epsilon", 1e-5));
  c.activation = r.activation("activation_function", "gelu_new");
  c.position = PositionKind::Learned;
  c.tie_output = r.flag_or("tie_word_embeddings", true);
  r.require_value("scale_attn_weights", true);
  r.require_value("scale_attn_by_inverse_layer_idx", false);
  return c;
}

nlohmann::json to_hf_config(const ArchConfig& c) {
  return {{"vocab_size", c.vocab},
          {"n_embd", c.d_model},
          {"n_head", c.heads},
          {"n_layer", c.dec_layers},
          {"n_positions", c.max_positions},
          {"n_inner", c.d_ff},
          {"layer_norm_epsilon", c.norm_eps},
          {"activation_function", hf_activation_name(c.activation)},
          {"tie_word_embeddings", c.tie_output}};
}

std::vector<HfMapping> tensors(const ArchConfig& c) {
  const int64_t d = c.d_model, ff = c.d_ff;
  HfTensorMap m;
  m.same("embed.weight", "transformer.wte.weight", {c.vocab, d});
  m.same("pos_embed.weight", "transformer.wpe.weight", {c.max_positions, d});
  for (int64_t i = 0; i < c.dec_layers; ++i) {
    const std::string t = fmt::format("decoder.layers.{}.", i), h = fmt::format("transformer.h.{}.", i);
    m.norm(t + "norm_self", h + "ln_1", d, true);
    m.transposed(t + "self_attn.qkv.weight", h + "attn.c_attn.weight", {d, 3 * d});
    m.same(t + "self_attn.qkv.bias", h + "attn.c_attn.bias", {3 * d});
    m.transposed(t + "self_attn.out.weight", h + "attn.c_proj.weight", {d, d});
    m.same(t + "self_attn.out.bias", h + "attn.c_proj.bias", {d});
    m.norm(t + "norm_ffn", h + "ln_2", d, true);
    m.transposed(t + "ffn.up.weight", h + "mlp.c_fc.weight", {d, ff});
    m.same(t + "ffn.up.bias", h + "mlp.c_fc.bias", {ff});
    m.transposed(t + "ffn.down.weight", h + "mlp.c_proj.weight", {ff, d});
    m.same(t + "ffn.down.bias", h + "mlp.c_proj.bias", {d});
  }
  m.norm("decoder.final_norm", "transformer.ln_f", d, true);
  if (!c.tie_output) m.same("lm_head.weight", "lm_head.weight", {c.vocab, d});
  return m.take();
}

}  // namespace

const HfFamily& gpt2_family() {
  static const HfFamily f{"gpt2", "GPT2LMHeadModel", "transformer.", to_arch, to_hf_config, tensors};
  return f;
}

}  // namespace tcat::models
