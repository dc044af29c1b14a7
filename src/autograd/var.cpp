#include "autograd/var.h"

#include <unordered_map>
#include <unordered_set>

#include "kernels/ops.h"

namespace tcat::ag {
namespace {

thread_local bool g_grad_enabled = true;
bool g_check_numerics = false;

void check_finite(const Tensor& t, const char* op, const char* what) {
  if (t.dtype() == DType::F32 && !kernels::all_finite(t)) fail("{}: {} {} contains NaN or Inf", op, what, t.desc());
}

// Gradients of non-leaf Vars live here during one backward pass.
class PassSink : public GradSink {
 public:
  PassSink(const Node& node, std::unordered_map<VarImpl*, Tensor>& pending) : node_(node), pending_(pending) {}

  bool needs(size_t i) const override { return node_.inputs[i] && node_.inputs[i]->requires_grad; }

  void add(size_t i, Tensor g) override {
    VarImpl* in = node_.inputs[i].get();
    if (!in || !in->requires_grad || !g.defined()) return;
    TCAT_CHECK(g.shape() == in->value.shape(), "{} backward: gradient {} for input {} of shape {}", node_.op,
               g.desc(), i, shape_str(in->value.shape()));
    if (check_numerics()) check_finite(g, node_.op, "gradient");
    if (!in->grad_fn) {
      Tensor* acc = accumulator(i);
      kernels::add_inplace(*acc, g);
      return;
    }
    auto it = pending_.find(in);
    if (it == pending_.end()) {
      pending_.emplace(in, std::move(g));
    } else {
      // The stored tensor may alias another op's buffer, so sum into a fresh one.
      it->second = kernels::add(it->second, g);
    }
  }

  Tensor* accumulator(size_t i) override {
    VarImpl* in = node_.inputs[i].get();
    if (!in || !in->requires_grad || in->grad_fn) return nullptr;
    if (!in->grad.defined()) in->grad = Tensor::zeros(in->value.shape());
    return &in->grad;
  }

 private:
  const Node& node_;
  std::unordered_map<VarImpl*, Tensor>& pending_;
};

}  // namespace

Var::Var(Tensor value, bool requires_grad, std::string name) : impl_(std::make_shared<VarImpl>()) {
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
  impl_->name = std::move(name);
}

void Var::zero_grad() {
  if (impl_ && impl_->grad.defined()) impl_->grad.zero();
}

void Var::backward() {
  TCAT_CHECK(defined() && impl_->value.numel() == 1, "backward() needs a scalar, got {}", desc());
  if (!impl_->requires_grad) return;
  if (!impl_->grad_fn) {
    Tensor one = Tensor::full(impl_->value.shape(), 1.0f);
    if (!impl_->grad.defined()) impl_->grad = Tensor::zeros(impl_->value.shape());
    kernels::add_inplace(impl_->grad, one);
    return;
  }
  // Reverse topological order by iterative depth-first search over the nodes. `order` owns the
  // VarImpls so that releasing a node's inputs mid-pass cannot free one still to be visited.
  std::vector<std::shared_ptr<VarImpl>> order;
  std::unordered_set<VarImpl*> visited;
  std::vector<std::pair<std::shared_ptr<VarImpl>, size_t>> stack{{impl_, 0}};
  visited.insert(impl_.get());
  while (!stack.empty()) {
    auto& [v, next] = stack.back();
    const auto& inputs = v->grad_fn->inputs;
    if (next < inputs.size()) {
      const std::shared_ptr<VarImpl>& in = inputs[next++];
      if (in && in->grad_fn && in->requires_grad && visited.insert(in.get()).second) stack.push_back({in, 0});
    } else {
      order.push_back(v);
      stack.pop_back();
    }
  }
  std::unordered_map<VarImpl*, Tensor> pending;
  pending.emplace(impl_.get(), Tensor::full(impl_->value.shape(), 1.0f));
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    VarImpl* v = it->get();
    std::shared_ptr<Node> node = std::move(v->grad_fn);  // releases the graph as we go
    auto found = pending.find(v);
    if (found == pending.end()) continue;  // no gradient flowed into this node
    Tensor g = std::move(found->second);
    pending.erase(found);
    PassSink sink(*node, pending);
    node->backward(g, sink);
  }
}

Var record(const char* op, Tensor value, const std::vector<Var>& inputs, BackwardFn backward) {
  if (check_numerics()) check_finite(value, op, "output");
  bool needs_grad = false;
  if (g_grad_enabled)
    for (const Var& in : inputs) needs_grad |= in.requires_grad();
  Var out(std::move(value), needs_grad);
  if (!needs_grad) return out;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs.reserve(inputs.size());
  for (const Var& in : inputs) node->inputs.push_back(in.defined() ? in.impl() : nullptr);
  node->backward = std::move(backward);
  out.impl()->grad_fn = std::move(node);
  return out;
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

void set_check_numerics(bool on) { g_check_numerics = on; }
bool check_numerics() { return g_check_numerics; }

}  // namespace tcat::ag
