// `tcat train` killed with SIGKILL mid-run and resumed continues exactly where its last checkpoint
// left off: the per-step losses of the interrupted-and-resumed run equal those of an uninterrupted
// run (same seed, one thread), every step is logged once, and the checkpoints are intact.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>

#include "cli/run_tcat.h"
#include "common/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using tcat::testing::run_tcat;

constexpr int kMaxSteps = 240;
constexpr int kCheckpointEvery = 20;

// step -> train_loss, read from a run's metrics.jsonl; a step logged twice fails the test.
std::map<int64_t, double> train_losses(const fs::path& run_dir) {
  std::map<int64_t, double> losses;
  std::ifstream in(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto rec = nlohmann::json::parse(line);
    if (!rec.contains("train_loss")) continue;
    const auto step = rec["step"].get<int64_t>();
    EXPECT_FALSE(losses.count(step)) << "step " << step << " logged twice in " << run_dir;
    losses[step] = rec["train_loss"].get<double>();
  }
  return losses;
}

int64_t last_logged_step(const fs::path& run_dir) {
  std::ifstream in(run_dir / "metrics.jsonl");
  int64_t last = 0;
  for (std::string line; std::getline(in, line);) {
    const auto rec = nlohmann::json::parse(line, nullptr, false);
    if (!rec.is_discarded() && rec.contains("step")) last = rec["step"].get<int64_t>();
  }
  return last;
}

class TrainResumeCli : public tcat::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    const fs::path data = fs::path(TCAT_SOURCE_DIR) / "data" / "multi30k";
    for (const auto& [from, to, lines] : {std::tuple{"train", "train", 1500}, std::tuple{"val", "val", 40}})
      for (const char* lang : {"en", "de"}) {
        std::ifstream in(data / fmt::format("{}.{}", from, lang));
        ASSERT_TRUE(in) << "missing bundled data in " << data;
        std::ofstream out(dir_ / fmt::format("{}.{}", to, lang));
        std::string line;
        for (int i = 0; i < lines && std::getline(in, line); ++i) out << line << "\n";
      }
    // A model small enough that one step takes milliseconds, checkpointing often.
    const nlohmann::json config = {
        {"arch",
         {{"layout", "encoder-decoder"}, {"d_model", 32}, {"heads", 2}, {"d_ff", 64}, {"enc_layers", 1},
          {"dec_layers", 1}, {"max_positions", 128}, {"dropout", 0.1}}},
        {"train_src", path("train.en")}, {"train_tgt", path("train.de")},
        {"valid_src", path("val.en")},   {"valid_tgt", path("val.de")},
        {"vocab_size", 200},             {"max_tokens", 300},
        {"max_len", 60},                 {"warmup", 50},
        {"lr_factor", 1.0},              {"max_steps", kMaxSteps},
        {"log_every", 1},                {"valid_every", kCheckpointEvery},
        {"keep_checkpoints", 3},         {"average_last", 2},
        {"seed", 7}};
    std::ofstream(dir_ / "config.json") << config.dump(2);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string train_args(const std::string& run) const {
    return fmt::format("-t 1 train --config {} -o {}", path("config.json"), path(run));
  }
};

TEST_F(TrainResumeCli, SigkillThenResumeGivesTheUninterruptedLossCurve) {
  const auto reference = run_tcat(train_args("reference"));
  ASSERT_EQ(reference.exit_code, 0) << reference.output;
  const auto expected = train_losses(dir_ / "reference");
  ASSERT_EQ(expected.size(), size_t(kMaxSteps));

  // Start the same run in the background and kill it once it is a few steps past a checkpoint.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string cmd = fmt::format("exec {} {} >/dev/null 2>&1", TCAT_BINARY, train_args("killed"));
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const int64_t kill_after = 2 * kCheckpointEvery + kCheckpointEvery / 2;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (last_logged_step(dir_ / "killed") < kill_after && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const int64_t killed_at = last_logged_step(dir_ / "killed");
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it could be killed (it got to step " << killed_at << ")";
  ASSERT_LT(killed_at, kMaxSteps);
  ASSERT_GE(killed_at, kill_after);

  const auto resumed = run_tcat(fmt::format("-t 1 train --resume {}", path("killed")));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;

  // Every step once, and each loss equal to the uninterrupted run's: no batch lost or repeated.
  const auto actual = train_losses(dir_ / "killed");
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& [step, loss] : expected) {
    ASSERT_TRUE(actual.count(step)) << "step " << step << " missing after resume";
    EXPECT_EQ(actual.at(step), loss) << "step " << step << " (killed at step " << killed_at << ")";
  }

  // The final models agree too.
  const auto translate = [&](const std::string& run) {
    return run_tcat(fmt::format("-t 1 translate -m {} --json \"A man is riding a bike.\"", path(run)));
  };
  const auto a = translate("reference"), b = translate("killed");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
}

// A finished run trained further with --resume --max-steps: the longer run's curve equals a run
// given that many steps from the start, and config.json keeps the new limit for later resumes.
TEST_F(TrainResumeCli, ResumeWithMoreStepsExtendsAFinishedRun) {
  constexpr int kShort = 2 * kCheckpointEvery, kLong = 3 * kCheckpointEvery;
  const auto reference = run_tcat(fmt::format("{} --max-steps {}", train_args("reference"), kLong));
  ASSERT_EQ(reference.exit_code, 0) << reference.output;
  const auto finished = run_tcat(fmt::format("{} --max-steps {}", train_args("extended"), kShort));
  ASSERT_EQ(finished.exit_code, 0) << finished.output;
  ASSERT_EQ(train_losses(dir_ / "extended").size(), size_t(kShort));

  // Resuming a finished run without changes trains nothing.
  const auto again = run_tcat(fmt::format("-t 1 train --resume {}", path("extended")));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(train_losses(dir_ / "extended").size(), size_t(kShort));

  const auto extended = run_tcat(fmt::format("-t 1 train --resume {} --max-steps {}", path("extended"), kLong));
  ASSERT_EQ(extended.exit_code, 0) << extended.output;
  EXPECT_NE(extended.output.find(fmt::format("max_steps {} -> {}", kShort, kLong)), std::string::npos)
      << extended.output;
  EXPECT_EQ(train_losses(dir_ / "extended"), train_losses(dir_ / "reference"));
  std::ifstream stored(dir_ / "extended" / "config.json");
  EXPECT_EQ(nlohmann::json::parse(stored)["max_steps"].get<int64_t>(), kLong);
}

// An early-stopped run stays stopped when resumed as it is; raising --patience continues it.
TEST_F(TrainResumeCli, EarlyStoppedRunStaysStoppedUnlessPatienceIsRaised) {
  const auto stopped = run_tcat(fmt::format("{} --patience 1", train_args("run")));
  ASSERT_EQ(stopped.exit_code, 0) << stopped.output;
  ASSERT_NE(stopped.output.find("(early stop)"), std::string::npos)
      << "the run was expected to stop early (one validation without a better BLEU):\n" << stopped.output;
  const size_t steps = train_losses(dir_ / "run").size();
  ASSERT_LT(steps, size_t(kMaxSteps));

  const auto again = run_tcat(fmt::format("-t 1 train --resume {}", path("run")));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(train_losses(dir_ / "run").size(), steps);

  const auto go_on = run_tcat(fmt::format("-t 1 train --resume {} --patience 0 --max-steps {}", path("run"),
                                          steps + kCheckpointEvery));
  ASSERT_EQ(go_on.exit_code, 0) << go_on.output;
  EXPECT_EQ(train_losses(dir_ / "run").size(), steps + kCheckpointEvery);
}

// What the checkpoint continues (data, model, optimisation) cannot change on resume: one error
// naming the options, and the run's stored configuration stays as it was.
TEST_F(TrainResumeCli, ResumeRefusesChangesToWhatTheCheckpointContinues) {
  const auto finished = run_tcat(fmt::format("{} --max-steps {}", train_args("run"), kCheckpointEvery));
  ASSERT_EQ(finished.exit_code, 0) << finished.output;
  const auto read_config = [&] {
    std::ifstream in(dir_ / "run" / "config.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string before = read_config();
  const auto refused = run_tcat(fmt::format("-t 1 train --resume {} --max-steps 99 --dropout 0.2 --seed 3", path("run")));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("--dropout, --seed cannot change"), std::string::npos) << refused.output;
  const auto invalid = run_tcat(fmt::format("-t 1 train --resume {} --average-last 9", path("run")));
  EXPECT_NE(invalid.exit_code, 0);
  EXPECT_NE(invalid.output.find("average_last"), std::string::npos) << invalid.output;
  EXPECT_EQ(read_config(), before);
}

// A data file that cannot be read is named in the one error, and no run directory is left behind.
TEST_F(TrainResumeCli, MissingDataFileLeavesNoRunDirectory) {
  for (const char* option : {"--src", "--valid-tgt"}) {
    const std::string missing = path(fmt::format("missing{}.txt", option));
    const auto failed = run_tcat(fmt::format("{} {} {}", train_args("run"), option, missing));
    EXPECT_NE(failed.exit_code, 0) << option;
    EXPECT_NE(failed.output.find(missing), std::string::npos) << failed.output;
    EXPECT_FALSE(fs::exists(dir_ / "run")) << "after a missing " << option << " file";
  }
}

}  // namespace
