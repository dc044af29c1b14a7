#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "train/metrics.h"
#include "train/progress.h"

using namespace tcat;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string temp_path(const std::string& name) {
  const std::string p = ::testing::TempDir() + "/tcat_metrics_" + name;
  std::filesystem::remove(p);
  return p;
}

}  // namespace

TEST(MetricsLog, AppendsJsonLinesAndTrimsOnResume) {
  const std::string path = temp_path("log.jsonl");
  {
    train::MetricsLog log(path);
    for (int s = 1; s <= 5; ++s) log.append({{"step", s * 10}, {"train_loss", 5.0 - s}});
  }
  {
    std::ofstream(path, std::ios::app) << "{\"step\": 6";  // a line cut short by a crash
  }
  train::MetricsLog resumed(path, 30);  // resuming from the checkpoint at step 30
  resumed.append({{"step", 40}, {"train_loss", 0.5}});
  std::istringstream lines(read_all(path));
  std::vector<int> steps;
  for (std::string line; std::getline(lines, line);) steps.push_back(nlohmann::json::parse(line)["step"]);
  EXPECT_EQ(steps, (std::vector<int>{10, 20, 30, 40}));
  EXPECT_THROW(resumed.append({{"loss", 1.0}}), Error);
}

TEST(MetricsPlot, WritesAnSvgWithEverySeries) {
  const std::string log_path = temp_path("plot.jsonl");
  {
    train::MetricsLog log(log_path);
    for (int s = 1; s <= 20; ++s) log.append({{"step", s}, {"train_loss", 4.0 / s}});
    log.append({{"step", 10}, {"valid_loss", 0.9}, {"valid_bleu", 12.5}});
    log.append({{"step", 20}, {"valid_loss", 0.7}, {"valid_bleu", 20.0}});
  }
  const auto series = train::series_from_log(log_path);
  ASSERT_EQ(series.size(), 3u);
  EXPECT_EQ(series[0].points.size(), 20u);
  EXPECT_TRUE(series[2].right_axis);
  const std::string svg_path = temp_path("plot.svg");
  train::write_svg_plot(svg_path, "run <a&b>", series, "loss", "BLEU");
  const std::string svg = read_all(svg_path);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("run &lt;a&amp;b&gt;"), std::string::npos);
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '\n') > 10, true);
  for (const char* name : {"train loss", "valid loss", "valid BLEU"}) EXPECT_NE(svg.find(name), std::string::npos);
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(train::ProgressReporter::format_duration(12.2), "12s");
  EXPECT_EQ(train::ProgressReporter::format_duration(185), "3m05s");
  EXPECT_EQ(train::ProgressReporter::format_duration(3720), "1h02m");
  EXPECT_EQ(train::ProgressReporter::format_duration(-1), "?");
}
