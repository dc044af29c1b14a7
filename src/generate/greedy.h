// Greedy decoding for encoder-decoder models: the encoder runs once, then each step feeds every
// unfinished sentence's last token through the decoder's KV cache and appends the most likely
// next token. A sentence finishes at EOS or after its max_len steps and leaves the batch.
#pragma once
#include <vector>

#include "generate/search.h"

namespace tcat::generate {

using GreedyOptions = SearchLimits;

// src i64 [B, S] padded with the model's pad id -> B token sequences without BOS/EOS.
std::vector<std::vector<int64_t>> greedy_decode(const models::Transformer& model, const Tensor& src,
                                                const GreedyOptions& opt);

}  // namespace tcat::generate
