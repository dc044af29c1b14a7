#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace tcat::tokenizer {

std::vector<std::string> SpecialTokenNames::all() const {
  std::vector<std::string> names;
  const auto add = [&](const std::string& name) {
    if (!name.empty() && std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  };
  for (const std::string* name : {&unk, &bos, &eos, &pad, &cls, &sep, &mask}) add(*name);
  for (const std::string& name : additional) add(name);
  return names;
}

}  // namespace tcat::tokenizer
