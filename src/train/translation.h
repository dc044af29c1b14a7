// The paper's task end to end: train an encoder-decoder Transformer on a parallel corpus with a
// joint SentencePiece vocabulary, validate (loss and BLEU) as it goes, checkpoint, resume exactly,
// and leave an averaged, self-describing model behind.
//
// A run directory holds:
//   config.json        the full training configuration (--resume reads it back; only the stopping
//                      and keeping settings of ResumeChanges are ever rewritten)
//   tokenizer.model    the joint SentencePiece model
//   metrics.jsonl      one JSON object per logged step / validation
//   plot.svg           training and validation loss and validation BLEU, redrawn at each validation
//   checkpoints/       step-N/ directories with latest/best pointers (train/checkpoint.h)
//   model/             the final model: the average of the last checkpoints (what `translate -m` loads)
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "models/config.h"

namespace tcat::train {

struct TranslationTrainConfig {
  // Data: parallel text files, one sentence a line.
  std::string train_src, train_tgt, valid_src, valid_tgt;
  // Tokenizer: an existing SentencePiece model, or one trained jointly on both training sides.
  std::string tokenizer;
  int64_t vocab_size = 8000;
  std::string tokenizer_type = "bpe";
  // Architecture (vocab and pad id come from the tokenizer).
  models::ArchConfig arch;
  // Optimisation.
  int64_t max_tokens = 4096;   // padded tokens per batch
  int64_t accumulate = 1;      // batches per optimizer step
  int64_t max_len = 100;       // longer sentences are skipped (counted)
  float lr_factor = 1.0f;      // Noam factor
  int64_t warmup = 4000;
  float label_smoothing = 0.1f;
  float clip_norm = 0.0f;
  bool bf16 = false;
  uint64_t seed = 1;
  int64_t max_steps = 0;       // 0 = no limit (then max_epochs must be set)
  int64_t max_epochs = 0;      // 0 = no limit
  // Validation, checkpoints, stopping.
  int64_t log_every = 50;
  int64_t valid_every = 1000;  // also the checkpoint interval
  int64_t keep_checkpoints = 5;
  int64_t average_last = 5;    // checkpoints averaged into model/ at the end (1 = just the last)
  int64_t patience = 0;        // stop after this many validations without a better BLEU (0 = never)
  int64_t valid_max_sentences = 0;  // BLEU on the first N validation sentences (0 = all)

  nlohmann::json to_json() const;
  static TranslationTrainConfig from_json(const nlohmann::json& j);  // unknown keys are errors
  void validate() const;                                             // UsageError naming the field
};

// Named presets; `data_dir` holds the Multi30k files (train.en, train.de, val.en, val.de).
// Known: multi30k-tiny (minutes), multi30k-base (the shipped model; hours).
TranslationTrainConfig translation_preset(const std::string& name, const std::string& data_dir);
std::vector<std::string> translation_preset_names();

// What a resumed run may change: when it stops and which checkpoints it keeps and averages (to
// train a finished run longer, say). Everything else is what the checkpoint continues.
struct ResumeChanges {
  std::optional<int64_t> max_steps, max_epochs, patience, keep_checkpoints, average_last;
};

struct TranslationRunOptions {
  bool resume = false;   // continue the run in run_dir from its latest checkpoint
  ResumeChanges changes;  // with resume: applied to the stored config.json, which then keeps them
  bool progress = true;  // progress bar / log lines on stderr
  bool interactive = false;
};

struct TranslationRunResult {
  int64_t steps = 0;
  double best_bleu = 0;
  std::string model_dir;  // run_dir/model
  bool early_stopped = false;
};

TranslationRunResult train_translation(const std::string& run_dir, const TranslationTrainConfig& config,
                                       const TranslationRunOptions& options);

}  // namespace tcat::train
