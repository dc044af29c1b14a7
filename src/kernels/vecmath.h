// Vectorisable float approximations of exp, erfc and the logistic sigmoid, and fast reductions,
// for the kernel hot loops. Straight-line code (no branches, no libm calls), always inlined, so a
// loop calling them compiles to SIMD in each run-time ISA clone (dispatch.h). Accuracy is tested
// against libm in tests/kernels/vecmath_test.cpp. Internal to src/kernels.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace tcat::kernels {

// c ? a : b as bit masks. A plain ?: with a constant arm lets gcc's jump threading split the
// loop body into branches, which stops vectorisation for AVX2 and SSE; masks stay straight-line.
[[gnu::always_inline]] inline float blend(bool c, float a, float b) {
  const uint32_t m = 0u - uint32_t(c);
  return std::bit_cast<float>((std::bit_cast<uint32_t>(a) & m) | (std::bit_cast<uint32_t>(b) & ~m));
}

// exp(x), within 2 ulp of the correctly rounded result over the whole float range: Cody-Waite
// reduction x = n*ln2 + r with |r| <= ln2/2, Cephes' expf polynomial for exp(r), and 2^n
// applied as two factors so gradual underflow (down to x ~ -103.97) and overflow to +inf are
// right. exp(-inf) = 0, exp(+inf) = +inf, exp(NaN) = NaN.
[[gnu::always_inline]] inline float vexp(float x) {
  // Beyond these bounds the result is 0 or +inf anyway; NaN passes both (comparisons are false).
  x = blend(x < -104.0f, -104.0f, x);
  x = blend(x > 89.0f, 89.0f, x);
  constexpr float kShifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float shifted = x * 1.44269504088896341f + kShifter;
  const float n = shifted - kShifter;
  const uint32_t n_bits = std::bit_cast<uint32_t>(shifted) - std::bit_cast<uint32_t>(kShifter);
  // ln2 = 0.693359375 - 2.12194440e-4; the first part has 9 significant bits, so n * it is exact.
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  // n is in [-150, 128]; each half of it gives a normal power of two.
  const uint32_t half = uint32_t(int32_t(n_bits) >> 1);
  const uint32_t rest = n_bits - half;
  return p * std::bit_cast<float>((half + 127u) << 23) * std::bit_cast<float>((rest + 127u) << 23);
}

// erfc(x) with relative error below 5e-7 for x <= 1 and (1 + x^2) * 3e-7 beyond (the rounding
// of x^2 inside the exponential). Chebyshev fit erfc(z) = t*exp(-z^2 + P(t)), t = 1/(1 + z/2) for
// z = |x| (Numerical Recipes 6.2), and erfc(x) = 2 - erfc(-x) for x < 0. No cancellation in the
// tail, so 1 + erf(x) = erfc(-x) keeps its relative accuracy for very negative x.
[[gnu::always_inline]] inline float verfc(float x) {
  const float z = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float tail = t * vexp(p - z * z);
  return blend(x < 0.0f, 2.0f - tail, tail);
}

// Reductions over f(i), i in [0, n), with 32 independent partial results combined as a tree:
// with one vector accumulator (what a plain omp simd reduction gives) every step waits on the
// previous one, and so does a serial combine of the partials, which dominates short rows.
template <typename F, typename Combine>
[[gnu::always_inline]] inline float vreduce(int64_t n, float init, F f, Combine combine) {
  constexpr int64_t kLanes = 32, kTail = 8;
  float partial[kLanes];
  for (int64_t j = 0; j < kLanes; ++j) partial[j] = init;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) partial[j] = combine(partial[j], f(i + j));
  }
  for (; i + kTail <= n; i += kTail) {
    for (int64_t j = 0; j < kTail; ++j) partial[j] = combine(partial[j], f(i + j));
  }
  for (int64_t j = 0; i + j < n; ++j) partial[j] = combine(partial[j], f(i + j));
  for (int64_t width = kLanes / 2; width >= 1; width /= 2) {
    for (int64_t j = 0; j < width; ++j) partial[j] = combine(partial[j], partial[j + width]);
  }
  return partial[0];
}

template <typename F>
[[gnu::always_inline]] inline float vsum(int64_t n, F f) {
  return vreduce(n, 0.0f, f, [](float a, float b) { return a + b; });
}

// The largest f(i); NaNs are skipped (softmax of a row with NaN is NaN through its sum anyway).
template <typename F>
[[gnu::always_inline]] inline float vmax(int64_t n, F f) {
  return vreduce(n, -INFINITY, f, [](float a, float b) { return b > a ? b : a; });
}

// sigmoid(x) = 1/(1 + exp(-x)) and 1 - sigmoid(x), both computed from exp(-|x|) so neither
// cancels nor overflows for any x.
struct SigmoidPair {
  float s;           // sigmoid(x)
  float complement;  // 1 - sigmoid(x) = sigmoid(-x)
};
[[gnu::always_inline]] inline SigmoidPair vsigmoid(float x) {
  const float e = vexp(-std::fabs(x));
  const float r = 1.0f / (1.0f + e);
  const float er = e * r;
  const bool positive = x >= 0.0f;
  return {blend(positive, r, er), blend(positive, er, r)};
}

}  // namespace tcat::kernels
