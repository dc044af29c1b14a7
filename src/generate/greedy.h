// Greedy decoding for encoder-decoder models: the encoder runs once, then the most likely next
// token is appended until every sequence has produced EOS or max_len tokens. Each step reruns the
// decoder over the prefix (no KV cache yet), which is fine for short outputs.
#pragma once
#include <vector>

#include "models/transformer.h"

namespace tcat::generate {

struct GreedyOptions {
  int64_t bos_id = 1, eos_id = 2;
  int64_t max_len = 64;  // tokens generated per sequence, EOS excluded
};

// src i64 [B, S] padded with the model's pad id -> B token sequences without BOS/EOS.
std::vector<std::vector<int64_t>> greedy_decode(const models::Transformer& model, const Tensor& src,
                                                const GreedyOptions& opt);

}  // namespace tcat::generate
