// Greedy decoding and beam search on random small models: beam size 1 is greedy, a wider beam
// never ends with a worse best score than greedy (alpha = 0), n-best lists are sorted and
// distinct, min_len = max_len forces the output length, and the length penalty is GNMT's.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "generate/beam_search.h"
#include "generate/greedy.h"

using namespace tcat;

namespace {

constexpr int64_t kVocab = 24, kPad = 0, kBos = 1, kEos = 2;

std::unique_ptr<models::Transformer> random_model(uint64_t seed, bool pre_norm) {
  models::ArchConfig c = models::preset("transformer-tiny", kVocab);
  c.dropout = 0.0f;
  c.pre_norm = pre_norm;
  c.final_norm = pre_norm;
  c.pad_id = kPad;
  c.d_model = 32;
  c.heads = 2;
  c.d_ff = 64;
  Rng rng(seed);
  return std::make_unique<models::Transformer>(c, rng);
}

// Sentences of the given lengths, right-padded.
Tensor sources(uint64_t seed, const std::vector<int64_t>& lengths) {
  Rng rng(seed);
  const int64_t S = *std::max_element(lengths.begin(), lengths.end());
  std::vector<int64_t> ids;
  for (int64_t len : lengths)
    for (int64_t t = 0; t < S; ++t) ids.push_back(t < len ? 3 + int64_t(rng.below(kVocab - 3)) : kPad);
  return Tensor::from_ids(ids, {int64_t(lengths.size()), S});
}

generate::BeamSearchOptions beam_options(int64_t beam, float alpha, int64_t n_best, int64_t max_len) {
  generate::BeamSearchOptions o;
  o.beam_size = beam;
  o.length_penalty = alpha;
  o.n_best = n_best;
  o.limits = {kBos, kEos, max_len, 0};
  return o;
}

}  // namespace

TEST(Search, BeamOfOneIsGreedy) {
  for (uint64_t seed : {1, 2, 3}) {
    const auto model = random_model(seed, seed % 2 == 0);
    const Tensor src = sources(seed, {6, 3, 8, 1, 5});
    const auto greedy = generate::greedy_decode(*model, src, {kBos, kEos, 15, 0});
    const auto beam = generate::beam_search(*model, src, beam_options(1, 0.6f, 1, 15));
    ASSERT_EQ(beam.size(), greedy.size());
    for (size_t i = 0; i < greedy.size(); ++i) {
      ASSERT_EQ(beam[i].size(), 1u);
      EXPECT_EQ(beam[i][0].tokens, greedy[i]) << "seed " << seed << " sentence " << i;
    }
  }
}

TEST(Search, WiderBeamNeverScoresBelowGreedy) {
  int64_t improved = 0;
  for (uint64_t seed : {11, 12, 13, 14}) {
    const auto model = random_model(seed, seed % 2 == 0);
    const Tensor src = sources(seed, {7, 4, 9, 2, 6, 5});
    const auto greedy = generate::beam_search(*model, src, beam_options(1, 0.0f, 1, 12));
    const auto beam = generate::beam_search(*model, src, beam_options(4, 0.0f, 4, 12));
    for (size_t i = 0; i < beam.size(); ++i) {
      const auto& nbest = beam[i];
      ASSERT_FALSE(nbest.empty());
      EXPECT_GE(nbest[0].score, greedy[i][0].score - 1e-5f) << "seed " << seed << " sentence " << i;
      improved += nbest[0].score > greedy[i][0].score + 1e-5f;
      std::set<std::vector<int64_t>> distinct;
      for (size_t j = 0; j < nbest.size(); ++j) {
        EXPECT_FLOAT_EQ(nbest[j].score, nbest[j].logprob);  // alpha = 0
        EXPECT_LE(nbest[j].logprob, 0.0f);
        if (j > 0) {
          EXPECT_LE(nbest[j].score, nbest[j - 1].score);
        }
        distinct.insert(nbest[j].tokens);
        for (int64_t t : nbest[j].tokens) EXPECT_TRUE(t != kPad && t != kEos) << t;
      }
      EXPECT_EQ(distinct.size(), nbest.size());
    }
  }
  EXPECT_GT(improved, 0) << "the beam never found anything better than greedy: is it searching?";
}

TEST(Search, LengthPenaltyIsGnmt) {
  const auto model = random_model(5, false);
  const Tensor src = sources(5, {5, 8});
  const float alpha = 0.8f;
  for (const auto& nbest : generate::beam_search(*model, src, beam_options(3, alpha, 3, 10))) {
    for (const auto& h : nbest) {
      const bool ended = h.tokens.size() < 10;  // stopped by EOS, which counts as a token
      const float len = float(h.tokens.size() + (ended ? 1 : 0));
      EXPECT_NEAR(h.score, h.logprob / std::pow((5.0f + len) / 6.0f, alpha), 1e-5f);
    }
  }
}

TEST(Search, MinLenEqualToMaxLenForcesTheLength) {
  const auto model = random_model(9, true);
  const Tensor src = sources(9, {3, 6, 2});
  for (const auto& tokens : generate::greedy_decode(*model, src, {kBos, kEos, 7, 7})) EXPECT_EQ(tokens.size(), 7u);
  auto opt = beam_options(4, 0.6f, 2, 7);
  opt.limits.min_len = 7;
  for (const auto& nbest : generate::beam_search(*model, src, opt)) {
    ASSERT_EQ(nbest.size(), 2u);
    for (const auto& h : nbest) EXPECT_EQ(h.tokens.size(), 7u);
  }
}

TEST(Search, DefaultMaxLenIsSourceLengthPlus50) {
  const auto model = random_model(4, false);
  auto opt = beam_options(2, 0.6f, 1, 0);
  opt.limits.min_len = 1000;  // never stop early: the output length is max_len
  const Tensor src = sources(4, {2, 5});
  const auto out = generate::beam_search(*model, src, opt);
  EXPECT_EQ(out[0][0].tokens.size(), 52u);
  EXPECT_EQ(out[1][0].tokens.size(), 55u);
}

TEST(Search, RejectsBadOptions) {
  const auto model = random_model(4, false);
  const Tensor src = sources(4, {3});
  EXPECT_THROW(generate::beam_search(*model, src, beam_options(0, 0.6f, 1, 5)), Error);
  EXPECT_THROW(generate::beam_search(*model, src, beam_options(2, 0.6f, 3, 5)), Error);
  EXPECT_THROW(generate::greedy_decode(*model, src, {kBos, kEos, 100000, 0}), Error);
}

// The scores the search keeps (from the output projection consumed in blocks) are the model's own
// log-probabilities: the sum over the hypothesis (and its EOS) of the teacher-forced log_softmax.
TEST(Search, HypothesisLogProbIsTheTeacherForcedLogProb) {
  const auto model = random_model(21, true);
  const Tensor src = sources(21, {6, 4, 9});
  const int64_t max_len = 10;
  const auto beams = generate::beam_search(*model, src, beam_options(3, 0.6f, 3, max_len));
  for (size_t s = 0; s < beams.size(); ++s) {
    for (const auto& h : beams[s]) {
      const bool ended = int64_t(h.tokens.size()) < max_len;
      std::vector<int64_t> tgt_in{kBos};
      tgt_in.insert(tgt_in.end(), h.tokens.begin(), h.tokens.end());
      std::vector<int64_t> next = h.tokens;
      if (ended) {
        next.push_back(kEos);
      } else {
        tgt_in.pop_back();
      }
      const int64_t T = int64_t(tgt_in.size());
      const Tensor one_src = src.slice(0, int64_t(s), int64_t(s) + 1).contiguous();
      const Tensor logits = model->forward(one_src, Tensor::from_ids(tgt_in, {1, T}), nn::ForwardContext{false, nullptr})
                                .value()
                                .contiguous();
      const int64_t V = logits.dim(-1);
      double logprob = 0;
      for (int64_t t = 0; t < T; ++t) {
        const float* row = logits.data<float>() + t * V;
        const float top = *std::max_element(row, row + V);
        double sum = 0;
        for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - top);
        logprob += double(row[next[size_t(t)]]) - top - std::log(sum);
      }
      EXPECT_NEAR(h.logprob, logprob, 1e-4) << "sentence " << s;
    }
  }
}
