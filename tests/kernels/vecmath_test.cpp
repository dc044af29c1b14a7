// Accuracy of the vectorisable approximations in kernels/vecmath.h against libm (double).
#include "kernels/vecmath.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace tcat::kernels;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr double kMinNormal = std::numeric_limits<float>::min();
constexpr double kMinSubnormal = std::numeric_limits<float>::denorm_min();

// Spacing of floats at the float nearest to v (v >= 0, normal range).
double ulp_at(double v) {
  const float f = float(v);
  return double(std::nextafter(f, kInf)) - double(f);
}

// Points of [lo, hi] spaced by 1e-6 relative (1e-5 absolute near 0): a few million.
template <typename F>
void sweep(float lo, float hi, F&& f) {
  for (float x = lo; x <= hi; x += std::max(std::fabs(x) * 1e-6f, 1e-5f)) f(x);
}

TEST(VecMath, ExpWithinTwoUlpOverTheWholeRange) {
  double worst_ulp = 0, worst_subnormal = 0;
  sweep(-104.0f, 88.72f, [&](float x) {
    const double want = std::exp(double(x));
    const double err = std::fabs(double(vexp(x)) - want);
    if (want >= kMinNormal) {
      worst_ulp = std::max(worst_ulp, err / ulp_at(want));
    } else {
      worst_subnormal = std::max(worst_subnormal, err / kMinSubnormal);
    }
  });
  EXPECT_LE(worst_ulp, 2.0);
  EXPECT_LE(worst_subnormal, 1.0);  // gradual underflow: within one subnormal step
}

TEST(VecMath, ExpSpecialValues) {
  EXPECT_EQ(vexp(0.0f), 1.0f);
  EXPECT_EQ(vexp(-kInf), 0.0f);
  EXPECT_EQ(vexp(kInf), kInf);
  EXPECT_TRUE(std::isnan(vexp(std::nanf(""))));
  EXPECT_EQ(vexp(100.0f), kInf);
  EXPECT_EQ(vexp(89.0f), kInf);
  EXPECT_EQ(vexp(-110.0f), 0.0f);
  EXPECT_EQ(vexp(-1e30f), 0.0f);
  EXPECT_TRUE(std::isfinite(vexp(88.72f)));
  EXPECT_GT(vexp(-100.0f), 0.0f);  // 3.7e-44, a subnormal
}

TEST(VecMath, ErfcRelativeAccuracy) {
  double worst_core = 0, worst_tail = 0;
  sweep(-10.0f, 9.0f, [&](float x) {
    const double want = std::erfc(double(x));
    const double rel = std::fabs(double(verfc(x)) - want) / want;
    if (x <= 1.0f) {
      worst_core = std::max(worst_core, rel);
    } else {
      // The rounding of x^2 inside exp(-x^2) grows the error like (1 + x^2).
      worst_tail = std::max(worst_tail, rel / (1.0 + double(x) * double(x)));
    }
  });
  EXPECT_LE(worst_core, 5e-7);
  EXPECT_LE(worst_tail, 3e-7);
  EXPECT_EQ(verfc(kInf), 0.0f);
  EXPECT_EQ(verfc(-kInf), 2.0f);
  EXPECT_EQ(verfc(100.0f), 0.0f);
  EXPECT_TRUE(std::isnan(verfc(std::nanf(""))));
}

TEST(VecMath, ErfAbsoluteErrorBelow1e6) {
  double worst = 0;
  for (int i = -100000; i <= 100000; ++i) {
    const float x = float(i) * 1e-4f;
    worst = std::max(worst, std::fabs(double(1.0f - verfc(x)) - std::erf(double(x))));
  }
  EXPECT_LE(worst, 1e-6);
}

TEST(VecMath, SigmoidAndComplementKeepRelativeAccuracy) {
  double worst = 0;
  sweep(-100.0f, 100.0f, [&](float x) {
    const SigmoidPair p = vsigmoid(x);
    const double s = 1 / (1 + std::exp(-double(x))), c = 1 / (1 + std::exp(double(x)));
    EXPECT_FALSE(std::isnan(p.s) || std::isnan(p.complement));
    if (s >= kMinNormal) worst = std::max(worst, std::fabs(p.s - s) / s);
    if (c >= kMinNormal) worst = std::max(worst, std::fabs(p.complement - c) / c);
  });
  EXPECT_LE(worst, 3e-7);
  EXPECT_EQ(vsigmoid(kInf).s, 1.0f);
  EXPECT_EQ(vsigmoid(kInf).complement, 0.0f);
  EXPECT_EQ(vsigmoid(-kInf).s, 0.0f);
  EXPECT_EQ(vsigmoid(-1e30f).complement, 1.0f);
}

}  // namespace
