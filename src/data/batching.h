// Token-budget batching of tokenized translation pairs (how fairseq and Marian batch): pairs of
// similar length are grouped so that little of each batch is padding, every batch stays under a
// budget of padded tokens, and batch order is shuffled every epoch.
//
// Everything about an epoch (the random tie-break among equal lengths, hence the grouping, and the
// batch order) is a function of (pair lengths, options, epoch) alone. A BatchPosition (epoch, batch
// index) is therefore enough to resume a run exactly: rebuild the stream from the same data and
// options, seek(), and the remaining batches are the ones an uninterrupted run would have produced.
#pragma once
#include <cstdint>
#include <vector>

#include "data/batch.h"

namespace tcat::data {

enum class OverlongPolicy { Skip, Truncate };

struct BatchingOptions {
  int64_t max_tokens = 4096;  // budget per batch in padded tokens, see batch_cost(); at least max_len + 1
  int64_t max_len = 256;      // longest allowed side, in tokens without BOS/EOS
  OverlongPolicy overlong = OverlongPolicy::Skip;  // for a pair with a side longer than max_len
  uint64_t seed = 1;
};

struct BatchingStats {
  int64_t pairs = 0;             // given to the stream
  int64_t kept = 0;              // batched (truncated ones included)
  int64_t truncated = 0;         // kept with a side cut to max_len
  int64_t skipped_overlong = 0;  // dropped under OverlongPolicy::Skip
  int64_t skipped_empty = 0;     // dropped: a side with no tokens
};

// The next batch a stream produces: batch `batch` (from 0) of epoch `epoch` (from 0).
struct BatchPosition {
  int64_t epoch = 0;
  int64_t batch = 0;
  bool operator==(const BatchPosition&) const = default;
};

// Padded size of a batch, the quantity max_tokens bounds: sentences * max(S, T), where S is the
// longest source (make_batch adds nothing to sources) and T the longest target plus one (tgt_in
// starts with BOS, tgt_out ends with EOS). That is the larger of the padded source and target
// matrices; fairseq and Marian likewise count the longer side of each padded batch.
int64_t batch_cost(int64_t sentences, int64_t longest_src, int64_t longest_tgt);

class BatchStream {
 public:
  // `src[i]` and `tgt[i]` are one pair's token ids without BOS/EOS.
  BatchStream(std::vector<std::vector<int64_t>> src, std::vector<std::vector<int64_t>> tgt,
              const BatchingOptions& options);

  const BatchingStats& stats() const { return stats_; }
  // Equal fingerprints mean identical batches in every epoch: a resumed run checks that it
  // rebuilt the same stream (same pair lengths and options) before it seeks.
  uint64_t fingerprint() const { return fingerprint_; }

  BatchPosition position() const { return {epoch_, next_batch_}; }
  // Positions the stream so that the next batch is `position`'s; error if that epoch has no such batch.
  void seek(BatchPosition position);
  // The current epoch's batches in training order, each a list of indices into the constructor's pairs.
  const std::vector<std::vector<int64_t>>& epoch_batches() const { return plan_; }

  // The batch at position(), then advances (after an epoch's last batch, to the next epoch).
  // `pair_indices`, if given, receives the batch's pairs as indices into the constructor's pairs.
  Seq2SeqBatch next(std::vector<int64_t>* pair_indices = nullptr);

 private:
  std::vector<std::vector<int64_t>> plan_for(int64_t epoch) const;

  BatchingOptions opt_;
  std::vector<std::vector<int64_t>> src_, tgt_;
  std::vector<int64_t> kept_;  // indices of the pairs that are batched
  BatchingStats stats_;
  uint64_t fingerprint_ = 0;
  int64_t epoch_ = 0, next_batch_ = 0;
  std::vector<std::vector<int64_t>> plan_;
};

}  // namespace tcat::data
