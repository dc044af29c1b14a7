#include <gtest/gtest.h>

#include <cmath>

#include "train/optim.h"

using namespace tcat;

TEST(Schedules, NoamPeaksAtWarmup) {
  train::NoamSchedule s(512, 4000);
  // lr(step) = 512^-0.5 * min(step^-0.5, step * 4000^-1.5): peak 6.99e-4 at step 4000.
  EXPECT_NEAR(s.at(4000), std::pow(512.0, -0.5) * std::pow(4000.0, -0.5), 1e-9);
  EXPECT_LT(s.at(3999), s.at(4000));
  EXPECT_LT(s.at(4001), s.at(4000));
  EXPECT_NEAR(s.at(1), std::pow(512.0, -0.5) * std::pow(4000.0, -1.5), 1e-12);
}

TEST(Schedules, CosineWarmsUpThenDecaysToMinimum) {
  train::CosineSchedule s(1e-3f, 10, 110, 1e-5f);
  EXPECT_FLOAT_EQ(s.at(5), 5e-4f);
  EXPECT_FLOAT_EQ(s.at(10), 1e-3f);
  EXPECT_NEAR(s.at(60), 0.5f * (1e-3f + 1e-5f), 1e-8f);
  EXPECT_FLOAT_EQ(s.at(110), 1e-5f);
  EXPECT_FLOAT_EQ(s.at(500), 1e-5f);
  EXPECT_THROW(train::CosineSchedule(1e-3f, 10, 10), Error);
}

TEST(Adam, FirstStepMovesEachWeightByLearningRate) {
  // With bias correction the first Adam step is lr * g / (|g| + eps') = lr * sign(g).
  ag::Var w(Tensor::from_vector({1.0f, -2.0f, 3.0f}, {3}), true, "w");
  w.impl()->grad = Tensor::from_vector({0.5f, -4.0f, 0.0f}, {3});
  train::Adam adam({{{w}, 0.0f}}, {});
  adam.step(0.1f);
  const auto v = w.value().to_vector();
  EXPECT_NEAR(v[0], 0.9f, 1e-6f);
  EXPECT_NEAR(v[1], -1.9f, 1e-6f);
  EXPECT_NEAR(v[2], 3.0f, 1e-6f);
}

TEST(Adam, DecoupledWeightDecayShrinksOnlyDecayedGroup) {
  ag::Var matrix(Tensor::full({2, 2}, 1.0f), true), vec(Tensor::full({2}, 1.0f), true);
  matrix.impl()->grad = Tensor::zeros({2, 2});
  vec.impl()->grad = Tensor::zeros({2});
  train::Adam adamw(train::decay_groups({matrix, vec}, 0.1f), {0.9f, 0.999f, 1e-8f, true});
  adamw.step(0.5f);
  EXPECT_NEAR(matrix.value().to_vector()[0], 1.0f - 0.5f * 0.1f, 1e-6f);
  EXPECT_NEAR(vec.value().to_vector()[0], 1.0f, 1e-6f);
}

TEST(ClipGradNorm, ScalesToMaxNorm) {
  ag::Var a(Tensor::zeros({2}), true), b(Tensor::zeros({1}), true);
  a.impl()->grad = Tensor::from_vector({3.0f, 0.0f}, {2});
  b.impl()->grad = Tensor::from_vector({4.0f}, {1});
  EXPECT_FLOAT_EQ(train::clip_grad_norm({a, b}, 1.0f), 5.0f);
  EXPECT_NEAR(a.grad().to_vector()[0], 0.6f, 1e-6f);
  EXPECT_NEAR(b.grad().to_vector()[0], 0.8f, 1e-6f);
}
