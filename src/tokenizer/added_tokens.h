// Tokens matched verbatim in the text before the model sees it (transformers' "added tokens": the
// special tokens and any extra ones), split out the way the slow tokenizers do.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tcat::tokenizer {

struct AddedToken {
  std::string content;
  int64_t id = -1;
  bool lstrip = false;  // swallows the whitespace on its left
  bool rstrip = false;  // swallows the whitespace on its right
};

class AddedTokens {
 public:
  AddedTokens() = default;
  explicit AddedTokens(std::vector<AddedToken> tokens);

  struct Segment {
    std::string_view text;
    const AddedToken* token = nullptr;  // set when the segment is an added token
  };
  // Splits `text` at each leftmost-longest occurrence of an added token. Text segments that stripping
  // left empty are dropped.
  std::vector<Segment> split(std::string_view text) const;

  const AddedToken* find(std::string_view content) const;
  bool empty() const { return tokens_.empty(); }

 private:
  std::vector<AddedToken> tokens_;
};

}  // namespace tcat::tokenizer
