// The output projection consumed in blocks (kernels::linear_by_column_blocks) and the best tokens
// with their log-softmax terms chosen from it (kernels::linear_top_k), against the whole logits
// from kernels::linear followed by a double-precision log-softmax and a sort.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "kernels/gemm.h"
#include "kernels/int8.h"
#include "kernels/ops.h"

using namespace tcat;

namespace {

Tensor random_matrix(int64_t rows, int64_t cols, float stddev, Rng& rng) {
  std::vector<float> v(size_t(rows * cols));
  for (float& x : v) x = rng.normal() * stddev;
  return Tensor::from_vector(v, {rows, cols});
}

Tensor stored_as(const Tensor& w, DType dtype) {
  return dtype == DType::I8 ? kernels::quantize_weight_int8(w) : w.to(dtype);
}

struct Expected {
  double max = 0, log_sum = 0;
  std::vector<kernels::ScoredToken> best;
};

// From the whole logits row: log-softmax terms in double, then the n best allowed entries by
// (logit descending, token ascending).
Expected expected_row(const float* logits, int64_t N, int64_t n, const std::vector<int64_t>& excluded) {
  Expected e;
  e.max = *std::max_element(logits, logits + N);
  double sum = 0;
  for (int64_t v = 0; v < N; ++v) sum += std::exp(double(logits[v]) - e.max);
  e.log_sum = std::log(sum);
  for (int64_t v = 0; v < N; ++v)
    if (std::find(excluded.begin(), excluded.end(), v) == excluded.end()) e.best.push_back({logits[v], v});
  std::stable_sort(e.best.begin(), e.best.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
  e.best.resize(std::min<size_t>(e.best.size(), size_t(n)));
  return e;
}

}  // namespace

TEST(LinearByColumnBlocks, HandsOverEveryColumnOnceWithTheProductsValues) {
  Rng rng(1);
  const int64_t K = 40;
  for (DType dtype : {DType::F32, DType::BF16, DType::I8}) {
    for (int64_t R : {1, 7, 9, 70}) {
      for (int64_t N : {5, 300, 4099}) {
        const Tensor x = random_matrix(R, K, 1.0f, rng);
        const Tensor w = stored_as(random_matrix(N, K, 0.2f, rng), dtype);
        const Tensor bias = random_matrix(1, N, 0.5f, rng).reshape({N});
        const std::vector<float> want = kernels::linear(x, w, &bias).to_vector();
        std::vector<float> got(size_t(R * N), std::numeric_limits<float>::quiet_NaN());
        std::vector<int> seen(size_t(N), 0);
        std::vector<int> block_seen(size_t(kernels::column_block_count(R, N)), 0);
        kernels::linear_by_column_blocks(x, w, &bias, [&](int64_t block, int64_t n0, int64_t cols, float* values) {
#pragma omp critical
          {
            ++block_seen[size_t(block)];
            for (int64_t c = 0; c < cols; ++c) ++seen[size_t(n0 + c)];
          }
          for (int64_t r = 0; r < R; ++r)
            for (int64_t c = 0; c < cols; ++c) got[size_t(r * N + n0 + c)] = values[r * cols + c];
        });
        for (int64_t b = 0; b < int64_t(block_seen.size()); ++b) ASSERT_EQ(block_seen[size_t(b)], 1) << "block " << b;
        for (int64_t c = 0; c < N; ++c) ASSERT_EQ(seen[size_t(c)], 1) << "column " << c;
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_NEAR(got[i], want[i], 1e-5f * (1.0f + std::fabs(want[i])))
              << dtype_name(dtype) << " R=" << R << " N=" << N << " at " << i;
      }
    }
  }
}

TEST(LinearTopK, MatchesWholeLogitsThenLogSoftmaxAndSort) {
  Rng rng(2);
  const int64_t K = 48;
  for (DType dtype : {DType::F32, DType::BF16, DType::I8}) {
    for (int64_t R : {1, 5, 8, 9, 40, 130}) {
      for (int64_t N : {37, 1000, 5003}) {
        const Tensor x = random_matrix(R, K, 1.0f, rng);
        const Tensor w = stored_as(random_matrix(N, K, 0.3f, rng), dtype);
        const Tensor bias = random_matrix(1, N, 0.5f, rng).reshape({N});
        const bool with_bias = N != 1000;
        const std::vector<float> logits = kernels::linear(x, w, with_bias ? &bias : nullptr).to_vector();
        const std::vector<int64_t> excluded{0, N / 2, N - 1};
        for (int64_t n : {1, 8}) {
          const auto rows = kernels::linear_top_k(x, w, with_bias ? &bias : nullptr, n, excluded, true);
          ASSERT_EQ(int64_t(rows.size()), R);
          for (int64_t r = 0; r < R; ++r) {
            const Expected e = expected_row(logits.data() + r * N, N, n, excluded);
            const auto& got = rows[size_t(r)];
            const std::string where = std::string(dtype_name(dtype)) + " R=" + std::to_string(R) +
                                      " N=" + std::to_string(N) + " n=" + std::to_string(n) + " row " +
                                      std::to_string(r);
            EXPECT_NEAR(got.max, e.max, 1e-5 * (1 + std::fabs(e.max))) << where;
            EXPECT_NEAR(got.log_sum, e.log_sum, 2e-6 * (1 + e.log_sum)) << where;
            ASSERT_EQ(got.best.size(), e.best.size()) << where;
            for (size_t i = 0; i < e.best.size(); ++i) {
              EXPECT_EQ(got.best[i].token, e.best[i].token) << where << " rank " << i;
              EXPECT_NEAR(got.best[i].score, e.best[i].score, 1e-5f * (1 + std::fabs(e.best[i].score))) << where;
            }
          }
        }
      }
    }
  }
}

TEST(LinearTopK, TiesGoToTheLowerTokenAndExcludedOrTooFewTokensAreRespected) {
  Rng rng(3);
  const int64_t K = 16, N = 2000;
  std::vector<float> wv(size_t(N * K));
  for (float& v : wv) v = rng.normal() * 0.01f;
  for (int64_t id : {5, 17, 1500})
    for (int64_t k = 0; k < K; ++k) wv[size_t(id * K + k)] = 1.0f;  // three equal, clearly best rows
  const Tensor w = Tensor::from_vector(wv, {N, K});
  const Tensor x = Tensor::full({3, K}, 1.0f);
  for (const auto& row : kernels::linear_top_k(x, w, nullptr, 2, std::vector<int64_t>{}, false)) {
    ASSERT_EQ(row.best.size(), 2u);
    EXPECT_EQ(row.best[0].token, 5);
    EXPECT_EQ(row.best[1].token, 17);
  }
  for (const auto& row : kernels::linear_top_k(x, w, nullptr, 2, std::vector<int64_t>{5}, false)) {
    ASSERT_EQ(row.best.size(), 2u);
    EXPECT_EQ(row.best[0].token, 17);
    EXPECT_EQ(row.best[1].token, 1500);
  }
  const Tensor small = random_matrix(4, K, 1.0f, rng);
  for (const auto& row : kernels::linear_top_k(x, small, nullptr, 8, std::vector<int64_t>{2}, true)) {
    ASSERT_EQ(row.best.size(), 3u);  // four tokens, one excluded
    for (const auto& t : row.best) EXPECT_NE(t.token, 2);
  }
}

TEST(LinearTopK, NanLogitsGiveNoTokensWhereLogSoftmaxWouldBeNan) {
  Rng rng(4);
  const int64_t K = 16, N = 3000;
  const Tensor w = random_matrix(N, K, 0.3f, rng);
  Tensor x = random_matrix(3, K, 1.0f, rng);
  x.data<float>()[K + 3] = std::numeric_limits<float>::quiet_NaN();  // row 1: every logit NaN
  for (bool log_sum_exp : {true, false}) {
    const auto rows = kernels::linear_top_k(x, w, nullptr, 4, std::vector<int64_t>{}, log_sum_exp);
    EXPECT_EQ(rows[0].best.size(), 4u);
    EXPECT_TRUE(rows[1].best.empty());
    EXPECT_EQ(rows[2].best.size(), 4u);
  }
  // One NaN logit in every row: log-softmax is NaN throughout; ranking logits skips it.
  std::vector<float> bias(size_t(N), 0.0f);
  bias[2500] = std::numeric_limits<float>::quiet_NaN();
  const Tensor b = Tensor::from_vector(bias, {N});
  const Tensor clean = random_matrix(2, K, 1.0f, rng);
  for (const auto& row : kernels::linear_top_k(clean, w, &b, 4, std::vector<int64_t>{}, true))
    EXPECT_TRUE(row.best.empty());
  for (const auto& row : kernels::linear_top_k(clean, w, &b, 4, std::vector<int64_t>{}, false)) {
    ASSERT_EQ(row.best.size(), 4u);
    for (const auto& t : row.best) EXPECT_NE(t.token, 2500);
  }
  // -inf logits (a whole block of them) are probability 0, not NaN.
  std::fill(bias.begin(), bias.end(), 0.0f);
  std::fill(bias.begin(), bias.begin() + 1000, -std::numeric_limits<float>::infinity());
  const Tensor masked = Tensor::from_vector(bias, {N});
  for (const auto& row : kernels::linear_top_k(clean, w, &masked, 4, std::vector<int64_t>{}, true)) {
    ASSERT_EQ(row.best.size(), 4u);
    EXPECT_TRUE(std::isfinite(row.log_sum));
    for (const auto& t : row.best) EXPECT_GE(t.token, 1000);
  }
}

TEST(LinearTopK, SameResultWithAnyThreadCount) {
  Rng rng(5);
  const Tensor x = random_matrix(40, 32, 1.0f, rng);
  const Tensor w = random_matrix(7000, 32, 0.3f, rng);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = kernels::linear_top_k(x, w, nullptr, 4, std::vector<int64_t>{1}, true);
  omp_set_num_threads(std::max(2, threads));
  const auto many = kernels::linear_top_k(x, w, nullptr, 4, std::vector<int64_t>{1}, true);
  omp_set_num_threads(threads);
  for (size_t r = 0; r < one.size(); ++r) {
    EXPECT_EQ(one[r].max, many[r].max);
    EXPECT_EQ(one[r].log_sum, many[r].log_sum);
    ASSERT_EQ(one[r].best.size(), many[r].best.size());
    for (size_t i = 0; i < one[r].best.size(); ++i) {
      EXPECT_EQ(one[r].best[i].token, many[r].best[i].token);
      EXPECT_EQ(one[r].best[i].score, many[r].best[i].score);
    }
  }
}

TEST(LinearTopK, RejectsBadArguments) {
  Rng rng(6);
  const Tensor x = random_matrix(2, 8, 1.0f, rng), w = random_matrix(50, 8, 1.0f, rng);
  EXPECT_THROW(kernels::linear_top_k(x, w, nullptr, 0, std::vector<int64_t>{}, true), Error);
  EXPECT_THROW(kernels::linear_top_k(x, w, nullptr, 2, std::vector<int64_t>{50}, true), Error);
  EXPECT_THROW(kernels::linear_top_k(x, random_matrix(50, 9, 1.0f, rng), nullptr, 2, std::vector<int64_t>{}, true),
               Error);
  const Tensor short_bias = Tensor::full({49}, 0.0f);
  EXPECT_THROW(kernels::linear_top_k(x, w, &short_bias, 2, std::vector<int64_t>{}, true), Error);
}

TEST(LinearByColumnBlocks, AnErrorInABlockReachesTheCaller) {
  Rng rng(7);
  const Tensor x = random_matrix(12, 16, 1.0f, rng), w = random_matrix(3000, 16, 1.0f, rng);
  ASSERT_GT(kernels::column_block_count(12, 3000), 3);
  EXPECT_THROW(kernels::linear_by_column_blocks(x, w, nullptr,
                                                [](int64_t block, int64_t, int64_t, float*) {
                                                  if (block == 3) throw Error("block 3 failed");
                                                }),
               Error);
}
