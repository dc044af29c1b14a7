#include "tokenizer/tokenizer.h"

namespace tcat::tokenizer {

std::string Tokenizer::decode(std::span<const int64_t> ids, const DecodeOptions& options) const {
  std::string text = decode_ids(ids, options.skip_special_tokens);
  if (options.clean_up_tokenization_spaces.value_or(clean_up_tokenization_spaces_by_default()))
    return clean_up_tokenization(std::move(text));
  return text;
}

namespace {

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  size_t at = 0;
  while ((at = text.find(from, at)) != std::string::npos) {
    text.replace(at, from.size(), to);
    at += to.size();
  }
}

}  // namespace

std::string clean_up_tokenization(std::string text) {
  // One pass per pattern, in transformers' order (later patterns see earlier replacements).
  static constexpr std::pair<std::string_view, std::string_view> kReplacements[] = {
      {" .", "."},     {" ?", "?"},     {" !", "!"},     {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"},   {" 's", "'s"},   {" 've", "'ve"}, {" 're", "'re"},
  };
  for (const auto& [from, to] : kReplacements) replace_all(text, from, to);
  return text;
}

}  // namespace tcat::tokenizer
