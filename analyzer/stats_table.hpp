// Per (fingerprint, database, user, application_name): the table pg_stat_statements gives, with
// percentiles and the client's application. Bounded: the least recently seen entry goes first.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "analyzer/event.hpp"
#include "analyzer/key_hash.hpp"
#include "analyzer/latency_histogram.hpp"
#include "analyzer/query_shape.hpp"
#include "analyzer/standard.hpp"

namespace pglens::analyzer {

struct FingerprintRow {
  std::uint64_t fingerprint_id = 0;
  std::string fingerprint;  // 16 hex digits
  std::string query;        // normalized text
  std::string command;      // SELECT, INSERT, ...
  std::string database, user, application_name;
  std::uint64_t calls = 0, errors = 0, rows = 0;
  double total_ms = 0, min_ms = 0, max_ms = 0, mean_ms = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0;
  // The latency distribution, four buckets per decade (LatencyHistogram::merged): upper bounds
  // in ms and counts per bucket, not cumulative.
  std::vector<double> histogram_le_ms;
  std::vector<std::uint64_t> histogram_counts;
  std::chrono::system_clock::time_point first_seen{}, last_seen{};
  StandardGrade standard;  // the p95 against the guide's standard for its class
  // Time its statements waited for a server connection (ExecutionEvent::pool_wait): over every
  // call, so the statements that ran on a connection already held count as zero.
  double pool_wait_total_ms = 0, pool_wait_mean_ms = 0, pool_wait_p95_ms = 0, pool_wait_max_ms = 0;
};

// One fingerprint over every database, user and application: what the per-fingerprint metrics
// need.
struct FingerprintSummary {
  std::uint64_t fingerprint = 0;
  std::chrono::nanoseconds total{0};
  LatencyHistogram latency;
  StandardClass shape_class = StandardClass::Other;
};

enum class SortBy { TotalTime, Calls, P99 };

class StatsTable {
 public:
  explicit StatsTable(std::size_t max_entries = 5000)
      : max_entries_(max_entries == 0 ? 1 : max_entries) {}

  void record(const StatementShape& shape, const ExecutionEvent& event);
  // plans: the classes captured plans gave (graded on the shape's class where there is none).
  std::vector<FingerprintRow> rows(SortBy sort, std::size_t limit,
                                   const PlanClasses* plans = nullptr) const;
  // Total time per fingerprint over every database, user and application (for top-K labels).
  std::vector<std::pair<std::uint64_t, std::chrono::nanoseconds>> totals_by_fingerprint() const;
  // The latency of these fingerprints over all their rows, and their shape's class.
  std::vector<FingerprintSummary> summaries(const std::set<std::uint64_t>& fingerprints) const;
  std::uint64_t evictions() const;
  std::size_t size() const;

 private:
  // (fingerprint, Identity::all, database, user, application_name)
  using Key = std::tuple<std::uint64_t, std::uint64_t, std::string, std::string, std::string>;
  struct Entry {
    std::string fingerprint_hex, normalized;
    StatementKind kind = StatementKind::Other;
    StandardClass shape_class = StandardClass::Other;
    std::uint64_t calls = 0, errors = 0, rows = 0;
    std::chrono::nanoseconds total{0}, min{std::chrono::nanoseconds::max()}, max{0};
    LatencyHistogram histogram;
    std::chrono::nanoseconds pool_wait_total{0}, pool_wait_max{0};
    // Made at the first call that waited (most fingerprints of a well-sized pool never do):
    // until then every call waited zero.
    std::unique_ptr<LatencyHistogram> pool_wait;
    std::chrono::system_clock::time_point first_seen{}, last_seen{};
    std::list<Key>::iterator recency;
  };
  mutable std::mutex mutex_;
  std::size_t max_entries_;
  std::unordered_map<Key, Entry, KeyHash, KeyEqual> entries_;
  std::list<Key> recency_;  // most recently seen first
  std::uint64_t evictions_ = 0;
};

}  // namespace pglens::analyzer
