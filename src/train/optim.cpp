#include "train/optim.h"

#include <cmath>

#include "kernels/dispatch.h"

namespace tcat::train {
namespace {

TCAT_DISPATCH
void adam_update(float* p, const float* g, float* m, float* v, int64_t n, float lr, float b1, float b2, float eps,
                 float bias1, float bias2, float decay) {
  // decay is lr * weight_decay for AdamW (applied to the weight before the Adam step), else 0.
  const float step_size = lr / bias1;
  const float inv_sqrt_bias2 = 1.0f / std::sqrt(bias2);
  for (int64_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    const float denom = std::sqrt(v[i]) * inv_sqrt_bias2 + eps;
    p[i] = p[i] * (1.0f - decay) - step_size * m[i] / denom;
  }
}

TCAT_DISPATCH
double sum_squares(const float* g, int64_t n) {
  double total = 0;
  for (int64_t start = 0; start < n; start += 4096) {
    float partial = 0;  // float blocks vectorise; double across blocks keeps precision
    const int64_t end = std::min(n, start + 4096);
    for (int64_t i = start; i < end; ++i) partial += g[i] * g[i];
    total += partial;
  }
  return total;
}

}  // namespace

std::vector<ParamGroup> decay_groups(const std::vector<Var>& params, float weight_decay) {
  ParamGroup decayed{{}, weight_decay}, plain{{}, 0.0f};
  for (const Var& p : params) (p.value().ndim() >= 2 ? decayed : plain).params.push_back(p);
  return {decayed, plain};
}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions opt) : groups_(std::move(groups)), opt_(opt) {
  for (const auto& g : groups_) {
    for (const Var& p : g.params) {
      TCAT_CHECK(p.value().dtype() == DType::F32 && p.value().is_contiguous(),
                 "Adam: parameter '{}' must be contiguous f32, got {}", p.name(), p.desc());
      m_.push_back(Tensor::zeros(p.shape()));
      v_.push_back(Tensor::zeros(p.shape()));
    }
  }
}

void Adam::step(float lr) {
  ++step_;
  const float bias1 = 1.0f - std::pow(opt_.beta1, float(step_));
  const float bias2 = 1.0f - std::pow(opt_.beta2, float(step_));
  // Flatten (group, param) so all parameters update in one parallel loop.
  std::vector<std::pair<const ParamGroup*, const Var*>> work;
  for (const auto& g : groups_)
    for (const Var& p : g.params) work.emplace_back(&g, &p);
#pragma omp parallel for schedule(dynamic)
  for (size_t i = 0; i < work.size(); ++i) {
    const Var& p = *work[i].second;
    if (!p.grad().defined()) continue;
    const float decay = opt_.decoupled_weight_decay ? lr * work[i].first->weight_decay : 0.0f;
    adam_update(p.value().data<float>(), p.grad().data<float>(), m_[i].data<float>(), v_[i].data<float>(),
                p.value().numel(), lr, opt_.beta1, opt_.beta2, opt_.eps, bias1, bias2, decay);
  }
}

void Adam::zero_grad() {
  for (auto& g : groups_)
    for (Var& p : g.params) p.zero_grad();
}

std::vector<Tensor> Adam::state_tensors() const {
  std::vector<Tensor> out;
  for (size_t i = 0; i < m_.size(); ++i) {
    out.push_back(m_[i]);
    out.push_back(v_[i]);
  }
  return out;
}

void Adam::load_state(const std::vector<Tensor>& tensors, int64_t steps) {
  TCAT_CHECK(tensors.size() == 2 * m_.size(), "optimizer state has {} tensors, expected {}", tensors.size(),
             2 * m_.size());
  for (size_t i = 0; i < m_.size(); ++i) {
    TCAT_CHECK(tensors[2 * i].shape() == m_[i].shape() && tensors[2 * i + 1].shape() == v_[i].shape(),
               "optimizer state {}: shape {} does not match parameter shape {}", i, tensors[2 * i].desc(),
               m_[i].desc());
    m_[i].copy_from(tensors[2 * i]);
    v_[i].copy_from(tensors[2 * i + 1]);
  }
  step_ = steps;
}

float clip_grad_norm(const std::vector<Var>& params, float max_norm) {
  double total = 0;
  for (const Var& p : params)
    if (p.grad().defined()) total += sum_squares(p.grad().data<float>(), p.grad().numel());
  const float norm = float(std::sqrt(total));
  if (max_norm > 0 && norm > max_norm) {
    const float f = max_norm / (norm + 1e-6f);  // same epsilon as torch.nn.utils.clip_grad_norm_
    for (const Var& p : params) {
      if (!p.grad().defined()) continue;
      float* g = p.grad().data<float>();
      const int64_t n = p.grad().numel();
#pragma omp parallel for if (n > 65536)
      for (int64_t i = 0; i < n; ++i) g[i] *= f;
    }
  }
  return norm;
}

NoamSchedule::NoamSchedule(int64_t d_model, int64_t warmup, float factor)
    : d_model_(d_model), warmup_(warmup), factor_(factor) {
  TCAT_CHECK(d_model > 0 && warmup > 0, "Noam schedule needs d_model > 0 and warmup > 0 (got {}, {})", d_model,
             warmup);
}

float NoamSchedule::at(int64_t step) const {
  const double s = double(std::max<int64_t>(step, 1));
  return float(factor_ / std::sqrt(double(d_model_)) * std::min(1.0 / std::sqrt(s), s * std::pow(double(warmup_), -1.5)));
}

CosineSchedule::CosineSchedule(float peak, int64_t warmup, int64_t total_steps, float min_lr)
    : peak_(peak), min_lr_(min_lr), warmup_(warmup), total_(total_steps) {
  TCAT_CHECK(warmup >= 0 && total_steps > warmup, "cosine schedule needs 0 <= warmup < total steps (got {}, {})",
             warmup, total_steps);
}

float CosineSchedule::at(int64_t step) const {
  if (step <= warmup_) return peak_ * float(step) / float(std::max<int64_t>(warmup_, 1));
  if (step >= total_) return min_lr_;
  const double progress = double(step - warmup_) / double(total_ - warmup_);
  return float(min_lr_ + 0.5 * (peak_ - min_lr_) * (1.0 + std::cos(M_PI * progress)));
}

}  // namespace tcat::train
