// Optimizers (Adam, AdamW), learning-rate schedules (Noam, cosine) and gradient clipping.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "autograd/var.h"

namespace tcat::train {

using ag::Var;

// Parameters that share hyperparameters; weight_decay applies to AdamW only (e.g. 0 for norms
// and biases, as is usual).
struct ParamGroup {
  std::vector<Var> params;
  float weight_decay = 0.0f;
};

// Splits parameters into matrices (decayed) and vectors such as biases and norm weights (not).
std::vector<ParamGroup> decay_groups(const std::vector<Var>& params, float weight_decay);

struct AdamOptions {
  float beta1 = 0.9f, beta2 = 0.98f, eps = 1e-9f;
  bool decoupled_weight_decay = false;  // true = AdamW (Loshchilov & Hutter)
};

class Adam {
 public:
  Adam(std::vector<ParamGroup> groups, AdamOptions opt);
  // One update with learning rate lr; parameters without a gradient are skipped.
  void step(float lr);
  void zero_grad();
  int64_t steps() const { return step_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

  // Optimizer state, for checkpoints: first and second moment of each parameter (m0, v0, m1, v1, ...),
  // parameters in group order.
  std::vector<Tensor> state_tensors() const;
  void load_state(const std::vector<Tensor>& tensors, int64_t steps);

 private:
  std::vector<ParamGroup> groups_;
  AdamOptions opt_;
  std::vector<Tensor> m_, v_;
  int64_t step_ = 0;
};

// Global L2 norm of all gradients; scales them down to max_norm when above it (max_norm <= 0:
// measure only). Returns the norm before clipping.
float clip_grad_norm(const std::vector<Var>& params, float max_norm);

// lr(step) for step = 1, 2, ...
class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual float at(int64_t step) const = 0;
};

// Vaswani et al. eq. 3: factor * d^-0.5 * min(step^-0.5, step * warmup^-1.5).
class NoamSchedule : public LrSchedule {
 public:
  NoamSchedule(int64_t d_model, int64_t warmup, float factor = 1.0f);
  float at(int64_t step) const override;

 private:
  int64_t d_model_, warmup_;
  float factor_;
};

// Linear warmup to peak, then cosine decay to min_lr at total_steps (held there afterwards).
class CosineSchedule : public LrSchedule {
 public:
  CosineSchedule(float peak, int64_t warmup, int64_t total_steps, float min_lr = 0.0f);
  float at(int64_t step) const override;

 private:
  float peak_, min_lr_;
  int64_t warmup_, total_;
};

}  // namespace tcat::train
