// Differentiable ops: each is a forward kernel call plus its backward rule (ops.cpp).
#pragma once
#include "autograd/var.h"
#include "core/rng.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"

namespace tcat::ag {

// ---- arithmetic (numpy broadcasting) ----
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var scale(const Var& a, float s);
Var sum(const Var& a);   // all elements -> scalar
Var mean(const Var& a);

// ---- views (share storage in forward; backward routes the gradient back) ----
Var reshape(const Var& a, const Shape& shape);
Var transpose(const Var& a, int d0, int d1);
Var permute(const Var& a, const std::vector<int>& order);
Var slice(const Var& a, int dim, int64_t start, int64_t end);
Var expand(const Var& a, const Shape& shape);
Var contiguous(const Var& a);

// ---- matrix products ----
// Precision of the GEMMs inside matmul/linear on this thread (bf16 = mixed precision: bf16
// operands, fp32 accumulation, fp32 master weights). Forward and backward both use it.
kernels::MatmulPrecision matmul_precision();
class MatmulPrecisionGuard {
 public:
  explicit MatmulPrecisionGuard(kernels::MatmulPrecision p);
  ~MatmulPrecisionGuard();
  MatmulPrecisionGuard(const MatmulPrecisionGuard&) = delete;
  MatmulPrecisionGuard& operator=(const MatmulPrecisionGuard&) = delete;

 private:
  kernels::MatmulPrecision previous_;
};

Var matmul(const Var& a, const Var& b, bool trans_a = false, bool trans_b = false);
// y = x w^T + b; w [out, in]; bias may be undefined.
Var linear(const Var& x, const Var& w, const Var& bias);

// ---- activations, softmax, norms ----
Var relu(const Var& x);
Var gelu(const Var& x, kernels::GeluApprox approx = kernels::GeluApprox::Erf);
Var silu(const Var& x);
Var softmax(const Var& x);
Var log_softmax(const Var& x);
Var layer_norm(const Var& x, const Var& gamma, const Var& beta, float eps);
Var rms_norm(const Var& x, const Var& gamma, float eps);
// Identity when p == 0 or not training.
Var dropout(const Var& x, float p, Rng& rng);

// ---- embedding and loss ----
Var embedding(const Var& weight, const Tensor& ids);
Var cross_entropy(const Var& logits, const Tensor& targets, float label_smoothing, int64_t ignore_index);

// ---- attention ----
// One operand of attention: a [batch, time, width] Var and the column where its heads start
// (heads*head_dim columns). Q, K and V may be column ranges of the same fused projection.
struct AttentionOperand {
  Var source;
  int64_t column = 0;
};
struct AttentionSpec {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  bool causal = false;
  const Tensor* key_valid = nullptr;  // optional u8 [batch, kv_len]
  float scale = 0;                    // 0 = 1/sqrt(head_dim)
  const Tensor* alibi_slopes = nullptr;  // optional f32 [heads] (ALiBi, see kernels::AttentionMask)
};
// Returns [batch, q_len, heads*head_dim].
Var attention(const AttentionOperand& q, const AttentionOperand& k, const AttentionOperand& v,
              const AttentionSpec& spec);

}  // namespace tcat::ag
