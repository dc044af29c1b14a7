// End-to-end smoke test (The Annotated Transformer's first check): a tiny encoder-decoder learns
// to copy and to reverse random token strings, judged by exact-match greedy decoding.
#include <gtest/gtest.h>

#include "train/synthetic_run.h"

using namespace tcat;

// Takes ~20 s (copy) and ~45 s (reverse) on 2 idle cores, but 5-10 minutes when other jobs share the cores
// (OpenMP threads then wait on each other), so a hang is caught by ctest's per-test TIMEOUT
// (tests/CMakeLists.txt), not by a wall-clock bound here; timings are benchmarks (RESULTS.md).

TEST(CopyTask, TinyTransformerLearnsToCopy) {
  auto opt = train::default_synthetic_run(data::SyntheticTask::Copy);
  const auto result = train::run_synthetic_task(opt);
  EXPECT_GE(result.accuracy, 0.99f) << "final loss " << result.final_loss;
}

TEST(CopyTask, TinyTransformerLearnsToReverse) {
  auto opt = train::default_synthetic_run(data::SyntheticTask::Reverse);
  const auto result = train::run_synthetic_task(opt);
  EXPECT_GE(result.accuracy, 0.99f) << "final loss " << result.final_loss;
}
