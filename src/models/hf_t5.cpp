// T5 (and v1.1): pre-norm RMS LayerNorm without bias or mean, no biases anywhere, relative
// position buckets (a table in the first layer of each stack, shared by its layers), unscaled
// attention, per-head width d_kv, ReLU or gated-GELU feed-forward. Tied output scales the decoder
// output by d_model^-0.5; v1.1 stores its own lm_head.
#include <fmt/format.h>

#include <cmath>

#include "models/hf_family.h"

namespace tcat::models {
namespace {

// T5 has no position limit of its own (relative positions); tcat's caches need one.
constexpr int64_t kT5DefaultPositions = 512;

ArchConfig to_arch(const HfConfigReader& r) {
  ArchConfig c;
  c.layout = Layout::EncoderDecoder;
  c.vocab = r.size("vocab_size");
  c.d_model = r.size("d_model");
  c.heads = r.size("num_heads");
  c.attn_head_dim = r.size("d_kv");
  c.d_ff = r.size("d_ff");
  c.enc_layers = r.size("num_layers");
  c.dec_layers = r.size_or("num_decoder_layers", c.enc_layers);
  c.max_positions = r.size_or("n_positions", kT5DefaultPositions);
  c.norm = nn::NormKind::RMSNorm;
  c.norm_eps = float(r.positive_number_or("layer_norm_epsilon", 1e-6));
  c.pre_norm = true;
  c.final_norm = true;
  c.bias = false;
  c.position = PositionKind::RelativeBuckets;
  c.relative_buckets = r.size_or("relative_attention_num_buckets", 32);
  c.relative_max_distance = r.size_or("relative_attention_max_distance", 128);
  c.scale_attention = false;
  c.scale_embeddings = false;
  c.share_embeddings = true;
  c.tie_output = r.flag_or("tie_word_embeddings", true);
  c.output_scale = c.tie_output ? float(1.0 / std::sqrt(double(c.d_model))) : 1.0f;
  c.dropout = 0.0f;
  c.pad_id = 0;
  // feed_forward_proj: "<act>" or "gated-<act>"; transformers reads "gated-gelu" as gelu_new.
  const std::string proj = r.text_or("feed_forward_proj", "relu");
  c.gated_ffn = proj.rfind("gated-", 0) == 0;
  const std::string act = c.gated_ffn ? proj.substr(6) : proj;
  if (act.empty() || act.find('-') != std::string::npos)
    r.reject("feed_forward_proj", "must be '<activation>' or 'gated-<activation>'");
  c.activation = r.activation("dense_act_fn", c.gated_ffn && act == "gelu" ? "gelu_new" : act);
  return c;
}

nlohmann::json to_hf_config(const ArchConfig& c) {
  const std::string act = hf_activation_name(c.activation);
  const std::string proj_act = c.gated_ffn && act == "gelu_new" ? "gelu" : act;
  return {{"vocab_size", c.vocab},
          {"d_model", c.d_model},
          {"num_heads", c.heads},
          {"d_kv", c.head_dim()},
          {"d_ff", c.d_ff},
          {"num_layers", c.enc_layers},
          {"num_decoder_layers", c.dec_layers},
          {"n_positions", c.max_positions},
          {"layer_norm_epsilon", c.norm_eps},
          {"relative_attention_num_buckets", c.relative_buckets},
          {"relative_attention_max_distance", c.relative_max_distance},
          {"feed_forward_proj", (c.gated_ffn ? "gated-" : "") + proj_act},
          {"dense_act_fn", act},
          {"is_gated_act", c.gated_ffn},
          {"tie_word_embeddings", c.tie_output},
          {"is_encoder_decoder", true}};
}

std::vector<HfMapping> tensors(const ArchConfig& c) {
  const int64_t d = c.d_model, ff = c.d_ff, inner = c.heads * c.head_dim();
  HfTensorMap m;
  m.same("embed.weight", "shared.weight", {c.vocab, d});
  auto ffn = [&](const std::string& t, const std::string& h) {
    if (c.gated_ffn) {
      m.same(t + "ffn.gate.weight", h + "DenseReluDense.wi_0.weight", {ff, d});
      m.same(t + "ffn.up.weight", h + "DenseReluDense.wi_1.weight", {ff, d});
    } else {
      m.same(t + "ffn.up.weight", h + "DenseReluDense.wi.weight", {ff, d});
    }
    m.same(t + "ffn.down.weight", h + "DenseReluDense.wo.weight", {d, ff});
    m.norm(t + "norm_ffn", h + "layer_norm", d, false);
  };
  for (const bool decoder : {false, true}) {
    const std::string stack = decoder ? "decoder" : "encoder";
    const int64_t layers = decoder ? c.dec_layers : c.enc_layers;
    m.same(stack + ".relative_bias.weight", stack + ".block.0.layer.0.SelfAttention.relative_attention_bias.weight",
           {c.relative_buckets, c.heads});
    for (int64_t i = 0; i < layers; ++i) {
      const std::string t = fmt::format("{}.layers.{}.", stack, i), h = fmt::format("{}.block.{}.layer.", stack, i);
      m.separate_qkv(t + "self_attn.qkv", h + "0.SelfAttention.q", h + "0.SelfAttention.k", h + "0.SelfAttention.v", c);
      m.same(t + "self_attn.out.weight", h + "0.SelfAttention.o.weight", {d, inner});
      m.norm(t + "norm_self", h + "0.layer_norm", d, false);
      if (decoder) {
        m.separate_cross(t + "cross_attn", h + "1.EncDecAttention.q", h + "1.EncDecAttention.k",
                         h + "1.EncDecAttention.v", c);
        m.same(t + "cross_attn.out.weight", h + "1.EncDecAttention.o.weight", {d, inner});
        m.norm(t + "norm_cross", h + "1.layer_norm", d, false);
      }
      ffn(t, h + (decoder ? "2." : "1."));
    }
    m.norm(stack + ".final_norm", stack + ".final_layer_norm", d, false);
  }
  if (!c.tie_output) m.same("lm_head.weight", "lm_head.weight", {c.vocab, d});
  return m.take();
}

}  // namespace

const HfFamily& t5_family() {
  static const HfFamily f{"t5", "T5ForConditionalGeneration", "", to_arch, to_hf_config, tensors};
  return f;
}

}  // namespace tcat::models
