// Names of a tokenizer's special tokens (transformers' unk_token, bos_token, ...); empty = none.
// Each tokenizer class has transformers' defaults; tokenizer_config.json can override them.
#pragma once
#include <string>
#include <vector>

namespace tcat::tokenizer {

struct SpecialTokenNames {
  std::string unk, bos, eos, pad, cls, sep, mask;
  std::vector<std::string> additional;

  // Every non-empty name, once.
  std::vector<std::string> all() const;
};

}  // namespace tcat::tokenizer
