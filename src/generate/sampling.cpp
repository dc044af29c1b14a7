#include "generate/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace tcat::generate {

void validate(const SamplingOptions& opt) {
  if (!(opt.temperature >= 0.0f)) throw UsageError(fmt::format("temperature must be >= 0, got {}", opt.temperature));
  if (opt.top_k < 0) throw UsageError(fmt::format("top-k must be >= 0, got {}", opt.top_k));
  if (!(opt.top_p > 0.0f && opt.top_p <= 1.0f)) throw UsageError(fmt::format("top-p must be in (0, 1], got {}", opt.top_p));
  if (!(opt.repetition_penalty > 0.0f))
    throw UsageError(fmt::format("repetition penalty must be > 0, got {}", opt.repetition_penalty));
}

int64_t argmax(const float* logits, int64_t vocab) {
  TCAT_CHECK(vocab > 0, "argmax over an empty row");
  return std::max_element(logits, logits + vocab) - logits;
}

void apply_repetition_penalty(std::vector<float>& logits, const std::vector<int64_t>& history, float penalty) {
  if (penalty == 1.0f) return;
  std::vector<bool> seen(logits.size(), false);
  for (int64_t id : history) {
    TCAT_CHECK(id >= 0 && size_t(id) < logits.size(), "repetition penalty: token {} outside the vocabulary of {}", id,
               logits.size());
    if (seen[size_t(id)]) continue;
    seen[size_t(id)] = true;
    float& x = logits[size_t(id)];
    x = x > 0 ? x / penalty : x * penalty;
  }
}

int64_t sample_next(const float* logits, int64_t vocab, const std::vector<int64_t>& history,
                    const SamplingOptions& opt, Rng& rng) {
  std::vector<float> x(logits, logits + vocab);
  apply_repetition_penalty(x, history, opt.repetition_penalty);
  if (opt.temperature == 0.0f) return argmax(x.data(), vocab);
  // Candidates by decreasing logit (lower id first among ties), cut by top-k.
  std::vector<int64_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  const int64_t k = opt.top_k > 0 ? std::min(opt.top_k, vocab) : vocab;
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
    return x[size_t(a)] > x[size_t(b)] || (x[size_t(a)] == x[size_t(b)] && a < b);
  });
  order.resize(size_t(k));
  // Softmax of logits / temperature over the candidates.
  const double top = x[size_t(order.front())] / opt.temperature;
  std::vector<double> p(order.size());
  double sum = 0;
  for (size_t i = 0; i < order.size(); ++i) sum += p[i] = std::exp(x[size_t(order[i])] / opt.temperature - top);
  // Top-p keeps the smallest prefix whose probability reaches top_p (always the first token).
  size_t keep = p.size();
  if (opt.top_p < 1.0f) {
    double cumulative = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      cumulative += p[i] / sum;
      if (cumulative >= opt.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  const double kept_sum = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  double u = double(rng.uniform()) * kept_sum;
  for (size_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}

}  // namespace tcat::generate
