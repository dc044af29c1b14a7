// Next-token selection: greedy, temperature, top-k, top-p, repetition penalty, reproducibility;
// and the text streamer (UTF-8 hold-back, stop strings).
#include <gtest/gtest.h>

#include <map>

#include "generate/causal_lm.h"
#include "generate/sampling.h"

using namespace tcat;
using namespace tcat::generate;

namespace {

std::map<int64_t, int> histogram(const std::vector<float>& logits, const SamplingOptions& opt,
                                 const std::vector<int64_t>& history = {}, int draws = 4000) {
  Rng rng(11);
  std::map<int64_t, int> counts;
  for (int i = 0; i < draws; ++i) ++counts[sample_next(logits.data(), int64_t(logits.size()), history, opt, rng)];
  return counts;
}

TEST(Sampling, GreedyTakesTheFirstMaximum) {
  const std::vector<float> logits = {0.1f, 2.0f, 2.0f, -1.0f};
  Rng rng(0);
  EXPECT_EQ(sample_next(logits.data(), 4, {}, {0.0f, 0, 1.0f, 1.0f}, rng), 1);
}

TEST(Sampling, TopKAndTopPRestrictTheCandidates) {
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  const auto top2 = histogram(logits, {1.0f, 2, 1.0f, 1.0f});
  EXPECT_EQ(top2.size(), 2u);
  EXPECT_NEAR(top2.at(0) / 4000.0, 0.5 / 0.8, 0.03);
  const auto nucleus = histogram(logits, {1.0f, 0, 0.75f, 1.0f});  // 0.5 + 0.3 passes 0.75
  EXPECT_EQ(nucleus.size(), 2u);
  const auto all = histogram(logits, {1.0f, 0, 1.0f, 1.0f});
  EXPECT_EQ(all.size(), 4u);
  EXPECT_NEAR(all.at(3) / 4000.0, 0.05, 0.015);
  const auto cold = histogram(logits, {0.25f, 0, 1.0f, 1.0f});  // p^4: token 0 dominates
  EXPECT_GT(cold.at(0), 3500);
}

TEST(Sampling, RepetitionPenaltyAndSeeds) {
  std::vector<float> logits = {2.0f, -1.0f, 1.9f};
  apply_repetition_penalty(logits, {0, 1, 0}, 2.0f);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, -2.0f, 1.9f}));
  const std::vector<float> flat(50, 0.0f);
  Rng a(5), b(5);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(sample_next(flat.data(), 50, {}, {}, a), sample_next(flat.data(), 50, {}, {}, b));
  EXPECT_THROW(validate({-1.0f, 0, 1.0f, 1.0f}), UsageError);
  EXPECT_THROW(validate({1.0f, 0, 0.0f, 1.0f}), UsageError);
}

TEST(TextStreamer, HoldsBackIncompleteCharactersAndStopStrings) {
  TextStreamer s({"END"});
  EXPECT_EQ(s.update("Hello"), "Hello");
  EXPECT_EQ(s.update("Hello \xEF\xBF\xBD"), " ");  // an incomplete character is not printed yet
  EXPECT_EQ(s.update("Hello \xC3\xA9 E"), "\xC3\xA9 ");  // "E" may start "END"
  EXPECT_EQ(s.update("Hello \xC3\xA9 EN"), "");
  EXPECT_EQ(s.update("Hello \xC3\xA9 ENDING"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.finish(), "");
  TextStreamer t({"END"});
  EXPECT_EQ(t.update("a E"), "a ");
  EXPECT_EQ(t.finish(), "E");
}

}  // namespace
