#include "bench/report.hpp"

#include <cmath>

#include "bench/svg_chart.hpp"

namespace pglens::bench {

const MethodResult* Report::find(const std::string& method, const std::string& target) const {
  for (const auto& m : results)
    if (m.method == method && m.target == target) return &m;
  return nullptr;
}

namespace {
double rate(const MethodResult& m) {
  double t = m.seconds.median();
  return t > 0 ? static_cast<double>(m.rows) / t : 0;
}

// Baseline median / this median, for the same target; 0 when there is no baseline.
double speedup(const Report& r, const MethodResult& m) {
  const MethodResult* b = r.find(r.baseline, m.target);
  if (!b || m.seconds.median() <= 0) return 0;
  return b->seconds.median() / m.seconds.median();
}

// Time through the proxy over time direct, minus one, in percent; NaN for direct rows.
double overhead_pct(const Report& r, const MethodResult& m) {
  if (m.target != "via") return std::nan("");
  const MethodResult* d = r.find(m.method, "direct");
  if (!d || d->seconds.median() <= 0) return std::nan("");
  return (m.seconds.median() / d->seconds.median() - 1) * 100;
}

std::string signed_pct(double v) {
  return (v >= 0 ? "+" : "") + fmt_fixed(v, 1) + "%";
}
}  // namespace

std::string render_table(const Report& r) {
  bool show_queries = false;
  for (const auto& m : r.results) show_queries |= m.queries > 0;
  std::vector<std::string> headers = {"method", "target"};
  if (show_queries) headers.push_back("queries");
  for (const char* h : {"rows/s", "total (median)", "spread (min–max)"}) headers.push_back(h);
  headers.push_back(r.per_label);
  headers.push_back("speed-up");
  if (r.has_via) headers.push_back("proxy overhead");
  Table t(headers, {true, true});
  std::string last;
  for (const auto& m : r.results) {
    if (!last.empty() && last != m.method && r.has_via) t.separator();
    std::vector<std::string> row = {last == m.method ? "" : m.label,
                                    m.target == "via" ? "via proxy" : "direct"};
    last = m.method;
    if (show_queries) row.push_back(fmt_count(static_cast<double>(m.queries)));
    row.push_back(fmt_count(rate(m)));
    row.push_back(fmt_duration(m.seconds.median()));
    row.push_back(fmt_duration(m.seconds.min()) + " – " + fmt_duration(m.seconds.max()));
    row.push_back(fmt_duration(m.seconds.median() / r.per_divisor));
    double s = speedup(r, m);
    row.push_back(s > 0 ? fmt_fixed(s, s < 10 ? 2 : 1) + "×" : "-");
    if (r.has_via) {
      double o = overhead_pct(r, m);
      row.push_back(std::isnan(o) ? "" : signed_pct(o));
    }
    t.add(std::move(row));
  }
  return t.render();
}

nlohmann::json results_json(const Report& r) {
  auto out = nlohmann::json::array();
  for (const auto& m : r.results) {
    double o = overhead_pct(r, m), s = speedup(r, m);
    nlohmann::json j = {
        {"method", m.method},
        {"label", m.label},
        {"target", m.target},
        {"median_s", m.seconds.median()},
        {"min_s", m.seconds.min()},
        {"max_s", m.seconds.max()},
        {"samples_s", m.seconds.values},
        {"rows", m.rows},
        {"rows_per_s", rate(m)},
        {"per_unit_s", m.seconds.median() / r.per_divisor},
        {"speedup_vs_baseline", s > 0 ? nlohmann::json(s) : nlohmann::json()},
        {"overhead_pct", std::isnan(o) ? nlohmann::json() : nlohmann::json(o)},
        {"verified", true},
        {"checksum", m.checksum},
    };
    if (m.queries) j["queries"] = m.queries;
    out.push_back(std::move(j));
  }
  return out;
}

std::string render_chart(const Report& r, const std::string& title, const std::string& subtitle) {
  ChartSpec c;
  c.title = title;
  c.subtitle = subtitle;
  c.axis_label = "rows per second (log scale; whiskers: min–max of the repeats)";
  c.log_scale = true;
  c.series.emplace_back("direct", "direct to Postgres");
  if (r.has_via) c.series.emplace_back("via", "through the proxy (--via)");
  for (const auto& m : r.results) {
    if (m.target == "direct") c.groups.emplace_back(m.method, m.label);
    double rows = static_cast<double>(m.rows);
    ChartBar b;
    b.group = m.method;
    b.series = m.target;
    b.value = rate(m);
    b.lo = m.seconds.max() > 0 ? rows / m.seconds.max() : 0;
    b.hi = m.seconds.min() > 0 ? rows / m.seconds.min() : 0;
    b.label = fmt_count(b.value) + "/s";
    double o = overhead_pct(r, m);
    if (!std::isnan(o)) b.label += "  (" + signed_pct(o) + " time)";
    b.tooltip = m.label + ", " + (m.target == "via" ? "through the proxy" : "direct") + ": " +
                fmt_count(b.value) + " rows/s, median " + fmt_duration(m.seconds.median());
    c.bars.push_back(std::move(b));
  }
  return render_bar_chart(c);
}

}  // namespace pglens::bench
