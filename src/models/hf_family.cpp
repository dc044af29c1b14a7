#include "models/hf_family.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace tcat::models {

HfConfigReader::HfConfigReader(const nlohmann::json& j, std::string origin) : j_(j), origin_(std::move(origin)) {
  if (!j_.is_object()) throw UsageError(fmt::format("{}: expected a JSON object", origin_));
}

bool HfConfigReader::has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

void HfConfigReader::reject(const char* key, const std::string& why) const {
  const std::string value = j_.contains(key) ? j_.at(key).dump() : "absent";
  throw UsageError(fmt::format("{}: {} = {}: {}", origin_, key, value, why));
}

int64_t HfConfigReader::size(const char* key) const {
  if (!has(key)) reject(key, "required");
  return size_or(key, 0);
}

int64_t HfConfigReader::size_or(const char* key, int64_t fallback) const {
  if (!has(key)) return fallback;
  const auto& v = j_.at(key);
  if (!v.is_number_integer()) reject(key, "must be an integer");
  const int64_t n = v.get<int64_t>();
  if (n <= 0) reject(key, "must be positive");
  return n;
}

int64_t HfConfigReader::index_or(const char* key, int64_t fallback) const {
  if (!has(key)) return fallback;
  const auto& v = j_.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < 0) reject(key, "must be a non-negative integer");
  return v.get<int64_t>();
}

double HfConfigReader::positive_number_or(const char* key, double fallback) const {
  if (!has(key)) return fallback;
  const auto& v = j_.at(key);
  if (!v.is_number()) reject(key, "must be a number");
  const double x = v.get<double>();
  if (!(x > 0)) reject(key, "must be positive");
  return x;
}

bool HfConfigReader::flag_or(const char* key, bool fallback) const {
  if (!has(key)) return fallback;
  if (!j_.at(key).is_boolean()) reject(key, "must be true or false");
  return j_.at(key).get<bool>();
}

std::string HfConfigReader::text_or(const char* key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  if (!j_.at(key).is_string()) reject(key, "must be a string");
  return j_.at(key).get<std::string>();
}

nn::Activation HfConfigReader::activation(const char* key, const std::string& fallback) const {
  const std::string name = text_or(key, fallback);
  if (name == "relu") return nn::Activation::ReLU;
  if (name == "gelu") return nn::Activation::GELU;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return nn::Activation::GELUTanh;
  if (name == "silu" || name == "swish") return nn::Activation::SiLU;
  reject(key, "unsupported activation (supported: relu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, silu, swish)");
}

void HfConfigReader::require_divides(const char* heads_key, int64_t heads, const char* width_key,
                                     int64_t width) const {
  if (width % heads != 0) reject(heads_key, fmt::format("must divide {} ({})", width_key, width));
}

void HfConfigReader::require_value(const char* key, const nlohmann::json& expected) const {
  if (has(key) && j_.at(key) != expected) reject(key, fmt::format("only {} is supported", expected.dump()));
}

std::string hf_activation_name(nn::Activation a) {
  switch (a) {
    case nn::Activation::ReLU: return "relu";
    case nn::Activation::GELU: return "gelu";
    case nn::Activation::GELUTanh: return "gelu_new";
    case nn::Activation::SiLU: return "silu";
  }
  fail("unknown activation {}", int(a));
}

void HfTensorMap::same(const std::string& param, const std::string& name, const Shape& shape) {
  mappings_.push_back({param, {{name, shape}}, HfLayout::Same, 0});
}

void HfTensorMap::transposed(const std::string& param, const std::string& name, const Shape& stored_shape) {
  mappings_.push_back({param, {{name, stored_shape}}, HfLayout::Transposed, 0});
}

void HfTensorMap::interleaved(const std::string& param, const std::string& name, const Shape& shape,
                              int64_t heads) {
  mappings_.push_back({param, {{name, shape}}, HfLayout::HeadInterleaved, heads});
}

void HfTensorMap::row_vector(const std::string& param, const std::string& name, int64_t n) {
  mappings_.push_back({param, {{name, {1, n}}}, HfLayout::RowVector, 0});
}

void HfTensorMap::stacked(const std::string& param, std::vector<HfTensor> parts) {
  mappings_.push_back({param, std::move(parts), HfLayout::Same, 0});
}

void HfTensorMap::linear(const std::string& param, const std::string& name, int64_t out, int64_t in, bool bias) {
  same(param + ".weight", name + ".weight", {out, in});
  if (bias) same(param + ".bias", name + ".bias", {out});
}

void HfTensorMap::norm(const std::string& param, const std::string& name, int64_t dim, bool bias) {
  same(param + ".weight", name + ".weight", {dim});
  if (bias) same(param + ".bias", name + ".bias", {dim});
}

void HfTensorMap::separate_qkv(const std::string& param, const std::string& q, const std::string& k,
                               const std::string& v, const ArchConfig& c) {
  const int64_t q_rows = c.heads * c.head_dim(), kv_rows = (c.kv_heads ? c.kv_heads : c.heads) * c.head_dim();
  stacked(param + ".weight",
          {{q + ".weight", {q_rows, c.d_model}}, {k + ".weight", {kv_rows, c.d_model}}, {v + ".weight", {kv_rows, c.d_model}}});
  if (c.bias) stacked(param + ".bias", {{q + ".bias", {q_rows}}, {k + ".bias", {kv_rows}}, {v + ".bias", {kv_rows}}});
}

void bert_embeddings(HfTensorMap& m, const std::string& prefix, const ArchConfig& c) {
  const int64_t w = c.embed_width();
  const std::string p = prefix + "embeddings.";
  m.same("src_embed.weight", p + "word_embeddings.weight", {c.vocab, w});
  m.same("pos_embed.weight", p + "position_embeddings.weight", {c.max_positions + c.position_offset, w});
  if (c.type_vocab > 0) m.same("type_embed.weight", p + "token_type_embeddings.weight", {c.type_vocab, w});
  m.norm("encoder.embed_norm", p + "LayerNorm", w, true);
}

void mlm_head_only_for(const HfConfigReader& r, std::initializer_list<const char*> with_head, ArchConfig& c) {
  const nlohmann::json& j = r.json();
  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
      !j["architectures"][0].is_string())
    return;
  const std::string name = j["architectures"][0].get<std::string>();
  for (const char* head_class : with_head)
    if (name == head_class) return;
  c.output_head = c.output_transform = c.output_bias = false;
}

void mlm_head(HfTensorMap& m, const std::string& dense, const std::string& norm, const std::string& bias,
              const std::string& decoder, const ArchConfig& c) {
  if (!c.output_head) return;
  const int64_t w = c.embed_width();
  m.linear("head.dense", dense, w, c.d_model, true);
  m.norm("head.norm", norm, w, true);
  m.same("output_bias", bias, {c.vocab});
  if (!c.tie_output) m.same("lm_head.weight", decoder, {c.vocab, w});
}

void HfTensorMap::separate_cross(const std::string& param, const std::string& q, const std::string& k,
                                 const std::string& v, const ArchConfig& c) {
  const int64_t q_rows = c.heads * c.head_dim(), kv_rows = (c.kv_heads ? c.kv_heads : c.heads) * c.head_dim();
  linear(param + ".q", q, q_rows, c.d_model, c.bias);
  stacked(param + ".kv.weight", {{k + ".weight", {kv_rows, c.d_model}}, {v + ".weight", {kv_rows, c.d_model}}});
  if (c.bias) stacked(param + ".kv.bias", {{k + ".bias", {kv_rows}}, {v + ".bias", {kv_rows}}});
}

static std::vector<const HfFamily*> families() {
  return {&gpt2_family(),    &llama_family(),       &gpt_neox_family(), &opt_family(),   &bloom_family(),
          &bert_family(),    &roberta_family(),     &electra_family(),  &distilbert_family(), &albert_family(),
          &bart_family(),    &marian_family(),      &t5_family()};
}

const HfFamily& hf_family(const std::string& model_type) {
  for (const HfFamily* f : families())
    if (f->model_type == model_type) return *f;
  throw UsageError(fmt::format("model_type '{}' is not supported (supported: {})", model_type,
                               fmt::join(hf_model_types(), ", ")));
}

std::vector<std::string> hf_model_types() {
  std::vector<std::string> names;
  for (const HfFamily* f : families()) names.push_back(f->model_type);
  return names;
}

ArchConfig hf_decoder_base() {
  ArchConfig c;
  c.layout = Layout::DecoderOnly;
  c.enc_layers = 0;
  c.pre_norm = true;
  c.final_norm = true;
  c.scale_embeddings = false;
  c.dropout = 0.0f;
  c.pad_id = 0;
  return c;
}

ArchConfig hf_encoder_base() {
  ArchConfig c;
  c.layout = Layout::EncoderOnly;
  c.dec_layers = 0;
  c.pre_norm = false;
  c.norm_eps = 1e-12f;
  c.position = PositionKind::Learned;
  c.embed_norm = true;
  c.activation = nn::Activation::GELU;
  c.output_transform = true;
  c.output_bias = true;
  c.scale_embeddings = false;
  c.dropout = 0.0f;
  c.pad_id = 0;
  return c;
}

}  // namespace tcat::models
