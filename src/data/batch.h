// A batch for sequence-to-sequence training: padded id matrices.
#pragma once
#include "core/tensor.h"

namespace tcat::data {

// Special ids shared by tcat's own vocabularies.
inline constexpr int64_t kPadId = 0, kBosId = 1, kEosId = 2;

struct Seq2SeqBatch {
  Tensor src;      // i64 [B, S], padded with kPadId
  Tensor tgt_in;   // i64 [B, T]: BOS y1 .. yn (padded)
  Tensor tgt_out;  // i64 [B, T]: y1 .. yn EOS (padded)
  int64_t target_tokens() const;  // non-pad entries of tgt_out
};

// Pads and shifts token sequences (without BOS/EOS) into a batch.
Seq2SeqBatch make_batch(const std::vector<std::vector<int64_t>>& sources,
                        const std::vector<std::vector<int64_t>>& targets);

}  // namespace tcat::data
