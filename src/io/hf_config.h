// Hugging Face config.json <-> the family and ArchConfig tcat builds (models/hf_family.h).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/hf_family.h"

namespace tcat::io {

struct HfModelConfig {
  const models::HfFamily* family = nullptr;
  models::ArchConfig arch;
  int64_t bos_id = -1, pad_id = -1;  // -1: none
  std::vector<int64_t> eos_ids;      // generation stops at any of them
  int64_t decoder_start_id = -1;     // encoder-decoders: the decoder's first token
  int64_t forced_eos_id = -1;        // the last token generation may produce (BART, Marian)
};

// config.json -> family + ArchConfig. An unknown model_type lists the supported ones; impossible
// values are one UsageError naming the field. `origin` names the file in messages.
HfModelConfig parse_hf_config(const nlohmann::json& j, const std::string& origin);
// `path`: a config.json or the folder holding one.
HfModelConfig read_hf_config(const std::string& path);
// The config.json describing `config`: model_type, architectures, the family's fields, special ids.
nlohmann::json hf_config_json(const HfModelConfig& config);

}  // namespace tcat::io
