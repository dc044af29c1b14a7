// Fused scaled-dot-product attention (flash-attention style): scores are computed one block of
// keys at a time with an online softmax, so no T x T matrix is ever stored. The backward pass
// recomputes the scores block by block from the saved per-row log-sum-exp.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace tcat::kernels {

// A strided view of [batch, time, heads, head_dim] data (fp32). Lets Q, K, V point straight
// into a fused QKV projection output without copies.
struct HeadView {
  float* data = nullptr;
  int64_t batch_stride = 0, time_stride = 0, head_stride = 0;  // head_dim is contiguous
};

struct AttentionShape {
  int64_t batch = 0, heads = 0, q_len = 0, kv_len = 0, head_dim = 0;
  int64_t kv_heads = 0;  // grouped-query attention: heads % kv_heads == 0 (0 = same as heads)
};

struct AttentionMask {
  bool causal = false;                  // query i sees keys j <= i + (kv_len - q_len)
  const uint8_t* key_valid = nullptr;   // optional [batch, kv_len], 0 = padding key (masked out)
  const float* alibi_slopes = nullptr;  // optional [heads]: ALiBi, adds slope[h] * j to the scores of key j
};

// out = softmax(scale * Q K^T + mask) V. lse: optional [batch, heads, q_len] log-sum-exp of the
// scaled, masked scores (needed by the backward). A query row whose keys are all masked gets
// zeros in out (and lse = -inf).
void attention_forward(const AttentionShape& s, const HeadView& q, const HeadView& k, const HeadView& v,
                       const HeadView& out, const AttentionMask& mask, float scale, float* lse);

// Gradients; dq, dk, dv are overwritten (not accumulated). out and lse from the forward.
void attention_backward(const AttentionShape& s, const HeadView& q, const HeadView& k, const HeadView& v,
                        const HeadView& out, const HeadView& dout, const float* lse, const AttentionMask& mask,
                        float scale, const HeadView& dq, const HeadView& dk, const HeadView& dv);

}  // namespace tcat::kernels
