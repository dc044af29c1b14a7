#include "io/hf_config.h"

#include <filesystem>
#include <fstream>

namespace tcat::io {
namespace {

// A token id field: an integer, a list of integers (eos_token_id may list several), or absent.
std::vector<int64_t> token_ids(const models::HfConfigReader& r, const char* key, int64_t vocab) {
  if (!r.has(key)) return {};
  const nlohmann::json& v = r.json().at(key);
  std::vector<int64_t> ids;
  for (const auto& id : v.is_array() ? v : nlohmann::json::array({v})) {
    if (!id.is_number_integer()) r.reject(key, "must be an integer or a list of integers");
    ids.push_back(id.get<int64_t>());
    if (ids.back() < 0 || ids.back() >= vocab) r.reject(key, fmt::format("outside the vocabulary of {}", vocab));
  }
  return ids;
}

}  // namespace

HfModelConfig parse_hf_config(const nlohmann::json& j, const std::string& origin) {
  const models::HfConfigReader reader(j, origin);
  if (!reader.has("model_type")) reader.reject("model_type", "required");
  HfModelConfig c;
  c.family = &models::hf_family(reader.text_or("model_type", ""));
  c.arch = c.family->to_arch(reader);
  const auto bos = token_ids(reader, "bos_token_id", c.arch.vocab);
  const auto pad = token_ids(reader, "pad_token_id", c.arch.vocab);
  c.bos_id = bos.empty() ? -1 : bos.front();
  c.pad_id = pad.empty() ? -1 : pad.front();
  c.eos_ids = token_ids(reader, "eos_token_id", c.arch.vocab);
  const auto start = token_ids(reader, "decoder_start_token_id", c.arch.vocab);
  const auto forced_eos = token_ids(reader, "forced_eos_token_id", c.arch.vocab);
  c.decoder_start_id = start.empty() ? -1 : start.front();
  c.forced_eos_id = forced_eos.empty() ? -1 : forced_eos.front();
  if (c.pad_id >= 0) c.arch.pad_id = c.pad_id;
  try {
    c.arch.validate();
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("{}: {}", origin, e.what()));
  }
  return c;
}

HfModelConfig read_hf_config(const std::string& path) {
  const std::filesystem::path file =
      std::filesystem::is_directory(path) ? std::filesystem::path(path) / "config.json" : std::filesystem::path(path);
  std::ifstream in(file);
  if (!in) throw UsageError(fmt::format("cannot open {}", file.string()));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("{} is not valid JSON: {}", file.string(), e.what()));
  }
  return parse_hf_config(j, file.string());
}

nlohmann::json hf_config_json(const HfModelConfig& config) {
  TCAT_CHECK(config.family, "hf_config_json: no model family");
  nlohmann::json j = config.family->to_hf_config(config.arch);
  j["model_type"] = config.family->model_type;
  TCAT_CHECK(config.arch.output_head || !config.family->base_architecture.empty(),
             "{} models are saved with their output head", config.family->model_type);
  j["architectures"] = {config.arch.output_head ? config.family->architecture : config.family->base_architecture};
  j["torch_dtype"] = "float32";
  if (config.bos_id >= 0) j["bos_token_id"] = config.bos_id;
  if (config.pad_id >= 0) j["pad_token_id"] = config.pad_id;
  if (config.eos_ids.size() == 1) j["eos_token_id"] = config.eos_ids.front();
  if (config.eos_ids.size() > 1) j["eos_token_id"] = config.eos_ids;
  if (config.decoder_start_id >= 0) j["decoder_start_token_id"] = config.decoder_start_id;
  if (config.forced_eos_id >= 0) j["forced_eos_token_id"] = config.forced_eos_id;
  return j;
}

}  // namespace tcat::io
