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

std::vector<int64_t> forbidden_tokens(int64_t generated, int64_t pad_id, const SearchLimits& limits) {
  std::vector<int64_t> ids;
  if (pad_id != limits.eos_id) ids.push_back(pad_id);
  if (generated < limits.min_len) ids.push_back(limits.eos_id);
  return ids;
}

std::vector<std::vector<ScoredToken>> next_tokens(const models::Transformer& model, const std::vector<int64_t>& tokens,
                                                  models::DecoderState& state, int64_t n, int64_t generated,
                                                  const SearchLimits& limits, bool log_probs) {
  ag::NoGradGuard no_grad;
  const Tensor features = model.decode_step_features(Tensor::from_ids(tokens, {int64_t(tokens.size())}), state);
  const Tensor* bias = model.output_bias().defined() ? &model.output_bias().value() : nullptr;
  const std::vector<int64_t> forbidden = forbidden_tokens(generated, model.config().pad_id, limits);
  std::vector<kernels::RowTopK> rows =
      kernels::linear_top_k(features, model.output_weight().value(), bias, n, forbidden, log_probs);
  std::vector<std::vector<ScoredToken>> out(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    out[r] = std::move(rows[r].best);
    if (log_probs)
      for (ScoredToken& t : out[r]) t.score = (t.score - rows[r].max) - rows[r].log_sum;
  }
  return out;
}

float log_sum_exp(const float* logits, int64_t vocab) {
  const float top = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[v] - top));
  return float(std::log(sum)) + top;
}

}  // namespace tcat::generate
