#include "tokenizer/piece_vocabulary.h"

#include <algorithm>

#include "core/error.h"

namespace tcat::tokenizer {

PieceVocabulary::PieceVocabulary(std::unordered_map<std::string, int64_t> ids, const std::string& origin) {
  int64_t max_id = -1;
  for (const auto& [piece, id] : ids) max_id = std::max(max_id, id);
  // Ids are dense in real vocabularies; a stray huge id would make a huge table.
  TCAT_CHECK(max_id < 2 * int64_t(ids.size()) + 1024, "{}: ids run up to {} for only {} pieces", origin, max_id,
             ids.size());
  pieces_.resize(size_t(max_id + 1));
  has_piece_.resize(pieces_.size());
  for (auto& [piece, id] : ids) {
    pieces_[size_t(id)] = piece;
    has_piece_[size_t(id)] = true;
    ids_.emplace(piece, id);
  }
}

PieceVocabulary::PieceVocabulary(std::vector<std::string> pieces)
    : pieces_(std::move(pieces)), has_piece_(pieces_.size(), true) {
  for (size_t id = 0; id < pieces_.size(); ++id) ids_[pieces_[id]] = int64_t(id);
}

int64_t PieceVocabulary::find(std::string_view piece) const {
  if (piece.empty()) return -1;
  const auto it = ids_.find(piece);
  return it == ids_.end() ? -1 : it->second;
}

const std::string& PieceVocabulary::piece(int64_t id, std::string_view owner) const {
  TCAT_CHECK(id >= 0 && id < size() && has_piece_[size_t(id)], "{}: id {} is outside the vocabulary [0, {})", owner,
             id, size());
  return pieces_[size_t(id)];
}

}  // namespace tcat::tokenizer
