// Modules: named parameters and sub-modules, the way checkpoints and optimizers see a model.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"
#include "core/rng.h"

namespace tcat::nn {

using ag::Var;

// What a forward pass needs besides its inputs.
struct ForwardContext {
  bool training = false;
  Rng* rng = nullptr;  // dropout randomness; required when training with dropout > 0
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its children, with dotted names ("layers.0.ffn.up.weight"),
  // in registration order.
  std::vector<std::pair<std::string, Var>> named_parameters() const;
  std::vector<Var> parameters() const;
  int64_t parameter_count() const;

 protected:
  Var& add_parameter(const std::string& name, Tensor init);
  void add_module(const std::string& name, Module& child);

 private:
  std::vector<std::pair<std::string, Var>> params_;
  std::vector<std::pair<std::string, Module*>> children_;
};

}  // namespace tcat::nn
