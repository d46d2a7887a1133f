// What the rules found: deduplicated per (rule, fingerprint, parent), with first/last seen and
// counts, bounded in memory. Read by the HTTP API, the admin console and the report.
#pragma once

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

namespace pglens::rules {

enum class Severity { Low, Medium, High };
std::string_view to_string(Severity s);

struct Finding {
  std::string rule;  // "n_plus_one", "row_by_row_insert", "missing_index"
  Severity severity = Severity::Low;
  std::string fingerprint;  // the statement at fault
  std::string parent;  // what else identifies it: the N+1's parent fingerprint, the index's table
  std::string query;   // normalized text
  std::string database, user, application_name;
  std::uint64_t count = 1;  // occurrences seen
  std::string advice;       // one human sentence or two
  std::string fix;          // the SQL or code to write instead
  double estimated_savings_ms = 0;
  nlohmann::json details = nlohmann::json::object();  // rule-specific evidence
  std::chrono::system_clock::time_point first_seen{}, last_seen{};
  bool resolved = false;

  nlohmann::json to_json() const;
};

class FindingStore {
 public:
  explicit FindingStore(std::shared_ptr<prometheus::Registry> registry,
                        std::size_t max_findings = 1000);

  // A new finding is logged once; a known one adds its count and takes the latest evidence.
  void report(Finding finding);
  // The cause is gone (the index now exists): kept for the record, marked resolved.
  void resolve(const std::string& rule, const std::string& fingerprint, const std::string& parent);
  std::vector<Finding> snapshot() const;

 private:
  using Key = std::tuple<std::string, std::string, std::string>;
  void update_gauges();  // with mutex_ held

  mutable std::mutex mutex_;
  std::size_t max_findings_;
  std::map<Key, Finding> findings_;
  prometheus::Family<prometheus::Gauge>* gauge_family_ = nullptr;
  std::map<std::pair<std::string, Severity>, prometheus::Gauge*> gauges_;
};

}  // namespace pglens::rules
