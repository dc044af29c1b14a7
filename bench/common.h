// Helpers shared by the benchmark programs: timing, medians, one-JSON-line output and the value
// of a command-line option.
#pragma once
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <vector>

namespace tcat::bench {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The upper median for an even count (the figure the benchmarks have always reported).
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One result per line, flushed at once so a driver script sees it even if a later run fails.
inline void print_json_line(const nlohmann::json& j) {
  fmt::print("{}\n", j.dump());
  std::fflush(stdout);
}

// The argument after option argv[i] (advancing i); exits with status 2 when it is missing.
inline const char* option_value(int argc, char** argv, int& i) {
  if (i + 1 >= argc) {
    fmt::print(stderr, "{} needs a value\n", argv[i]);
    std::exit(2);
  }
  return argv[++i];
}

}  // namespace tcat::bench
