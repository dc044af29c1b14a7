// tcat generate end to end: llama2.c's stories260K with --temp 0 prints run.c's text byte for
// byte, and starts the same with bf16 weights; token-id prompts on a Hugging Face fixture; bad input
// exits 2 with one message.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "run_tcat.h"

using tcat::testing::run_tcat;
namespace fs = std::filesystem;

namespace {

const fs::path kShared = fs::path(TCAT_SOURCE_DIR) / ".." / "shared";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(GenerateCli, Stories260KGreedyTextEqualsRunC) {
  const fs::path dir = kShared / "models" / "stories260K";
  if (!fs::exists(dir / "stories260K.bin")) GTEST_SKIP() << "no " << dir;
  const struct {
    const char* prompt;
    const char* expected;
  } cases[] = {{"Once upon a time", "expected_greedy_once_upon_a_time.txt"},
               {"The little dog", "expected_greedy_the_little_dog.txt"},
               {"", "expected_greedy_no_prompt.txt"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.expected);
    const auto r = run_tcat(fmt::format("-q generate -m {} --temp 0 -n 200 -p \"{}\"", dir.string(), c.prompt));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, read_file(dir / c.expected));
  }
}

// --weights bf16 rounds every matrix to 8 significant bits, which moves the logits slightly;
// greedy decoding keeps f32's choice as long as no two candidates are that close. From BOS the two
// agree for 185 tokens on the development machine; 32 are asserted, so that another CPU's GEMM
// summation order cannot break the test, while a wrong conversion or kernel changes the first tokens.
TEST(GenerateCli, Bf16WeightsGreedyFollowsF32) {
  const fs::path dir = kShared / "models" / "stories260K";
  if (!fs::exists(dir / "stories260K.bin")) GTEST_SKIP() << "no " << dir;
  const std::string args = fmt::format("-q generate -m {} --temp 0 --max-new-tokens 32 --ids 1", dir.string());
  const auto f32 = run_tcat(args + " --weights f32");
  const auto bf16 = run_tcat(args + " --weights bf16");
  EXPECT_EQ(f32.exit_code, 0) << f32.output;
  EXPECT_EQ(bf16.exit_code, 0) << bf16.output;
  EXPECT_EQ(bf16.output, f32.output);
  EXPECT_EQ(f32.output, run_tcat(args).output) << "f32 is the default";
  const auto other = run_tcat(fmt::format("generate -m {} --weights f16 --ids 1", dir.string()));
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.output.find("--weights: f16 not in {f32,bf16,int8}"), std::string::npos) << other.output;
}

// A text prompt that cannot fit gets the one error and nothing else: the prompt is not echoed first.
TEST(GenerateCli, TextPromptBeyondTheContextPrintsOnlyTheError) {
  const fs::path dir = kShared / "models" / "stories260K";
  if (!fs::exists(dir / "stories260K.bin")) GTEST_SKIP() << "no " << dir;
  const auto r = run_tcat(fmt::format("-q generate -m {} --max-new-tokens 600 -p \"Once upon a time\"", dir.string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("exceeds the model's context of 512"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Once upon"), std::string::npos) << r.output;
}

TEST(GenerateCli, TokenIdPromptsAndErrors) {
  const fs::path gpt2 = kShared / "fixtures" / "hf-tiny" / "gpt2";
  if (!fs::exists(gpt2)) GTEST_SKIP() << "no " << gpt2;
  // The fixture's first greedy run: prompt ids and the 16 ids transformers produced.
  const auto r = run_tcat(fmt::format("generate -m {} --temp 0 --max-new-tokens 16 --ids 283 478 107 364 99 261 159",
                                      gpt2.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "120 120 378 70 162 322 77 361 112 472 70 490 490 33 453 322 \n");
  const auto no_tokenizer = run_tcat(fmt::format("generate -m {} -p hello", gpt2.string()));
  EXPECT_EQ(no_tokenizer.exit_code, 2);
  EXPECT_NE(no_tokenizer.output.find("--ids"), std::string::npos) << no_tokenizer.output;
  const auto too_long = run_tcat(fmt::format("generate -m {} --max-new-tokens 100 --ids 1 2 3", gpt2.string()));
  EXPECT_EQ(too_long.exit_code, 2);
  EXPECT_NE(too_long.output.find("exceeds the model's context of 64"), std::string::npos) << too_long.output;
  const auto missing = run_tcat("generate -m /nonexistent --ids 1");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.output.find("does not exist"), std::string::npos) << missing.output;
}

}  // namespace
