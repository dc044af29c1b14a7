// Fused attention against a naive double-precision reference (full T x T softmax).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/position.h"

using namespace tcat::kernels;

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Inputs are N(0,1) and scores O(1), so every output is a sum of at most a few hundred O(1)
// fp32 products (130 keys x 64 dims; for dk/dv up to 4 heads x 130 queries), with rounding
// errors of about sqrt(n) * 6e-8 * |terms|. The largest seen is ~5e-6, on dq/dk where
// dS = P * (dP - delta) cancels (with one visible key dP == delta exactly). 1e-5 on
// |got - want| / (1 + |want|) keeps that margin, while a masking, scaling or rescaling mistake
// shows up as 1e-3 or more.
constexpr double kTolerance = 1e-5;

enum class Layout {
  Separate,   // q, k, v, out each [batch, time, heads, head_dim]
  FusedQkv,   // q, k, v interleaved per token in one [batch, time, heads + 2 kv_heads, head_dim]
  HeadMajor,  // every tensor [batch, heads, time, head_dim]
};

struct Config {
  int64_t batch = 1, heads = 1, kv_heads = 0, q_len = 1, kv_len = 1, dim = 8;
  bool causal = false, padding = false;
  float scale = 0;  // 0: 1/sqrt(dim)
  Layout layout = Layout::Separate;
  bool alibi = false;

  int64_t kv_head_count() const { return kv_heads == 0 ? heads : kv_heads; }
  float softmax_scale() const { return scale != 0 ? scale : 1.0f / std::sqrt(float(dim)); }
  AttentionShape shape() const { return {batch, heads, q_len, kv_len, dim, kv_heads}; }
  std::string str() const {
    return "batch " + std::to_string(batch) + " heads " + std::to_string(heads) + " kv_heads " +
           std::to_string(kv_head_count()) + " q_len " + std::to_string(q_len) + " kv_len " +
           std::to_string(kv_len) + " dim " + std::to_string(dim) + (causal ? " causal" : "") +
           (padding ? " padding" : "") + (alibi ? " alibi" : "") + " layout " + std::to_string(int(layout));
  }
};

float& elem(const HeadView& v, int64_t b, int64_t t, int64_t h, int64_t d) {
  return v.data[b * v.batch_stride + t * v.time_stride + h * v.head_stride + d];
}

HeadView view_of(float* data, Layout layout, int64_t time, int64_t heads, int64_t dim) {
  if (layout == Layout::HeadMajor) return {data, heads * time * dim, dim, time * dim};
  return {data, time * heads * dim, heads * dim, dim};
}

struct QkvViews {
  HeadView q, k, v;
};

// q, k, v (or dq, dk, dv) over `storage`, which is resized to hold exactly them.
QkvViews make_qkv(const Config& c, std::vector<float>& storage) {
  const int64_t h = c.heads, kvh = c.kv_head_count(), d = c.dim;
  if (c.layout == Layout::FusedQkv) {
    const int64_t width = (h + 2 * kvh) * d;
    storage.assign(size_t(c.batch * c.q_len * width), 0.0f);
    const HeadView base{storage.data(), c.q_len * width, width, d};
    QkvViews views{base, base, base};
    views.k.data += h * d;
    views.v.data += (h + kvh) * d;
    return views;
  }
  const int64_t q_size = c.batch * c.q_len * h * d, kv_size = c.batch * c.kv_len * kvh * d;
  storage.assign(size_t(q_size + 2 * kv_size), 0.0f);
  return {view_of(storage.data(), c.layout, c.q_len, h, d),
          view_of(storage.data() + q_size, c.layout, c.kv_len, kvh, d),
          view_of(storage.data() + q_size + kv_size, c.layout, c.kv_len, kvh, d)};
}

HeadView make_out(const Config& c, std::vector<float>& storage) {
  storage.assign(size_t(c.batch * c.q_len * c.heads * c.dim), 0.0f);
  return view_of(storage.data(), c.layout == Layout::HeadMajor ? Layout::HeadMajor : Layout::Separate, c.q_len,
                 c.heads, c.dim);
}

// Random inputs plus the kernel's outputs for one configuration.
struct Case {
  Config c;
  std::vector<float> qkv_storage, dout_storage, out_storage, grad_storage, lse;
  std::vector<uint8_t> key_valid;
  std::vector<float> slopes;  // ALiBi
  QkvViews in, grad;
  HeadView out, dout;

  Case(const Config& config, uint32_t seed) : c(config) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    in = make_qkv(c, qkv_storage);
    dout = make_out(c, dout_storage);
    for (float& x : qkv_storage) x = normal(rng);
    for (float& x : dout_storage) x = normal(rng);
    if (c.padding) {
      std::bernoulli_distribution keep(0.7);
      key_valid.resize(size_t(c.batch * c.kv_len));
      for (auto& valid : key_valid) valid = keep(rng);
    }
    if (c.alibi) slopes = alibi_slopes(c.heads);
  }

  AttentionMask mask() const {
    return {c.causal, key_valid.empty() ? nullptr : key_valid.data(), slopes.empty() ? nullptr : slopes.data()};
  }

  void run() {
    out = make_out(c, out_storage);
    std::fill(out_storage.begin(), out_storage.end(), std::nanf(""));  // every element must be written
    lse.assign(size_t(c.batch * c.heads * c.q_len), std::nanf(""));
    attention_forward(c.shape(), in.q, in.k, in.v, out, mask(), c.softmax_scale(), lse.data());
    grad = make_qkv(c, grad_storage);
    std::fill(grad_storage.begin(), grad_storage.end(), std::nanf(""));  // overwritten, not accumulated
    attention_backward(c.shape(), in.q, in.k, in.v, out, dout, lse.data(), mask(), c.softmax_scale(), grad.q,
                       grad.k, grad.v);
  }
};

// Naive attention in double: the full score matrix per (batch, head), then softmax and its
// textbook gradient. ALiBi adds slope * (j - i) to the score of query i and key j (the kernel
// adds slope * j; the softmax does not see the per-row shift, but lse does). Layouts: out/dq [b][t][h][d], dk/dv [b][t][kv_head][d], lse [b][h][t].
struct Reference {
  std::vector<double> out, lse, dq, dk, dv;

  explicit Reference(const Case& x) {
    const Config& c = x.c;
    const int64_t kvh_count = c.kv_head_count(), group = c.heads / kvh_count, d_n = c.dim;
    const double scale = c.softmax_scale();
    out.assign(size_t(c.batch * c.q_len * c.heads * d_n), 0.0);
    dq.assign(out.size(), 0.0);
    lse.assign(size_t(c.batch * c.heads * c.q_len), kNegInf);
    dk.assign(size_t(c.batch * c.kv_len * kvh_count * d_n), 0.0);
    dv.assign(dk.size(), 0.0);
    std::vector<double> prob(size_t(c.kv_len)), dprob(size_t(c.kv_len));
    std::vector<bool> visible(size_t(c.kv_len));
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t h = 0; h < c.heads; ++h)
        for (int64_t i = 0; i < c.q_len; ++i) {
          const int64_t kvh = h / group;
          double max_score = kNegInf;
          for (int64_t j = 0; j < c.kv_len; ++j) {
            visible[j] = (!c.causal || j <= i + c.kv_len - c.q_len) &&
                         (x.key_valid.empty() || x.key_valid[b * c.kv_len + j]);
            if (!visible[j]) continue;
            double dot = 0;
            for (int64_t d = 0; d < d_n; ++d)
              dot += double(elem(x.in.q, b, i, h, d)) * elem(x.in.k, b, j, kvh, d);
            prob[j] = scale * dot + (x.slopes.empty() ? 0.0 : double(x.slopes[h]) * double(j - i));
            max_score = std::max(max_score, prob[j]);
          }
          if (max_score == kNegInf) continue;  // no visible key: zeros, lse -inf
          double sum = 0;
          for (int64_t j = 0; j < c.kv_len; ++j) {
            prob[j] = visible[j] ? std::exp(prob[j] - max_score) : 0.0;
            sum += prob[j];
          }
          const double alibi_shift = x.slopes.empty() ? 0.0 : double(x.slopes[h]) * double(i);
          lse[(b * c.heads + h) * c.q_len + i] = max_score + std::log(sum) + alibi_shift;
          const int64_t row = ((b * c.q_len + i) * c.heads + h) * d_n;
          double delta = 0;  // sum_j P_ij dP_ij
          for (int64_t j = 0; j < c.kv_len; ++j) {
            prob[j] /= sum;
            dprob[j] = 0;
            for (int64_t d = 0; d < d_n; ++d) {
              out[row + d] += prob[j] * elem(x.in.v, b, j, kvh, d);
              dprob[j] += double(elem(x.dout, b, i, h, d)) * elem(x.in.v, b, j, kvh, d);
            }
            delta += prob[j] * dprob[j];
          }
          for (int64_t j = 0; j < c.kv_len; ++j) {
            const double dscore = prob[j] * (dprob[j] - delta);
            const int64_t key_row = ((b * c.kv_len + j) * kvh_count + kvh) * d_n;
            for (int64_t d = 0; d < d_n; ++d) {
              dq[row + d] += scale * dscore * elem(x.in.k, b, j, kvh, d);
              dk[key_row + d] += scale * dscore * elem(x.in.q, b, i, h, d);
              dv[key_row + d] += prob[j] * elem(x.dout, b, i, h, d);
            }
          }
        }
  }
};

// Largest |got - want| / (1 + |want|) over a [batch, time, heads, dim] tensor.
double worst_error(const HeadView& got, const std::vector<double>& want, int64_t batch, int64_t time, int64_t heads,
                   int64_t dim) {
  double worst = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < time; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t d = 0; d < dim; ++d) {
          const double w = want[size_t(((b * time + t) * heads + h) * dim + d)];
          const double g = elem(got, b, t, h, d);
          worst = std::max(worst, std::isfinite(g) ? std::abs(g - w) / (1 + std::abs(w)) : INFINITY);
        }
  return worst;
}

void expect_matches_reference(const Case& x) {
  SCOPED_TRACE(x.c.str());
  const Config& c = x.c;
  const Reference ref(x);
  const int64_t kvh = c.kv_head_count();
  EXPECT_LE(worst_error(x.out, ref.out, c.batch, c.q_len, c.heads, c.dim), kTolerance) << "out";
  EXPECT_LE(worst_error(x.grad.q, ref.dq, c.batch, c.q_len, c.heads, c.dim), kTolerance) << "dq";
  EXPECT_LE(worst_error(x.grad.k, ref.dk, c.batch, c.kv_len, kvh, c.dim), kTolerance) << "dk";
  EXPECT_LE(worst_error(x.grad.v, ref.dv, c.batch, c.kv_len, kvh, c.dim), kTolerance) << "dv";
  for (size_t i = 0; i < ref.lse.size(); ++i) {
    if (ref.lse[i] == kNegInf) {
      EXPECT_EQ(x.lse[i], -INFINITY) << "lse " << i;
    } else {
      EXPECT_NEAR(x.lse[i], ref.lse[i], kTolerance * (1 + std::abs(ref.lse[i]))) << "lse " << i;
    }
  }
}

TEST(Attention, MatchesReferenceAcrossShapesAndMasks) {
  struct Heads {
    int64_t batch, heads, kv_heads, dim;
  };
  const Heads head_configs[] = {{1, 1, 0, 8}, {2, 4, 2, 64}, {3, 2, 1, 8}, {2, 4, 1, 64}, {1, 3, 3, 64}, {3, 4, 4, 8}};
  const int64_t lengths[] = {1, 5, 63, 64, 65, 130};
  uint32_t seed = 0;
  for (int64_t q_len : lengths)
    for (int64_t kv_len : lengths)
      for (bool causal : {false, true})
        for (bool padding : {false, true}) {
          const Heads& hc = head_configs[seed % std::size(head_configs)];
          Config c{hc.batch, hc.heads, hc.kv_heads, q_len, kv_len, hc.dim, causal, padding};
          Case x(c, ++seed);
          x.run();
          expect_matches_reference(x);
        }
}

TEST(Attention, AlibiMatchesReference) {
  // 4 heads: powers-of-two slopes; 6 heads: the extra slopes of the next power of two.
  uint32_t seed = 300;
  for (int64_t heads : {4, 6})
    for (int64_t q_len : {1, 7, 70})
      for (bool causal : {false, true}) {
        Config c{2, heads, heads / 2, q_len, 70, 16, causal, q_len == 7};
        c.alibi = true;
        Case x(c, ++seed);
        x.run();
        expect_matches_reference(x);
      }
}

TEST(Attention, FusedQkvAndHeadMajorLayouts) {
  uint32_t seed = 100;
  for (Layout layout : {Layout::FusedQkv, Layout::HeadMajor})
    for (int64_t len : {5, 64, 130})
      for (bool causal : {false, true}) {
        Config c{2, 4, 2, len, len, 64, causal, true};
        c.layout = layout;
        Case x(c, ++seed);
        x.run();
        expect_matches_reference(x);
      }
}

TEST(Attention, HeadDimsOffTheVectorWidth) {
  // 12: not a multiple of 8 (scalar transposes); 20: a 16-wide tile plus a 4-column tail.
  uint32_t seed = 200;
  for (int64_t dim : {12, 20})
    for (bool causal : {false, true}) {
      Config c{2, 4, 2, 70, 70, dim, causal, true};
      Case x(c, ++seed);
      x.run();
      expect_matches_reference(x);
    }
}

TEST(Attention, PeakedSoftmaxRescalesAcrossKeyBlocks) {
  // Scores spread over about +-30, so the running max changes between key blocks.
  for (bool causal : {false, true}) {
    Config c{1, 2, 0, 70, 200, 8, causal, false};
    c.scale = 1.5f;
    Case x(c, 7);
    x.run();
    expect_matches_reference(x);
  }
}

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

TEST(Attention, FullyMaskedRowsGiveZerosAndNoNan) {
  // Batch 0: every key is padding. Batch 1: only key 0 is valid. Causal with q_len > kv_len:
  // the first q_len - kv_len queries of every batch see no key at all.
  Config c{2, 2, 1, 70, 66, 8, true, true};
  Case x(c, 11);
  std::fill(x.key_valid.begin(), x.key_valid.end(), 0);
  x.key_valid[size_t(c.kv_len)] = 1;
  x.run();
  EXPECT_TRUE(all_finite(x.out_storage));
  EXPECT_TRUE(all_finite(x.grad_storage));
  for (int64_t h = 0; h < c.heads; ++h)
    for (int64_t i = 0; i < c.q_len; ++i) {
      const bool masked_row = i < c.q_len - c.kv_len;
      EXPECT_EQ(x.lse[size_t(h * c.q_len + i)], -INFINITY);
      EXPECT_EQ(std::isinf(x.lse[size_t((c.heads + h) * c.q_len + i)]), masked_row);
      for (int64_t d = 0; d < c.dim; ++d) {
        EXPECT_EQ(elem(x.out, 0, i, h, d), 0.0f);
        EXPECT_EQ(elem(x.grad.q, 0, i, h, d), 0.0f);
        if (masked_row) {
          EXPECT_EQ(elem(x.out, 1, i, h, d), 0.0f);
          EXPECT_EQ(elem(x.grad.q, 1, i, h, d), 0.0f);
        }
      }
    }
  for (int64_t j = 0; j < c.kv_len; ++j)
    for (int64_t d = 0; d < c.dim; ++d) {
      EXPECT_EQ(elem(x.grad.k, 0, j, 0, d), 0.0f);
      EXPECT_EQ(elem(x.grad.v, 0, j, 0, d), 0.0f);
    }
  expect_matches_reference(x);
}

TEST(Attention, NoKeysGivesZeros) {
  Config c{2, 2, 0, 3, 0, 8, false, false};
  Case x(c, 12);
  x.run();
  EXPECT_TRUE(std::all_of(x.out_storage.begin(), x.out_storage.end(), [](float v) { return v == 0.0f; }));
  EXPECT_TRUE(std::all_of(x.grad_storage.begin(), x.grad_storage.end(), [](float v) { return v == 0.0f; }));
  EXPECT_TRUE(std::all_of(x.lse.begin(), x.lse.end(), [](float v) { return v == -INFINITY; }));
}

TEST(Attention, ResultsDoNotDependOnThreadCount) {
  Config c{3, 4, 2, 130, 130, 64, true, true};
  c.layout = Layout::FusedQkv;
  const int saved_threads = omp_get_max_threads();
  Case one(c, 21), two(c, 21);
  omp_set_num_threads(1);
  one.run();
  omp_set_num_threads(2);
  two.run();
  omp_set_num_threads(saved_threads);
  auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  EXPECT_TRUE(same_bits(one.out_storage, two.out_storage));
  EXPECT_TRUE(same_bits(one.lse, two.lse));
  EXPECT_TRUE(same_bits(one.grad_storage, two.grad_storage));
}

TEST(Attention, RejectsKvHeadsThatDoNotDivideHeads) {
  Config c{1, 4, 3, 2, 2, 8, false, false};
  Case x(c, 1);
  EXPECT_THROW(x.run(), tcat::Error);
}

}  // namespace
