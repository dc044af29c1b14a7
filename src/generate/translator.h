// Text in, text out: an encoder-decoder model with its tokenizer, translating sentences with greedy
// decoding or beam search. Two kinds of model:
// - a tcat checkpoint with its SentencePiece model: batched, GNMT length penalty alpha, n-best lists;
// - a Hugging Face folder (Marian, BART, T5) with its tokenizer files (tokenizer::load_tokenizer):
//   one sentence at a time as transformers' generate() decodes (the source with the tokenizer's
//   special tokens, decoder_start_token_id, forced_eos_token_id; the length penalty is HF's
//   exponent: score = log-probability / length^length_penalty); the best hypothesis only.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "generate/beam_search.h"
#include "io/hf_model.h"
#include "nn/layers.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"

namespace tcat::generate {

struct TranslateOptions {
  int64_t beam_size = 4;        // 1 = greedy
  float length_penalty = 0.6f;  // alpha of the GNMT length penalty
  int64_t n_best = 1;            // outputs are at most source length + 50 tokens (Vaswani et al.)
  int64_t batch_size = 32;      // sentences decoded together (sorted by length)
};

struct Translation {
  std::string text;
  float score = 0;     // length-normalised log-probability
  float logprob = 0;
};

class Translator {
 public:
  // A checkpoint directory (or a run directory: its final model/ or latest checkpoint), or a
  // Hugging Face folder (config.json, weights, tokenizer files). `weights` says how its matrices
  // are kept while decoding (nn::store_weights: f32, bf16 or int8).
  explicit Translator(const std::string& model_path, nn::WeightStorage weights = nn::WeightStorage::F32);

  // One n-best list (best first) per input line, in input order. Empty lines give empty output.
  // Lines longer than the model's positions allow are translated from their first max_positions - 2
  // tokens and counted in truncated_lines().
  std::vector<std::vector<Translation>> translate(const std::vector<std::string>& lines,
                                                  const TranslateOptions& opt) const;
  int64_t truncated_lines() const { return truncated_; }
  const models::ArchConfig& config() const { return model_->config(); }
  const std::string& path() const { return path_; }

 private:
  // One Hugging Face translation of source ids (special tokens included).
  Translation translate_hf(const std::vector<int64_t>& source, const TranslateOptions& opt) const;

  std::string path_;
  train::LoadedModel loaded_;      // a tcat checkpoint,
  std::optional<io::HfModel> hf_;  // or a Hugging Face model
  const models::Transformer* model_ = nullptr;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  mutable int64_t truncated_ = 0;
};

}  // namespace tcat::generate
