// transformers' slow tokenizers built on a SentencePiece model: T5Tokenizer (spiece.model, legacy
// mode) and MarianTokenizer (source.spm/target.spm with a shared vocab.json). Both split their
// special tokens out of the text first and append </s> when special tokens are added.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/piece_vocabulary.h"
#include "tokenizer/sentencepiece.h"
#include "tokenizer/special_tokens.h"

namespace tcat::tokenizer {

class T5Tokenizer final : public Tokenizer {
 public:
  static SpecialTokenNames default_special_tokens();  // </s> <unk> <pad>
  // The ids after the model's pieces are "<extra_id_N>" sentinels, counted down from the last id.
  static T5Tokenizer load(const std::string& spiece_model, int64_t extra_ids = 100,
                          const SpecialTokenNames& names = default_special_tokens());

  std::vector<int64_t> encode(std::string_view text) const override;
  std::vector<int64_t> encode_with_special_tokens(std::string_view text) const override;  // x </s>
  std::vector<std::string> tokenize(std::string_view text) const override;

  int64_t vocab_size() const override { return sp_.vocab_size() + extra_ids_; }
  std::string id_to_piece(int64_t id) const override;
  int64_t piece_to_id(std::string_view piece) const override;
  int64_t pad_id() const override { return pad_id_; }
  int64_t bos_id() const override { return -1; }
  int64_t eos_id() const override { return eos_id_; }
  int64_t unk_id() const override { return unk_id_; }

 protected:
  std::string decode_ids(std::span<const int64_t> ids, bool skip_special_tokens) const override;
  bool clean_up_tokenization_spaces_by_default() const override { return true; }

 private:
  T5Tokenizer(SentencePieceTokenizer sp, int64_t extra_ids, const SpecialTokenNames& names);

  SentencePieceTokenizer sp_;
  int64_t extra_ids_;
  AddedTokens added_;
  std::unordered_set<int64_t> special_ids_;
  int64_t pad_id_ = -1, eos_id_ = -1, unk_id_ = -1;
};

class MarianTokenizer final : public Tokenizer {
 public:
  static SpecialTokenNames default_special_tokens();  // </s> <unk> <pad>
  // Text is split by source.spm, ids come from vocab.json, decoding uses target.spm.
  static MarianTokenizer load(const std::string& source_spm, const std::string& target_spm,
                              const std::string& vocab_json, const SpecialTokenNames& names = default_special_tokens());

  std::vector<int64_t> encode(std::string_view text) const override;
  std::vector<int64_t> encode_with_special_tokens(std::string_view text) const override;  // x </s>
  // A leading ">>xx<<" target-language code becomes its own piece.
  std::vector<std::string> tokenize(std::string_view text) const override;

  int64_t vocab_size() const override { return vocab_.size(); }
  std::string id_to_piece(int64_t id) const override;
  int64_t piece_to_id(std::string_view piece) const override;
  int64_t pad_id() const override { return pad_id_; }
  int64_t bos_id() const override { return -1; }
  int64_t eos_id() const override { return eos_id_; }
  int64_t unk_id() const override { return unk_id_; }

 protected:
  std::string decode_ids(std::span<const int64_t> ids, bool skip_special_tokens) const override;
  bool clean_up_tokenization_spaces_by_default() const override { return true; }

 private:
  MarianTokenizer(SentencePieceTokenizer source, SentencePieceTokenizer target,
                  std::unordered_map<std::string, int64_t> vocab, const SpecialTokenNames& names,
                  const std::string& origin);

  SentencePieceTokenizer source_, target_;
  PieceVocabulary vocab_;
  AddedTokens added_;
  std::unordered_set<int64_t> special_ids_;
  int64_t pad_id_ = -1, eos_id_ = -1, unk_id_ = -1;
};

}  // namespace tcat::tokenizer
