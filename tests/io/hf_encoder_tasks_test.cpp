// Pooled vectors and fill-mask predictions of a Hugging Face encoder, checked against the BERT
// fixture's reference.json (last_hidden_state and logits from transformers 4.36.2).
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "io/hf_model.h"
#include "io/safetensors.h"
#include "models/encoder_tasks.h"

using namespace tcat;
namespace fs = std::filesystem;

namespace {

fs::path fixture(const std::string& name) {
  const char* env = std::getenv("TCAT_HF_FIXTURES");
  return (env ? fs::path(env) : fs::path(TCAT_SOURCE_DIR) / ".." / "shared" / "fixtures" / "hf-tiny") / name;
}
fs::path bert_fixture() { return fixture("bert"); }

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

// A base-model checkpoint of each encoder family (config "architectures" naming the base class,
// no MLM head tensors) loads as the encoder alone: the same pooled vectors as the full checkpoint,
// a clear error for fill-mask, and it saves back as the base class without head tensors.
TEST(HfBaseCheckpoints, LoadWithoutTheHeadAndGiveTheSameVectors) {
  struct Case {
    const char* family;
    const char* base_class;
    const char* head_prefix;  // of the head tensors dropped from the checkpoint
  };
  for (const Case& c : {Case{"bert", "BertModel", "cls."}, Case{"roberta", "RobertaModel", "lm_head."},
                        Case{"electra", "ElectraForPreTraining", "generator_"},
                        Case{"distilbert", "DistilBertModel", "vocab_"}, Case{"albert", "AlbertModel", "predictions."}}) {
    SCOPED_TRACE(c.family);
    const fs::path full_dir = fixture(c.family);
    if (!fs::exists(full_dir / "model.safetensors")) GTEST_SKIP() << "no fixture at " << full_dir;
    const fs::path dir = fs::temp_directory_path() / fmt::format("tcat_base_{}_{}", c.family, ::getpid());
    fs::remove_all(dir);
    fs::create_directories(dir);
    nlohmann::json config = nlohmann::json::parse(std::ifstream(full_dir / "config.json"));
    config["architectures"] = {c.base_class};
    std::ofstream(dir / "config.json") << config.dump();
    const io::SafetensorsFile full = io::SafetensorsFile::open((full_dir / "model.safetensors").string());
    std::vector<std::pair<std::string, Tensor>> encoder_only;
    for (const std::string& name : full.names())
      if (name.rfind(c.head_prefix, 0) != 0) encoder_only.emplace_back(name, full.get(name));
    ASSERT_LT(encoder_only.size(), full.names().size()) << "no head tensors named " << c.head_prefix << "*";
    io::save_safetensors((dir / "model.safetensors").string(), encoder_only);

    const io::HfModel with_head = io::load_hf_model(full_dir.string());
    const io::HfModel base = io::load_hf_model(dir.string());
    EXPECT_FALSE(base.config.arch.output_head);
    const std::vector<std::vector<int64_t>> inputs{{5, 6, 7, 8, 9}, {10, 11, 12}};
    const auto want = models::embed_sequences(*with_head.model, inputs, models::Pooling::Mean);
    EXPECT_EQ(models::embed_sequences(*base.model, inputs, models::Pooling::Mean), want);
    try {
      models::fill_mask(*base.model, {5, 6, 7}, 6, 5);
      ADD_FAILURE() << "fill-mask on a model without a head did not throw";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("no output head"), std::string::npos) << e.what();
    }

    const fs::path saved = dir / "saved";
    io::save_hf_model(*base.model, base.config, saved.string());
    const nlohmann::json saved_config = nlohmann::json::parse(std::ifstream(saved / "config.json"));
    EXPECT_EQ(saved_config.at("architectures").at(0), base.config.family->base_architecture);
    for (const std::string& name : io::SafetensorsFile::open((saved / "model.safetensors").string()).names())
      EXPECT_NE(name.rfind(c.head_prefix, 0), 0u) << name;
    EXPECT_EQ(models::embed_sequences(*io::load_hf_model(saved.string()).model, inputs, models::Pooling::Mean), want);
    fs::remove_all(dir);
  }
}

}  // namespace
