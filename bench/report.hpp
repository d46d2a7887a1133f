// The output shared by `inserts` and `nplus1`: one result per (method, target), shown as a text
// table, JSON and an SVG bar chart (log-scale rows/s).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"

namespace pglens::bench {

struct MethodResult {
  std::string method;         // key, e.g. "copy"
  std::string label;          // e.g. "COPY FROM STDIN"
  std::string target;         // "direct" or "via"
  Samples seconds;            // one sample per repeat
  std::uint64_t rows = 0;     // rows inserted or fetched per run, verified each time
  std::string checksum;       // md5 the verification matched
  std::uint64_t queries = 0;  // statements per run (0: not shown)
};

struct Report {
  std::string benchmark;   // "inserts" or "nplus1"
  std::string per_label;   // column header for the time per unit, e.g. "per row"
  double per_divisor = 1;  // units per run (rows, or parents)
  std::string baseline;    // method the speed-up is measured against
  bool has_via = false;
  std::vector<MethodResult> results;  // method order; direct before via

  const MethodResult* find(const std::string& method, const std::string& target) const;
};

std::string render_table(const Report& r);
// The "results" array of the JSON document (see bench/README in the top-level README).
nlohmann::json results_json(const Report& r);
std::string render_chart(const Report& r, const std::string& title, const std::string& subtitle);

}  // namespace pglens::bench
