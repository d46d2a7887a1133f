#include "bench/svg_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "bench/bench_util.hpp"

namespace pglens::bench {
namespace {

const char* const kPalette[] = {"#3b6fb6", "#e07b39", "#4e9a5b", "#c0504d", "#8064a2", "#4bacc6"};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// 1, 10, 100, 1k, 10k, 100k, 1M, ...
std::string short_number(double v) {
  const char* suffix[] = {"", "k", "M", "G"};
  int i = 0;
  while (std::fabs(v) >= 1000 && i < 3) {
    v /= 1000;
    ++i;
  }
  char buf[32];
  if (v == std::floor(v))
    std::snprintf(buf, sizeof buf, "%.0f%s", v, suffix[i]);
  else
    std::snprintf(buf, sizeof buf, "%.1f%s", v, suffix[i]);
  return buf;
}

double nice_step(double range, int target_ticks) {
  double raw = range / target_ticks;
  double mag = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

}  // namespace

std::string render_bar_chart(const ChartSpec& spec) {
  constexpr double kWidth = 1000, kLeft = 260, kRight = 150, kTop = 92, kBottom = 64;
  constexpr double kBar = 18, kBarGap = 4, kGroupPad = 16;
  const std::size_t nseries = std::max<std::size_t>(1, spec.series.size());
  const double group_h = nseries * kBar + (nseries - 1) * kBarGap + kGroupPad;
  const double plot_h = spec.groups.size() * group_h;
  const double height = kTop + plot_h + kBottom;
  const double plot_w = kWidth - kLeft - kRight;

  // Domain.
  double vmin = std::numeric_limits<double>::max(), vmax = 0;
  for (const auto& b : spec.bars) {
    for (double v : {b.value, b.lo, b.hi}) {
      if (v > 0) vmin = std::min(vmin, v);
      vmax = std::max(vmax, v);
    }
  }
  if (vmax <= 0) vmin = 1, vmax = 10;
  double d0, d1;
  if (spec.log_scale) {
    d0 = std::floor(std::log10(vmin));
    d1 = std::ceil(std::log10(vmax));
    if (d1 <= d0) d1 = d0 + 1;
  } else {
    d0 = 0;
    double step = nice_step(vmax, 5);
    d1 = std::ceil(vmax / step) * step;
  }
  auto x_of = [&](double v) {
    double t = spec.log_scale ? (std::log10(std::max(v, std::pow(10, d0))) - d0) / (d1 - d0)
                              : (v - d0) / (d1 - d0);
    return kLeft + std::clamp(t, 0.0, 1.0) * plot_w;
  };

  std::string s;
  s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(kWidth) + "\" height=\"" +
       num(height) + "\" viewBox=\"0 0 " + num(kWidth) + " " + num(height) +
       "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n";
  s += "<rect x=\"0\" y=\"0\" width=\"" + num(kWidth) + "\" height=\"" + num(height) +
       "\" fill=\"#ffffff\"/>\n";
  s += "<text x=\"20\" y=\"28\" font-size=\"18\" font-weight=\"bold\" fill=\"#222\">" +
       xml_escape(spec.title) + "</text>\n";
  s += "<text x=\"20\" y=\"48\" fill=\"#666\">" + xml_escape(spec.subtitle) + "</text>\n";

  // Legend, one swatch per series.
  double lx = 20;
  for (std::size_t i = 0; i < spec.series.size(); ++i) {
    const char* colour = kPalette[i % std::size(kPalette)];
    s += "<g class=\"legend\"><rect x=\"" + num(lx) +
         "\" y=\"60\" width=\"14\" height=\"14\" fill=\"" + colour + "\"/><text x=\"" +
         num(lx + 20) + "\" y=\"72\" fill=\"#333\">" + xml_escape(spec.series[i].second) +
         "</text></g>\n";
    lx += 34 + 7.2 * static_cast<double>(spec.series[i].second.size());
  }

  // Alternate group bands, then gridlines with tick labels.
  for (std::size_t g = 0; g < spec.groups.size(); ++g) {
    if (g % 2 == 0) continue;
    s += "<rect class=\"band\" x=\"" + num(kLeft) + "\" y=\"" + num(kTop + g * group_h) +
         "\" width=\"" + num(plot_w) + "\" height=\"" + num(group_h) + "\" fill=\"#f4f6f9\"/>\n";
  }
  auto gridline = [&](double v, bool major) {
    double x = x_of(v);
    s += "<line x1=\"" + num(x) + "\" y1=\"" + num(kTop) + "\" x2=\"" + num(x) + "\" y2=\"" +
         num(kTop + plot_h) + "\" stroke=\"" + (major ? "#c8ccd2" : "#e6e8eb") +
         "\" stroke-width=\"1\"/>\n";
    if (major) {
      s += "<text x=\"" + num(x) + "\" y=\"" + num(kTop + plot_h + 18) +
           "\" text-anchor=\"middle\" fill=\"#444\">" + short_number(v) + "</text>\n";
    }
  };
  if (spec.log_scale) {
    for (int e = static_cast<int>(d0); e <= static_cast<int>(d1); ++e) {
      double base = std::pow(10, e);
      gridline(base, true);
      if (e < d1)
        for (double m : {2.0, 5.0}) gridline(m * base, false);
    }
  } else {
    double step = nice_step(d1, 5);
    for (double v = 0; v <= d1 + step / 2; v += step) gridline(v, true);
  }
  s += "<line x1=\"" + num(kLeft) + "\" y1=\"" + num(kTop) + "\" x2=\"" + num(kLeft) + "\" y2=\"" +
       num(kTop + plot_h) + "\" stroke=\"#444\"/>\n";
  s += "<text x=\"" + num(kLeft + plot_w / 2) + "\" y=\"" + num(kTop + plot_h + 44) +
       "\" text-anchor=\"middle\" fill=\"#222\" font-size=\"13\">" + xml_escape(spec.axis_label) +
       "</text>\n";

  // Groups and bars.
  for (std::size_t g = 0; g < spec.groups.size(); ++g) {
    const auto& [gkey, glabel] = spec.groups[g];
    double gy = kTop + g * group_h + kGroupPad / 2;
    double gmid = gy + (group_h - kGroupPad) / 2;
    s += "<text class=\"group-label\" x=\"" + num(kLeft - 10) + "\" y=\"" + num(gmid + 4) +
         "\" text-anchor=\"end\" fill=\"#222\" font-size=\"13\">" + xml_escape(glabel) +
         "</text>\n";
    for (std::size_t i = 0; i < spec.series.size(); ++i) {
      const auto& skey = spec.series[i].first;
      auto it = std::find_if(spec.bars.begin(), spec.bars.end(), [&](const ChartBar& b) {
        return b.group == gkey && b.series == skey;
      });
      if (it == spec.bars.end()) continue;
      const ChartBar& b = *it;
      const char* colour = kPalette[i % std::size(kPalette)];
      double y = gy + i * (kBar + kBarGap);
      double x1 = x_of(b.value);
      s += "<rect class=\"bar\" data-method=\"" + xml_escape(gkey) + "\" data-target=\"" +
           xml_escape(skey) + "\" data-value=\"" + num(b.value) + "\" x=\"" + num(kLeft) +
           "\" y=\"" + num(y) + "\" width=\"" + num(std::max(1.0, x1 - kLeft)) + "\" height=\"" +
           num(kBar) + "\" fill=\"" + colour + "\" rx=\"2\"><title>" + xml_escape(b.tooltip) +
           "</title></rect>\n";
      double label_x = x1;
      if (b.hi > 0 && b.hi > b.lo) {
        double wl = x_of(b.lo), wh = x_of(b.hi), wy = y + kBar / 2;
        s += "<g class=\"spread\" stroke=\"#222\" stroke-width=\"1.2\"><line x1=\"" + num(wl) +
             "\" y1=\"" + num(wy) + "\" x2=\"" + num(wh) + "\" y2=\"" + num(wy) +
             "\"/><line x1=\"" + num(wl) + "\" y1=\"" + num(wy - 4) + "\" x2=\"" + num(wl) +
             "\" y2=\"" + num(wy + 4) + "\"/><line x1=\"" + num(wh) + "\" y1=\"" + num(wy - 4) +
             "\" x2=\"" + num(wh) + "\" y2=\"" + num(wy + 4) + "\"/></g>\n";
        label_x = std::max(label_x, wh);
      }
      s += "<text class=\"value\" x=\"" + num(label_x + 6) + "\" y=\"" + num(y + kBar / 2 + 4) +
           "\" fill=\"#333\">" + xml_escape(b.label) + "</text>\n";
    }
  }
  s += "</svg>\n";
  return s;
}

}  // namespace pglens::bench
