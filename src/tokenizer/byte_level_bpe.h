// GPT-2's byte-level BPE (transformers' slow GPT2Tokenizer): text -> GPT-2 pre-tokenizer pieces ->
// bytes mapped to printable characters -> merges by rank. Lossless: decode(encode(x)) == x.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/piece_vocabulary.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/tokenizer.h"

namespace tcat::tokenizer {

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  // GPT-2's: <|endoftext|> is unk, bos and eos.
  static SpecialTokenNames default_special_tokens();
  // vocab.json ({"piece": id}) and merges.txt ("a b" per line after an optional "#version" line).
  static ByteLevelBpeTokenizer load(const std::string& vocab_json, const std::string& merges_txt,
                                    const SpecialTokenNames& names = default_special_tokens());
  // A Hugging Face tokenizer.json whose model is BPE with a ByteLevel pre-tokenizer.
  static ByteLevelBpeTokenizer load_tokenizer_json(const std::string& path,
                                                   const SpecialTokenNames& names = default_special_tokens());

  std::vector<int64_t> encode(std::string_view text) const override;
  std::vector<int64_t> encode_with_special_tokens(std::string_view text) const override { return encode(text); }
  std::vector<std::string> tokenize(std::string_view text) const override;

  int64_t vocab_size() const override { return vocab_.size(); }
  std::string id_to_piece(int64_t id) const override;
  int64_t piece_to_id(std::string_view piece) const override;
  int64_t pad_id() const override { return pad_id_; }
  int64_t bos_id() const override { return bos_id_; }
  int64_t eos_id() const override { return eos_id_; }
  int64_t unk_id() const override { return unk_id_; }

 protected:
  std::string decode_ids(std::span<const int64_t> ids, bool skip_special_tokens) const override;
  bool clean_up_tokenization_spaces_by_default() const override { return true; }

 private:
  using Merge = std::pair<std::string, std::string>;
  ByteLevelBpeTokenizer(std::unordered_map<std::string, int64_t> vocab, const std::vector<Merge>& merges,
                        std::vector<AddedToken> added, const SpecialTokenNames& names, bool add_prefix_space,
                        const std::string& origin);
  // Pieces of one pre-tokenized word already mapped to the byte alphabet.
  std::vector<std::string> bpe(const std::string& word) const;

  PieceVocabulary vocab_;
  std::unordered_map<std::string, int> merge_ranks_;  // "a\0b" -> rank
  AddedTokens added_;
  std::unordered_set<int64_t> special_ids_;
  bool add_prefix_space_;
  int64_t pad_id_ = -1, bos_id_ = -1, eos_id_ = -1, unk_id_ = -1;
};

// GPT-2's pre-tokenizer regex ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)
// as code: the pieces of `text`, in order, covering it exactly.
std::vector<std::u32string> gpt2_pre_tokenize(std::u32string_view text);

}  // namespace tcat::tokenizer
