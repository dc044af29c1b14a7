// llama2.c's tokenizer.bin (e.g. tok512.bin) with run.c's encode(): the text's UTF-8 characters (or
// their bytes, as <0xNN> pieces at id byte+3) are merged pairwise, always the pair whose merged piece
// scores highest, leftmost on ties. Unlike sentencepiece it keeps whitespace as it is, so it is lossless.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tcat::tokenizer {

class Llama2cTokenizer final : public Tokenizer {
 public:
  // tokenizer.bin: int32 max_token_length, then per piece: float32 score, int32 length, the bytes.
  static Llama2cTokenizer load(const std::string& path);

  // Dummy-prefix space (for non-empty text), then the merges; no BOS.
  std::vector<int64_t> encode(std::string_view text) const override;
  std::vector<int64_t> encode_with_special_tokens(std::string_view text) const override;  // BOS (1) x
  std::vector<std::string> tokenize(std::string_view text) const override;

  int64_t vocab_size() const override { return int64_t(pieces_.size()); }
  std::string id_to_piece(int64_t id) const override;
  int64_t piece_to_id(std::string_view piece) const override;
  int64_t pad_id() const override { return -1; }
  int64_t bos_id() const override { return 1; }
  int64_t eos_id() const override { return 2; }
  int64_t unk_id() const override { return 0; }

 protected:
  // BOS/EOS always write nothing; <0xNN> pieces are raw bytes; the first piece's dummy-prefix space is dropped.
  std::string decode_ids(std::span<const int64_t> ids, bool skip_special_tokens) const override;

 private:
  Llama2cTokenizer(std::vector<std::string> pieces, std::vector<float> scores);
  int64_t lookup(const std::string& piece) const;  // -1 when absent

  std::vector<std::string> pieces_;  // as stored: spaces are ' ', not U+2581
  std::vector<float> scores_;
  std::unordered_map<std::string, int64_t> ids_;
};

}  // namespace tcat::tokenizer
