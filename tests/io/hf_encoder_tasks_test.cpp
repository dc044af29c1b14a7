// Pooled vectors and fill-mask predictions of a Hugging Face encoder, checked against the BERT
// fixture's reference.json (last_hidden_state and logits from transformers 4.36.2).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "io/hf_model.h"
#include "models/encoder_tasks.h"

using namespace tcat;
namespace fs = std::filesystem;

namespace {

fs::path bert_fixture() {
  const char* env = std::getenv("TCAT_HF_FIXTURES");
  return (env ? fs::path(env) : fs::path(TCAT_SOURCE_DIR) / ".." / "shared" / "fixtures" / "hf-tiny") / "bert";
}

class HfEncoderTasks : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(bert_fixture() / "reference.json")) GTEST_SKIP() << "no bert fixture at " << bert_fixture();
    std::ifstream in(bert_fixture() / "reference.json");
    forward_ = nlohmann::json::parse(in).at("forward");
    loaded_ = io::load_hf_model(bert_fixture().string());
  }
  std::vector<int64_t> input(size_t row) const { return forward_.at("input_ids").at(row).get<std::vector<int64_t>>(); }

  nlohmann::json forward_;
  io::HfModel loaded_;
};

TEST_F(HfEncoderTasks, MeanAndClsPoolingMatchTheReferenceHiddenStates) {
  const auto& hidden = forward_.at("last_hidden_state");
  const std::vector<std::vector<int64_t>> inputs{input(0), input(1)};
  const auto mean = models::embed_sequences(*loaded_.model, inputs, models::Pooling::Mean);
  const auto cls = models::embed_sequences(*loaded_.model, inputs, models::Pooling::Cls);
  for (size_t row = 0; row < inputs.size(); ++row) {
    const auto& rows = hidden.at(row);
    ASSERT_EQ(mean[row].size(), rows.at(0).size());
    for (size_t i = 0; i < mean[row].size(); ++i) {
      double want = 0;
      for (const auto& step : rows) want += step.at(i).get<double>();
      EXPECT_NEAR(mean[row][i], want / double(rows.size()), 1e-4) << "row " << row << " dim " << i;
      EXPECT_NEAR(cls[row][i], rows.at(0).at(i).get<double>(), 1e-4) << "row " << row << " dim " << i;
    }
  }
}

TEST_F(HfEncoderTasks, FillMaskRanksTheReferenceLogitsAtEveryMaskPosition) {
  // Treat the token at position 3 as the mask: the reference logits there are the expected answer.
  const std::vector<int64_t> ids = input(0);
  const int64_t mask = ids.at(3);
  const auto predictions = models::fill_mask(*loaded_.model, ids, mask, 5);
  ASSERT_FALSE(predictions.empty());
  for (const auto& p : predictions) {
    EXPECT_EQ(ids.at(size_t(p.position)), mask);
    const std::vector<double> logits = forward_.at("logits").at(0).at(size_t(p.position)).get<std::vector<double>>();
    const double top = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (double l : logits) sum += std::exp(l - top);
    std::vector<size_t> order(logits.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return logits[a] > logits[b]; });
    ASSERT_EQ(p.top.size(), 5u);
    for (size_t k = 0; k < p.top.size(); ++k) {
      EXPECT_EQ(p.top[k].id, int64_t(order[k])) << "rank " << k;
      EXPECT_NEAR(p.top[k].probability, std::exp(logits[order[k]] - top) / sum, 1e-5) << "rank " << k;
    }
  }
}

TEST_F(HfEncoderTasks, FillMaskWithoutAMaskTokenIsAUsageError) {
  EXPECT_THROW(models::fill_mask(*loaded_.model, input(0), 511, 5), UsageError);
  EXPECT_THROW(models::fill_mask(*loaded_.model, {511}, 511, 0), UsageError);
}

}  // namespace
