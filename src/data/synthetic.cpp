#include "data/synthetic.h"

#include <algorithm>

namespace tcat::data {

SyntheticTask synthetic_task_from_name(const std::string& name) {
  if (name == "copy") return SyntheticTask::Copy;
  if (name == "reverse") return SyntheticTask::Reverse;
  throw UsageError(fmt::format("unknown synthetic task '{}' (known: copy, reverse)", name));
}

std::vector<int64_t> synthetic_target(const std::vector<int64_t>& source, SyntheticTask task) {
  std::vector<int64_t> t = source;
  if (task == SyntheticTask::Reverse) std::reverse(t.begin(), t.end());
  return t;
}

Seq2SeqBatch synthetic_batch(const SyntheticOptions& opt, int64_t batch, Rng& rng,
                             std::vector<std::vector<int64_t>>* sources_out) {
  TCAT_CHECK(opt.vocab > 3 && opt.min_len >= 1 && opt.max_len >= opt.min_len,
             "synthetic task: need vocab > 3 and 1 <= min_len <= max_len (got {}, {}, {})", opt.vocab, opt.min_len,
             opt.max_len);
  std::vector<std::vector<int64_t>> sources, targets;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = opt.min_len + int64_t(rng.below(uint64_t(opt.max_len - opt.min_len + 1)));
    std::vector<int64_t> s(static_cast<size_t>(len));
    for (auto& v : s) v = 3 + int64_t(rng.below(uint64_t(opt.vocab - 3)));
    targets.push_back(synthetic_target(s, opt.task));
    sources.push_back(std::move(s));
  }
  Seq2SeqBatch out = make_batch(sources, targets);
  if (sources_out) *sources_out = std::move(sources);
  return out;
}

}  // namespace tcat::data
