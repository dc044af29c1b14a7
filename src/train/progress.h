// What a user sees while a model trains: a one-line progress bar on stderr (when it is a
// terminal), or plain periodic log lines otherwise.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace tcat::train {

struct ProgressFields {
  int64_t step = 0, total_steps = 0;  // total 0 = unknown (no bar, no ETA)
  int64_t epoch = 0;
  float loss = 0, lr = 0;
  double tokens_per_second = 0;
};

class ProgressReporter {
 public:
  // interactive: redraw one line with \r (a TTY); otherwise print a line every log_every steps.
  ProgressReporter(bool enabled, bool interactive, int64_t log_every);
  void update(const ProgressFields& f);
  void message(const std::string& line);  // a full line that must not be overdrawn (validation results)
  void finish();

  static bool stderr_is_terminal();
  static std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s"

 private:
  bool enabled_, interactive_, line_open_ = false;
  int64_t log_every_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int64_t first_step_ = -1;
};

}  // namespace tcat::train
