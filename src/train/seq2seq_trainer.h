// One training step of an encoder-decoder Transformer: forward, label-smoothed cross-entropy,
// backward (with gradient accumulation over micro-batches), clipping, Adam, learning-rate schedule.
#pragma once
#include <memory>

#include "data/batch.h"
#include "models/transformer.h"
#include "train/optim.h"

namespace tcat::train {

struct Seq2SeqTrainOptions {
  float label_smoothing = 0.1f;
  float clip_norm = 0.0f;               // 0 = no clipping
  bool bf16 = false;                    // mixed precision: bf16 GEMMs, fp32 master weights
  AdamOptions adam{};                   // defaults: Vaswani et al. (0.9, 0.98, 1e-9)
  float weight_decay = 0.0f;            // AdamW only
  uint64_t seed = 1;                    // dropout randomness
};

struct StepStats {
  float loss = 0;         // mean over target tokens of the step
  float grad_norm = 0;
  float lr = 0;
  int64_t target_tokens = 0;
};

class Seq2SeqTrainer {
 public:
  Seq2SeqTrainer(models::Transformer& model, std::unique_ptr<LrSchedule> schedule, Seq2SeqTrainOptions opt);
  // One optimizer step over the micro-batches (gradients accumulated, weighted by target tokens).
  StepStats step(const std::vector<data::Seq2SeqBatch>& micro_batches);
  StepStats step(const data::Seq2SeqBatch& batch) { return step(std::vector<data::Seq2SeqBatch>{batch}); }
  // Mean loss over a batch without updating anything.
  float evaluate(const data::Seq2SeqBatch& batch) const;

  Adam& optimizer() { return adam_; }
  Rng& rng() { return rng_; }

 private:
  models::Transformer& model_;
  std::unique_ptr<LrSchedule> schedule_;
  Seq2SeqTrainOptions opt_;
  std::vector<Var> params_;
  Adam adam_;
  Rng rng_;
};

}  // namespace tcat::train
