// Inference with encoder models (BERT, RoBERTa, ...): pooled sequence vectors and masked-token
// predictions.
#pragma once
#include <vector>

#include "models/transformer.h"

namespace tcat::models {

enum class Pooling { Mean, Cls };  // mean of the last hidden states, or the first one ([CLS] / <s>)

// One vector [d_model] per sequence (each not empty).
std::vector<std::vector<float>> embed_sequences(const Transformer& model,
                                                const std::vector<std::vector<int64_t>>& sequences, Pooling pooling);

struct TokenProbability {
  int64_t id;
  float probability;
};

struct MaskPrediction {
  int64_t position;                         // index in ids of a mask token
  std::vector<TokenProbability> top;        // the top_k tokens there, most likely first
};

// For each position of `ids` holding mask_id: the top_k tokens with their softmax probabilities.
// No mask in ids is a UsageError.
std::vector<MaskPrediction> fill_mask(const Transformer& model, const std::vector<int64_t>& ids, int64_t mask_id,
                                      int64_t top_k);

}  // namespace tcat::models
