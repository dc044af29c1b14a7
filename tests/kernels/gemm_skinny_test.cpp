// Skinny GEMM (few rows, [N, K] weights, f32 or bf16) against a scalar double reference.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "core/rng.h"
#include "kernels/gemm.h"

using namespace tcat;

namespace {

std::vector<float> random_values(int64_t n, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = 2.0f * rng.uniform() - 1.0f;
  return v;
}

// out[m * ldo + n] = (accumulate ? out : 0) + sum_k x[m * ldx + k] * w(n, k).
template <typename WeightAt>
std::vector<double> reference(int64_t M, int64_t N, int64_t K, const std::vector<float>& x, int64_t ldx,
                              WeightAt weight_at, const std::vector<float>& out, int64_t ldo, bool accumulate) {
  std::vector<double> want(out.begin(), out.end());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = accumulate ? double(out[size_t(m * ldo + n)]) : 0.0;
      for (int64_t k = 0; k < K; ++k) s += double(x[size_t(m * ldx + k)]) * double(weight_at(n, k));
      want[size_t(m * ldo + n)] = s;
    }
  return want;
}

// (N, K): odd sizes, K below one vector, K with every kind of remainder after whole cache lines
// (50 = 32 + 16 + 2 for bf16), and sizes big enough for the threaded path (1000 rows: the
// threads claim shrinking ranges of blocks, the last one partial).
const std::vector<std::tuple<int64_t, int64_t>> kShapes = {{1, 1},     {5, 7},     {37, 45},  {9, 50},
                                                            {130, 8}, {257, 129}, {66, 300}, {1000, 70}};

}  // namespace

TEST(SkinnyGemm, F32MatchesReferenceForEveryRowCountWithStrides) {
  Rng rng(11);
  for (const auto& [N, K] : kShapes) {
    for (int64_t M = 1; M <= kernels::kSkinnyMaxRows; ++M) {
      for (bool accumulate : {false, true}) {
        const int64_t ldx = K + 3, ldw = K + 5, ldo = N + 2;
        const auto x = random_values(M * ldx, rng), w = random_values(N * ldw, rng);
        auto out = random_values(M * ldo, rng);
        const auto want = reference(M, N, K, x, ldx, [&](int64_t n, int64_t k) { return w[size_t(n * ldw + k)]; },
                                    out, ldo, accumulate);
        kernels::skinny_gemm(M, N, K, x.data(), ldx, w.data(), ldw, out.data(), ldo, accumulate);
        for (size_t i = 0; i < out.size(); ++i)
          ASSERT_NEAR(out[i], want[i], 1e-5 * std::sqrt(double(K)) + 1e-5)
              << "M=" << M << " N=" << N << " K=" << K << " accumulate=" << accumulate << " at " << i;
      }
    }
  }
}

TEST(SkinnyGemm, Bf16WeightsAreWidenedExactly) {
  Rng rng(12);
  for (const auto& [N, K] : kShapes) {
    for (int64_t M = 1; M <= kernels::kSkinnyMaxRows; ++M) {
      const int64_t ldx = K + 1, ldw = K + 2, ldo = N + 3;
      const auto x = random_values(M * ldx, rng);
      std::vector<bf16> w(size_t(N * ldw));
      for (bf16& v : w) v = float_to_bf16(2.0f * rng.uniform() - 1.0f);
      auto out = random_values(M * ldo, rng);
      const auto want = reference(M, N, K, x, ldx,
                                  [&](int64_t n, int64_t k) { return bf16_to_float(w[size_t(n * ldw + k)]); }, out,
                                  ldo, false);
      kernels::skinny_gemm(M, N, K, x.data(), ldx, w.data(), ldw, out.data(), ldo, false);
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], want[i], 1e-5 * std::sqrt(double(K)) + 1e-5)
            << "M=" << M << " N=" << N << " K=" << K << " at " << i;
    }
  }
}

TEST(SkinnyGemm, RejectsTooManyRows) {
  std::vector<float> buf(64, 0.0f);
  EXPECT_THROW(kernels::skinny_gemm(kernels::kSkinnyMaxRows + 1, 1, 1, buf.data(), 1, buf.data(), 1, buf.data(), 1,
                                    false),
               Error);
}

// kernels::linear picks the skinny path for few rows; with bias, accumulation and bf16 weights
// it must agree with the same product on many rows (the oneDNN path).
TEST(SkinnyGemm, LinearAgreesAcrossRowCountsAndWeightTypes) {
  Rng rng(13);
  const int64_t N = 69, K = 83;
  Tensor w = Tensor::empty({N, K}), b = Tensor::empty({N}), x = Tensor::empty({2 * kernels::kSkinnyMaxRows + 1, K});
  for (Tensor* t : {&w, &b, &x})
    for (int64_t i = 0; i < t->numel(); ++i) t->data<float>()[i] = 2.0f * rng.uniform() - 1.0f;
  const Tensor w_bf16 = w.to(DType::BF16);
  for (const Tensor* weight : {static_cast<const Tensor*>(&w), &w_bf16}) {
    const std::vector<float> all = kernels::linear(x, *weight, &b).to_vector();
    for (int64_t rows = 1; rows <= kernels::kSkinnyMaxRows; ++rows) {
      const Tensor part = x.slice(0, 0, rows);
      const std::vector<float> got = kernels::linear(part, *weight, &b).to_vector();
      Tensor acc = Tensor::full({rows, N}, 0.5f);
      kernels::linear_into(part, *weight, &b, acc, true, kernels::MatmulPrecision::F32);
      const std::vector<float> got_acc = acc.to_vector();
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], all[i], 1e-4) << rows << " rows, weight " << weight->desc() << " at " << i;
        ASSERT_NEAR(got_acc[i], all[i] + 0.5f, 1e-4) << rows << " rows accumulated at " << i;
      }
    }
  }
}
