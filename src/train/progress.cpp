#include "train/progress.h"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace tcat::train {

ProgressReporter::ProgressReporter(bool enabled, bool interactive, int64_t log_every)
    : enabled_(enabled), interactive_(interactive), log_every_(log_every > 0 ? log_every : 100),
      start_(std::chrono::steady_clock::now()) {}

bool ProgressReporter::stderr_is_terminal() { return isatty(STDERR_FILENO) != 0; }

std::string ProgressReporter::format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const int64_t t = int64_t(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

void ProgressReporter::update(const ProgressFields& f) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (first_step_ < 0) {
    first_step_ = f.step;
    start_ = now;
  }
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const int64_t done = f.step - first_step_;
  std::string eta = "?";
  if (f.total_steps > 0 && done > 0) eta = format_duration(elapsed / double(done) * double(f.total_steps - f.step));
  const std::string stats = fmt::format("step {}{} ep {} loss {:.4f} {:.0f} tok/s lr {:.2e} eta {}", f.step,
                                        f.total_steps > 0 ? fmt::format("/{}", f.total_steps) : "", f.epoch, f.loss,
                                        f.tokens_per_second, f.lr, eta);
  if (interactive_) {
    // Redraw at most 10 times a second; a terminal is slower than a fast training loop.
    if (line_open_ && now - last_draw_ < std::chrono::milliseconds(100) && f.step != f.total_steps) return;
    last_draw_ = now;
    std::string bar;
    if (f.total_steps > 0) {
      const int width = 24;
      const int filled = std::clamp(int(double(width) * double(f.step) / double(f.total_steps)), 0, width);
      bar = fmt::format("[{}{}] ", std::string(size_t(filled), '#'), std::string(size_t(width - filled), '.'));
    }
    fmt::print(stderr, "\r{}{}\x1b[K", bar, stats);
    std::fflush(stderr);
    line_open_ = true;
  } else if (f.step % log_every_ == 0 || f.step == f.total_steps) {
    fmt::print(stderr, "{}\n", stats);
  }
}

void ProgressReporter::message(const std::string& line) {
  if (!enabled_) return;
  if (line_open_) fmt::print(stderr, "\r\x1b[K");
  fmt::print(stderr, "{}\n", line);
  line_open_ = false;
}

void ProgressReporter::finish() {
  if (enabled_ && line_open_) fmt::print(stderr, "\n");
  line_open_ = false;
}

}  // namespace tcat::train
