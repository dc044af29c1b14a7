#include <fmt/core.h>

#include "commands.h"
#include "core/build_info.h"
#include "core/cpu.h"
#include "core/threading.h"
#include "kernels/gemm.h"

namespace tcat::cli {

void register_version(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "print version, build and CPU information");
  cmd->callback([] {
    const BuildInfo& b = build_info();
    const CpuFeatures& cpu = cpu_features();
    fmt::print("tcat {} ({})\n", b.version, b.git_revision);
    fmt::print("build:    {} {}, C++20\n", b.compiler, b.build_type);
    fmt::print("oneDNN:   {}\n", b.onednn_version);
    fmt::print("cpu:      {}\n", cpu.model_name.empty() ? "unknown" : cpu.model_name);
    fmt::print("features: {}\n", cpu.summary());
    fmt::print("bf16 GEMM: {}\n", kernels::bf16_gemm_native() ? "native (oneDNN bf16 kernels)"
                                                               : "emulated (widened to fp32: no bf16 hardware)");
    fmt::print("threads:  {}\n", num_threads());
  });
}

}  // namespace tcat::cli
