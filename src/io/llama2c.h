// llama2.c checkpoints (run.c's legacy format): a header of 7 int32 (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means the classifier is stored
// separately) followed by float32 weights in run.c's order. Loaded as a Llama ArchConfig with
// interleaved rotary pairs (run.c's layout), so the weights are used as stored.
#pragma once
#include <string>

#include "io/hf_model.h"

namespace tcat::io {

// The tokens llama2.c treats specially: BOS starts a sequence, and run.c stops generating when
// the model produces BOS again (it delimits stories), so eos_ids = {BOS}.
inline constexpr int64_t kLlama2cBos = 1;

// Weights are read-only views of the mapped file where run.c's layout is tcat's (all but the
// fused QKV projections). Every size inconsistency (header vs file length) is one clear error.
HfModel load_llama2c(const std::string& path);

// Whether `path` holds a llama2.c checkpoint: a valid header and exactly the bytes it describes
// (tells the model from the tokenizer's .bin beside it).
bool is_llama2c_checkpoint(const std::string& path);

}  // namespace tcat::io
