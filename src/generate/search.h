// What greedy decoding and beam search share: encoding a source batch once, per-sentence length
// limits, the tokens a search may not produce, and picking the best tokens of a row.
#pragma once
#include <vector>

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

// Sets what may not come next to -inf in a row of logits or log-probabilities: the padding id
// (unless it doubles as EOS) always, EOS while fewer than min_len tokens have been generated.
void forbid_tokens(float* row, int64_t generated, int64_t pad_id, const SearchLimits& limits);

struct ScoredToken {
  float score;
  int64_t token;
};
// log(sum_v exp(logits[v])) over one row, stable (max subtracted, summed in double): a token's
// log-probability is logits[token] minus this.
float log_sum_exp(const float* logits, int64_t vocab);

// The n highest entries of row[0, vocab) into `out`, best first (the lower id first among equal
// scores); -inf entries are never taken.
void best_tokens(const float* row, int64_t vocab, int64_t n, std::vector<ScoredToken>& out);

}  // namespace tcat::generate
