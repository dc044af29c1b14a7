#include <fmt/core.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include "commands.h"
#include "train/synthetic_run.h"

namespace tcat::cli {

void register_demo(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "demo", "train a small Transformer on a synthetic task (copy or reverse) and show what it learned");
  struct Args {
    std::string task = "copy";
    int64_t steps = 0, batch = 0, warmup = 0;
    float lr_factor = 0;
    uint64_t seed = 1;
    bool bf16 = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("task", args->task, "copy | reverse")->check(CLI::IsMember({"copy", "reverse"}));
  cmd->add_option("--steps", args->steps, "training steps (default 1200 for copy, 2600 for reverse)")
      ->check(positive_number());
  cmd->add_option("--batch", args->batch, "sequences per step (default 64)")->check(positive_number());
  cmd->add_option("--warmup", args->warmup, "Noam warmup steps (default 200)")->check(positive_number());
  cmd->add_option("--lr-factor", args->lr_factor, "Noam learning-rate factor (default 1)")->check(positive_number());
  cmd->add_option("--seed", args->seed, "random seed");
  cmd->add_flag("--bf16", args->bf16, "bf16 mixed precision");
  cmd->callback([args] {
    auto opt = train::default_synthetic_run(data::synthetic_task_from_name(args->task));
    if (args->steps) opt.steps = args->steps;
    if (args->batch) opt.batch = args->batch;
    if (args->warmup) opt.warmup = args->warmup;
    if (args->lr_factor > 0) opt.lr_factor = args->lr_factor;
    opt.seed = args->seed;
    opt.bf16 = args->bf16;
    const bool progress = !global_options().quiet && isatty(STDERR_FILENO);
    fmt::print("training a {}-layer encoder-decoder (d_model {}) to {} token strings, {} steps of {} sequences\n",
               opt.arch.enc_layers, opt.arch.d_model, args->task, opt.steps, opt.batch);
    const auto result = train::run_synthetic_task(opt, [&](int64_t step, const train::StepStats& s) {
      if (progress && (step % 20 == 0 || step == opt.steps))
        fmt::print(stderr, "\rstep {:>5}/{}  loss {:.4f}  lr {:.2e}", step, opt.steps, s.loss, s.lr);
      if (!progress && step % 200 == 0) fmt::print("step {:>5}  loss {:.4f}\n", step, s.loss);
    });
    if (progress) fmt::print(stderr, "\n");
    fmt::print("trained in {:.1f} s, final loss {:.4f}\n", result.train_seconds, result.final_loss);
    for (const auto& ex : result.examples)
      fmt::print("  {}  ->  {}  {}\n", ex.source, ex.predicted, ex.predicted == ex.expected ? "ok" : "WRONG");
    fmt::print("exact-match accuracy on {} new sequences (greedy): {:.1f}%\n", opt.eval_examples,
               100.0 * result.accuracy);
  });
}

}  // namespace tcat::cli
