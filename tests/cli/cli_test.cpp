// End-to-end runs of the tcat binary: exit codes, help, and messages users see.
#include <gtest/gtest.h>

#include "cli/run_tcat.h"

namespace {

using tcat::testing::ProcessResult;
using tcat::testing::run_tcat;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Cli, VersionPrintsBuildAndCpuInformation) {
  const ProcessResult r = run_tcat("version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* field : {"tcat ", "build:", "oneDNN:", "cpu:", "features:", "bf16 GEMM:", "threads:"})
    EXPECT_TRUE(contains(r.output, field)) << "missing '" << field << "' in:\n" << r.output;
}

TEST(Cli, ThreadsFlagIsApplied) {
  const ProcessResult r = run_tcat("-t 1 version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "threads:  1")) << r.output;
}

TEST(Cli, HelpWorksForEverySubcommand) {
  for (const char* sub : {"", "version", "demo"}) {
    const ProcessResult r = run_tcat(std::string(sub) + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub << ": " << r.output;
    EXPECT_TRUE(contains(r.output, "Usage")) << sub << ": " << r.output;
  }
  EXPECT_TRUE(contains(run_tcat("demo --help").output, "--steps"));
}

TEST(Cli, UsageErrorsExitWithCode2AndAMessage) {
  struct Case {
    const char* args;
    const char* message;
  };
  for (const Case& c : {Case{"", "a command is required"}, Case{"--no-such-flag version", "no-such-flag"},
                        Case{"demo --steps -3", "--steps: -3 is not > 0"},
                        Case{"demo --steps many", "--steps: 'many' is not a number"},
                        Case{"demo sideways", "sideways"}, Case{"-t 0 version", "--threads: 0 is not in [1, 1024]"},
                        Case{"translate --alpha abc hi", "--alpha: 'abc' is not a number"},
                        Case{"train --max-steps 1e999", "--max-steps: '1e999' is not a number"},
                        Case{"translate --beam 2.5 hi", "--beam = 2.5"}, Case{"frobnicate", "frobnicate"}}) {
    const ProcessResult r = run_tcat(c.args);
    EXPECT_EQ(r.exit_code, 2) << "tcat " << c.args << ":\n" << r.output;
    EXPECT_TRUE(contains(r.output, c.message)) << "tcat " << c.args << ":\n" << r.output;
  }
}

TEST(Cli, DemoTrainsAndReportsAccuracy) {
  const ProcessResult r = run_tcat("--check-numerics demo copy --steps 20 --batch 8");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "exact-match accuracy on 500 new sequences")) << r.output;
}

}  // namespace
