#include "nn/module.h"

#include <unordered_set>

namespace tcat::nn {

Var& Module::add_parameter(const std::string& name, Tensor init) {
  params_.emplace_back(name, Var(std::move(init), true, name));
  return params_.back().second;
}

void Module::add_module(const std::string& name, Module& child) { children_.emplace_back(name, &child); }

std::vector<std::pair<std::string, Var>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Var>> out = params_;
  for (const auto& [prefix, child] : children_)
    for (auto& [name, v] : child->named_parameters()) out.emplace_back(prefix + "." + name, v);
  return out;
}

std::vector<Var> Module::parameters() const {
  // Tied parameters appear under several names but are one tensor to optimise.
  std::vector<Var> out;
  std::unordered_set<const ag::VarImpl*> seen;
  for (auto& [name, v] : named_parameters())
    if (seen.insert(v.impl().get()).second) out.push_back(v);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const Var& v : parameters()) n += v.value().numel();
  return n;
}

}  // namespace tcat::nn
