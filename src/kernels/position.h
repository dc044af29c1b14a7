// Position schemes applied inside attention: rotary embeddings (RoPE, Su et al. 2021) and the
// ALiBi head slopes (Press et al. 2022; the slopes themselves are added by attention_forward).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tcat::kernels {

struct RotarySpec {
  int64_t rotary_dim = 0;    // leading dimensions of each head that rotate (even, <= head_dim)
  bool interleaved = false;  // pairs (2i, 2i+1) (GPT-J, llama2.c) instead of (i, i + rotary_dim/2) (NeoX, HF Llama)
  float base = 10000.0f;     // pair i turns by position * base^(-2i / rotary_dim)
};

// Rotates, in place, heads [0, heads) of head_dim columns each starting at `column` of
// x f32 [B, T, width] (contiguous); time step t is at position first_position + t.
// inverse = true turns by the opposite angles (the transpose: the backward of the rotation).
void rotary_inplace(Tensor& x, int64_t column, int64_t heads, int64_t head_dim, const RotarySpec& spec,
                    int64_t first_position, bool inverse);

// The ALiBi slope of each head, as BLOOM computes them in float32: for the largest power of two
// n <= heads, 2^(-8k/n) for k = 1..n; the remaining heads take every other slope of 2n heads.
std::vector<float> alibi_slopes(int64_t heads);

}  // namespace tcat::kernels
