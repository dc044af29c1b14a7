// Reverse-mode automatic differentiation. A Var holds a value and, once backward() has run,
// the gradient of the loss with respect to it. Every differentiable op records a Node with its
// backward rule; backward() walks the nodes in reverse topological order.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tcat::ag {

struct Node;

struct VarImpl {
  Tensor value;
  Tensor grad;                    // accumulated over backward() calls until zero_grad()
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves (parameters, inputs)
  std::string name;
};

class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false, std::string name = {});

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const { return impl_->value; }
  Tensor& value() { return impl_->value; }
  const Tensor& grad() const { return impl_->grad; }
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  bool is_leaf() const { return !impl_->grad_fn; }
  const std::string& name() const { return impl_->name; }
  const Shape& shape() const { return impl_->value.shape(); }
  int64_t dim(int i) const { return impl_->value.dim(i); }
  std::string desc() const { return impl_->value.desc(); }

  // Gradient of this (scalar) Var with respect to every leaf that requires grad, added to their
  // grad. The graph is released afterwards.
  void backward();
  void zero_grad();
  const std::shared_ptr<VarImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<VarImpl> impl_;
};

// What a backward rule gets to deliver gradients for its inputs.
class GradSink {
 public:
  virtual ~GradSink() = default;
  virtual bool needs(size_t input) const = 0;   // false: the input needs no gradient, skip the work
  virtual void add(size_t input, Tensor grad) = 0;
  // A buffer the op may accumulate into directly (e.g. GEMM with beta = 1), or null. Only
  // offered for leaves, whose gradient buffers persist across steps.
  virtual Tensor* accumulator(size_t input) = 0;
};

using BackwardFn = std::function<void(const Tensor& grad_out, GradSink& sink)>;

struct Node {
  const char* op;
  std::vector<std::shared_ptr<VarImpl>> inputs;
  BackwardFn backward;
};

// Records `value` as the output of op `op` applied to `inputs`. Without inputs that require a
// gradient (or in no-grad mode) no node is recorded. Also runs the numerics check when enabled.
Var record(const char* op, Tensor value, const std::vector<Var>& inputs, BackwardFn backward);

// No-grad mode (inference): ops record nothing while a guard is alive on this thread.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// --check-numerics: every op output and every gradient is checked for NaN/Inf and the first op
// that produces one is named in the error.
void set_check_numerics(bool on);
bool check_numerics();

}  // namespace tcat::ag
