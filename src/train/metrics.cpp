#include "train/metrics.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/atomic_file.h"

namespace tcat::train {

MetricsLog::MetricsLog(std::string path, int64_t resume_step) : path_(std::move(path)) {
  if (resume_step < 0) return;
  std::ifstream in(path_);
  if (!in) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    // A line cut short by a crash or written after the resumed checkpoint is dropped.
    const auto rec = nlohmann::json::parse(line, nullptr, false);
    if (rec.is_discarded() || !rec.contains("step") || !rec["step"].is_number_integer()) continue;
    if (rec["step"].get<int64_t>() <= resume_step) kept += line + "\n";
  }
  io::write_file_atomic(path_, kept);
}

void MetricsLog::append(const nlohmann::json& record) {
  TCAT_CHECK(record.contains("step"), "metrics record without a step: {}", record.dump());
  std::ofstream out(path_, std::ios::app);
  TCAT_CHECK(out.good(), "cannot append to metrics log '{}'", path_);
  out << record.dump() << "\n";
  out.flush();
  TCAT_CHECK(out.good(), "cannot write metrics log '{}'", path_);
}

std::vector<Series> series_from_log(const std::string& metrics_path) {
  Series train{"train loss", "#1f77b4", {}, false}, valid{"valid loss", "#ff7f0e", {}, false},
      bleu{"valid BLEU", "#2ca02c", {}, true};
  std::ifstream in(metrics_path);
  std::string line;
  while (std::getline(in, line)) {
    const auto rec = nlohmann::json::parse(line, nullptr, false);
    if (rec.is_discarded() || !rec.contains("step")) continue;
    const double step = rec["step"].get<double>();
    auto take = [&](const char* key, Series& s) {
      if (rec.contains(key) && rec[key].is_number()) s.points.emplace_back(step, rec[key].get<double>());
    };
    take("train_loss", train);
    take("valid_loss", valid);
    take("valid_bleu", bleu);
  }
  std::vector<Series> out;
  for (Series* s : {&train, &valid, &bleu})
    if (!s->points.empty()) out.push_back(std::move(*s));
  return out;
}

namespace {

// Tick values at 1, 2 or 5 times a power of ten covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target) {
  const double span = hi - lo;
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (raw <= step) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) ticks.push_back(t);
  return ticks;
}

std::string tick_label(double v) {
  if (std::fabs(v) >= 1000) return fmt::format("{:.0f}", v);
  std::string s = fmt::format("{:.3g}", v);
  return s;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

struct Range {
  double lo = INFINITY, hi = -INFINITY;
  void add(double v) {
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  void pad() {
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
  }
};

}  // namespace

void write_svg_plot(const std::string& path, const std::string& title, const std::vector<Series>& series,
                    const std::string& left_label, const std::string& right_label) {
  const double W = 800, H = 450, left = 70, right = 70, top = 40, bottom = 50;
  const double pw = W - left - right, ph = H - top - bottom;
  Range xr, yl, yr;
  bool has_right = false;
  for (const Series& s : series) {
    has_right |= s.right_axis;
    for (auto [x, y] : s.points) {
      xr.add(x);
      (s.right_axis ? yr : yl).add(y);
    }
  }
  xr.pad();
  yl.pad();
  yr.pad();
  auto px = [&](double x) { return left + (x - xr.lo) / (xr.hi - xr.lo) * pw; };
  auto py = [&](double y, const Range& r) { return top + ph - (y - r.lo) / (r.hi - r.lo) * ph; };

  std::ostringstream svg;
  svg << fmt::format(R"svg(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">)svg", W, H)
      << "\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << fmt::format(R"svg(<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>)svg", W / 2, xml_escape(title)) << "\n"
      << fmt::format(R"svg(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#444"/>)svg", left, top, pw, ph)
      << "\n";
  for (double t : nice_ticks(xr.lo, xr.hi, 8)) {
    svg << fmt::format(R"svg(<line x1="{0:.1f}" y1="{1}" x2="{0:.1f}" y2="{2}" stroke="#ddd"/><text x="{0:.1f}" y="{3}" text-anchor="middle">{4}</text>)svg",
                       px(t), top, top + ph, top + ph + 16, tick_label(t))
        << "\n";
  }
  for (double t : nice_ticks(yl.lo, yl.hi, 6)) {
    svg << fmt::format(R"svg(<line x1="{0}" y1="{1:.1f}" x2="{2}" y2="{1:.1f}" stroke="#ddd"/><text x="{3}" y="{4:.1f}" text-anchor="end">{5}</text>)svg",
                       left, py(t, yl), left + pw, left - 6, py(t, yl) + 4, tick_label(t))
        << "\n";
  }
  if (has_right) {
    for (double t : nice_ticks(yr.lo, yr.hi, 6)) {
      svg << fmt::format(R"svg(<text x="{}" y="{:.1f}" text-anchor="start">{}</text>)svg", left + pw + 6, py(t, yr) + 4,
                         tick_label(t))
          << "\n";
    }
    svg << fmt::format(R"svg(<text transform="translate({},{}) rotate(90)" text-anchor="middle">{}</text>)svg", W - 15,
                       top + ph / 2, xml_escape(right_label))
        << "\n";
  }
  svg << fmt::format(R"svg(<text x="{}" y="{}" text-anchor="middle">step</text>)svg", left + pw / 2, H - 10) << "\n"
      << fmt::format(R"svg(<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">{}</text>)svg", top + ph / 2,
                     xml_escape(left_label))
      << "\n";
  double legend_y = top + 16;
  for (const Series& s : series) {
    const Range& r = s.right_axis ? yr : yl;
    svg << "<polyline fill=\"none\" stroke-width=\"1.8\" stroke=\"" << s.color << "\" points=\"";
    for (auto [x, y] : s.points)
      if (std::isfinite(y)) svg << fmt::format("{:.1f},{:.1f} ", px(x), py(y, r));
    svg << "\"/>\n";
    if (s.points.size() == 1) {
      svg << fmt::format(R"svg(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"/>)svg", px(s.points[0].first),
                         py(s.points[0].second, r), s.color)
          << "\n";
    }
    svg << fmt::format(R"svg(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="{3}" stroke-width="3"/><text x="{4}" y="{5}">{6}</text>)svg",
                       left + pw - 150, legend_y, left + pw - 125, s.color, left + pw - 118, legend_y + 4, xml_escape(s.name))
        << "\n";
    legend_y += 18;
  }
  svg << "</svg>\n";
  io::write_file_atomic(path, svg.str());
}

}  // namespace tcat::train
