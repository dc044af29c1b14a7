// Runs the tcat binary under test through the shell and collects what it printed.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace tcat::testing {

struct ProcessResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};

// `args` is shell syntax appended to the binary's path, so it may redirect standard input.
inline ProcessResult run_tcat(const std::string& args) {
  const std::string cmd = std::string(TCAT_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace tcat::testing
