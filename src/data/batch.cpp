#include "data/batch.h"

#include <algorithm>

namespace tcat::data {

int64_t Seq2SeqBatch::target_tokens() const {
  const auto ids = tgt_out.to_ids();
  return std::count_if(ids.begin(), ids.end(), [](int64_t v) { return v != kPadId; });
}

Seq2SeqBatch make_batch(const std::vector<std::vector<int64_t>>& sources,
                        const std::vector<std::vector<int64_t>>& targets) {
  TCAT_CHECK(!sources.empty() && sources.size() == targets.size(), "make_batch: {} sources and {} targets",
             sources.size(), targets.size());
  const int64_t B = int64_t(sources.size());
  size_t S = 1, T = 1;
  for (const auto& s : sources) S = std::max(S, s.size());
  for (const auto& t : targets) T = std::max(T, t.size() + 1);
  std::vector<int64_t> src(size_t(B) * S, kPadId), tin(size_t(B) * T, kPadId), tout(size_t(B) * T, kPadId);
  for (size_t b = 0; b < size_t(B); ++b) {
    std::copy(sources[b].begin(), sources[b].end(), src.begin() + ptrdiff_t(b * S));
    const auto& t = targets[b];
    tin[b * T] = kBosId;
    std::copy(t.begin(), t.end(), tin.begin() + ptrdiff_t(b * T + 1));
    std::copy(t.begin(), t.end(), tout.begin() + ptrdiff_t(b * T));
    tout[b * T + t.size()] = kEosId;
  }
  return {Tensor::from_ids(src, {B, int64_t(S)}), Tensor::from_ids(tin, {B, int64_t(T)}),
          Tensor::from_ids(tout, {B, int64_t(T)})};
}

}  // namespace tcat::data
