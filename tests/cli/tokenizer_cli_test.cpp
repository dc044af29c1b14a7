// `tcat tokenizer train` and `tcat tokenizer encode` end to end.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/temp_dir.h"
#include "cli/run_tcat.h"
#include "tokenizer/sentencepiece.h"

namespace {

namespace fs = std::filesystem;
using tcat::testing::run_tcat;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class TokenizerCli : public tcat::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    for (const char* lang : {"en", "de"}) {
      std::ifstream in(fs::path(TCAT_SOURCE_DIR) / "data" / "multi30k" / fmt::format("train.{}", lang));
      std::ofstream out(dir_ / fmt::format("train.{}", lang));
      std::string line;
      for (int i = 0; i < 1000 && std::getline(in, line); ++i) out << line << "\n";
    }
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  tcat::testing::ProcessResult train(const std::string& extra = "") const {
    return run_tcat(fmt::format("tokenizer train --input {} --input {} --vocab-size 300 --model-type bpe -o {} {}",
                                path("train.en"), path("train.de"), path("m.model"), extra));
  }

};

TEST_F(TokenizerCli, TrainsQuietlyAndWritesAModel) {
  const auto r = train();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(split_lines(r.output).size(), 1u) << "one summary line, no sentencepiece log:\n" << r.output;
  EXPECT_TRUE(contains(r.output, "300 pieces")) << r.output;
  EXPECT_TRUE(contains(r.output, path("m.model"))) << r.output;
  const auto model = tcat::tokenizer::SentencePieceTokenizer::load(path("m.model"));
  EXPECT_EQ(model.vocab_size(), 300);
  EXPECT_EQ(model.unk_id(), 3);

  const auto verbose = train("--verbose");
  EXPECT_EQ(verbose.exit_code, 0) << verbose.output;
  EXPECT_GT(split_lines(verbose.output).size(), 10u) << "--verbose shows sentencepiece's log";
}

TEST_F(TokenizerCli, EncodesStdinAsPiecesOrIds) {
  ASSERT_EQ(train().exit_code, 0);
  std::ofstream(dir_ / "in.txt") << "A man is riding a bicycle.\r\nEin Mann fährt Fahrrad.\n";
  const auto pieces = run_tcat(fmt::format("tokenizer encode -m {} < {}", path("m.model"), path("in.txt")));
  ASSERT_EQ(pieces.exit_code, 0) << pieces.output;
  const auto piece_lines = split_lines(pieces.output);
  ASSERT_EQ(piece_lines.size(), 2u) << pieces.output;
  EXPECT_EQ(piece_lines[0].rfind("\u2581A \u2581man", 0), 0u) << piece_lines[0];

  const auto ids = run_tcat(fmt::format("tokenizer encode -m {} --ids < {}", path("m.model"), path("in.txt")));
  ASSERT_EQ(ids.exit_code, 0) << ids.output;
  const auto model = tcat::tokenizer::SentencePieceTokenizer::load(path("m.model"));
  EXPECT_EQ(split_lines(ids.output), (std::vector<std::string>{
                                         fmt::format("{}", fmt::join(model.encode("A man is riding a bicycle."), " ")),
                                         fmt::format("{}", fmt::join(model.encode("Ein Mann fährt Fahrrad."), " "))}));
}

TEST_F(TokenizerCli, ErrorsExitWithTheRightCodeAndNameTheProblem) {
  struct Case {
    std::string args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases{
      {"tokenizer", 2, "subcommand"},
      {"tokenizer train -o x.model", 2, "--input"},
      {fmt::format("tokenizer train --input {}", path("train.en")), 2, "--output"},
      {fmt::format("tokenizer train --input {} -o {} --model-type wordpiece", path("train.en"), path("x.model")), 2,
       "wordpiece"},
      {fmt::format("tokenizer train --input {} -o {}", path("nowhere.txt"), path("x.model")), 1, "nowhere.txt"},
      {fmt::format("tokenizer train --input {} -o {} --vocab-size 100000", path("train.en"), path("x.model")), 1,
       "Vocabulary size too high"},
      {fmt::format("tokenizer encode -m {} < /dev/null", path("none.model")), 1, "none.model"},
      {fmt::format("tokenizer encode -m {} < /dev/null", path("train.en")), 1, "not a valid SentencePiece model"},
  };
  for (const Case& c : cases) {
    const auto r = run_tcat(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << "tcat " << c.args << ":\n" << r.output;
    EXPECT_TRUE(contains(r.output, c.message)) << "tcat " << c.args << ":\n" << r.output;
  }
  for (const char* sub : {"tokenizer", "tokenizer train", "tokenizer encode"})
    EXPECT_EQ(run_tcat(std::string(sub) + " --help").exit_code, 0) << sub;
}

}  // namespace
