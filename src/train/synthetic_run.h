// Train a small encoder-decoder on a synthetic task (copy or reverse) and measure exact-match
// accuracy with greedy decoding: the end-to-end smoke test of the whole stack, and `tcat demo`.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "data/synthetic.h"
#include "train/seq2seq_trainer.h"

namespace tcat::train {

struct SyntheticRunOptions {
  data::SyntheticOptions task;
  models::ArchConfig arch;     // vocab is set from the task
  int64_t steps = 1200, batch = 64, warmup = 200;  // default_synthetic_run sets steps per task
  float lr_factor = 1.0f;      // Noam factor
  int64_t eval_examples = 500;
  uint64_t seed = 1;
  bool bf16 = false;
};
SyntheticRunOptions default_synthetic_run(data::SyntheticTask task);

struct SyntheticExample {
  std::vector<int64_t> source, expected, predicted;
};

struct SyntheticRunResult {
  float final_loss = 0;
  float accuracy = 0;          // exact-match over eval_examples fresh sequences
  double train_seconds = 0;
  std::vector<SyntheticExample> examples;  // the first few evaluation examples
};

using StepCallback = std::function<void(int64_t step, const StepStats& stats)>;
SyntheticRunResult run_synthetic_task(const SyntheticRunOptions& opt, const StepCallback& on_step = {});

}  // namespace tcat::train
