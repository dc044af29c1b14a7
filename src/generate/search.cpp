#include "generate/search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/ops.h"

namespace tcat::generate {

SearchStart start_search(const models::Transformer& model, const Tensor& src, const SearchLimits& limits) {
  const auto& cfg = model.config();
  TCAT_CHECK(cfg.layout == models::Layout::EncoderDecoder, "search: needs an encoder-decoder model");
  TCAT_CHECK(src.ndim() == 2 && src.dim(0) > 0, "search: source ids must be [batch, time], got {}", src.desc());
  TCAT_CHECK(limits.max_len >= 0 && limits.max_len <= cfg.max_positions,
             "search: max_len {} must be in [0, {}] (0 = source length + 50)", limits.max_len, cfg.max_positions);
  TCAT_CHECK(limits.bos_id >= 0 && limits.bos_id < cfg.vocab && limits.eos_id >= 0 && limits.eos_id < cfg.vocab,
             "search: bos {} / eos {} outside the vocabulary of {}", limits.bos_id, limits.eos_id, cfg.vocab);
  TCAT_CHECK(limits.min_len >= 0, "search: min_len {} is negative", limits.min_len);
  ag::NoGradGuard no_grad;
  const int64_t B = src.dim(0);
  const Tensor src_valid = models::padding_mask(src, cfg.pad_id);
  SearchStart start;
  const uint8_t* valid = src_valid.data<uint8_t>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t length = std::count(valid + b * src.dim(1), valid + (b + 1) * src.dim(1), uint8_t(1));
    start.max_len.push_back(limits.max_len ? limits.max_len : std::min(length + 50, cfg.max_positions));
  }
  const nn::ForwardContext eval{false, nullptr};
  const ag::Var memory = model.encode(src, &src_valid, eval);
  start.state = model.start_decoding(memory, &src_valid, *std::max_element(start.max_len.begin(), start.max_len.end()));
  return start;
}

void forbid_tokens(float* row, int64_t generated, int64_t pad_id, const SearchLimits& limits) {
  constexpr float kNever = -std::numeric_limits<float>::infinity();
  if (pad_id != limits.eos_id) row[pad_id] = kNever;
  if (generated < limits.min_len) row[limits.eos_id] = kNever;
}

float log_sum_exp(const float* logits, int64_t vocab) {
  const float top = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[v] - top));
  return float(std::log(sum)) + top;
}

void best_tokens(const float* row, int64_t vocab, int64_t n, std::vector<ScoredToken>& out) {
  constexpr int64_t kChunk = 32;
  out.clear();
  float threshold = -std::numeric_limits<float>::infinity();
  for (int64_t begin = 0; begin < vocab; begin += kChunk) {
    const int64_t end = std::min(begin + kChunk, vocab);
    // Once `out` is full almost no chunk holds a better entry: a vectorised max skips them.
    float chunk_max = threshold;
#pragma omp simd reduction(max : chunk_max)
    for (int64_t v = begin; v < end; ++v) chunk_max = row[v] > chunk_max ? row[v] : chunk_max;  // NaN ignored
    if (!(chunk_max > threshold)) continue;
    for (int64_t v = begin; v < end; ++v) {
      if (!(row[v] > threshold)) continue;
      const auto at = std::find_if(out.begin(), out.end(), [&](const ScoredToken& t) { return t.score < row[v]; });
      out.insert(at, {row[v], v});
      if (int64_t(out.size()) > n) out.pop_back();
      if (int64_t(out.size()) == n) threshold = out.back().score;
    }
  }
}

}  // namespace tcat::generate
