#include "models/encoder_tasks.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace tcat::models {
namespace {

// Last hidden states [T, d] of one sequence.
Tensor last_hidden(const Transformer& model, const std::vector<int64_t>& ids) {
  TCAT_CHECK(model.config().layout != Layout::DecoderOnly, "this needs a model with an encoder");
  if (ids.empty()) throw UsageError("a sequence to encode has no tokens");
  if (int64_t(ids.size()) > model.config().max_positions)
    throw UsageError(fmt::format("a sequence of {} tokens exceeds the model's {} positions", ids.size(),
                                 model.config().max_positions));
  ag::NoGradGuard no_grad;
  const Tensor h = model.encode(Tensor::from_ids(ids, {1, int64_t(ids.size())}), nullptr, {}).value();
  return h.contiguous().view({int64_t(ids.size()), model.config().d_model});
}

}  // namespace

std::vector<std::vector<float>> embed_sequences(const Transformer& model,
                                                const std::vector<std::vector<int64_t>>& sequences, Pooling pooling) {
  std::vector<std::vector<float>> out;
  for (const auto& ids : sequences) {
    const Tensor h = last_hidden(model, ids);
    const int64_t T = h.dim(0), d = h.dim(1);
    const float* p = h.data<float>();
    std::vector<float> v(p, p + d);
    if (pooling == Pooling::Mean) {
      for (int64_t t = 1; t < T; ++t)
        for (int64_t i = 0; i < d; ++i) v[size_t(i)] += p[t * d + i];
      for (float& x : v) x /= float(T);
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<MaskPrediction> fill_mask(const Transformer& model, const std::vector<int64_t>& ids, int64_t mask_id,
                                      int64_t top_k) {
  if (top_k < 1) throw UsageError(fmt::format("top-k must be at least 1, got {}", top_k));
  std::vector<int64_t> positions;
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == mask_id) positions.push_back(int64_t(i));
  if (positions.empty()) throw UsageError(fmt::format("the input has no mask token (id {})", mask_id));
  const Tensor hidden = last_hidden(model, ids);
  const int64_t vocab = model.config().vocab;
  std::vector<MaskPrediction> out;
  ag::NoGradGuard no_grad;
  for (const int64_t pos : positions) {
    const Tensor logits = model.project(ag::Var(hidden.slice(0, pos, pos + 1).contiguous())).value();
    const float* l = logits.data<float>();
    const float top = *std::max_element(l, l + vocab);
    double sum = 0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(l[v] - top));
    std::vector<int64_t> order(static_cast<size_t>(vocab));
    std::iota(order.begin(), order.end(), int64_t(0));
    const size_t k = size_t(std::min(top_k, vocab));
    std::partial_sort(order.begin(), order.begin() + int64_t(k), order.end(),
                      [&](int64_t a, int64_t b) { return l[a] != l[b] ? l[a] > l[b] : a < b; });
    MaskPrediction p{pos, {}};
    for (size_t i = 0; i < k; ++i)
      p.top.push_back({order[i], float(std::exp(double(l[order[i]] - top)) / sum)});
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace tcat::models
