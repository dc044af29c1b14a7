// Helpers shared by the benchmark programs: timing, medians, one-JSON-line output, the memory
// bandwidth probe and the value of a command-line option.
#pragma once
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
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

// Runs the memory-bandwidth probe `command` (../shared/bench/peers/membw.c built, with its
// arguments) and returns the best_read_GBps it prints; exits with status 2 when it fails. The
// benchmarks run it right before each timed run, so a limit and the speed it bounds are measured
// under the same load of a shared machine.
inline double membw_probe(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) {
    fmt::print(stderr, "cannot run the bandwidth probe '{}'\n", command);
    std::exit(2);
  }
  std::string text;
  char buf[256];
  while (std::fgets(buf, sizeof buf, pipe)) text += buf;
  const int status = pclose(pipe);
  const size_t at = text.find("best_read_GBps=");
  if (status != 0 || at == std::string::npos) {
    fmt::print(stderr, "bandwidth probe '{}' failed (status {}): {}\n", command, status, text);
    std::exit(2);
  }
  return std::strtod(text.c_str() + at + std::strlen("best_read_GBps="), nullptr);
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
