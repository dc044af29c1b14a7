// Rotary embeddings and ALiBi slopes against scalar double-precision references written from the
// definitions (RoPE: each pair of a head is a complex number multiplied by e^{i pos theta_k}).
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <random>

#include "kernels/position.h"

using namespace tcat;
using namespace tcat::kernels;

namespace {

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(size_t(shape_numel(shape)));
  for (float& x : v) x = normal(rng);
  return Tensor::from_vector(v, shape);
}

// The rotated value of every element of x [B, T, width] (heads from `column`).
std::vector<double> rotary_reference(const Tensor& x, int64_t column, int64_t heads, int64_t head_dim,
                                     const RotarySpec& spec, int64_t first_position) {
  const std::vector<float> in = x.to_vector();
  std::vector<double> out(in.begin(), in.end());
  const int64_t B = x.dim(0), T = x.dim(1), width = x.dim(2), half = spec.rotary_dim / 2;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t k = 0; k < half; ++k) {
          const int64_t base = (b * T + t) * width + column + h * head_dim;
          const int64_t i1 = base + (spec.interleaved ? 2 * k : k);
          const int64_t i2 = i1 + (spec.interleaved ? 1 : half);
          const double theta = std::pow(double(spec.base), -2.0 * double(k) / double(spec.rotary_dim));
          const std::complex<double> z(in[size_t(i1)], in[size_t(i2)]);
          const std::complex<double> r = z * std::polar(1.0, double(first_position + t) * theta);
          out[size_t(i1)] = r.real();
          out[size_t(i2)] = r.imag();
        }
  return out;
}

TEST(Rotary, MatchesComplexRotationReference) {
  struct Case {
    int64_t heads, head_dim, rotary_dim, column, first_position;
    bool interleaved;
    float base;
  };
  // Full and partial rotation, both pair layouts, an offset column (the K heads of a fused QKV
  // row) and a starting position (incremental decoding).
  const Case cases[] = {{4, 16, 16, 0, 0, false, 10000.0f}, {4, 16, 8, 0, 0, false, 10000.0f},
                        {2, 8, 8, 16, 5, true, 10000.0f},  {3, 12, 4, 4, 100, true, 500.0f},
                        {2, 64, 64, 0, 2000, false, 1e6f}};
  uint32_t seed = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "heads " << c.heads << " head_dim " << c.head_dim << " rotary "
                                      << c.rotary_dim << " interleaved " << c.interleaved);
    const int64_t width = c.column + c.heads * c.head_dim + 3;
    Tensor x = random_tensor({2, 9, width}, ++seed);
    const RotarySpec spec{c.rotary_dim, c.interleaved, c.base};
    const std::vector<double> want = rotary_reference(x, c.column, c.heads, c.head_dim, spec, c.first_position);
    rotary_inplace(x, c.column, c.heads, c.head_dim, spec, c.first_position, false);
    const std::vector<float> got = x.to_vector();
    // Angles up to ~2000 rad are rounded to float32 as the reference implementations do: ~1e-4.
    const double tolerance = c.first_position > 1000 ? 3e-4 : 1e-5;
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tolerance) << "element " << i;
  }
}

TEST(Rotary, InverseUndoesTheRotation) {
  Tensor x = random_tensor({3, 5, 40}, 7);
  const std::vector<float> before = x.to_vector();
  const RotarySpec spec{6, false, 10000.0f};
  rotary_inplace(x, 8, 4, 8, spec, 3, false);
  rotary_inplace(x, 8, 4, 8, spec, 3, true);
  const std::vector<float> after = x.to_vector();
  for (size_t i = 0; i < before.size(); ++i) ASSERT_NEAR(after[i], before[i], 1e-6) << i;
}

TEST(Rotary, RejectsBadSpecs) {
  Tensor x = random_tensor({1, 2, 16}, 1);
  EXPECT_THROW(rotary_inplace(x, 0, 2, 8, {3, false, 10000.0f}, 0, false), Error);   // odd
  EXPECT_THROW(rotary_inplace(x, 0, 2, 8, {10, false, 10000.0f}, 0, false), Error);  // > head_dim
  EXPECT_THROW(rotary_inplace(x, 8, 2, 8, {8, false, 10000.0f}, 0, false), Error);   // past the row
}

TEST(Alibi, SlopesFollowThePaperForAnyHeadCount) {
  // Powers of two: 2^(-8k/n). Otherwise the n = 4 slopes then the odd ones of n = 8.
  const std::vector<float> four = alibi_slopes(4);
  const std::vector<double> want4 = {0.25, 0.0625, 0.015625, 0.00390625};
  ASSERT_EQ(four.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(four[i], want4[i]);
  const std::vector<float> six = alibi_slopes(6);
  const std::vector<double> want6 = {0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125};
  ASSERT_EQ(six.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(six[i], want6[i]);
  const std::vector<float> twelve = alibi_slopes(12);
  ASSERT_EQ(twelve.size(), 12u);
  for (size_t k = 0; k < 8; ++k) EXPECT_FLOAT_EQ(twelve[k], std::pow(2.0, -double(k + 1)));
  for (size_t k = 0; k < 4; ++k) EXPECT_FLOAT_EQ(twelve[8 + k], std::pow(2.0, -0.5 * double(2 * k + 1)));
}

}  // namespace
