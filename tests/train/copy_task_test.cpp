// End-to-end smoke test (The Annotated Transformer's first check): a tiny encoder-decoder learns
// to copy and to reverse random token strings, judged by exact-match greedy decoding.
#include <gtest/gtest.h>

#include "train/synthetic_run.h"

using namespace tcat;

TEST(CopyTask, TinyTransformerLearnsToCopy) {
  auto opt = train::default_synthetic_run(data::SyntheticTask::Copy);
  const auto result = train::run_synthetic_task(opt);
  EXPECT_GE(result.accuracy, 0.99f) << "final loss " << result.final_loss;
  EXPECT_LT(result.train_seconds, 60.0);
}

TEST(CopyTask, TinyTransformerLearnsToReverse) {
  auto opt = train::default_synthetic_run(data::SyntheticTask::Reverse);
  const auto result = train::run_synthetic_task(opt);
  EXPECT_GE(result.accuracy, 0.99f) << "final loss " << result.final_loss;
  EXPECT_LT(result.train_seconds, 60.0);
}
