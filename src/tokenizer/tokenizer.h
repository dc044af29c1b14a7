// The one interface every tokenizer implements (DESIGN.md §2): text to ids and back, plus the
// vocabulary's special ids. Implementations are immutable after construction, so one instance can
// be shared by threads.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tcat::tokenizer {

struct DecodeOptions {
  // Drop special ids (pad, bos, eos, unk, cls, sep, mask, ...) instead of writing their text.
  bool skip_special_tokens = true;
  // transformers' clean_up_tokenization (" ." -> ".", " n't" -> "n't", ...); unset = the tokenizer's own
  // default, which is transformers' default for that tokenizer class.
  std::optional<bool> clean_up_tokenization_spaces;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Ids of `text`, without special tokens (data::make_batch adds BOS/EOS). Text must be UTF-8.
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  // Ids with the tokenizer's special-token template, as transformers' `encode(text)` adds them
  // ([CLS] x [SEP] for BERT, x </s> for T5 and Marian, <s> x for LLaMA, nothing for GPT-2).
  virtual std::vector<int64_t> encode_with_special_tokens(std::string_view text) const = 0;
  // The pieces of `encode(text)` as vocabulary strings (transformers' `tokenize`).
  virtual std::vector<std::string> tokenize(std::string_view text) const = 0;

  // Text of `ids`. An id outside [0, vocab_size()) is an error.
  std::string decode(std::span<const int64_t> ids, const DecodeOptions& options = {}) const;

  virtual int64_t vocab_size() const = 0;
  virtual std::string id_to_piece(int64_t id) const = 0;          // error outside [0, vocab_size())
  virtual int64_t piece_to_id(std::string_view piece) const = 0;  // unk_id() for a piece not in the vocabulary

  // Special ids; -1 when the vocabulary has no such symbol.
  virtual int64_t pad_id() const = 0;
  virtual int64_t bos_id() const = 0;
  virtual int64_t eos_id() const = 0;
  virtual int64_t unk_id() const = 0;
  virtual int64_t cls_id() const { return -1; }
  virtual int64_t sep_id() const { return -1; }
  virtual int64_t mask_id() const { return -1; }

 protected:
  // Text of `ids` before clean-up; checks every id.
  virtual std::string decode_ids(std::span<const int64_t> ids, bool skip_special_tokens) const = 0;
  virtual bool clean_up_tokenization_spaces_by_default() const { return false; }
};

// transformers' PreTrainedTokenizerBase.clean_up_tokenization: removes the space a word-level
// detokenizer leaves before punctuation and English contractions.
std::string clean_up_tokenization(std::string text);

}  // namespace tcat::tokenizer
