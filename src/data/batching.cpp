#include "data/batching.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "core/rng.h"

namespace tcat::data {

int64_t batch_cost(int64_t sentences, int64_t longest_src, int64_t longest_tgt) {
  return sentences * std::max(longest_src, longest_tgt + 1);
}

namespace {

// FNV-1a over the bytes of 64-bit words.
class Fingerprint {
 public:
  void add(uint64_t word) {
    for (int byte = 0; byte < 8; ++byte) {
      hash_ ^= (word >> (8 * byte)) & 0xFF;
      hash_ *= 0x100000001b3ull;
    }
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

int64_t size_of(const std::vector<int64_t>& ids) { return int64_t(ids.size()); }

}  // namespace

BatchStream::BatchStream(std::vector<std::vector<int64_t>> src, std::vector<std::vector<int64_t>> tgt,
                         const BatchingOptions& options)
    : opt_(options), src_(std::move(src)), tgt_(std::move(tgt)) {
  TCAT_CHECK(src_.size() == tgt_.size(), "BatchStream: {} sources but {} targets", src_.size(), tgt_.size());
  TCAT_CHECK(opt_.max_len > 0 && opt_.max_tokens >= batch_cost(1, opt_.max_len, opt_.max_len),
             "BatchStream: a budget of {} tokens cannot hold one pair of max_len {} (needs at least {})",
             opt_.max_tokens, opt_.max_len, batch_cost(1, opt_.max_len, opt_.max_len));
  stats_.pairs = int64_t(src_.size());
  for (size_t i = 0; i < src_.size(); ++i) {
    auto &s = src_[i], &t = tgt_[i];
    const bool empty = s.empty() || t.empty();
    const bool overlong = size_of(s) > opt_.max_len || size_of(t) > opt_.max_len;
    if (empty || (overlong && opt_.overlong == OverlongPolicy::Skip)) {
      if (empty)
        ++stats_.skipped_empty;
      else
        ++stats_.skipped_overlong;
      s = {};
      t = {};
      continue;
    }
    if (overlong) {
      s.resize(size_t(std::min(size_of(s), opt_.max_len)));
      t.resize(size_t(std::min(size_of(t), opt_.max_len)));
      ++stats_.truncated;
    }
    kept_.push_back(int64_t(i));
  }
  stats_.kept = int64_t(kept_.size());
  TCAT_CHECK(!kept_.empty(), "BatchStream: none of the {} pairs can be batched ({} with an empty side, {} longer than {})",
             stats_.pairs, stats_.skipped_empty, stats_.skipped_overlong, opt_.max_len);

  Fingerprint fp;
  for (const int64_t field : {opt_.max_tokens, opt_.max_len, int64_t(opt_.overlong)}) fp.add(uint64_t(field));
  fp.add(opt_.seed);
  for (const int64_t i : kept_) {
    fp.add(uint64_t(i));
    fp.add(src_[size_t(i)].size());
    fp.add(tgt_[size_t(i)].size());
  }
  fingerprint_ = fp.value();
  plan_ = plan_for(0);
}

std::vector<std::vector<int64_t>> BatchStream::plan_for(int64_t epoch) const {
  // One generator per (seed, epoch), so any epoch can be rebuilt without replaying earlier ones.
  Rng rng(opt_.seed);
  rng.seed_with(rng.next_u64() ^ uint64_t(epoch));

  // Shuffle, then stable-sort by length: pairs of equal length end up in random order.
  std::vector<int64_t> order = kept_;
  for (size_t n = order.size(); n > 1; --n) std::swap(order[n - 1], order[rng.below(n)]);
  auto length_key = [&](int64_t i) {
    const int64_t s = size_of(src_[size_t(i)]);
    return std::pair(std::max(s, size_of(tgt_[size_t(i)]) + 1), s);
  };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return length_key(a) < length_key(b); });

  // Greedy chunking in length order: a batch closes when one more pair would exceed the budget.
  std::vector<std::vector<int64_t>> plan;
  std::vector<int64_t> batch;
  int64_t longest_src = 0, longest_tgt = 0;
  for (const int64_t i : order) {
    const int64_t s = size_of(src_[size_t(i)]), t = size_of(tgt_[size_t(i)]);
    if (!batch.empty() &&
        batch_cost(int64_t(batch.size()) + 1, std::max(longest_src, s), std::max(longest_tgt, t)) > opt_.max_tokens) {
      plan.push_back(std::move(batch));
      batch.clear();
      longest_src = longest_tgt = 0;
    }
    batch.push_back(i);
    longest_src = std::max(longest_src, s);
    longest_tgt = std::max(longest_tgt, t);
  }
  plan.push_back(std::move(batch));

  for (size_t n = plan.size(); n > 1; --n) std::swap(plan[n - 1], plan[rng.below(n)]);
  return plan;
}

void BatchStream::seek(BatchPosition position) {
  TCAT_CHECK(position.epoch >= 0 && position.batch >= 0, "BatchStream: cannot seek to epoch {} batch {}",
             position.epoch, position.batch);
  auto plan = position.epoch == epoch_ ? plan_ : plan_for(position.epoch);
  TCAT_CHECK(position.batch < int64_t(plan.size()), "BatchStream: epoch {} has {} batches, cannot seek to batch {}",
             position.epoch, plan.size(), position.batch);
  plan_ = std::move(plan);
  epoch_ = position.epoch;
  next_batch_ = position.batch;
}

Seq2SeqBatch BatchStream::next(std::vector<int64_t>* pair_indices) {
  const std::vector<int64_t>& indices = plan_[size_t(next_batch_)];
  std::vector<std::vector<int64_t>> sources, targets;
  sources.reserve(indices.size());
  targets.reserve(indices.size());
  for (const int64_t i : indices) {
    sources.push_back(src_[size_t(i)]);
    targets.push_back(tgt_[size_t(i)]);
  }
  if (pair_indices) *pair_indices = indices;
  Seq2SeqBatch batch = make_batch(sources, targets);
  if (++next_batch_ == int64_t(plan_.size())) {
    plan_ = plan_for(++epoch_);
    next_batch_ = 0;
  }
  return batch;
}

}  // namespace tcat::data
