// The piece <-> id table of the tokenizers that read their vocabulary from a file (vocab.json,
// tokenizer.json, vocab.txt): lookups both ways, ids possibly with gaps.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tcat::tokenizer {

class PieceVocabulary {
 public:
  PieceVocabulary() = default;
  // From piece -> id pairs; `origin` names the file in errors.
  PieceVocabulary(std::unordered_map<std::string, int64_t> ids, const std::string& origin);
  // One piece per id, as in vocab.txt; a repeated piece maps to its last id.
  explicit PieceVocabulary(std::vector<std::string> pieces);

  int64_t size() const { return int64_t(pieces_.size()); }  // one past the largest id
  int64_t find(std::string_view piece) const;              // -1 if absent or empty
  bool contains(std::string_view piece) const { return find(piece) >= 0; }
  // The piece of `id`; `owner` ("WordPiece") names the tokenizer when the id has none.
  const std::string& piece(int64_t id, std::string_view owner) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int64_t, Hash, std::equal_to<>> ids_;
  std::vector<std::string> pieces_;
  std::vector<bool> has_piece_;
};

}  // namespace tcat::tokenizer
