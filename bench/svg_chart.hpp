// A horizontal bar chart written as SVG text: one group of bars per row label (a method, or a
// mode and client count), one bar per series (direct, through the proxy, ...), a whisker for the
// min–max spread, value labels, gridlines, axis label and legend.
#pragma once

#include <string>
#include <vector>

namespace pglens::bench {

struct ChartBar {
  std::string group;      // row key: the data-method attribute
  std::string series;     // the data-target attribute; its colour comes from ChartSpec::series
  double value = 0;       // bar length
  double lo = 0, hi = 0;  // spread whisker; lo == hi == 0 draws none
  std::string label;      // text at the end of the bar
  std::string tooltip;    // <title> of the bar
};

struct ChartSpec {
  std::string title, subtitle, axis_label;
  bool log_scale = false;
  std::vector<std::pair<std::string, std::string>> groups;  // key, display label (top to bottom)
  std::vector<std::pair<std::string, std::string>> series;  // key, legend label
  std::vector<ChartBar> bars;
};

std::string render_bar_chart(const ChartSpec& spec);

}  // namespace pglens::bench
