// Text in, text out: a trained encoder-decoder checkpoint with its tokenizer, translating batches
// of sentences with greedy decoding or beam search.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "generate/beam_search.h"
#include "tokenizer/sentencepiece.h"
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
  // A checkpoint directory (or a run directory: its final model/ or latest checkpoint).
  explicit Translator(const std::string& model_path);

  // One n-best list (best first) per input line, in input order. Empty lines give empty output.
  // Lines longer than the model's positions allow are translated from their first max_positions - 2
  // tokens and counted in truncated_lines().
  std::vector<std::vector<Translation>> translate(const std::vector<std::string>& lines,
                                                  const TranslateOptions& opt) const;
  int64_t truncated_lines() const { return truncated_; }
  const models::ArchConfig& config() const { return loaded_.config; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  train::LoadedModel loaded_;
  std::unique_ptr<tokenizer::SentencePieceTokenizer> tokenizer_;
  mutable int64_t truncated_ = 0;
};

}  // namespace tcat::generate
