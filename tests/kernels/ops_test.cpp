// Every kernel in kernels/ops.h against the double-precision references in reference.h, on random
// inputs of odd sizes (1, 7, 33, 1000), shapes large enough to take the OpenMP path, and strided
// (non-contiguous) inputs. The references' own backward formulas are checked against finite
// differences. Default tolerance: |got - ref| <= 1e-5 * |ref|; looser ones say why.
#include "kernels/ops.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "core/rng.h"
#include "core/tensor.h"
#include "reference.h"

using namespace tcat;
using namespace tcat::kernels;
using ref::Vec;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

Tensor random_tensor(const Shape& shape, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(size_t(shape_numel(shape)));
  for (float& x : v) x = rng.normal() * scale;
  return Tensor::from_vector(v, shape);
}

// The same values as `t` in a strided layout (every other element of a larger buffer).
Tensor strided(const Tensor& t) {
  Shape wide = t.shape();
  wide.push_back(2);
  Tensor view = Tensor::zeros(wide, t.dtype()).select(-1, 0);
  view.copy_from(t);
  return view;
}

struct Tol {
  double rtol = 1e-5;
  double atol = 0;
};

double max_abs(const Vec& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// |got - ref| <= atol + rtol*|ref| for every element (NaN only where ref is NaN); reports the worst.
void expect_close(const std::vector<float>& got, const Vec& ref, Tol tol = {}) {
  ASSERT_EQ(got.size(), ref.size());
  size_t bad = 0, worst = 0;
  double worst_excess = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(ref[i]) || std::isnan(got[i])) {
      if (std::isnan(ref[i]) != std::isnan(got[i])) ++bad, worst = i, worst_excess = INFINITY;
      continue;
    }
    if (std::isinf(ref[i]) && got[i] == ref[i]) continue;
    const double excess = std::fabs(double(got[i]) - ref[i]) - (tol.atol + tol.rtol * std::fabs(ref[i]));
    if (excess > 0) {
      ++bad;
      if (excess > worst_excess) worst_excess = excess, worst = i;
    }
  }
  EXPECT_EQ(bad, 0u) << bad << " of " << got.size() << " elements out of tolerance; worst at " << worst << ": got "
                     << got[worst] << ", want " << ref[worst] << " (rtol " << tol.rtol << ", atol " << tol.atol << ")";
}

void expect_close(const Tensor& got, const Vec& ref, Tol tol = {}) {
  EXPECT_TRUE(got.is_contiguous());
  expect_close(got.to_vector(), ref, tol);
}

// Tolerance for results that are sums of terms of both signs (backward passes, normalised
// values): an element can cancel to near zero, where only an error relative to the tensor's
// scale is meaningful, so atol = 1e-6 * max|ref| is added to the 1e-5 relative bound.
Tol cancelling(const Vec& ref) { return {1e-5, 1e-6 * max_abs(ref)}; }

// Results in the subnormal range (GELU's far negative tail) cannot carry 1e-5 relative precision.
constexpr Tol kNormalRangeTol{1e-5, std::numeric_limits<float>::min()};

// log-probabilities near 0 (the likeliest class) carry the absolute rounding error of log(sum)
// (a few 1e-8), not a relative one.
constexpr Tol kLogProbTol{1e-5, 1e-6};

// dx of a normalisation is rstd * (dy*gamma - terms that cancel it), so its rounding error scales
// with rstd*|dy*gamma| (large when D = 1, where the variance is 0 and dx is 0 exactly), not |dx|.
Tol norm_dx_tol(const Vec& dx, const Vec& rstd, const Vec& dy, const Vec& gamma) {
  const size_t d = gamma.size();
  double scale = max_abs(dx);
  for (size_t i = 0; i < dy.size(); ++i) scale = std::max(scale, rstd[i / d] * std::fabs(dy[i] * gamma[i % d]));
  return {1e-5, 1e-6 * scale};
}

template <typename F>
void expect_error(F&& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing \"" << part << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// Row-wise op shapes: odd sizes, a strided case is added by each test; the last two exceed the
// parallel threshold (one with long rows, one with many short rows).
const std::vector<Shape> kRowShapes = {{1}, {7}, {33}, {1000}, {3, 7}, {4, 33}, {2, 3, 33}, {40, 1000}, {1000, 33}};

// Runs `check(x)` for x = random_tensor(shape) and for a strided copy of it.
template <typename F>
void for_row_inputs(uint64_t seed, float scale, F&& check) {
  for (const Shape& s : kRowShapes) {
    SCOPED_TRACE("shape " + shape_str(s));
    const Tensor x = random_tensor(s, seed++, scale);
    check(x);
    SCOPED_TRACE("strided");
    check(strided(x));
  }
}

class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

// ---------------------------------------------------------------- arithmetic

struct BroadcastCase {
  Shape a, b;
};

TEST(Binary, AddSubMulMatchReferenceExactly) {
  // One correctly rounded fp32 operation per element: the result equals the double result rounded.
  const std::vector<BroadcastCase> cases = {{{1}, {1}},
                                            {{7}, {7}},
                                            {{1000}, {1000}},
                                            {{33, 7}, {7}},
                                            {{7}, {33, 7}},
                                            {{2, 3, 33}, {3, 1}},
                                            {{1}, {2, 7}},
                                            {{}, {5, 5}},
                                            {{4, 1, 7}, {1, 5, 7}},
                                            {{2, 1}, {1, 3}},
                                            {{40, 1000}, {40, 1000}},
                                            {{300, 257}, {257}},
                                            {{40, 1000}, {40, 1}},
                                            {{70000}, {1}},
                                            {{1, 70000}, {70000}},
                                            {{64, 1, 1000}, {1, 1, 1000}}};
  const std::vector<std::pair<Tensor (*)(const Tensor&, const Tensor&), double (*)(double, double)>> ops = {
      {add, [](double x, double y) { return x + y; }},
      {sub, [](double x, double y) { return x - y; }},
      {mul, [](double x, double y) { return x * y; }}};
  uint64_t seed = 1;
  for (const BroadcastCase& c : cases) {
    SCOPED_TRACE(shape_str(c.a) + " op " + shape_str(c.b));
    const Tensor a = random_tensor(c.a, seed++), b = random_tensor(c.b, seed++);
    const Shape out = broadcast_shapes(c.a, c.b, "test");
    for (const auto& [op, f] : ops) {
      const Vec want = ref::broadcast_binary(ref::values(a), c.a, ref::values(b), c.b, out, f);
      Vec rounded(want.size());
      for (size_t i = 0; i < want.size(); ++i) rounded[i] = double(float(want[i]));
      for (const Tensor& aa : {a, strided(a)}) {
        const Tensor got = op(aa, strided(b));
        EXPECT_EQ(got.shape(), out);
        expect_close(got, rounded, {0, 0});
      }
    }
  }
}

TEST(Binary, ShapeMismatchNamesOpAndShapes) {
  expect_error([] { add(Tensor::zeros({2, 3}), Tensor::zeros({4})); }, "add: shapes [2, 3] and [4]");
  expect_error([] { mul(Tensor::zeros({5}), Tensor::zeros({2, 3})); }, "mul: shapes [5] and [2, 3]");
}

TEST(Scale, MatchesReference) {
  for (const Shape& s : kRowShapes) {
    const Tensor x = random_tensor(s, 3);
    Vec want = ref::values(x);
    for (double& v : want) v = double(float(v * double(0.37f)));  // one rounding, as in the kernel
    expect_close(scale(strided(x), 0.37f), want, {0, 0});
  }
}

TEST(AddInplace, AccumulatesAlphaTimesSource) {
  for (const Shape& s : kRowShapes) {
    SCOPED_TRACE(shape_str(s));
    Tensor dst = random_tensor(s, 4);
    const Tensor src = random_tensor(s, 5);
    const Vec d0 = ref::values(dst), s0 = ref::values(src);
    add_inplace(dst, strided(src), -0.5f);
    Vec want(d0.size());
    for (size_t i = 0; i < d0.size(); ++i) want[i] = d0[i] - 0.5 * s0[i];
    expect_close(dst, want, {1e-6, 1e-7});  // two roundings (product, sum) of O(1) values
  }
}

TEST(AddInplace, StridedDestinationIsUpdatedInPlace) {
  Tensor base = random_tensor({7, 33}, 6);
  Tensor dst = base.transpose(0, 1);  // a view into base
  const Tensor src = random_tensor({33, 7}, 7);
  const Vec d0 = ref::values(dst), s0 = ref::values(src);
  add_inplace(dst, src);
  Vec want(d0.size());
  for (size_t i = 0; i < d0.size(); ++i) want[i] = d0[i] + s0[i];
  expect_close(dst.to_vector(), want, {1e-6, 0});
  expect_close(base.transpose(0, 1).to_vector(), want, {1e-6, 0});
}

TEST(AddInplace, ShapeMismatchIsAnError) {
  Tensor dst = Tensor::zeros({3, 4});
  expect_error(
      [&] {
        add_inplace(dst, Tensor::zeros({4, 3}));
      },
      "add_inplace: dst f32[3, 4] does not match src f32[4, 3]");
}

TEST(SumToShape, ReducesBroadcastDimensions) {
  const std::vector<BroadcastCase> cases = {{{33, 7}, {7}},
                                            {{33, 7}, {33, 1}},
                                            {{2, 3, 4}, {3, 1}},
                                            {{2, 3, 4}, {1, 3, 1}},
                                            {{5, 7}, {}},
                                            {{7}, {7}},
                                            {{2, 1, 3}, {1, 3}},
                                            {{4, 5, 6}, {4, 1, 6}},
                                            {{300, 257}, {257}},
                                            {{40, 1000}, {40, 1}},
                                            {{1000, 33}, {1, 33}},
                                            {{8, 5, 1000}, {5, 1}},
                                            {{1000}, {1}},
                                            {{70000}, {}},
                                            {{3, 70000}, {1, 70000}},
                                            {{2, 3, 4, 5}, {3, 1, 5}}};
  uint64_t seed = 10;
  for (const BroadcastCase& c : cases) {
    SCOPED_TRACE(shape_str(c.a) + " -> " + shape_str(c.b));
    const Tensor g = random_tensor(c.a, seed++);
    const Vec want = ref::sum_to_shape(ref::values(g), c.a, c.b);
    for (const Tensor& gg : {g, strided(g)}) {
      const Tensor got = sum_to_shape(gg, c.b);
      EXPECT_EQ(got.shape(), c.b);
      expect_close(got, want, cancelling(want));  // sums of terms of both signs
    }
  }
}

TEST(SumToShape, IsTheAdjointOfBroadcasting) {
  // <broadcast(v), g> == <v, sum_to_shape(g)> for every v: checked for the basis vectors.
  const Shape small{3, 1, 5}, big{2, 3, 4, 5};
  const Vec g = ref::values(random_tensor(big, 30));
  const Vec summed = ref::values(sum_to_shape(Tensor::from_vector(std::vector<float>(g.begin(), g.end()), big), small));
  for (int64_t k = 0; k < shape_numel(small); ++k) {
    Vec v(size_t(shape_numel(small)), 0.0);
    v[size_t(k)] = 1;
    const Vec bv = ref::broadcast_binary(v, small, {0.0}, {}, big, [](double x, double) { return x; });
    double dot = 0;
    for (size_t i = 0; i < g.size(); ++i) dot += bv[i] * g[i];
    EXPECT_NEAR(summed[size_t(k)], dot, 1e-5 * (1 + std::fabs(dot)));
  }
}

TEST(SumToShape, UnreachableShapeIsAnError) {
  expect_error([] { sum_to_shape(Tensor::zeros({3}), {2, 3}); }, "sum_to_shape: f32[3] cannot be summed to [2, 3]");
  expect_error([] { sum_to_shape(Tensor::zeros({4, 3}), {2}); }, "sum_to_shape");
}

TEST(SumAll, MatchesReference) {
  for (const Shape& s : {Shape{1}, Shape{7}, Shape{1000}, Shape{300, 257}, Shape{3, 100000}}) {
    SCOPED_TRACE(shape_str(s));
    const Tensor x = random_tensor(s, 40);
    double want = 0;
    for (double v : ref::values(x)) want += v;
    const Tensor got = sum_all(strided(x));
    EXPECT_EQ(got.ndim(), 0);
    EXPECT_NEAR(got.item(), want, 1e-6 * std::fabs(want) + 1e-6);  // double accumulation, one final rounding
  }
}

TEST(AllFinite, DetectsNanAndInfAnywhere) {
  for (int64_t n : {1, 7, 33, 1000, 100000}) {
    Tensor x = random_tensor({n}, 50, 1e30f);
    EXPECT_TRUE(all_finite(x));
    for (float bad : {std::nanf(""), kInf, -kInf}) {
      for (int64_t at : {int64_t(0), n / 2, n - 1}) {
        Tensor y = x.clone();
        y.data<float>()[at] = bad;
        EXPECT_FALSE(all_finite(y)) << "n " << n << " at " << at << " value " << bad;
        EXPECT_FALSE(all_finite(strided(y)));
      }
    }
  }
  EXPECT_TRUE(all_finite(Tensor::full({3}, std::numeric_limits<float>::max())));
}

// ---------------------------------------------------------------- activations

struct Activation {
  const char* name;
  Tensor (*forward)(const Tensor&);
  Tensor (*backward)(const Tensor&, const Tensor&);
  double (*f)(double);
  double (*fprime)(double);
};

const std::vector<Activation>& activations() {
  static const std::vector<Activation> all = {
      {"relu", relu, relu_backward, ref::relu, ref::relu_grad},
      {"gelu_erf", [](const Tensor& x) { return gelu(x, GeluApprox::Erf); },
       [](const Tensor& x, const Tensor& dy) { return gelu_backward(x, dy, GeluApprox::Erf); }, ref::gelu_erf,
       ref::gelu_erf_grad},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, GeluApprox::Tanh); },
       [](const Tensor& x, const Tensor& dy) { return gelu_backward(x, dy, GeluApprox::Tanh); }, ref::gelu_tanh,
       ref::gelu_tanh_grad},
      {"silu", silu, silu_backward, ref::silu, ref::silu_grad}};
  return all;
}

TEST(Activation, ForwardMatchesReference) {
  for (const Activation& a : activations()) {
    SCOPED_TRACE(a.name);
    for_row_inputs(
        60, 3.0f, [&](const Tensor& x) { expect_close(a.forward(x), ref::map(ref::values(x), a.f), kNormalRangeTol); });
  }
}

TEST(Activation, BackwardMatchesReference) {
  for (const Activation& a : activations()) {
    SCOPED_TRACE(a.name);
    for_row_inputs(70, 3.0f, [&](const Tensor& x) {
      const Tensor dy = random_tensor(x.shape(), 71);
      const Vec want = ref::map_grad(ref::values(x), ref::values(dy), a.fprime);
      // GELU's derivative crosses zero (x ~ -0.75), where only an absolute error is meaningful.
      expect_close(a.backward(x, strided(dy)), want, cancelling(want));
    });
  }
}

TEST(Activation, FiniteAndAccurateFromMinus100To100) {
  std::vector<float> xs;
  for (int i = -20000; i <= 20000; ++i) xs.push_back(float(i) * 0.005f);
  const Tensor x = Tensor::from_vector(xs, {int64_t(xs.size())});
  const Tensor ones = Tensor::full(x.shape(), 1.0f);
  for (const Activation& a : activations()) {
    SCOPED_TRACE(a.name);
    const Tensor y = a.forward(x), dx = a.backward(x, ones);
    EXPECT_TRUE(all_finite(y));
    EXPECT_TRUE(all_finite(dx));
    // For x < -10 GELU-erf (|y| < 1e-22) inherits erfc's tail error, ~(1 + x^2/2) * 3e-7 from
    // rounding x^2 (vecmath.h), hence 5e-5 here; random-input tests above keep 1e-5.
    expect_close(y, ref::map(ref::values(x), a.f), {5e-5, kNormalRangeTol.atol});
    const Vec want = ref::map_grad(ref::values(x), ref::values(ones), a.fprime);
    expect_close(dx, want, cancelling(want));
  }
}

TEST(Activation, ReferenceDerivativesMatchFiniteDifferences) {
  const Vec x = ref::values(random_tensor({200}, 80, 3.0f));
  const Vec w = ref::values(random_tensor({200}, 81));
  for (const Activation& a : activations()) {
    SCOPED_TRACE(a.name);
    const Vec numeric = ref::numeric_vjp([&](const Vec& v) { return ref::map(v, a.f); }, x, w);
    const Vec analytic = ref::map_grad(x, w, a.fprime);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(analytic[i], numeric[i], 1e-7) << "x = " << x[i];
  }
}

TEST(Activation, ShapeMismatchIsAnError) {
  expect_error(
      [] {
        gelu_backward(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}), GeluApprox::Erf);
      },
      "gelu_backward: dy f32[3, 2] does not match x f32[2, 3]");
}

// ---------------------------------------------------------------- softmax

TEST(Softmax, ForwardMatchesReference) {
  for_row_inputs(90, 5.0f, [](const Tensor& x) {
    const int64_t d = x.dim(-1);
    expect_close(softmax(x), ref::softmax(ref::values(x), d));
    expect_close(log_softmax(x), ref::log_softmax(ref::values(x), d), kLogProbTol);
  });
}

TEST(Softmax, BackwardMatchesReference) {
  for_row_inputs(100, 5.0f, [](const Tensor& x) {
    const int64_t d = x.dim(-1);
    const Tensor dy = random_tensor(x.shape(), 101);
    const Tensor y = softmax(x), ly = log_softmax(x);
    const Vec want = ref::softmax_backward(ref::values(y), ref::values(dy), d);
    expect_close(softmax_backward(strided(y), dy), want, cancelling(want));
    const Vec lwant = ref::log_softmax_backward(ref::values(ly), ref::values(dy), d);
    expect_close(log_softmax_backward(ly, strided(dy)), lwant, cancelling(lwant));
  });
}

TEST(Softmax, NegativeInfinityAndHugeLogits) {
  const Tensor x = Tensor::from_vector({-kInf, 1.0f, 2.0f, -kInf, 3e4f, 3e4f + 1.0f, -3e4f, -kInf}, {2, 4});
  const Vec xs = ref::values(x);
  const Tensor y = softmax(x), ly = log_softmax(x);
  EXPECT_EQ(y.at({0, 0}), 0.0f);
  EXPECT_EQ(y.at({0, 3}), 0.0f);
  EXPECT_EQ(y.at({1, 3}), 0.0f);
  EXPECT_EQ(ly.at({0, 0}), -kInf);
  expect_close(y, ref::softmax(xs, 4));
  expect_close(ly, ref::log_softmax(xs, 4), kLogProbTol);
  // The backward of a -inf entry is 0 (its probability is 0).
  const Tensor dy = Tensor::full({2, 4}, 1.0f);
  EXPECT_TRUE(all_finite(softmax_backward(y, dy)));
  EXPECT_EQ(log_softmax_backward(ly, dy).at({0, 0}), 1.0f);
}

TEST(Softmax, NanPoisonsItsRowOnly) {
  const Tensor x = Tensor::from_vector({1.0f, std::nanf(""), 2.0f, 1.0f, 2.0f, 3.0f}, {2, 3});
  for (const Tensor& y : {softmax(x), log_softmax(x)}) {
    for (int64_t j = 0; j < 3; ++j) EXPECT_TRUE(std::isnan(y.at({0, j})));
    EXPECT_TRUE(all_finite(y.slice(0, 1, 2)));
  }
  EXPECT_TRUE(std::isnan(cross_entropy(x, Tensor::from_ids({0, 1}, {2}), 0.0f, -100, nullptr)));
}

TEST(Softmax, ReferenceBackwardMatchesFiniteDifferences) {
  const int64_t d = 9;
  const Vec x = ref::values(random_tensor({3, d}, 110, 2.0f));
  const Vec w = ref::values(random_tensor({3, d}, 111));
  const Vec ns = ref::numeric_vjp([&](const Vec& v) { return ref::softmax(v, d); }, x, w);
  const Vec as = ref::softmax_backward(ref::softmax(x, d), w, d);
  const Vec nl = ref::numeric_vjp([&](const Vec& v) { return ref::log_softmax(v, d); }, x, w);
  const Vec al = ref::log_softmax_backward(ref::log_softmax(x, d), w, d);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(as[i], ns[i], 1e-7);
    EXPECT_NEAR(al[i], nl[i], 1e-7);
  }
}

// ---------------------------------------------------------------- normalisation

TEST(LayerNorm, ForwardMatchesReference) {
  for_row_inputs(120, 2.0f, [](const Tensor& x0) {
    const Tensor x = add(x0, Tensor::full({}, 3.0f));  // a non-zero mean
    const int64_t d = x.dim(-1);
    const Tensor gamma = random_tensor({d}, 121), beta = random_tensor({d}, 122);
    const ref::Norm want = ref::layer_norm(ref::values(x), ref::values(gamma), ref::values(beta), d, 1e-5);
    NormStats stats;
    // y = xhat*gamma + beta cancels to near zero for some elements.
    expect_close(layer_norm(strided(x), gamma, beta, 1e-5f, &stats), want.y, cancelling(want.y));
    expect_close(stats.mean, want.mean, {1e-5, 1e-6});  // the mean of ~N(3, 4) samples
    expect_close(stats.rstd, want.rstd);
    const ref::Norm no_beta = ref::layer_norm(ref::values(x), ref::values(gamma), {}, d, 1e-5);
    expect_close(layer_norm(x, gamma, Tensor(), 1e-5f, nullptr), no_beta.y, cancelling(no_beta.y));
  });
}

TEST(LayerNorm, BackwardMatchesReferenceAndAccumulatesParamGrads) {
  for_row_inputs(130, 2.0f, [](const Tensor& x) {
    const int64_t d = x.dim(-1);
    const Tensor gamma = random_tensor({d}, 131), beta = random_tensor({d}, 132);
    const Tensor dy = random_tensor(x.shape(), 133);
    NormStats stats;
    layer_norm(x, gamma, beta, 1e-5f, &stats);
    Tensor dgamma = Tensor::full({d}, 0.5f), dbeta = Tensor::full({d}, -1.0f);
    const Tensor dx = layer_norm_backward(strided(dy), x, gamma, stats, dgamma, dbeta);
    ref::NormGrads want = ref::layer_norm_backward(ref::values(dy), ref::values(x), ref::values(gamma), d, 1e-5);
    const Tol dx_tol = norm_dx_tol(want.dx, ref::values(stats.rstd), ref::values(dy), ref::values(gamma));
    expect_close(dx, want.dx, dx_tol);
    for (double& v : want.dgamma) v += 0.5;
    for (double& v : want.dbeta) v -= 1.0;
    expect_close(dgamma, want.dgamma, cancelling(want.dgamma));
    expect_close(dbeta, want.dbeta, cancelling(want.dbeta));
    Tensor none;
    expect_close(layer_norm_backward(dy, x, gamma, stats, none, none), want.dx, dx_tol);
  });
}

TEST(RmsNorm, ForwardMatchesReference) {
  for_row_inputs(140, 2.0f, [](const Tensor& x) {
    const int64_t d = x.dim(-1);
    const Tensor gamma = random_tensor({d}, 141);
    const ref::Norm want = ref::rms_norm(ref::values(x), ref::values(gamma), d, 1e-6);
    NormStats stats;
    expect_close(rms_norm(x, gamma, 1e-6f, &stats), want.y);
    EXPECT_FALSE(stats.mean.defined());
    expect_close(stats.rstd, want.rstd);
  });
}

TEST(RmsNorm, BackwardMatchesReferenceAndAccumulatesParamGrads) {
  for_row_inputs(150, 2.0f, [](const Tensor& x) {
    const int64_t d = x.dim(-1);
    const Tensor gamma = random_tensor({d}, 151), dy = random_tensor(x.shape(), 152);
    NormStats stats;
    rms_norm(x, gamma, 1e-6f, &stats);
    Tensor dgamma = Tensor::full({d}, 2.0f);
    const Tensor dx = rms_norm_backward(dy, strided(x), gamma, stats, dgamma);
    ref::NormGrads want = ref::rms_norm_backward(ref::values(dy), ref::values(x), ref::values(gamma), d, 1e-6);
    expect_close(dx, want.dx, norm_dx_tol(want.dx, ref::values(stats.rstd), ref::values(dy), ref::values(gamma)));
    for (double& v : want.dgamma) v += 2.0;
    expect_close(dgamma, want.dgamma, cancelling(want.dgamma));
  });
}

TEST(Norm, ReferenceBackwardMatchesFiniteDifferences) {
  const int64_t d = 6;
  const Vec x = ref::values(random_tensor({3, d}, 160, 2.0f));
  const Vec gamma = ref::values(random_tensor({d}, 161)), beta = ref::values(random_tensor({d}, 162));
  const Vec w = ref::values(random_tensor({3, d}, 163));
  const double eps = 1e-5;
  const ref::NormGrads ln = ref::layer_norm_backward(w, x, gamma, d, eps);
  const Vec ln_dx = ref::numeric_vjp([&](const Vec& v) { return ref::layer_norm(v, gamma, beta, d, eps).y; }, x, w);
  const Vec ln_dg = ref::numeric_vjp([&](const Vec& g) { return ref::layer_norm(x, g, beta, d, eps).y; }, gamma, w);
  const Vec ln_db = ref::numeric_vjp([&](const Vec& b) { return ref::layer_norm(x, gamma, b, d, eps).y; }, beta, w);
  const ref::NormGrads rms = ref::rms_norm_backward(w, x, gamma, d, eps);
  const Vec rms_dx = ref::numeric_vjp([&](const Vec& v) { return ref::rms_norm(v, gamma, d, eps).y; }, x, w);
  const Vec rms_dg = ref::numeric_vjp([&](const Vec& g) { return ref::rms_norm(x, g, d, eps).y; }, gamma, w);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(ln.dx[i], ln_dx[i], 1e-7);
    EXPECT_NEAR(rms.dx[i], rms_dx[i], 1e-7);
  }
  for (size_t i = 0; i < size_t(d); ++i) {
    EXPECT_NEAR(ln.dgamma[i], ln_dg[i], 1e-7);
    EXPECT_NEAR(ln.dbeta[i], ln_db[i], 1e-7);
    EXPECT_NEAR(rms.dgamma[i], rms_dg[i], 1e-7);
  }
}

TEST(Norm, ErrorsNameOpAndShapes) {
  const Tensor x = Tensor::zeros({2, 32});
  expect_error([&] { layer_norm(x, Tensor::zeros({64}), Tensor(), 1e-5f, nullptr); },
               "layer_norm: gamma f32[64] does not match last dim of x f32[2, 32]");
  expect_error([&] { layer_norm(x, Tensor::zeros({32}), Tensor::zeros({31}), 1e-5f, nullptr); },
               "layer_norm: beta f32[31] does not match last dim of x f32[2, 32]");
  expect_error(
      [&] {
        rms_norm(x, Tensor::zeros({2, 32}), 1e-5f, nullptr);
      },
      "rms_norm: gamma f32[2, 32] does not match last dim of x f32[2, 32]");
  NormStats stats;
  layer_norm(x, Tensor::zeros({32}), Tensor(), 1e-5f, &stats);
  Tensor dgamma = Tensor::zeros({31}), none;
  expect_error([&] { layer_norm_backward(x, x, Tensor::zeros({32}), stats, dgamma, none); },
               "layer_norm_backward: dgamma f32[31] must be a contiguous f32[32]");
  expect_error(
      [&] {
        layer_norm_backward(Tensor::zeros({2, 31}), x, Tensor::zeros({32}), stats, none, none);
      },
      "layer_norm_backward: dy f32[2, 31] does not match x f32[2, 32]");
  expect_error([&] { rms_norm_backward(x, x, Tensor::zeros({32}), NormStats{}, none); },
               "rms_norm_backward: stats.rstd <undefined tensor> must be f32[2]");
}

// ---------------------------------------------------------------- dropout

TEST(Dropout, KeepsAboutOneMinusPAndScalesKeptValues) {
  const Tensor x = random_tensor({300, 257}, 170);
  const float p = 0.3f;
  Rng rng(171);
  Tensor mask;
  const Tensor y = dropout(strided(x), p, rng, &mask);
  ASSERT_EQ(mask.dtype(), DType::U8);
  ASSERT_EQ(mask.shape(), x.shape());
  const std::vector<float> xs = x.to_vector(), ys = y.to_vector();
  const uint8_t* m = mask.data<uint8_t>();
  int64_t kept = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    ASSERT_TRUE(m[i] == 0 || m[i] == 1);
    kept += m[i];
    EXPECT_EQ(ys[i], m[i] ? xs[i] * (1.0f / (1.0f - p)) : 0.0f);
  }
  const double frac = double(kept) / double(xs.size());
  EXPECT_NEAR(frac, 0.7, 0.01);  // ~77k Bernoulli(0.7) draws: sd 0.0017

  const Tensor dy = random_tensor(x.shape(), 172);
  const std::vector<float> dys = dy.to_vector(), dxs = dropout_backward(dy, mask, p).to_vector();
  for (size_t i = 0; i < dys.size(); ++i) EXPECT_EQ(dxs[i], m[i] ? dys[i] * (1.0f / (1.0f - p)) : 0.0f);
}

TEST(Dropout, MaskDependsOnlyOnRngStateNotThreadCount) {
  const Tensor x = random_tensor({100, 1000}, 180);
  Tensor mask1, mask2, mask3;
  Tensor y1, y2;
  {
    ThreadCount one(1);
    Rng rng(181);
    y1 = dropout(x, 0.5f, rng, &mask1);
  }
  {
    ThreadCount three(3);
    Rng rng(181);
    y2 = dropout(x, 0.5f, rng, &mask2);
    dropout(x, 0.5f, rng, &mask3);  // the rng moved on: a different mask
  }
  EXPECT_EQ(y1.to_vector(), y2.to_vector());
  EXPECT_EQ(std::memcmp(mask1.raw_data(), mask2.raw_data(), size_t(x.numel())), 0);
  EXPECT_NE(std::memcmp(mask1.raw_data(), mask3.raw_data(), size_t(x.numel())), 0);
}

TEST(Dropout, ZeroPCopiesAndInvalidPIsAnError) {
  const Tensor x = random_tensor({7, 33}, 190);
  Rng rng(191);
  const auto state = rng.state();
  Tensor mask;
  const Tensor y = dropout(x, 0.0f, rng, &mask);
  EXPECT_EQ(y.to_vector(), x.to_vector());
  EXPECT_NE(y.storage(), x.storage());
  EXPECT_EQ(rng.state(), state);
  for (float m : mask.to_vector()) EXPECT_EQ(m, 1.0f);
  EXPECT_EQ(dropout(x, 0.999f, rng, nullptr).shape(), x.shape());
  expect_error([&] { dropout(x, 1.0f, rng, nullptr); }, "dropout: p = 1 is outside [0, 1)");
  expect_error([&] { dropout(x, -0.1f, rng, nullptr); }, "dropout: p = -0.1 is outside [0, 1)");
  expect_error([&] { dropout_backward(x, Tensor::zeros({7, 33}), 0.1f); }, "dropout_backward: mask must be u8");
}

// ---------------------------------------------------------------- embedding

TEST(Embedding, GathersRowsForI64AndI32Ids) {
  for (int64_t d : {1, 7, 33, 1000}) {
    SCOPED_TRACE("D " + std::to_string(d));
    const int64_t vocab = 50;
    const Tensor weight = random_tensor({vocab, d}, 200);
    Rng rng(201);
    std::vector<int64_t> ids(2 * 40);
    for (int64_t& id : ids) id = int64_t(rng.below(uint64_t(vocab)));
    const Tensor ids64 = Tensor::from_ids(ids, {2, 40});
    const Vec want = ref::embedding(ref::values(weight), ids, d);
    for (const Tensor& id_tensor : {ids64, ids64.to(DType::I32), strided(ids64)}) {
      const Tensor out = embedding(strided(weight), id_tensor);
      EXPECT_EQ(out.shape(), (Shape{2, 40, d}));
      expect_close(out, want, {0, 0});
    }
  }
}

TEST(Embedding, OutOfRangeIdNamesIdAndVocab) {
  const Tensor weight = Tensor::zeros({10, 4});
  expect_error(
      [&] {
        embedding(weight, Tensor::from_ids({3, 10, 1}, {3}));
      },
      "embedding: id 10 at position 1 is outside the vocab size 10");
  expect_error([&] { embedding(weight, Tensor::from_ids({-1}, {1})); }, "id -1");
  expect_error([&] { embedding(weight, Tensor::zeros({3})); }, "embedding: ids must be i64 or i32, got f32[3]");
}

TEST(Embedding, BackwardScatterAddsDeterministically) {
  for (int64_t d : {1, 7, 33, 1000}) {
    SCOPED_TRACE("D " + std::to_string(d));
    const int64_t vocab = 20, count = 300;  // many repeated ids
    Rng rng(210);
    std::vector<int64_t> ids(static_cast<size_t>(count));
    for (int64_t& id : ids) id = int64_t(rng.below(uint64_t(vocab)));
    const Tensor id_tensor = Tensor::from_ids(ids, {3, count / 3});
    const Tensor dy = random_tensor({3, count / 3, d}, 211);
    const Tensor start = random_tensor({vocab, d}, 212);
    Vec want = ref::embedding_backward(ids, ref::values(dy), vocab, d);
    const Vec s0 = ref::values(start);
    for (size_t i = 0; i < want.size(); ++i) want[i] += s0[i];
    std::vector<float> by_threads[2];
    for (int t : {1, 2}) {
      ThreadCount threads(t);
      Tensor dweight = start.clone();
      embedding_backward(dweight, id_tensor, strided(dy));
      // Up to ~20 O(1) terms summed per element in fp32.
      expect_close(dweight, want, {1e-5, 1e-6});
      by_threads[t - 1] = dweight.to_vector();
    }
    EXPECT_EQ(by_threads[0], by_threads[1]);
  }
}

TEST(Embedding, BackwardShapeErrors) {
  Tensor dweight = Tensor::zeros({10, 4});
  expect_error(
      [&] {
        embedding_backward(dweight, Tensor::from_ids({1, 2}, {2}), Tensor::zeros({2, 5}));
      },
      "embedding_backward: dy f32[2, 5] does not match ids i64[2] and dweight f32[10, 4]");
  expect_error(
      [&] {
        embedding_backward(dweight, Tensor::from_ids({1, 12}, {2}), Tensor::zeros({2, 4}));
      },
      "embedding_backward: id 12 at position 1 is outside the vocab size 10");
}

// ---------------------------------------------------------------- cross-entropy

struct CeCase {
  int64_t rows, classes;
};

TEST(CrossEntropy, LossLogProbsAndGradientMatchReference) {
  const std::vector<CeCase> cases = {{1, 1}, {1, 7}, {7, 33}, {33, 1000}, {64, 1000}, {3, 50000}};
  const int64_t ignore = -100;
  uint64_t seed = 220;
  for (const CeCase& c : cases) {
    for (float smoothing : {0.0f, 0.1f}) {
      SCOPED_TRACE(std::to_string(c.rows) + "x" + std::to_string(c.classes) + " e " + std::to_string(smoothing));
      const Tensor logits = random_tensor({c.rows, c.classes}, seed++, 4.0f);
      Rng rng(seed++);
      std::vector<int64_t> targets(static_cast<size_t>(c.rows));
      for (size_t r = 0; r < targets.size(); ++r) {
        targets[r] = r % 5 == 3 ? ignore : int64_t(rng.below(uint64_t(c.classes)));
      }
      const Tensor t = Tensor::from_ids(targets, {c.rows});
      const Vec x = ref::values(logits);
      CrossEntropySaved saved;
      const float loss = cross_entropy(strided(logits), t, smoothing, ignore, &saved);
      const double want = ref::cross_entropy(x, targets, c.classes, smoothing, ignore);
      EXPECT_NEAR(loss, want, 1e-5 * std::fabs(want));
      EXPECT_EQ(saved.count, c.rows - c.rows / 5 - (c.rows % 5 > 3));
      expect_close(saved.log_probs, ref::log_softmax(x, c.classes), kLogProbTol);
      EXPECT_EQ(cross_entropy(logits, t.to(DType::I32), smoothing, ignore, nullptr), loss);
      const Vec gwant = ref::cross_entropy_grad(x, targets, c.classes, smoothing, ignore, 1.7);
      // softmax - target probability cancels to ~0 for confident rows: atol relative to dloss/count.
      const double unit = 1.7 / double(saved.count);
      expect_close(cross_entropy_backward(saved, t, smoothing, ignore, 1.7f), gwant,
                   {1e-5, 1e-6 * std::max(max_abs(gwant), unit)});
    }
  }
}

TEST(CrossEntropy, AllRowsIgnoredGivesZeroLossAndGradient) {
  const Tensor logits = random_tensor({3, 5}, 240);
  const Tensor t = Tensor::from_ids({-1, -1, -1}, {3});
  CrossEntropySaved saved;
  EXPECT_EQ(cross_entropy(logits, t, 0.1f, -1, &saved), 0.0f);
  EXPECT_EQ(saved.count, 0);
  for (float g : cross_entropy_backward(saved, t, 0.1f, -1, 1.0f).to_vector()) EXPECT_EQ(g, 0.0f);
}

TEST(CrossEntropy, BadTargetsAreErrors) {
  const Tensor logits = Tensor::zeros({3, 7});
  expect_error(
      [&] {
        cross_entropy(logits, Tensor::from_ids({0, 7, 1}, {3}), 0, -100, nullptr);
      },
      "cross_entropy: target 7 at row 1 is outside [0, 7)");
  expect_error(
      [&] {
        cross_entropy(logits, Tensor::from_ids({0, 1, -5}, {3}), 0, -100, nullptr);
      },
      "cross_entropy: target -5 at row 2 is outside [0, 7)");
  expect_error(
      [&] {
        cross_entropy(logits, Tensor::from_ids({0, 1}, {2}), 0, -100, nullptr);
      },
      "cross_entropy: targets i64[2] do not match the 3 rows of the logits");
  expect_error(
      [&] {
        cross_entropy(Tensor::zeros({3}), Tensor::from_ids({0, 1, 2}, {3}), 0, -100, nullptr);
      },
      "cross_entropy: logits f32[3] must be [N, V]");
}

TEST(CrossEntropy, ReferenceGradientMatchesFiniteDifferences) {
  const int64_t classes = 6;
  const Vec x = ref::values(random_tensor({4, classes}, 250, 2.0f));
  const std::vector<int64_t> targets = {2, -100, 0, 5};
  for (double e : {0.0, 0.2}) {
    const Vec numeric =
        ref::numeric_vjp([&](const Vec& v) { return Vec{ref::cross_entropy(v, targets, classes, e, -100)}; }, x, {1.3});
    const Vec analytic = ref::cross_entropy_grad(x, targets, classes, e, -100, 1.3);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(analytic[i], numeric[i], 1e-7);
  }
}

}  // namespace
