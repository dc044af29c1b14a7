// Synthetic sequence tasks for smoke tests and demos (The Annotated Transformer's copy task and
// its harder cousin, reversal): random token strings and their copy or reverse.
#pragma once
#include <string>

#include "core/rng.h"
#include "data/batch.h"

namespace tcat::data {

enum class SyntheticTask { Copy, Reverse };
SyntheticTask synthetic_task_from_name(const std::string& name);  // "copy" | "reverse"

struct SyntheticOptions {
  SyntheticTask task = SyntheticTask::Copy;
  int64_t vocab = 16;        // ids 3..vocab-1 are symbols (0-2 are pad/bos/eos)
  int64_t min_len = 4, max_len = 10;
};

std::vector<int64_t> synthetic_target(const std::vector<int64_t>& source, SyntheticTask task);
// One batch of `batch` random examples; sources are drawn from rng.
Seq2SeqBatch synthetic_batch(const SyntheticOptions& opt, int64_t batch, Rng& rng,
                             std::vector<std::vector<int64_t>>* sources = nullptr);

}  // namespace tcat::data
