// BERT's WordPiece (transformers' slow BertTokenizer): BasicTokenizer (clean-up, CJK split, lower
// case and accent stripping, punctuation split), then greedy longest-match-first with "##" continuations.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/piece_vocabulary.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/tokenizer.h"

namespace tcat::tokenizer {

struct WordPieceOptions {
  bool do_lower_case = true;
  std::optional<bool> strip_accents;  // unset: strip them when lower-casing (transformers' default)
  bool tokenize_chinese_chars = true;
  SpecialTokenNames special_tokens = default_special_tokens();

  static SpecialTokenNames default_special_tokens();  // [UNK] [SEP] [PAD] [CLS] [MASK]
};

class WordPieceTokenizer final : public Tokenizer {
 public:
  // vocab.txt: one piece a line, the id is the line number from 0.
  static WordPieceTokenizer load(const std::string& vocab_txt, const WordPieceOptions& options = {});

  std::vector<int64_t> encode(std::string_view text) const override;
  std::vector<int64_t> encode_with_special_tokens(std::string_view text) const override;  // [CLS] x [SEP]
  std::vector<std::string> tokenize(std::string_view text) const override;

  int64_t vocab_size() const override { return vocab_.size(); }
  std::string id_to_piece(int64_t id) const override;
  int64_t piece_to_id(std::string_view piece) const override;
  int64_t pad_id() const override { return pad_id_; }
  int64_t bos_id() const override { return -1; }  // BERT frames with [CLS] ... [SEP] instead
  int64_t eos_id() const override { return -1; }
  int64_t unk_id() const override { return unk_id_; }
  int64_t cls_id() const override { return cls_id_; }
  int64_t sep_id() const override { return sep_id_; }
  int64_t mask_id() const override { return mask_id_; }

 protected:
  std::string decode_ids(std::span<const int64_t> ids, bool skip_special_tokens) const override;
  bool clean_up_tokenization_spaces_by_default() const override { return true; }

 private:
  WordPieceTokenizer(std::vector<std::string> id_to_token, const WordPieceOptions& options);
  // BasicTokenizer: the words and punctuation of text that holds no special token.
  std::vector<std::u32string> basic_tokenize(std::string_view text) const;
  void append_word_pieces(const std::u32string& word, std::vector<std::string>& out) const;

  PieceVocabulary vocab_;
  WordPieceOptions options_;
  AddedTokens added_;
  std::unordered_set<int64_t> special_ids_;
  int64_t pad_id_ = -1, unk_id_ = -1, cls_id_ = -1, sep_id_ = -1, mask_id_ = -1;
};

}  // namespace tcat::tokenizer
