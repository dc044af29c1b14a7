#include <fmt/core.h>

#include "commands.h"
#include "core/error.h"
#include "train/checkpoint.h"

namespace tcat::cli {

void register_export(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export", "write a model (checkpoint or run directory) as an inference-only checkpoint, optionally with "
                "bf16 or f16 weights to halve its size; e.g. tcat export -m runs/base -o my-model --dtype bf16");
  struct Args {
    std::string from, to, dtype = "f32";
    int64_t average_last = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->from, "checkpoint or run directory (a run's final averaged model is taken)")
      ->required();
  cmd->add_option("-o,--output", a->to, "directory to write (replaced if it already holds a checkpoint)")->required();
  cmd->add_option("--dtype", a->dtype, "weight storage: f32, bf16 or f16 (loading always computes in f32)")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}));
  cmd->add_option("--average-last", a->average_last,
                  "average the last K checkpoints of the run directory given with -m (as training does at its end)")
      ->check(positive_number());
  cmd->callback([a] {
    const DType dtype = a->dtype == "bf16" ? DType::BF16 : a->dtype == "f16" ? DType::F16 : DType::F32;
    train::export_model(a->from, a->to, dtype, a->average_last);
    if (!global_options().quiet) fmt::print(stderr, "wrote {} ({} weights)\n", a->to, a->dtype);
  });
}

}  // namespace tcat::cli
