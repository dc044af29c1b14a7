// Token-budget batching: the budget, coverage of every pair once per epoch, determinism from
// (seed, epoch), exact resumption from a saved position, and what happens to over-long pairs.
#include "data/batching.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace tcat::data {
namespace {

using Ids = std::vector<std::vector<int64_t>>;

// Pairs with lengths 1..max_len, and ids that identify the pair (so batches can be checked by content).
struct Pairs {
  Ids src, tgt;
};
Pairs random_pairs(int64_t n, int64_t max_len, uint64_t seed) {
  Rng rng(seed);
  Pairs p;
  for (int64_t i = 0; i < n; ++i) {
    p.src.emplace_back(1 + rng.below(uint64_t(max_len)), 3 + i);
    p.tgt.emplace_back(1 + rng.below(uint64_t(max_len)), 3 + i);
  }
  return p;
}

BatchStream make_stream(const Pairs& p, BatchingOptions opt) { return BatchStream(p.src, p.tgt, opt); }

BatchingOptions options(int64_t max_tokens = 300, int64_t max_len = 40, uint64_t seed = 7) {
  BatchingOptions opt;
  opt.max_tokens = max_tokens;
  opt.max_len = max_len;
  opt.seed = seed;
  return opt;
}

// Everything a consumer sees of one batch.
struct Taken {
  BatchPosition position;
  std::vector<int64_t> pairs, src, tgt_in, tgt_out;
  bool operator==(const Taken&) const = default;
};
std::vector<Taken> take(BatchStream& stream, int64_t n) {
  std::vector<Taken> out;
  for (int64_t k = 0; k < n; ++k) {
    Taken t;
    t.position = stream.position();
    const Seq2SeqBatch b = stream.next(&t.pairs);
    t.src = b.src.to_ids();
    t.tgt_in = b.tgt_in.to_ids();
    t.tgt_out = b.tgt_out.to_ids();
    out.push_back(std::move(t));
  }
  return out;
}

TEST(Batching, BatchesStayWithinTheBudgetAndHoldTheirPairs) {
  const Pairs p = random_pairs(500, 40, 1);
  const auto opt = options();
  BatchStream stream = make_stream(p, opt);
  const int64_t n = int64_t(stream.epoch_batches().size());
  int64_t padded = 0, real = 0;
  for (int64_t k = 0; k < n; ++k) {
    std::vector<int64_t> pairs;
    const Seq2SeqBatch b = stream.next(&pairs);
    const int64_t B = b.src.dim(0), S = b.src.dim(1), T = b.tgt_in.dim(1);
    ASSERT_EQ(B, int64_t(pairs.size()));
    EXPECT_LE(B * std::max(S, T), opt.max_tokens) << "batch " << k;
    const auto src = b.src.to_ids(), tout = b.tgt_out.to_ids();
    for (int64_t r = 0; r < B; ++r) {
      const auto& s = p.src[size_t(pairs[size_t(r)])];
      const auto& t = p.tgt[size_t(pairs[size_t(r)])];
      EXPECT_TRUE(std::equal(s.begin(), s.end(), src.begin() + r * S));
      EXPECT_TRUE(std::equal(t.begin(), t.end(), tout.begin() + r * T));
      EXPECT_EQ(tout[size_t(r * T) + t.size()], kEosId);
      real += int64_t(std::max(s.size(), t.size() + 1));
    }
    padded += B * std::max(S, T);
  }
  // Length bucketing keeps padding small: random grouping would waste about half.
  EXPECT_GT(double(real) / double(padded), 0.8);
  EXPECT_EQ(stream.position(), (BatchPosition{1, 0}));
}

TEST(Batching, EveryKeptPairAppearsOncePerEpoch) {
  const Pairs p = random_pairs(400, 50, 2);
  BatchStream stream = make_stream(p, options(300, 40));
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> seen;
    while (stream.position().epoch == epoch) {
      std::vector<int64_t> pairs;
      stream.next(&pairs);
      seen.insert(seen.end(), pairs.begin(), pairs.end());
    }
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> expected;
    for (int64_t i = 0; i < 400; ++i)
      if (p.src[size_t(i)].size() <= 40 && p.tgt[size_t(i)].size() <= 40) expected.push_back(i);
    EXPECT_EQ(seen, expected) << "epoch " << epoch;
    EXPECT_EQ(int64_t(seen.size()), stream.stats().kept);
  }
}

TEST(Batching, EpochsAreAFunctionOfSeedAndEpoch) {
  const Pairs p = random_pairs(300, 30, 3);
  BatchStream a = make_stream(p, options()), b = make_stream(p, options());
  EXPECT_EQ(a.epoch_batches(), b.epoch_batches());
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  const auto epoch0 = a.epoch_batches();
  a.seek({1, 0});
  EXPECT_NE(a.epoch_batches(), epoch0) << "each epoch is shuffled anew";
  a.seek({0, 0});
  EXPECT_EQ(a.epoch_batches(), epoch0);
  BatchStream other_seed = make_stream(p, options(300, 40, 8));
  EXPECT_NE(other_seed.epoch_batches(), epoch0);
  EXPECT_NE(other_seed.fingerprint(), a.fingerprint());
}

TEST(Batching, RestoringAPositionGivesTheSameRemainingBatches) {
  const Pairs p = random_pairs(300, 30, 4);
  BatchStream uninterrupted = make_stream(p, options());
  const int64_t per_epoch = int64_t(uninterrupted.epoch_batches().size());
  ASSERT_GT(per_epoch, 10);
  // Stop a few batches before the end of epoch 0, so the resumed part crosses into epoch 1.
  take(uninterrupted, per_epoch - 3);
  const BatchPosition saved = uninterrupted.position();
  EXPECT_EQ(saved, (BatchPosition{0, per_epoch - 3}));
  const auto expected = take(uninterrupted, 10);

  BatchStream resumed = make_stream(p, options());
  ASSERT_EQ(resumed.fingerprint(), uninterrupted.fingerprint());
  resumed.seek(saved);
  EXPECT_EQ(take(resumed, 10), expected);
  EXPECT_EQ(expected[3].position, (BatchPosition{1, 0}));

  // A later epoch can be entered directly, without replaying earlier ones.
  BatchStream jumped = make_stream(p, options());
  jumped.seek({1, 0});
  EXPECT_EQ(take(jumped, 7), std::vector<Taken>(expected.begin() + 3, expected.end()));
}

TEST(Batching, OverlongPairsAreSkippedOrTruncatedAndCounted) {
  const Pairs p{{{5, 6}, std::vector<int64_t>(12, 7), {8}, std::vector<int64_t>(3, 9), {}},
                {{5}, {6}, std::vector<int64_t>(11, 7), std::vector<int64_t>(10, 9), {4}}};
  auto opt = options(50, 10);
  BatchStream skipping = make_stream(p, opt);
  EXPECT_EQ(skipping.stats().pairs, 5);
  EXPECT_EQ(skipping.stats().kept, 2);
  EXPECT_EQ(skipping.stats().skipped_overlong, 2);
  EXPECT_EQ(skipping.stats().skipped_empty, 1);
  EXPECT_EQ(skipping.stats().truncated, 0);

  opt.overlong = OverlongPolicy::Truncate;
  BatchStream truncating = make_stream(p, opt);
  EXPECT_EQ(truncating.stats().kept, 4);
  EXPECT_EQ(truncating.stats().truncated, 2);
  EXPECT_EQ(truncating.stats().skipped_overlong, 0);
  EXPECT_NE(truncating.fingerprint(), skipping.fingerprint());
  for (const auto& t : take(truncating, int64_t(truncating.epoch_batches().size()))) {
    const int64_t B = int64_t(t.pairs.size());
    EXPECT_LE(int64_t(t.src.size()) / B, 10);
    EXPECT_LE(int64_t(t.tgt_in.size()) / B, 11);
  }
}

TEST(Batching, RejectsWhatCannotBeBatched) {
  const Pairs p = random_pairs(20, 10, 5);
  EXPECT_THROW(make_stream(p, options(10, 10)), Error) << "budget below one pair of max_len";
  EXPECT_THROW(BatchStream(Ids{{1}}, Ids{}, options()), Error);
  EXPECT_THROW(BatchStream(Ids{{}}, Ids{{4}}, options()), Error) << "nothing left to batch";
  BatchStream stream = make_stream(p, options());
  const int64_t n = int64_t(stream.epoch_batches().size());
  try {
    stream.seek({0, n});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fmt::format("epoch 0 has {} batches", n)), std::string::npos) << e.what();
  }
  EXPECT_THROW(stream.seek({-1, 0}), Error);
  EXPECT_THROW(stream.seek({3, 1'000'000}), Error);
  EXPECT_EQ(stream.position(), (BatchPosition{0, 0})) << "a failed seek leaves the stream where it was";
}

}  // namespace
}  // namespace tcat::data
