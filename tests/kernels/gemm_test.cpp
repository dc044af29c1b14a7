// GEMM through oneDNN against a plain triple loop in double.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "kernels/gemm.h"

using namespace tcat;

namespace {

Tensor random_matrix(const Shape& shape, Rng& rng) {
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 2.0f * rng.uniform() - 1.0f;
  return t;
}

// C = op(A) op(B) for one [M,K]x[K,N] product of logical matrices.
std::vector<double> reference_matmul(const std::vector<float>& a, const std::vector<float>& b, int64_t M, int64_t N,
                                     int64_t K, bool ta, bool tb) {
  std::vector<double> c(size_t(M * N), 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += double(a[size_t(ta ? k * M + m : m * K + k)]) * double(b[size_t(tb ? n * K + k : k * N + n)]);
      c[size_t(m * N + n)] = s;
    }
  return c;
}

}  // namespace

TEST(Gemm, MatmulMatchesReferenceForAllTransposes) {
  Rng rng(1);
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {7, 5, 3}, {33, 65, 17}, {128, 96, 200}, {9, 4100, 13}}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        const Tensor a = random_matrix(ta ? Shape{K, M} : Shape{M, K}, rng);
        const Tensor b = random_matrix(tb ? Shape{N, K} : Shape{K, N}, rng);
        const auto got = kernels::matmul(a, b, ta, tb).to_vector();
        const auto want = reference_matmul(a.to_vector(), b.to_vector(), M, N, K, ta, tb);
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_NEAR(got[i], want[i], 1e-5 * std::sqrt(double(K)) + 1e-5) << M << "x" << N << "x" << K << " " << i;
      }
    }
  }
}

// Wide products run as column blocks the threads claim (4100 columns: eight whole blocks of 512 and
// a partial one); strides, alpha and beta must reach every block.
TEST(Gemm, WideSgemmKeepsStridesAlphaAndBetaInEveryColumnBlock) {
  Rng rng(5);
  const int64_t M = 3, N = 4100, K = 11, lda = K + 2, ldc = N + 7;
  for (bool tb : {false, true}) {
    const int64_t ldb = tb ? K + 3 : N + 5;
    const auto uniform_values = [&](int64_t n) {
      std::vector<float> v(static_cast<size_t>(n));
      for (float& x : v) x = 2.0f * rng.uniform() - 1.0f;
      return v;
    };
    const auto a = uniform_values(M * lda), b = uniform_values(tb ? N * ldb : K * ldb);
    auto c = uniform_values(M * ldc);
    std::vector<double> want(c.begin(), c.end());
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += double(a[size_t(m * lda + k)]) * b[size_t(tb ? n * ldb + k : k * ldb + n)];
        want[size_t(m * ldc + n)] = 0.5 * s + 1.0 * c[size_t(m * ldc + n)];
      }
    kernels::sgemm(false, tb, M, N, K, 0.5f, a.data(), lda, b.data(), ldb, 1.0f, c.data(), ldc);
    for (size_t i = 0; i < c.size(); ++i) ASSERT_NEAR(c[i], want[i], 1e-5) << "trans_b=" << tb << " at " << i;
  }
}

TEST(Gemm, BatchedMatmulBroadcastsBatchDimensions) {
  Rng rng(2);
  const Tensor a = random_matrix({3, 4, 5}, rng), b = random_matrix({5, 6}, rng);
  const Tensor c = kernels::matmul(a, b);
  ASSERT_EQ(c.shape(), (Shape{3, 4, 6}));
  for (int64_t i = 0; i < 3; ++i) {
    const auto want = reference_matmul(a.select(0, i).contiguous().to_vector(), b.to_vector(), 4, 6, 5, false, false);
    const auto got = c.select(0, i).contiguous().to_vector();
    for (size_t j = 0; j < got.size(); ++j) ASSERT_NEAR(got[j], want[j], 1e-5);
  }
  EXPECT_THROW(kernels::matmul(random_matrix({2, 3, 4}, rng), random_matrix({3, 4, 2}, rng)), Error);
}

TEST(Gemm, LinearAddsBiasAndAccumulates) {
  Rng rng(3);
  const Tensor x = random_matrix({2, 3, 8}, rng), w = random_matrix({5, 8}, rng), bias = random_matrix({5}, rng);
  Tensor y = kernels::linear(x, w, &bias);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 5}));
  const auto want = reference_matmul(x.to_vector(), w.to_vector(), 6, 5, 8, false, true);
  const auto got = y.to_vector();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i] + bias.to_vector()[i % 5], 1e-5);
  kernels::linear_into(x, w, nullptr, y, /*accumulate=*/true, kernels::MatmulPrecision::F32);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(y.to_vector()[i], 2 * want[i] + bias.to_vector()[i % 5], 1e-5);
  EXPECT_THROW(kernels::linear(random_matrix({2, 7}, rng), w, nullptr), Error);
}

TEST(Gemm, Bf16InputsAccumulateInFp32) {
  // Operands already representable in bf16, so the only difference from fp32 is summation order.
  Rng rng(4);
  const int64_t M = 37, N = 29, K = 300;
  const Tensor a = random_matrix({M, K}, rng).to(DType::BF16), b = random_matrix({N, K}, rng).to(DType::BF16);
  const auto got = kernels::matmul(a, b, false, true).to_vector();
  const auto want = reference_matmul(a.to_vector(), b.to_vector(), M, N, K, false, true);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4) << i;
  // Same through linear with f32 inputs rounded to bf16 inside.
  const Tensor x = a.to(DType::F32), w = b.to(DType::F32);
  const auto lin = kernels::linear(x, w, nullptr, kernels::MatmulPrecision::BF16).to_vector();
  for (size_t i = 0; i < lin.size(); ++i) ASSERT_NEAR(lin[i], want[i], 1e-4) << i;
}

TEST(Gemm, LinearWithBf16WeightsWidensBlockByBlock) {
  // K = 1000 puts 64 weight rows in each widened block, so N = 150 takes three blocks, the last
  // one partial; 20 rows are past the skinny path.
  Rng rng(5);
  const int64_t M = 20, N = 150, K = 1000;
  const Tensor x = random_matrix({M, K}, rng), w = random_matrix({N, K}, rng).to(DType::BF16);
  const Tensor bias = random_matrix({N}, rng);
  const auto want = reference_matmul(x.to_vector(), w.to_vector(), M, N, K, false, true);
  const auto b = bias.to_vector();
  Tensor y = kernels::linear(x, w, &bias);
  const auto once = y.to_vector();
  for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(once[size_t(i)], want[size_t(i)] + b[size_t(i % N)], 1e-4) << i;
  kernels::linear_into(x, w, nullptr, y, /*accumulate=*/true, kernels::MatmulPrecision::F32);
  const auto twice = y.to_vector();
  for (int64_t i = 0; i < M * N; ++i)
    ASSERT_NEAR(twice[size_t(i)], 2 * want[size_t(i)] + b[size_t(i % N)], 1e-4) << i;
}
