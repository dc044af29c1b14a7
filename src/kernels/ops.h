// Element-wise, normalisation, softmax, embedding and loss kernels (fp32, contiguous inputs unless
// stated; outputs are new contiguous tensors). Forward and backward sit side by side. OpenMP
// parallel over rows; inner loops vectorised with run-time ISA dispatch (dispatch.h).
// Shape errors name the op and both shapes.
#pragma once
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace tcat::kernels {

// ---- element-wise arithmetic (numpy broadcasting between a and b) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, float s);
void add_inplace(Tensor& dst, const Tensor& src, float alpha = 1.0f);   // dst += alpha*src, same shape
// Sums `grad` over broadcast dimensions so the result has `shape` (the backward of broadcasting).
Tensor sum_to_shape(const Tensor& grad, const Shape& shape);
Tensor sum_all(const Tensor& a);                                        // scalar [] tensor
bool all_finite(const Tensor& a);

// ---- activations ----
enum class GeluApprox { Erf, Tanh };
Tensor relu(const Tensor& x);
Tensor relu_backward(const Tensor& x, const Tensor& dy);
Tensor gelu(const Tensor& x, GeluApprox approx);
Tensor gelu_backward(const Tensor& x, const Tensor& dy, GeluApprox approx);
Tensor silu(const Tensor& x);
Tensor silu_backward(const Tensor& x, const Tensor& dy);

// ---- softmax over the last dimension ----
Tensor softmax(const Tensor& x);
Tensor softmax_backward(const Tensor& y, const Tensor& dy);       // y = softmax(x)
Tensor log_softmax(const Tensor& x);
Tensor log_softmax_backward(const Tensor& y, const Tensor& dy);   // y = log_softmax(x)

// ---- choosing the best entries (next tokens) ----
struct ScoredToken {
  float score;
  int64_t token;
};
// The n highest entries of row[0, size) into `out`, best first (the lower index first among equal
// scores); NaN and -inf entries, and entries below `floor`, are never taken.
void best_tokens(const float* row, int64_t size, int64_t n, std::vector<ScoredToken>& out,
                 float floor = -std::numeric_limits<float>::infinity());

struct RowTopK {
  float max = 0, log_sum = 0;     // with log_sum_exp: log_softmax of a logit v is (v - max) - log_sum
  std::vector<ScoredToken> best;  // scores are logits
};
// For each row of the logits x [R, K] * w [N, K]^T (+ bias) (w f32, bf16 or int8): the n highest
// logits whose token is not `excluded` (best_tokens' order) and, with log_sum_exp, the row's
// log-softmax terms over all N logits. The logits are consumed in cache-sized blocks
// (linear_by_column_blocks), never written out whole. A row whose log-softmax is NaN (a NaN or
// +inf logit) gets no best tokens, as best_tokens on its log_softmax would give.
std::vector<RowTopK> linear_top_k(const Tensor& x, const Tensor& w, const Tensor* bias, int64_t n,
                                  std::span<const int64_t> excluded, bool log_sum_exp);

// ---- normalisation over the last dimension ----
struct NormStats {
  Tensor mean;  // [rows] (LayerNorm only)
  Tensor rstd;  // [rows]
};
// y = (x - mean) * rstd * gamma + beta; gamma/beta [D] (beta may be undefined).
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, NormStats* stats);
// Returns dx; accumulates into dgamma/dbeta when they are defined.
Tensor layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const NormStats& stats,
                           Tensor& dgamma, Tensor& dbeta);
// y = x * rstd * gamma, rstd = 1/sqrt(mean(x^2) + eps).
Tensor rms_norm(const Tensor& x, const Tensor& gamma, float eps, NormStats* stats);
Tensor rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const NormStats& stats,
                         Tensor& dgamma);

// ---- dropout (inverted: kept values scaled by 1/(1-p)) ----
// mask: u8 tensor of x's shape, 1 = kept. Deterministic for a given rng state and thread count
// independent: the rng draws one seed and the mask is a pure function of (seed, index).
Tensor dropout(const Tensor& x, float p, Rng& rng, Tensor* mask);
Tensor dropout_backward(const Tensor& dy, const Tensor& mask, float p);

// ---- embedding ----
// weight [V, D], ids i64 [...] -> [..., D]; an id outside [0, V) is an error naming it.
Tensor embedding(const Tensor& weight, const Tensor& ids);
// dweight[ids[i]] += dy[i] (scatter-add; deterministic).
void embedding_backward(Tensor& dweight, const Tensor& ids, const Tensor& dy);

// ---- cross-entropy, mean over targets != ignore_index (PyTorch semantics) ----
// logits [N, V], targets i64 [N]. With label smoothing e the per-row loss is
// (1-e) * -log p[target] + e * mean_v(-log p[v]). Returns the scalar loss; `saved` keeps
// what the backward needs (log-probabilities) when not null.
struct CrossEntropySaved {
  Tensor log_probs;  // [N, V]
  int64_t count = 0; // rows that count (target != ignore_index)
};
float cross_entropy(const Tensor& logits, const Tensor& targets, float label_smoothing, int64_t ignore_index,
                    CrossEntropySaved* saved);
// d(loss)/d(logits), scaled by dloss.
Tensor cross_entropy_backward(const CrossEntropySaved& saved, const Tensor& targets, float label_smoothing,
                              int64_t ignore_index, float dloss);

}  // namespace tcat::kernels
