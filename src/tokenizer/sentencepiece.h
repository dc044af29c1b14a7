// SentencePiece tokenizers through libsentencepiece (the reference implementation): loading a
// .model file or its bytes (so a checkpoint can embed the tokenizer), and training new models.
// With special tokens, encoding prepends BOS (LLaMA's convention, sentencepiece's add_bos); decoding
// is sentencepiece's own: control ids write nothing and unknown ids " ⁇ ", whatever skip_special_tokens says.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace tcat::tokenizer {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Reads a .model file (a serialized ModelProto).
  static SentencePieceTokenizer load(const std::string& path);
  // Parses model bytes; `origin` names where they came from in error messages.
  static SentencePieceTokenizer from_serialized(std::string bytes, const std::string& origin = "serialized model");

  SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept;
  SentencePieceTokenizer& operator=(SentencePieceTokenizer&&) noexcept;
  ~SentencePieceTokenizer() override;

  // The model bytes, identical to a .model file's contents.
  const std::string& serialized() const { return bytes_; }
  // Writes the .model file atomically.
  void save(const std::string& path) const;

  std::vector<int64_t> encode(std::string_view text) const override;
  std::vector<int64_t> encode_with_special_tokens(std::string_view text) const override;  // BOS x
  // The pieces `encode` would produce, as text (the word-boundary marker is U+2581).
  std::vector<std::string> tokenize(std::string_view text) const override;
  // Text of pieces; a piece outside the vocabulary stands for itself.
  std::string decode_pieces(const std::vector<std::string>& pieces) const;

  int64_t vocab_size() const override;
  std::string id_to_piece(int64_t id) const override;
  int64_t piece_to_id(std::string_view piece) const override;
  int64_t pad_id() const override;
  int64_t bos_id() const override;
  int64_t eos_id() const override;
  int64_t unk_id() const override;

 protected:
  std::string decode_ids(std::span<const int64_t> ids, bool skip_special_tokens) const override;

 private:
  SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor, std::string bytes);
  void check_id(int64_t id) const;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::string bytes_;
};

enum class SentencePieceModelType { Bpe, Unigram };
SentencePieceModelType sentencepiece_model_type_from_name(const std::string& name);  // "bpe" | "unigram"

struct SentencePieceTrainOptions {
  std::vector<std::string> inputs;  // plain-text files, one sentence a line (a trailing \r is dropped)
  SentencePieceModelType model_type = SentencePieceModelType::Unigram;
  int64_t vocab_size = 8000;
  double character_coverage = 1.0;  // fraction of characters the vocabulary covers; 1.0 suits EN/DE
  int64_t input_sentence_size = 0;  // train on a random sample of this many sentences; 0 = all
  uint64_t seed = 1;                // drives that sample
  int num_threads = 1;              // the model is reproducible for fixed inputs, options and thread count
  bool verbose = false;             // let sentencepiece log its progress to stderr
};

// Trains a model whose special ids are pad 0, bos 1, eos 2, unk 3 (tcat's ids, data/batch.h).
// Errors name the input files: a missing file, or a vocabulary larger than the data supports.
SentencePieceTokenizer train_sentencepiece(const SentencePieceTrainOptions& options);

}  // namespace tcat::tokenizer
