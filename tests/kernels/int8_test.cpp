// Int8 weights (kernels/int8.h): the format, and products checked on values that 7-bit weights and
// 8-bit activations represent exactly (integers times powers of two), where the int8 product must
// equal the exact one; on other values, against fp32 within the quantization error.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "core/rng.h"
#include "kernels/gemm.h"
#include "kernels/int8.h"
#include "kernels/ops.h"

using namespace tcat;

namespace {

using kernels::Int8Layout;
constexpr Int8Layout kLayouts[] = {Int8Layout::Rows, Int8Layout::Panels};

// [rows, cols] of integers in [-peak, peak] times 2^-shift(row), every row holding +-peak once: the
// values per-row quantization with that peak maps to integers without rounding.
std::vector<float> representable(int64_t rows, int64_t cols, int64_t ld, int peak, Rng& rng) {
  std::vector<float> v(size_t(rows * ld), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const float unit = std::ldexp(1.0f, -int(r % 7));
    for (int64_t c = 0; c < cols; ++c)
      v[size_t(r * ld + c)] = float(int(rng.below(uint64_t(2 * peak + 1))) - peak) * unit;
    v[size_t(r * ld + rng.below(uint64_t(cols)))] = (r % 2 ? -peak : peak) * unit;
  }
  return v;
}

Tensor matrix(const std::vector<float>& v, int64_t rows, int64_t cols) { return Tensor::from_vector(v, {rows, cols}); }

std::vector<double> exact_product(const std::vector<float>& x, int64_t ldx, const std::vector<float>& w, int64_t M,
                                  int64_t N, int64_t K) {
  std::vector<double> y(size_t(M * N), 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) y[size_t(m * N + n)] += double(x[size_t(m * ldx + k)]) * w[size_t(n * K + k)];
  return y;
}

}  // namespace

TEST(Int8Weights, QuantizeKeepsEachRowWithinHalfAStep) {
  Rng rng(3);
  const int64_t N = 37, K = 45;
  std::vector<float> values(size_t(N * K));
  for (float& v : values) v = rng.normal() * 0.1f;
  for (int64_t k = 0; k < K; ++k) values[size_t(5 * K + k)] = 0.0f;  // a zero row
  for (const auto& [dtype, layout] : {std::pair{DType::F32, Int8Layout::Rows}, {DType::F32, Int8Layout::Panels},
                                      {DType::BF16, Int8Layout::Panels}}) {
    const Tensor w = matrix(values, N, K).to(dtype);
    const Tensor q = kernels::quantize_weight_int8(w, layout);
    ASSERT_TRUE(kernels::is_int8_weight(q));
    EXPECT_EQ(kernels::int8_weight_layout(q), layout);
    EXPECT_EQ(q.shape(), (Shape{N, K}));
    const std::vector<float> original = w.to_vector();
    const float* scales = kernels::int8_weight_scales(q);
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t n = 0; n < N; ++n) {
      float peak = 0.0f;
      for (int64_t k = 0; k < K; ++k) peak = std::max(peak, std::fabs(original[size_t(n * K + k)]));
      EXPECT_FLOAT_EQ(scales[n], n == 5 ? 1.0f : peak / 63.0f) << "row " << n;
      kernels::dequantize_int8_row(q, n, row.data());
      for (int64_t k = 0; k < K; ++k) {
        const float steps = row[size_t(k)] / scales[n];
        ASSERT_NEAR(steps, std::nearbyint(steps), 1e-4f) << "not a whole number of steps at " << n << "," << k;
        ASSERT_LE(std::fabs(std::nearbyint(steps)), float(kernels::kInt8WeightMax));
        ASSERT_NEAR(row[size_t(k)], original[size_t(n * K + k)], 0.5f * scales[n] * 1.0001f) << n << "," << k;
      }
    }
  }
  EXPECT_FALSE(kernels::is_int8_weight(kernels::quantize_weight_int8(matrix(values, N, K)).slice(0, 1, 3)))
      << "a view into an int8 weight has no scales of its own";
  EXPECT_FALSE(kernels::is_int8_weight(Tensor::zeros({N, K}, DType::I8)));
}

TEST(Int8Weights, QuantizeRejectsVectorsAndNonFiniteWeights) {
  EXPECT_THROW(kernels::quantize_weight_int8(Tensor::zeros({8})), Error);
  std::vector<float> values(12, 1.0f);
  values[7] = std::numeric_limits<float>::infinity();
  try {
    kernels::quantize_weight_int8(matrix(values, 3, 4));
    FAIL() << "an infinite weight was quantized";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 1 of f32[3, 4] holds NaN or Inf"), std::string::npos) << e.what();
  }
}

// Integer x 7-bit values: quantization is exact, so every path must give the exact product: the
// int8 GEMM (several row tiles, narrow and wide column tiles, partial ones) and the few-row kernel,
// with strides and beta.
TEST(Int8Weights, ProductsAreExactOnRepresentableValues) {
  Rng rng(7);
  struct Shape3 {
    int64_t M, N, K;
  };
  // One row of 1000 columns: the Panels layout reads four streams side by side, and runs out of them unevenly.
  for (const Shape3 s : {Shape3{1, 40, 33}, Shape3{1, 1000, 70}, Shape3{3, 130, 64}, Shape3{8, 300, 37},
                         Shape3{9, 129, 300}, Shape3{300, 200, 45}, Shape3{20, 4100, 24}}) {
    SCOPED_TRACE(::testing::Message() << "M=" << s.M << " N=" << s.N << " K=" << s.K);
    const int64_t ldx = s.K + 3, ldo = s.N + 5;
    const auto x = representable(s.M, s.K, ldx, 127, rng);
    const auto w = representable(s.N, s.K, s.K, kernels::kInt8WeightMax, rng);
    const auto want = exact_product(x, ldx, w, s.M, s.N, s.K);
    for (const Int8Layout layout : kLayouts) {
      SCOPED_TRACE(layout == Int8Layout::Rows ? "rows layout" : "panels layout");
      const Tensor q = kernels::quantize_weight_int8(matrix(w, s.N, s.K), layout);
    std::vector<float> column_bias(size_t(s.N));
    for (int64_t n = 0; n < s.N; ++n) column_bias[size_t(n)] = float(n % 5) - 2.0f;
    for (const float* bias : {static_cast<const float*>(nullptr), static_cast<const float*>(column_bias.data())}) {
      for (float beta : {0.0f, 1.0f}) {
        SCOPED_TRACE(::testing::Message() << "bias " << (bias != nullptr) << " beta " << beta);
        std::vector<float> out(size_t(s.M * ldo), 0.5f);
        kernels::gemm_int8_weights(s.M, s.N, s.K, x.data(), ldx, q, bias, beta, out.data(), ldo);
        for (int64_t m = 0; m < s.M; ++m)
          for (int64_t n = 0; n < s.N; ++n)
            ASSERT_EQ(out[size_t(m * ldo + n)],
                      float(want[size_t(m * s.N + n)] + (bias ? bias[n] : 0.0) + 0.5 * beta))
                << m << "," << n;
        for (int64_t m = 0; m < s.M; ++m) ASSERT_EQ(out[size_t(m * ldo + s.N)], 0.5f) << "wrote past the row";
      }
    }
    // Through linear(), with a bias.
    std::vector<float> dense(size_t(s.M * s.K));
    for (int64_t m = 0; m < s.M; ++m)
      for (int64_t k = 0; k < s.K; ++k) dense[size_t(m * s.K + k)] = x[size_t(m * ldx + k)];
    const Tensor bias = Tensor::full({s.N}, 0.25f);
    const std::vector<float> y = kernels::linear(matrix(dense, s.M, s.K), q, &bias).to_vector();
    for (int64_t i = 0; i < s.M * s.N; ++i) ASSERT_NEAR(y[size_t(i)], want[size_t(i)] + 0.25, 1e-6 * s.K) << i;
    }
  }
}

// On random values the product moves by the quantization error only: at most half a step of each
// weight (scale / 2) and of each activation (peak / 254), summed over K.
TEST(Int8Weights, ProductOfRandomValuesStaysWithinTheQuantizationError) {
  Rng rng(9);
  const int64_t M = 40, N = 70, K = 256;
  std::vector<float> x(size_t(M * K)), w(size_t(N * K));
  for (float& v : x) v = rng.normal();
  for (float& v : w) v = rng.normal() * 0.05f;
  const Tensor q = kernels::quantize_weight_int8(matrix(w, N, K));
  const std::vector<float> y = kernels::linear(matrix(x, M, K), q, nullptr).to_vector();
  const auto want = exact_product(x, K, w, M, N, K);
  double worst = 0.0, total = 0.0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double x_peak = 0, w_peak = 0, bound = 0;
      for (int64_t k = 0; k < K; ++k) x_peak = std::max(x_peak, std::fabs(double(x[size_t(m * K + k)])));
      for (int64_t k = 0; k < K; ++k) w_peak = std::max(w_peak, std::fabs(double(w[size_t(n * K + k)])));
      for (int64_t k = 0; k < K; ++k)
        bound += std::fabs(x[size_t(m * K + k)]) * w_peak / 126 + std::fabs(w[size_t(n * K + k)]) * x_peak / 254 +
                 w_peak * x_peak / (126.0 * 254.0);
      const double err = std::fabs(y[size_t(m * N + n)] - want[size_t(m * N + n)]);
      ASSERT_LE(err, bound) << m << "," << n;
      worst = std::max(worst, err / bound);
      total += err;
    }
  EXPECT_GT(total, 0.0) << "some rounding was expected: random values are not representable";
  EXPECT_LT(worst, 0.5) << "errors that large in the worst case mean a wrong scale, not rounding";
}

// In the Rows layout few rows (decoding) go through tcat's own kernel, more through oneDNN's GEMM;
// the Panels layout tiles few and many rows differently. All sum the same integers exactly, so a
// row's output must not depend on how many rows share the product (a sentence translates the same
// alone or in a batch). Shapes with K and N remainders of every kind.
TEST(Int8Weights, FewRowsGiveBitIdenticalRowsToManyRows) {
  Rng rng(12);
  for (const auto& [N, K] : {std::pair<int64_t, int64_t>{37, 45}, {1000, 70}, {58, 300}, {4100, 33}, {5, 512}}) {
    const int64_t M = 12;
    std::vector<float> x(size_t(M * K)), w(size_t(N * K));
    for (float& v : x) v = rng.normal();
    for (float& v : w) v = rng.normal();
    for (const Int8Layout layout : kLayouts) {
    const Tensor q = kernels::quantize_weight_int8(matrix(w, N, K), layout);
    const std::vector<float> all = kernels::linear(matrix(x, M, K), q, nullptr).to_vector();
    for (int64_t rows = 1; rows <= kernels::kSkinnyMaxRows; ++rows) {
      const std::vector<float> first(x.begin(), x.begin() + rows * K);
      const std::vector<float> few = kernels::linear(matrix(first, rows, K), q, nullptr).to_vector();
      for (int64_t i = 0; i < rows * N; ++i)
        ASSERT_EQ(few[size_t(i)], all[size_t(i)]) << "N=" << N << " K=" << K << " rows=" << rows << " at " << i;
    }
    }
  }
}

// Both layouts sum the same integers and scale them with the same roundings: identical outputs.
TEST(Int8Weights, LayoutsGiveTheSameProducts) {
  Rng rng(21);
  const int64_t N = 75, K = 130;
  std::vector<float> w(size_t(N * K));
  for (float& v : w) v = rng.normal();
  const Tensor rows = kernels::quantize_weight_int8(matrix(w, N, K), Int8Layout::Rows);
  const Tensor panels = kernels::quantize_weight_int8(matrix(w, N, K), Int8Layout::Panels);
  std::vector<float> bias(static_cast<size_t>(N));
  for (float& v : bias) v = rng.normal();
  for (int64_t M : {int64_t(1), int64_t(5), int64_t(40)}) {
    std::vector<float> x(size_t(M * K));
    for (float& v : x) v = rng.normal();
    for (const float* b : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
      for (float beta : {0.0f, 1.0f}) {
        std::vector<float> from_rows(size_t(M * N), 0.3f), from_panels(size_t(M * N), 0.3f);
        kernels::gemm_int8_weights(M, N, K, x.data(), K, rows, b, beta, from_rows.data(), N);
        kernels::gemm_int8_weights(M, N, K, x.data(), K, panels, b, beta, from_panels.data(), N);
        EXPECT_EQ(from_rows, from_panels) << M << " rows, bias " << (b != nullptr) << ", beta " << beta;
      }
    }
  }
  const kernels::Int8Activations xq = kernels::quantize_activations_int8(1, K, w.data(), K);
  std::vector<float> out(16);
  const char* why = kernels::int8_tile(xq, 0, 1, panels, 8, 16, nullptr, 0.0f, out.data(), 16);
  ASSERT_NE(why, nullptr) << "a tile starting inside a panel was accepted";
  EXPECT_NE(std::string(why).find("multiple of 16"), std::string::npos) << why;
}

TEST(Int8Weights, NonFiniteActivationsGiveNonFiniteRowsOnly) {
  Rng rng(4);
  const int64_t M = 12, N = 20, K = 16;
  std::vector<float> x(size_t(M * K)), w(size_t(N * K));
  for (float& v : x) v = rng.normal();
  for (float& v : w) v = rng.normal();
  x[3] = std::numeric_limits<float>::quiet_NaN();
  const Tensor q = kernels::quantize_weight_int8(matrix(w, N, K));
  for (int64_t rows : {int64_t(2), M}) {  // few-row kernel and int8 GEMM
    const std::vector<float> first(x.begin(), x.begin() + rows * K);
    const std::vector<float> y = kernels::linear(matrix(first, rows, K), q, nullptr).to_vector();
    for (int64_t n = 0; n < N; ++n) {
      EXPECT_TRUE(std::isnan(y[size_t(n)])) << rows << " rows, column " << n;
      EXPECT_TRUE(std::isfinite(y[size_t(N + n)])) << rows << " rows, column " << n;
    }
  }
}

TEST(Int8Weights, EmbeddingGathersDequantizedRows) {
  Rng rng(2);
  std::vector<float> table(50 * 12);
  for (float& v : table) v = rng.normal();
  for (const Int8Layout layout : kLayouts) {
  const Tensor q = kernels::quantize_weight_int8(matrix(table, 50, 12), layout);
  const Tensor rows = kernels::embedding(q, Tensor::from_ids({7, 0, 49, 7}, {2, 2}));
  ASSERT_EQ(rows.shape(), (Shape{2, 2, 12}));
  const std::vector<float> got = rows.to_vector();
  std::vector<float> want(12);
  const int64_t ids[] = {7, 0, 49, 7};
  for (int i = 0; i < 4; ++i) {
    kernels::dequantize_int8_row(q, ids[i], want.data());
    for (int j = 0; j < 12; ++j) ASSERT_EQ(got[size_t(i * 12 + j)], want[size_t(j)]) << i << "," << j;
    for (int j = 0; j < 12; ++j) ASSERT_NEAR(want[size_t(j)], table[size_t(ids[i] * 12 + j)], 0.1f) << i << "," << j;
  }
  EXPECT_THROW(kernels::embedding(q, Tensor::from_ids({50}, {1})), Error);
  }
}

TEST(Int8Weights, LinearRefusesGradientsThroughInt8Weights) {
  Rng rng(1);
  std::vector<float> w(6 * 4, 0.5f);
  const ag::Var weight(kernels::quantize_weight_int8(matrix(w, 6, 4)), /*requires_grad=*/false);
  const ag::Var x(Tensor::full({2, 4}, 1.0f), /*requires_grad=*/true);
  try {
    ag::linear(x, weight, ag::Var());
    FAIL() << "a gradient through int8 weights was allowed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("for inference only"), std::string::npos) << e.what();
  }
  ag::NoGradGuard no_grad;
  EXPECT_EQ(ag::linear(x, weight, ag::Var()).value().to_vector(), std::vector<float>(12, 2.0f));
}
