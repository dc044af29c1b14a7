// The metrics log of a training run (one JSON object a line, appended and flushed as it goes, so
// a crash loses nothing already logged) and its plot as an SVG image.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tcat::train {

class MetricsLog {
 public:
  // Opens `path` for appending. On resume, records after `resume_step` (written after the
  // checkpoint being resumed) are dropped so the log continues without duplicates.
  explicit MetricsLog(std::string path, int64_t resume_step = -1);
  void append(const nlohmann::json& record);  // must contain "step"
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One curve: y over step.
struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> points;
  bool right_axis = false;  // plotted against the right-hand axis (e.g. BLEU beside losses)
};

// Reads a metrics log and plots train_loss / valid_loss (left axis) and valid_bleu (right axis).
std::vector<Series> series_from_log(const std::string& metrics_path);
// Writes an SVG line chart (atomically: temp file + rename).
void write_svg_plot(const std::string& path, const std::string& title, const std::vector<Series>& series,
                    const std::string& left_label, const std::string& right_label);

}  // namespace tcat::train
