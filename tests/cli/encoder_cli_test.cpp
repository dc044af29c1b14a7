// tcat embed and tcat fill-mask end to end: the tiny BERT fixture with a made-up 512-word
// WordPiece vocabulary beside it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/run_tcat.h"
#include "common/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using tcat::testing::run_tcat;

class EncoderCli : public tcat::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    const fs::path bert = fs::path(TCAT_SOURCE_DIR) / ".." / "shared" / "fixtures" / "hf-tiny" / "bert";
    if (!fs::exists(bert / "model.safetensors")) GTEST_SKIP() << "no bert fixture at " << bert;
    fs::copy_file(bert / "config.json", dir_ / "config.json");
    fs::copy_file(bert / "model.safetensors", dir_ / "model.safetensors");
    std::ofstream vocab(dir_ / "vocab.txt");
    int lines = 0;
    for (const char* w : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "paris", "is", "the", "capital", "of", "france",
                          "."}) {
      vocab << w << "\n";
      ++lines;
    }
    for (; lines < 512; ++lines) vocab << "w" << lines << "\n";
  }
};

TEST_F(EncoderCli, FillMaskListsTopKTokensWithProbabilities) {
  const auto r = run_tcat(fmt::format("fill-mask -m {} \"Paris is the [MASK] of France.\" -k 3", dir_.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  int count = 0;
  for (std::string line; std::getline(lines, line);) {
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const double p = std::stod(line.substr(tab + 1));
    EXPECT_GT(p, 0.0);
    EXPECT_LE(p, 1.0);
    ++count;
  }
  EXPECT_EQ(count, 3);
  const auto j = run_tcat(fmt::format("fill-mask -m {} \"the [MASK] .\" --json", dir_.string()));
  ASSERT_EQ(j.exit_code, 0) << j.output;
  const auto parsed = nlohmann::json::parse(j.output);
  ASSERT_EQ(parsed.at("masks").size(), 1u);
  EXPECT_EQ(parsed.at("masks").at(0).at("position"), 2);  // [CLS] the [MASK] . [SEP]
  EXPECT_EQ(parsed.at("masks").at(0).at("candidates").size(), 5u);
}

TEST_F(EncoderCli, FillMaskWithoutAMaskIsAUsageError) {
  const auto r = run_tcat(fmt::format("fill-mask -m {} \"Paris is the capital.\"", dir_.string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("mask"), std::string::npos) << r.output;
}

TEST_F(EncoderCli, EmbedPrintsOneVectorPerText) {
  for (const char* pooling : {"mean", "cls"}) {
    const auto r = run_tcat(fmt::format("embed -m {} --pooling {} \"Paris is the capital of France.\" \"the capital\"",
                                        dir_.string(), pooling));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto j = nlohmann::json::parse(r.output);
    EXPECT_EQ(j.at("pooling"), pooling);
    EXPECT_EQ(j.at("dim"), 32);
    ASSERT_EQ(j.at("embeddings").size(), 2u);
    EXPECT_EQ(j.at("embeddings").at(1).at("text"), "the capital");
    EXPECT_EQ(j.at("embeddings").at(0).at("vector").size(), 32u);
  }
}

// A vocabulary larger than the model's (tokenizer files of another model) is named at load, before
// any text is tokenized, by both commands.
TEST_F(EncoderCli, ATokenizerLargerThanTheModelVocabularyIsNamed) {
  std::ofstream vocab(dir_ / "vocab.txt", std::ios::app);
  for (int extra = 0; extra < 10; ++extra) vocab << "extra" << extra << "\n";
  vocab.close();
  for (const char* command : {"embed", "fill-mask"}) {
    const auto r = run_tcat(fmt::format("{} -m {} \"the [MASK]\"", command, dir_.string()));
    EXPECT_EQ(r.exit_code, 2) << command << ": " << r.output;
    EXPECT_NE(r.output.find("the tokenizer has 522 entries but the model's vocabulary has 512"), std::string::npos)
        << command << ": " << r.output;
  }
}

}  // namespace
