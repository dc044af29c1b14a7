// What greedy decoding and beam search share: encoding a source batch once, per-sentence length
// limits, the tokens a search may not produce, and picking the best tokens of a row.
#pragma once
#include <vector>

#include "kernels/ops.h"
#include "models/transformer.h"

namespace tcat::generate {

struct SearchLimits {
  int64_t bos_id = 1, eos_id = 2;
  // Decoding steps per sentence (generated tokens, a final EOS included). 0 = the sentence's
  // source length (non-pad tokens) + 50. Never more than the model's max_positions.
  int64_t max_len = 0;
  // EOS is not allowed before this many tokens; min_len = max_len forces the output length.
  int64_t min_len = 0;
};

struct SearchStart {
  models::DecoderState state;    // one row per sentence, nothing decoded yet
  std::vector<int64_t> max_len;  // steps allowed per sentence
};
// Encodes src i64 [B, S] (padded with the model's pad id) and starts decoding it.
SearchStart start_search(const models::Transformer& model, const Tensor& src, const SearchLimits& limits);

// What may not come next: the padding id (unless it doubles as EOS) always, EOS while fewer than
// min_len tokens have been generated.
std::vector<int64_t> forbidden_tokens(int64_t generated, int64_t pad_id, const SearchLimits& limits);

using kernels::ScoredToken;
// Feeds each row's next token (`tokens`, one per state row) and returns the n best allowed tokens
// to follow each row, scored by log-probability with `log_probs`, by logit without (enough to
// rank). The output projection is consumed in blocks (kernels::linear_top_k): the [rows, vocab]
// logits are never written out.
std::vector<std::vector<ScoredToken>> next_tokens(const models::Transformer& model, const std::vector<int64_t>& tokens,
                                                  models::DecoderState& state, int64_t n, int64_t generated,
                                                  const SearchLimits& limits, bool log_probs);

// log(sum_v exp(logits[v])) over one row, stable (max subtracted, summed in double): a token's
// log-probability is logits[token] minus this.
float log_sum_exp(const float* logits, int64_t vocab);

}  // namespace tcat::generate
