#include "tokenizer/llama2c.h"

#include <cstring>

#include "core/error.h"
#include "tokenizer/files.h"
#include "tokenizer/unicode.h"

namespace tcat::tokenizer {

namespace {

constexpr int64_t kByteFallbackOffset = 3;  // <0x00> is id 3: after <unk>, <s>, </s>

template <typename T>
T read_scalar(const std::string& bytes, size_t& at, const std::string& path, size_t piece) {
  TCAT_CHECK(at + sizeof(T) <= bytes.size(), "llama2.c tokenizer '{}' is truncated in piece {} (byte {} of {})", path,
             piece, at, bytes.size());
  T value;
  std::memcpy(&value, bytes.data() + at, sizeof(T));
  at += sizeof(T);
  return value;
}

// "<0xNN>" -> NN, or -1.
int byte_piece_value(std::string_view piece) {
  if (piece.size() != 6 || !piece.starts_with("<0x") || piece[5] != '>') return -1;
  int value = 0;
  for (const char c : piece.substr(3, 2)) {
    const int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

}  // namespace

Llama2cTokenizer Llama2cTokenizer::load(const std::string& path) {
  const std::string bytes = read_file(path, "llama2.c tokenizer");
  size_t at = 0;
  const auto max_length = read_scalar<int32_t>(bytes, at, path, 0);
  TCAT_CHECK(max_length > 0, "llama2.c tokenizer '{}': max_token_length {} is not positive", path, max_length);
  std::vector<std::string> pieces;
  std::vector<float> scores;
  while (at < bytes.size()) {
    const size_t index = pieces.size();
    scores.push_back(read_scalar<float>(bytes, at, path, index));
    const auto length = read_scalar<int32_t>(bytes, at, path, index);
    TCAT_CHECK(length >= 0 && length <= max_length,
               "llama2.c tokenizer '{}': piece {} has length {}, outside [0, max_token_length {}]", path, index,
               length, max_length);
    TCAT_CHECK(at + size_t(length) <= bytes.size(), "llama2.c tokenizer '{}' is truncated in piece {}", path, index);
    pieces.emplace_back(bytes, at, size_t(length));
    at += size_t(length);
  }
  TCAT_CHECK(pieces.size() > size_t(kByteFallbackOffset + 255),
             "llama2.c tokenizer '{}' has {} pieces, fewer than the 3 specials and 256 byte pieces run.c assumes",
             path, pieces.size());
  return Llama2cTokenizer(std::move(pieces), std::move(scores));
}

Llama2cTokenizer::Llama2cTokenizer(std::vector<std::string> pieces, std::vector<float> scores)
    : pieces_(std::move(pieces)), scores_(std::move(scores)) {
  for (size_t id = 0; id < pieces_.size(); ++id) ids_.emplace(pieces_[id], int64_t(id));
}

int64_t Llama2cTokenizer::lookup(const std::string& piece) const {
  const auto it = ids_.find(piece);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int64_t> Llama2cTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  if (text.empty()) return ids;
  const int64_t space = lookup(" ");
  TCAT_CHECK(space >= 0, "llama2.c tokenizer has no ' ' piece for the dummy prefix");
  ids.push_back(space);
  // Characters: a lead byte and up to 3 continuation bytes, whether or not that is valid UTF-8 (as run.c).
  for (size_t at = 0; at < text.size();) {
    size_t end = at + 1;
    while (end < text.size() && end - at < 4 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    const std::string character(text.substr(at, end - at));
    if (const int64_t id = lookup(character); id >= 0) {
      ids.push_back(id);
    } else {
      for (const char byte : character) ids.push_back(static_cast<unsigned char>(byte) + kByteFallbackOffset);
    }
    at = end;
  }
  while (ids.size() > 1) {
    float best_score = -1e10f;
    int64_t best_id = -1;
    size_t best = 0;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const int64_t id = lookup(pieces_[size_t(ids[i])] + pieces_[size_t(ids[i + 1])]);
      if (id >= 0 && scores_[size_t(id)] > best_score) best_score = scores_[size_t(id)], best_id = id, best = i;
    }
    if (best_id < 0) break;
    ids[best] = best_id;
    ids.erase(ids.begin() + int64_t(best) + 1);
  }
  return ids;
}

std::vector<int64_t> Llama2cTokenizer::encode_with_special_tokens(std::string_view text) const {
  std::vector<int64_t> ids = encode(text);
  ids.insert(ids.begin(), bos_id());
  return ids;
}

std::vector<std::string> Llama2cTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> pieces;
  for (const int64_t id : encode(text)) pieces.push_back(pieces_[size_t(id)]);
  return pieces;
}

std::string Llama2cTokenizer::id_to_piece(int64_t id) const {
  TCAT_CHECK(id >= 0 && id < vocab_size(), "llama2.c tokenizer: id {} is outside the vocabulary [0, {})", id,
             vocab_size());
  return pieces_[size_t(id)];
}

int64_t Llama2cTokenizer::piece_to_id(std::string_view piece) const {
  const int64_t id = lookup(std::string(piece));
  return id < 0 ? unk_id() : id;
}

std::string Llama2cTokenizer::decode_ids(std::span<const int64_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  bool first_text_piece = true;
  for (const int64_t id : ids) {
    const std::string stored = id_to_piece(id);
    std::string_view piece = stored;
    if (id == bos_id() || id == eos_id() || (skip_special_tokens && id == unk_id())) continue;
    if (first_text_piece && piece.starts_with(' ')) piece.remove_prefix(1);
    first_text_piece = false;
    if (const int byte = byte_piece_value(piece); byte >= 0)
      bytes += static_cast<char>(byte);
    else
      bytes += piece;
  }
  return unicode::repair_utf8(bytes);
}

}  // namespace tcat::tokenizer
