// `tcat translate` end to end on a small random-weight model with a real SentencePiece tokenizer:
// output framing (one line per input, n-best, JSON), over-long and empty lines, and bad models.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "cli/run_tcat.h"
#include "common/temp_dir.h"
#include "train/checkpoint.h"

namespace {

namespace fs = std::filesystem;
using tcat::testing::run_tcat;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class TranslateCli : public tcat::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::ifstream in(fs::path(TCAT_SOURCE_DIR) / "data" / "multi30k" / "train.en");
    std::ofstream out(dir_ / "text.en");
    std::string line;
    for (int i = 0; i < 800 && std::getline(in, line); ++i) out << line << "\n";
    out.close();
    const auto trained = run_tcat(fmt::format("-q tokenizer train --input {} --vocab-size 200 -o {}",
                                              path("text.en"), path("spm.model")));
    ASSERT_EQ(trained.exit_code, 0) << trained.output;

    tcat::models::ArchConfig arch = tcat::models::preset("transformer-tiny", 200);
    arch.d_model = 32;
    arch.heads = 2;
    arch.d_ff = 64;
    arch.enc_layers = arch.dec_layers = 1;
    arch.max_positions = 24;  // so a long sentence exceeds it
    tcat::Rng rng(3);
    const tcat::models::Transformer model(arch, rng);
    tcat::train::write_checkpoint(path("model"),
                                  tcat::train::Checkpoint{model, 0, nullptr, read_bytes(dir_ / "spm.model")});
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
};

TEST_F(TranslateCli, OneOutputLinePerInputLineIncludingEmptyOnes) {
  std::ofstream(dir_ / "in.txt") << "A man rides a bike.\n\nTwo dogs play.\n";
  const auto r = run_tcat(fmt::format("-q translate -m {} --beam 2 < {}", path("model"), path("in.txt")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto out = lines_of(r.output);
  ASSERT_EQ(out.size(), 3u) << r.output;
  EXPECT_EQ(out[1], "");
}

TEST_F(TranslateCli, GreedyRunsAndNBestListsAreRankedBestFirst) {
  const std::string sentence = "\"A woman is walking down the street.\"";
  const auto greedy = run_tcat(fmt::format("translate -m {} --beam 1 {}", path("model"), sentence));
  ASSERT_EQ(greedy.exit_code, 0) << greedy.output;

  const auto nbest = run_tcat(fmt::format("translate -m {} --beam 4 --n-best 3 --json {}", path("model"), sentence));
  ASSERT_EQ(nbest.exit_code, 0) << nbest.output;
  const auto j = nlohmann::json::parse(nbest.output);
  EXPECT_EQ(j["input"], "A woman is walking down the street.");
  ASSERT_EQ(j["translations"].size(), 3u);
  for (size_t k = 1; k < 3; ++k)
    EXPECT_GE(j["translations"][k - 1]["score"].get<double>(), j["translations"][k]["score"].get<double>());
}

TEST_F(TranslateCli, OverLongLinesAreTruncatedAndCounted) {
  std::string long_line;
  for (int i = 0; i < 40; ++i) long_line += "the man and the dog ";
  std::ofstream(dir_ / "in.txt") << "A dog.\n" << long_line << "\n";
  const auto r = run_tcat(fmt::format("translate -m {} < {}", path("model"), path("in.txt")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "1 line(s) longer than 22 tokens were truncated")) << r.output;
}

TEST_F(TranslateCli, MissingOrBrokenModelsAreNamed) {
  const auto missing = run_tcat(fmt::format("translate -m {} hello", path("nope")));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(contains(missing.output, "does not exist")) << missing.output;

  fs::remove(dir_ / "model" / "tokenizer.model");
  const auto no_tokenizer = run_tcat(fmt::format("translate -m {} hello", path("model")));
  EXPECT_EQ(no_tokenizer.exit_code, 1);
  EXPECT_TRUE(contains(no_tokenizer.output, "has no tokenizer.model")) << no_tokenizer.output;

  std::ofstream(dir_ / "model" / "model.safetensors", std::ios::trunc) << "garbage";
  const auto corrupt = run_tcat(fmt::format("translate -m {} hello", path("model")));
  EXPECT_EQ(corrupt.exit_code, 1);
  EXPECT_TRUE(contains(corrupt.output, "model.safetensors")) << corrupt.output;

  const auto usage = run_tcat(fmt::format("translate -m {} --beam 2 --n-best 3 hello", path("model")));
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_TRUE(contains(usage.output, "--n-best 3 exceeds the beam size 2")) << usage.output;
}

}  // namespace

namespace {

// The model shipped in models/multi30k-ende is found without -m and translates.
TEST(BundledTranslationModel, TranslatesWithoutAModelFlag) {
  const auto r = tcat::testing::run_tcat("-q translate \"Two dogs are playing in the snow.\"");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "Hunde")) << r.output;
  EXPECT_TRUE(contains(r.output, "Schnee")) << r.output;
}

// Input that is not UTF-8 is refused with the line it is on; from stdin the lines before it are
// translated first, the ones after it are not.
TEST(BundledTranslationModel, NonUtf8InputNamesTheLine) {
  const fs::path in = fs::temp_directory_path() / fmt::format("tcat_non_utf8_{}.txt", ::getpid());
  std::ofstream(in) << "Two dogs are playing in the snow.\nA dog \xff runs.\nA cat sleeps.\n";
  const auto piped = tcat::testing::run_tcat(fmt::format("-q translate < {}", in.string()));
  fs::remove(in);
  EXPECT_EQ(piped.exit_code, 2) << piped.output;
  EXPECT_TRUE(contains(piped.output, "stdin line 2 is not valid UTF-8")) << piped.output;
  EXPECT_TRUE(contains(piped.output, "Schnee")) << "line 1 was translated: " << piped.output;
  const auto argument = tcat::testing::run_tcat("-q translate \"A cat.\" \"bad \xfe byte\"");
  EXPECT_EQ(argument.exit_code, 2) << argument.output;
  EXPECT_TRUE(contains(argument.output, "text argument 2 is not valid UTF-8")) << argument.output;
  EXPECT_FALSE(contains(argument.output, "Katze")) << "nothing is translated: " << argument.output;
}

// The bundled model is stored in bf16, so keeping its matrices bf16 in memory (--weights bf16)
// changes no weight: the translations are the same as with f32 weights. int8 weights round every
// matrix to 7 bits and each product's inputs to 8, so beam search may settle a near-tie the other
// way: each sentence's best score must stay within rounding of the f32 one, and the clear-cut first
// sentence must not change (over test_2016_flickr int8 scores 39.84 BLEU against 39.85, RESULTS.md).
TEST(BundledTranslationModel, CompactWeightsTranslateAsF32) {
  const std::string args =
      "-q translate -b 4 --json \"Two dogs are playing in the snow.\" \"A man in a blue shirt is standing on a "
      "ladder.\" \"Three children are eating ice cream on a bench in the park.\"";
  const auto best_of = [](const std::string& output) {
    std::vector<std::pair<std::string, double>> best;
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
      const auto j = nlohmann::json::parse(line);
      best.emplace_back(j["translations"][0]["text"], j["translations"][0]["score"].get<double>());
    }
    return best;
  };
  const auto f32 = tcat::testing::run_tcat(args);
  ASSERT_EQ(f32.exit_code, 0) << f32.output;
  const auto reference = best_of(f32.output);
  ASSERT_EQ(reference.size(), 3u) << f32.output;
  const auto bf16 = tcat::testing::run_tcat(args + " --weights bf16");
  ASSERT_EQ(bf16.exit_code, 0) << bf16.output;
  const auto widened = best_of(bf16.output);
  ASSERT_EQ(widened.size(), 3u) << bf16.output;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(widened[i].first, reference[i].first);
    EXPECT_NEAR(widened[i].second, reference[i].second, 1e-4);  // the kernels sum in another order
  }
  const auto int8 = tcat::testing::run_tcat(args + " --weights int8");
  ASSERT_EQ(int8.exit_code, 0) << int8.output;
  const auto rounded = best_of(int8.output);
  ASSERT_EQ(rounded.size(), 3u) << int8.output;
  EXPECT_EQ(rounded[0].first, reference[0].first);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_NEAR(rounded[i].second, reference[i].second, 0.1) << reference[i].first << " / " << rounded[i].first;
  const auto other = tcat::testing::run_tcat(args + " --weights f16");
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_TRUE(contains(other.output, "--weights: f16 not in {f32,bf16,int8}")) << other.output;
}

}  // namespace
