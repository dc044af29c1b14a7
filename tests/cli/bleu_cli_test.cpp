// `tcat bleu` end to end: output format, JSON, standard input, and the exit codes of bad input.
// The expected numbers are sacreBLEU's README example (two reference sets), see tests/eval/bleu_test.cpp.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "cli/run_tcat.h"

namespace {

namespace fs = std::filesystem;
using tcat::testing::run_tcat;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class BleuCli : public tcat::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ref0_ = write("ref0.txt", "The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n");
    ref1_ = write("ref1.txt", "The dog had bit the man.\nNo one was surprised.\nThe man had bitten the dog.\n");
    hyp_ = write("hyp.txt", "The dog bit the man.\nIt wasn't surprising.\nThe man had just bitten him.\n");
  }

  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  std::string ref0_, ref1_, hyp_;
};

TEST_F(BleuCli, PrintsScoreLineAndSignature) {
  const auto r = run_tcat(fmt::format("bleu {} {} {}", ref0_, ref1_, hyp_));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output,
                       "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)\n"
                       "signature: nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:tcat-"))
      << r.output;
}

TEST_F(BleuCli, JsonParses) {
  const auto r = run_tcat(fmt::format("bleu --json {} {} {}", ref0_, ref1_, hyp_));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_NEAR(j.at("score").get<double>(), 48.530827, 1e-6);
  EXPECT_EQ(j.at("precisions").size(), 4u);
  EXPECT_NEAR(j.at("precisions")[0].get<double>(), 100.0 * 14 / 17, 1e-9);
  EXPECT_NEAR(j.at("bp").get<double>(), 0.94287314, 1e-8);
  EXPECT_NEAR(j.at("ratio").get<double>(), 17.0 / 18, 1e-12);
  EXPECT_EQ(j.at("hyp_len").get<int>(), 17);
  EXPECT_EQ(j.at("ref_len").get<int>(), 18);
  EXPECT_TRUE(j.at("signature").get<std::string>().starts_with("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|"));
}

TEST_F(BleuCli, ReadsTheHypothesisFromStandardInputWithOptions) {
  const auto r = run_tcat(fmt::format("bleu --lowercase --tokenize none {} {} - < {}", ref0_, ref1_, hyp_));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "BLEU = 49.19 ")) << r.output;
  EXPECT_TRUE(contains(r.output, "nrefs:2|case:lc|eff:no|tok:none|smooth:exp|")) << r.output;
}

TEST_F(BleuCli, EmptyFilesScoreZero) {
  const auto r = run_tcat(fmt::format("bleu {} {}", write("empty_ref", ""), write("empty_hyp", "")));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "BLEU = 0.00 ")) << r.output;
}

TEST_F(BleuCli, BadInputFilesExitWith1NamingTheProblem) {
  const std::string short_hyp = write("short.txt", "one line\n");
  const std::string bad_utf8 = write("latin1.txt", "fine\ncaf\xE9\nfine\n");
  const std::string missing = (dir_ / "missing.txt").string();
  struct Case {
    std::string args;
    std::vector<std::string> parts;
  };
  for (const Case& c : {Case{fmt::format("bleu {} {}", ref0_, short_hyp), {short_hyp, ref0_, "(1 vs 3 lines)"}},
                        Case{fmt::format("bleu {} {}", ref0_, bad_utf8), {bad_utf8, "line 2", "UTF-8"}},
                        Case{fmt::format("bleu {} {}", ref0_, missing), {missing}}}) {
    const auto r = run_tcat(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args << ":\n" << r.output;
    for (const std::string& part : c.parts) EXPECT_TRUE(contains(r.output, part)) << c.args << ":\n" << r.output;
  }
}

TEST_F(BleuCli, UsageErrorsExitWith2) {
  for (const std::string& args : {fmt::format("bleu {}", hyp_), std::string("bleu"),
                                  fmt::format("bleu --tokenize intl {} {}", ref0_, hyp_)}) {
    const auto r = run_tcat(args);
    EXPECT_EQ(r.exit_code, 2) << args << ":\n" << r.output;
  }
}

}  // namespace
