#include "models/config.h"

#include <map>

namespace tcat::models {
namespace {

template <typename E>
const std::vector<std::pair<E, std::string>>& enum_names();

template <>
const std::vector<std::pair<Layout, std::string>>& enum_names() {
  static const std::vector<std::pair<Layout, std::string>> v{
      {Layout::EncoderDecoder, "encoder-decoder"}, {Layout::EncoderOnly, "encoder"}, {Layout::DecoderOnly, "decoder"}};
  return v;
}
template <>
const std::vector<std::pair<PositionKind, std::string>>& enum_names() {
  static const std::vector<std::pair<PositionKind, std::string>> v{{PositionKind::Sinusoidal, "sinusoidal"},
                                                                   {PositionKind::SinusoidalHalves, "sinusoidal-halves"},
                                                                   {PositionKind::Learned, "learned"},
                                                                   {PositionKind::Rotary, "rotary"},
                                                                   {PositionKind::ALiBi, "alibi"},
                                                                   {PositionKind::RelativeBuckets, "relative-buckets"},
                                                                   {PositionKind::None, "none"}};
  return v;
}
template <>
const std::vector<std::pair<nn::NormKind, std::string>>& enum_names() {
  static const std::vector<std::pair<nn::NormKind, std::string>> v{{nn::NormKind::LayerNorm, "layernorm"},
                                                                   {nn::NormKind::RMSNorm, "rmsnorm"}};
  return v;
}
template <>
const std::vector<std::pair<nn::Activation, std::string>>& enum_names() {
  static const std::vector<std::pair<nn::Activation, std::string>> v{{nn::Activation::ReLU, "relu"},
                                                                     {nn::Activation::GELU, "gelu"},
                                                                     {nn::Activation::GELUTanh, "gelu_tanh"},
                                                                     {nn::Activation::SiLU, "silu"}};
  return v;
}

template <typename E>
std::string enum_to_string(E e) {
  for (const auto& [v, s] : enum_names<E>())
    if (v == e) return s;
  fail("enum value {} has no name", int(e));
}

template <typename E>
E enum_from_string(const std::string& key, const std::string& s) {
  std::vector<std::string> known;
  for (const auto& [v, name] : enum_names<E>()) {
    if (name == s) return v;
    known.push_back(name);
  }
  throw UsageError(fmt::format("config: '{}' is not a valid {} (one of: {})", s, key, fmt::join(known, ", ")));
}

}  // namespace

int64_t ArchConfig::rotary_dim() const {
  return position == PositionKind::Rotary ? int64_t(double(head_dim()) * double(rotary_fraction)) : 0;
}

void ArchConfig::validate() const {
  auto positive = [](const char* name, int64_t v) {
    if (v <= 0) throw UsageError(fmt::format("config: {} must be positive, got {}", name, v));
  };
  positive("vocab", vocab);
  positive("d_model", d_model);
  positive("heads", heads);
  positive("d_ff", d_ff);
  positive("max_positions", max_positions);
  if (attn_head_dim < 0) throw UsageError(fmt::format("config: attn_head_dim must not be negative, got {}", attn_head_dim));
  if (attn_head_dim == 0 && d_model % heads != 0)
    throw UsageError(fmt::format("config: heads ({}) must divide d_model ({})", heads, d_model));
  if (kv_heads < 0 || (kv_heads > 0 && heads % kv_heads != 0))
    throw UsageError(fmt::format("config: kv_heads ({}) must divide heads ({})", kv_heads, heads));
  if (enc_layers < 0 || dec_layers < 0)
    throw UsageError(fmt::format("config: layer counts must not be negative ({} / {})", enc_layers, dec_layers));
  if (layout != Layout::DecoderOnly && enc_layers == 0) throw UsageError("config: this layout needs enc_layers > 0");
  if (layout != Layout::EncoderOnly && dec_layers == 0) throw UsageError("config: this layout needs dec_layers > 0");
  if (!output_head && (layout != Layout::EncoderOnly || output_transform || output_bias))
    throw UsageError("config: only an encoder-only model can go without an output head (and then without "
                     "output_transform and output_bias)");
  if (!(dropout >= 0.0f && dropout < 1.0f)) throw UsageError(fmt::format("config: dropout {} not in [0, 1)", dropout));
  if (!(norm_eps > 0.0f)) throw UsageError(fmt::format("config: norm_eps must be positive, got {}", norm_eps));
  if (position_offset < 0)
    throw UsageError(fmt::format("config: position_offset must not be negative, got {}", position_offset));
  if (position == PositionKind::Rotary) {
    if (!(rotary_fraction > 0.0f && rotary_fraction <= 1.0f))
      throw UsageError(fmt::format("config: rotary_fraction {} not in (0, 1]", rotary_fraction));
    if (rotary_dim() < 2 || rotary_dim() % 2 != 0)
      throw UsageError(fmt::format("config: rotary_fraction {} of head_dim {} gives {} rotary dimensions (needs an "
                                   "even number >= 2)",
                                   rotary_fraction, head_dim(), rotary_dim()));
    if (!(rotary_base > 1.0f)) throw UsageError(fmt::format("config: rotary_base must be > 1, got {}", rotary_base));
  }
  if (embed_dim < 0 || type_vocab < 0)
    throw UsageError(fmt::format("config: embed_dim ({}) and type_vocab ({}) must not be negative", embed_dim,
                                 type_vocab));
  if (position == PositionKind::RelativeBuckets && (relative_buckets < 4 || relative_max_distance < relative_buckets))
    throw UsageError(fmt::format("config: relative_buckets {} must be >= 4 and relative_max_distance {} at least as large",
                                 relative_buckets, relative_max_distance));
  if (!(output_scale > 0.0f)) throw UsageError(fmt::format("config: output_scale must be positive, got {}", output_scale));
  if (pad_id < 0 || pad_id >= vocab)
    throw UsageError(fmt::format("config: pad_id {} outside the vocabulary of {}", pad_id, vocab));
}

nlohmann::json ArchConfig::to_json() const {
  return {{"layout", enum_to_string(layout)},
          {"vocab", vocab},
          {"d_model", d_model},
          {"heads", heads},
          {"kv_heads", kv_heads},
          {"d_ff", d_ff},
          {"enc_layers", enc_layers},
          {"dec_layers", dec_layers},
          {"max_positions", max_positions},
          {"norm", enum_to_string(norm)},
          {"pre_norm", pre_norm},
          {"final_norm", final_norm},
          {"norm_eps", norm_eps},
          {"position", enum_to_string(position)},
          {"position_offset", position_offset},
          {"rotary_fraction", rotary_fraction},
          {"rotary_interleaved", rotary_interleaved},
          {"rotary_base", rotary_base},
          {"relative_buckets", relative_buckets},
          {"relative_max_distance", relative_max_distance},
          {"attn_head_dim", attn_head_dim},
          {"scale_attention", scale_attention},
          {"output_scale", output_scale},
          {"embed_norm", embed_norm},
          {"embed_dim", embed_dim},
          {"type_vocab", type_vocab},
          {"share_layers", share_layers},
          {"output_head", output_head},
          {"output_transform", output_transform},
          {"output_bias", output_bias},
          {"activation", enum_to_string(activation)},
          {"gated_ffn", gated_ffn},
          {"parallel_block", parallel_block},
          {"bias", bias},
          {"share_embeddings", share_embeddings},
          {"tie_output", tie_output},
          {"scale_embeddings", scale_embeddings},
          {"dropout", dropout},
          {"pad_id", pad_id}};
}

ArchConfig ArchConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw UsageError("config: expected a JSON object");
  ArchConfig c;
  const nlohmann::json defaults = c.to_json();
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!defaults.contains(it.key())) throw UsageError(fmt::format("config: unknown key '{}'", it.key()));
    const auto& expected = defaults[it.key()];
    const bool ok = (expected.is_string() && it->is_string()) || (expected.is_boolean() && it->is_boolean()) ||
                    (expected.is_number_integer() && it->is_number_integer()) ||
                    (expected.is_number_float() && it->is_number());
    if (!ok) throw UsageError(fmt::format("config: '{}' has the wrong type ({})", it.key(), it->dump()));
  }
  auto get = [&](const char* key, auto& field) {
    if (j.contains(key)) j.at(key).get_to(field);
  };
  auto get_enum = [&](const char* key, auto& field) {
    if (j.contains(key)) field = enum_from_string<std::decay_t<decltype(field)>>(key, j.at(key).get<std::string>());
  };
  get_enum("layout", c.layout);
  get("vocab", c.vocab);
  get("d_model", c.d_model);
  get("heads", c.heads);
  get("kv_heads", c.kv_heads);
  get("d_ff", c.d_ff);
  get("enc_layers", c.enc_layers);
  get("dec_layers", c.dec_layers);
  get("max_positions", c.max_positions);
  get_enum("norm", c.norm);
  get("pre_norm", c.pre_norm);
  get("final_norm", c.final_norm);
  get("norm_eps", c.norm_eps);
  get_enum("position", c.position);
  get("position_offset", c.position_offset);
  get("rotary_fraction", c.rotary_fraction);
  get("rotary_interleaved", c.rotary_interleaved);
  get("rotary_base", c.rotary_base);
  get("relative_buckets", c.relative_buckets);
  get("relative_max_distance", c.relative_max_distance);
  get("attn_head_dim", c.attn_head_dim);
  get("scale_attention", c.scale_attention);
  get("output_scale", c.output_scale);
  get("embed_norm", c.embed_norm);
  get("embed_dim", c.embed_dim);
  get("type_vocab", c.type_vocab);
  get("share_layers", c.share_layers);
  get("output_head", c.output_head);
  get("output_transform", c.output_transform);
  get("output_bias", c.output_bias);
  get_enum("activation", c.activation);
  get("gated_ffn", c.gated_ffn);
  get("parallel_block", c.parallel_block);
  get("bias", c.bias);
  get("share_embeddings", c.share_embeddings);
  get("tie_output", c.tie_output);
  get("scale_embeddings", c.scale_embeddings);
  get("dropout", c.dropout);
  get("pad_id", c.pad_id);
  c.validate();
  return c;
}

ArchConfig preset(const std::string& name, int64_t vocab) {
  ArchConfig c;  // the defaults are Transformer base
  c.vocab = vocab;
  if (name == "transformer-base") {
  } else if (name == "transformer-big") {
    c.d_model = 1024;
    c.heads = 16;
    c.d_ff = 4096;
    c.dropout = 0.3f;
  } else if (name == "transformer-tiny") {
    c.d_model = 64;
    c.heads = 4;
    c.d_ff = 256;
    c.enc_layers = c.dec_layers = 2;
    c.max_positions = 256;
  } else {
    throw UsageError(fmt::format("unknown architecture preset '{}' (known: {})", name, fmt::join(preset_names(), ", ")));
  }
  c.validate();
  return c;
}

std::vector<std::string> preset_names() { return {"transformer-base", "transformer-big", "transformer-tiny"}; }

}  // namespace tcat::models
