// tcat: the command-line tool. Argument parsing and printing only; the work is in the library.
#include <fmt/core.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>

#include "autograd/var.h"
#include "commands.h"
#include "core/error.h"
#include "core/threading.h"

namespace tcat::cli {

static GlobalOptions g_options;
const GlobalOptions& global_options() { return g_options; }

void add_weights_option(CLI::App* cmd, std::string& weights) {
  cmd->add_option("--weights", weights,
                  "weight storage while decoding: f32; bf16 for every matrix (half the bytes read per "
                  "token; products stay f32); or int8 (a quarter of the bytes, int8 products with fp32 scales)")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}));
}

namespace {

// The whole text as a finite number, or nothing.
std::optional<double> parse_number(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(value)) return std::nullopt;
  return value;
}

CLI::Validator number_check(const std::string& requirement, std::function<bool(double)> holds) {
  return CLI::Validator(
      [requirement, holds](std::string& text) -> std::string {
        const std::optional<double> value = parse_number(text);
        if (!value) return fmt::format("'{}' is not a number", text);
        return holds(*value) ? std::string() : fmt::format("{} is not {}", text, requirement);
      },
      "NUMBER " + requirement);
}

}  // namespace

CLI::Validator number_in(double lo, double hi) {
  return number_check(fmt::format("in [{}, {}]", lo, hi), [lo, hi](double v) { return v >= lo && v <= hi; });
}
CLI::Validator positive_number() {
  return number_check("> 0", [](double v) { return v > 0; });
}
CLI::Validator non_negative_number() {
  return number_check(">= 0", [](double v) { return v >= 0; });
}

}  // namespace tcat::cli

int main(int argc, char** argv) {
  using namespace tcat;
  CLI::App app{"tcat: the Transformer catalog, runnable (train, load, generate, compare)", "tcat"};
  // At most one subcommand; an unknown word is then reported as not expected, naming it.
  app.require_subcommand(0, 1);
  app.fallthrough();
  auto& g = cli::g_options;
  app.add_option("-t,--threads", g.threads, "worker threads (default: all cores)")->check(cli::number_in(1, 1024));
  app.add_flag("--check-numerics", g.check_numerics, "stop at the first op that produces NaN or Inf, naming it");
  app.add_flag("-q,--quiet", g.quiet, "no progress output on stderr");

  // The one place subcommands are registered.
  for (auto reg : {cli::register_version, cli::register_demo, cli::register_bleu, cli::register_tokenizer,
                   cli::register_train, cli::register_translate, cli::register_export, cli::register_generate,
                   cli::register_embed, cli::register_fill_mask})
    reg(app);

  app.parse_complete_callback([&] {
    set_num_threads(g.threads);
    ag::set_check_numerics(g.check_numerics);
  });
  try {
    app.parse(argc, argv);
    if (app.get_subcommands().empty()) {
      fmt::print(stderr, "{}\ntcat: a command is required\n", app.help());
      return 2;
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const UsageError& e) {
    fmt::print(stderr, "tcat: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "tcat: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
