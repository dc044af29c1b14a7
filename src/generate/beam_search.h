// Beam search for encoder-decoder models, batched over sentences: each step feeds the live
// hypotheses of every unfinished sentence (up to beam_size each) through one decode_step.
//
// Score of a hypothesis: the sum of its tokens' log-probabilities (EOS included) divided by the
// GNMT length penalty ((5 + len) / 6)^alpha, len = generated tokens (EOS included) (Wu et al.
// 2016, as used by Vaswani et al.; alpha = 0 gives the plain sum).
// Each step a sentence ranks every continuation of its live hypotheses by log-probability sum and
// walks the best 2 * beam_size: an EOS continuation ranked within the first beam_size becomes a
// finished hypothesis, the others become the next live hypotheses until there are beam_size.
// The first step expands only the single BOS hypothesis.
// Stopping rule (Hugging Face's early_stopping=True): a sentence is done as soon as it has
// beam_size finished hypotheses, or after max_len steps, when its live hypotheses are finished
// as they stand. Done sentences leave the batch (their rows are dropped from the decoder state).
#pragma once
#include <vector>

#include "generate/search.h"

namespace tcat::generate {

struct BeamSearchOptions {
  int64_t beam_size = 4;
  float length_penalty = 0.6f;  // alpha
  int64_t n_best = 1;           // hypotheses returned per sentence, at most beam_size
  SearchLimits limits;          // bos/eos ids, max_len (default: source length + 50), min_len
};

struct Hypothesis {
  std::vector<int64_t> tokens;  // without BOS/EOS
  float logprob = 0;            // sum over the generated tokens, EOS included
  float score = 0;              // logprob / ((5 + len) / 6)^alpha
};

// src i64 [B, S] padded with the model's pad id -> for each sentence up to n_best distinct
// hypotheses, best score first.
std::vector<std::vector<Hypothesis>> beam_search(const models::Transformer& model, const Tensor& src,
                                                 const BeamSearchOptions& opt);

}  // namespace tcat::generate
