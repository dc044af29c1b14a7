// Errors: one exception type whose message says what went wrong and where.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace tcat {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Thrown for bad user input (CLI flags, config values); the CLI maps it to exit code 2.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& what) : Error(what) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace tcat

// Always-on check (unlike assert it survives Release builds): user-reachable conditions use this.
#define TCAT_CHECK(cond, ...)                  \
  do {                                         \
    if (!(cond)) ::tcat::fail(__VA_ARGS__);    \
  } while (0)
