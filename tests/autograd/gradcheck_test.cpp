// Finite-difference gradient checks for every differentiable op.
//
// Each check builds loss = sum(f(inputs) * R) for a fixed random R, runs backward, and compares
// every input gradient with central differences (f(x+h) - f(x-h)) / 2h, h = 1e-2, where the loss
// is summed in double. Tolerance |analytic - numeric| <= 2e-3 + 2e-2 * |numeric|: fp32 outputs
// carry ~1e-7 relative rounding, which over a difference of 2h gives ~1e-5 absolute noise per
// unit of output magnitude, and the O(h^2) truncation error of smooth ops is ~1e-4; the margin
// stays an order of magnitude above both while catching any wrong rule (errors of O(1)).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "autograd/ops.h"

using namespace tcat;
using ag::Var;

namespace {

using Fn = std::function<Var(const std::vector<Var>&)>;

Tensor random_tensor(const Shape& shape, Rng& rng, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::empty(shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = lo + (hi - lo) * rng.uniform();
  return t;
}

double weighted_sum(const Tensor& out, const std::vector<float>& r) {
  const auto v = out.to_vector();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += double(v[i]) * r[i];
  return s;
}

void gradcheck(const std::string& what, const Fn& f, std::vector<Tensor> inputs, std::vector<bool> check = {}) {
  if (check.empty()) check.assign(inputs.size(), true);
  Rng rng(99);
  std::vector<Var> vars;
  for (size_t i = 0; i < inputs.size(); ++i) vars.emplace_back(inputs[i].clone(), bool(check[i]));
  Var out = f(vars);
  std::vector<float> r(size_t(out.value().numel()));
  for (auto& v : r) v = 2.0f * rng.uniform() - 1.0f;
  Var loss = ag::sum(ag::mul(out, Var(Tensor::from_vector(r, out.shape()))));
  loss.backward();

  const float h = 1e-2f;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!check[i]) continue;
    ASSERT_TRUE(vars[i].grad().defined()) << what << ": input " << i << " got no gradient";
    const auto analytic = vars[i].grad().to_vector();
    for (int64_t k = 0; k < inputs[i].numel(); ++k) {
      auto eval = [&](float delta) {
        std::vector<Var> probe;
        for (size_t j = 0; j < inputs.size(); ++j) {
          Tensor t = inputs[j].clone();
          if (j == i) t.data<float>()[k] += delta;
          probe.emplace_back(t, false);
        }
        return weighted_sum(f(probe).value(), r);
      };
      const double numeric = (eval(h) - eval(-h)) / (2.0 * h);
      EXPECT_NEAR(analytic[size_t(k)], numeric, 2e-3 + 2e-2 * std::fabs(numeric))
          << what << ": d/d input " << i << "[" << k << "]";
    }
  }
}

TEST(Gradcheck, Arithmetic) {
  Rng rng(1);
  gradcheck("add broadcast", [](auto& v) { return ag::add(v[0], v[1]); },
            {random_tensor({2, 3, 4}, rng), random_tensor({3, 1}, rng)});
  gradcheck("sub broadcast", [](auto& v) { return ag::sub(v[0], v[1]); },
            {random_tensor({4}, rng), random_tensor({2, 4}, rng)});
  gradcheck("mul broadcast", [](auto& v) { return ag::mul(v[0], v[1]); },
            {random_tensor({2, 3}, rng), random_tensor({1, 3}, rng)});
  gradcheck("scale", [](auto& v) { return ag::scale(v[0], -1.5f); }, {random_tensor({5}, rng)});
  gradcheck("sum", [](auto& v) { return ag::sum(v[0]); }, {random_tensor({2, 3}, rng)});
  gradcheck("mean", [](auto& v) { return ag::mean(v[0]); }, {random_tensor({2, 3}, rng)});
}

TEST(Gradcheck, Views) {
  Rng rng(2);
  const Tensor x = random_tensor({2, 3, 4}, rng);
  // Each view is followed by a multiply so the gradient flowing back is not uniform.
  const Var w(random_tensor({4, 3, 2}, rng));
  gradcheck("reshape", [](auto& v) { return ag::reshape(v[0], {6, 4}); }, {x});
  gradcheck("transpose", [&](auto& v) { return ag::mul(ag::transpose(v[0], 0, 2), w); }, {x});
  gradcheck("permute", [](auto& v) { return ag::contiguous(ag::permute(v[0], {2, 0, 1})); }, {x});
  gradcheck("slice", [](auto& v) { return ag::slice(v[0], 2, 1, 3); }, {x});
  gradcheck("expand", [](auto& v) { return ag::expand(v[0], {3, 2, 3, 4}); }, {x});
  gradcheck("reshape of transpose", [](auto& v) { return ag::reshape(ag::transpose(v[0], 1, 2), {2, 12}); }, {x});
}

TEST(Gradcheck, Matmul) {
  Rng rng(3);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const Shape as = ta ? Shape{2, 4, 3} : Shape{2, 3, 4};
      const Shape bs = tb ? Shape{5, 4} : Shape{4, 5};  // batch broadcast for b
      gradcheck(fmt::format("matmul ta={} tb={}", ta, tb),
                [=](auto& v) { return ag::matmul(v[0], v[1], ta, tb); }, {random_tensor(as, rng), random_tensor(bs, rng)});
    }
  }
}

TEST(Gradcheck, Linear) {
  Rng rng(4);
  gradcheck("linear with bias", [](auto& v) { return ag::linear(v[0], v[1], v[2]); },
            {random_tensor({2, 3, 5}, rng), random_tensor({4, 5}, rng), random_tensor({4}, rng)});
  gradcheck("linear without bias", [](auto& v) { return ag::linear(v[0], v[1], Var()); },
            {random_tensor({3, 5}, rng), random_tensor({2, 5}, rng)});
}

TEST(Gradcheck, Activations) {
  Rng rng(5);
  // Inputs kept away from relu's kink at 0, where the derivative is undefined.
  Tensor x = random_tensor({3, 7}, rng, -2.0f, 2.0f);
  for (int64_t i = 0; i < x.numel(); ++i) {
    float& e = x.data<float>()[i];
    if (std::fabs(e) < 0.1f) e += 0.3f;
  }
  gradcheck("relu", [](auto& v) { return ag::relu(v[0]); }, {x});
  gradcheck("gelu erf", [](auto& v) { return ag::gelu(v[0], kernels::GeluApprox::Erf); }, {x});
  gradcheck("gelu tanh", [](auto& v) { return ag::gelu(v[0], kernels::GeluApprox::Tanh); }, {x});
  gradcheck("silu", [](auto& v) { return ag::silu(v[0]); }, {x});
}

TEST(Gradcheck, SoftmaxAndNorms) {
  Rng rng(6);
  const Tensor x = random_tensor({3, 6}, rng, -2.0f, 2.0f);
  gradcheck("softmax", [](auto& v) { return ag::softmax(v[0]); }, {x});
  gradcheck("log_softmax", [](auto& v) { return ag::log_softmax(v[0]); }, {x});
  gradcheck("layer_norm", [](auto& v) { return ag::layer_norm(v[0], v[1], v[2], 1e-5f); },
            {x, random_tensor({6}, rng, 0.5f, 1.5f), random_tensor({6}, rng)});
  gradcheck("layer_norm without bias", [](auto& v) { return ag::layer_norm(v[0], v[1], Var(), 1e-5f); },
            {x, random_tensor({6}, rng, 0.5f, 1.5f)});
  gradcheck("rms_norm", [](auto& v) { return ag::rms_norm(v[0], v[1], 1e-6f); },
            {x, random_tensor({6}, rng, 0.5f, 1.5f)});
}

TEST(Gradcheck, Dropout) {
  Rng rng(7);
  // The same seed in every evaluation gives the same mask, so the op is a fixed linear map.
  gradcheck("dropout", [](auto& v) {
    Rng r(5);
    return ag::dropout(v[0], 0.3f, r);
  }, {random_tensor({4, 8}, rng)});
}

TEST(Gradcheck, EmbeddingAndCrossEntropy) {
  Rng rng(8);
  const Tensor ids = Tensor::from_ids({1, 3, 1, 0, 2}, {5});  // repeated id: scatter-add must sum
  gradcheck("embedding", [&](auto& v) { return ag::embedding(v[0], ids); }, {random_tensor({4, 3}, rng)});
  const Tensor targets = Tensor::from_ids({2, 0, 4, 1}, {4});
  for (float smoothing : {0.0f, 0.1f}) {
    gradcheck(fmt::format("cross_entropy smoothing {}", smoothing),
              [&](auto& v) { return ag::cross_entropy(v[0], targets, smoothing, /*ignore_index=*/0); },
              {random_tensor({4, 5}, rng, -2.0f, 2.0f)});
  }
}

TEST(Gradcheck, Attention) {
  Rng rng(9);
  const int64_t B = 2, T = 5, H = 4, KVH = 2, D = 3;
  Tensor key_valid = Tensor::empty({B, T}, DType::U8);
  for (int64_t i = 0; i < B * T; ++i) key_valid.data<uint8_t>()[i] = !(i == 4 || i == 8 || i == 9);
  for (bool causal : {false, true}) {
    ag::AttentionSpec spec{H, KVH, D, causal, &key_valid, 0.0f};
    // Fused self-attention layout: q, k, v are column ranges of one [B, T, (H + 2 KVH) D] tensor.
    gradcheck(fmt::format("self-attention fused qkv causal={}", causal), [&](auto& v) {
      return ag::attention({v[0], 0}, {v[0], H * D}, {v[0], (H + KVH) * D}, spec);
    }, {random_tensor({B, T, (H + 2 * KVH) * D}, rng, -2.0f, 2.0f)});
  }
  ag::AttentionSpec cross{H, H, D, false, nullptr, 0.0f};
  gradcheck("cross-attention, separate q and kv", [&](auto& v) {
    return ag::attention({v[0], 0}, {v[1], 0}, {v[1], H * D}, cross);
  }, {random_tensor({B, 3, H * D}, rng, -2.0f, 2.0f), random_tensor({B, T, 2 * H * D}, rng, -2.0f, 2.0f)});
}

TEST(Autograd, GradientsAccumulateUntilZeroed) {
  Var w(Tensor::from_vector({2.0f}, {1}), true);
  ag::sum(ag::scale(w, 3.0f)).backward();
  ag::sum(ag::scale(w, 3.0f)).backward();
  EXPECT_FLOAT_EQ(w.grad().item(), 6.0f);
  w.zero_grad();
  EXPECT_FLOAT_EQ(w.grad().item(), 0.0f);
}

TEST(Autograd, SharedInputGetsSummedGradient) {
  Var x(Tensor::from_vector({3.0f}, {1}), true);
  ag::sum(ag::mul(x, x)).backward();  // d(x^2)/dx = 2x
  EXPECT_FLOAT_EQ(x.grad().item(), 6.0f);
}

TEST(Autograd, NoGradModeRecordsNothing) {
  Var w(Tensor::from_vector({1.0f, 2.0f}, {2}), true);
  ag::NoGradGuard guard;
  Var y = ag::scale(w, 2.0f);
  EXPECT_FALSE(y.requires_grad());
}

TEST(Autograd, CheckNumericsNamesTheFirstBadOp) {
  ag::set_check_numerics(true);
  Var x(Tensor::from_vector({1.0f, 0.0f}, {2}), true);
  Var big(Tensor::from_vector({3e38f, 3e38f}, {2}), true);
  try {
    ag::scale(ag::add(x, big), 10.0f);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("scale"), std::string::npos) << e.what();
  }
  ag::set_check_numerics(false);
}

TEST(Autograd, ShapeErrorsNameOpAndShapes) {
  Var a(Tensor::zeros({2, 3})), b(Tensor::zeros({4, 5}));
  try {
    ag::matmul(a, b);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("matmul"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 5]"), std::string::npos) << msg;
  }
}

}  // namespace
