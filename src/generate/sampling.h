// Choosing the next token from a row of logits: repetition penalty, temperature, top-k, top-p
// (nucleus), in the order Hugging Face applies them; temperature 0 is greedy (argmax).
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace tcat::generate {

struct SamplingOptions {
  float temperature = 1.0f;         // 0 = greedy
  int64_t top_k = 0;                // 0 = off
  float top_p = 1.0f;               // 1 = off
  float repetition_penalty = 1.0f;  // 1 = off; > 1 discourages tokens already in the sequence
};

// Throws UsageError naming the first bad value.
void validate(const SamplingOptions& opt);

// The most likely token (the lowest id among equal maxima).
int64_t argmax(const float* logits, int64_t vocab);

// CTRL's penalty on a copy of the logits: every token in `history` has its logit divided by
// `penalty` when positive, multiplied when negative.
void apply_repetition_penalty(std::vector<float>& logits, const std::vector<int64_t>& history, float penalty);

// The next token after `history` given its logits. Uses rng only when sampling.
int64_t sample_next(const float* logits, int64_t vocab, const std::vector<int64_t>& history,
                    const SamplingOptions& opt, Rng& rng);

}  // namespace tcat::generate
