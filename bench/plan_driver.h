// What the programs that time the translation plan (bench/data/translation_inputs.json, written by
// bench/translation_plan.py) share: tcat's translate_decode.cpp and CTranslate2's ct2/translate.cpp
// take the same options, run the same (batch, beam) configurations and print the same keys, so the
// comparison scripts read both alike.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common.h"

namespace tcat::bench {

struct PlanSettings {
  std::string inputs = "bench/data/translation_inputs.json";
  int threads = 2, runs = 3, only_batch = 0, only_beam = 0, max_batches = 0;
};

inline constexpr const char* kPlanUsage =
    "[--inputs bench/data/translation_inputs.json] [--threads N] [--runs N] [--batch 1|32] [--beam K] "
    "[--max-batches N]";
inline constexpr const char* kPlanUsageDefaults =
    "  default: batch 32 and 1, beam 1 and 4, 3 runs; --max-batches N times only the first N batches of the plan "
    "(quick checks)\n";

// Takes argv[i] (and its value) when it is one of the options above; false for any other.
inline bool parse_plan_option(int argc, char** argv, int& i, PlanSettings& s) {
  const auto is = [&](const char* name) { return !std::strcmp(argv[i], name); };
  if (is("--inputs")) {
    s.inputs = option_value(argc, argv, i);
    return true;
  }
  int* number = is("--threads")       ? &s.threads
                : is("--runs")        ? &s.runs
                : is("--batch")       ? &s.only_batch
                : is("--beam")        ? &s.only_beam
                : is("--max-batches") ? &s.max_batches
                                      : nullptr;
  if (!number) return false;
  *number = std::atoi(option_value(argc, argv, i));
  return true;
}

// Empty when the settings are usable, else what is wrong.
inline std::string plan_settings_error(const PlanSettings& s) {
  if (s.threads < 1 || s.runs < 1) return "threads and runs must be positive";
  if (s.only_batch < 0 || s.only_beam < 0 || s.max_batches < 0) return "batch, beam and max-batches must not be negative";
  return "";
}

// (batch, beam) pairs to run: the ones asked for, else batch 32 and 1 with beam 1 and 4.
inline std::vector<std::pair<int, int>> plan_configs(const PlanSettings& s) {
  std::vector<std::pair<int, int>> out;
  for (int batch : s.only_batch ? std::vector<int>{s.only_batch} : std::vector<int>{32, 1})
    for (int beam : s.only_beam ? std::vector<int>{s.only_beam} : std::vector<int>{1, 4}) out.emplace_back(batch, beam);
  return out;
}

struct PlanTotals {
  int64_t sentences = 0, target_tokens = 0, steps = 0, batches = 0;
  void add(int64_t rows, int64_t target_len) {
    sentences += rows;
    target_tokens += rows * target_len;
    steps += target_len;
    ++batches;
  }
};

// The result line of one configuration: the median of the passes' times and what it makes per second.
inline nlohmann::json plan_result(const std::string& engine, const PlanSettings& s, int batch, int beam,
                                  const PlanTotals& t, const std::vector<double>& times) {
  const double med = median(times);
  return {{"engine", engine},
          {"threads", s.threads},
          {"batch", batch},
          {"beam", beam},
          {"sentences", t.sentences},
          {"target_tokens", t.target_tokens},
          {"times", times},
          {"median_s", med},
          {"sent_per_s", double(t.sentences) / med},
          {"tok_per_s", double(t.target_tokens) / med},
          {"ms_per_step", med / double(t.steps) * 1e3},
          {"batches", t.batches}};
}

}  // namespace tcat::bench
