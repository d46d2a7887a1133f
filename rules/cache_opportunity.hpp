// Cache opportunity: the same read (a fingerprint with the same parameter values, or the same
// literals for a client that inlines them) repeated within a window and answered with the same
// rows each time. What a cache-aside layer keyed by the statement and its parameters would have
// served: the hit rate, the database time saved, and a TTL from how often the results changed.
//
// The rows are compared by a hash of the event's result: its row count, its column names and the
// hashed sample of its values (the first kSampleRows rows × kSampleColumns columns; a DataRow over
// 64 KiB is not sampled). Larger results are compared on that sample: a change past the 64th row
// or the 8th column, that keeps the row count, goes unseen.
//
// Only plain reads: no INSERT/UPDATE/DELETE/MERGE, no SELECT ... FOR UPDATE/SHARE, no
// data-modifying CTE or SELECT INTO, no volatile function (nextval, now(), random()...), as the
// shape tells them; failed statements are left out, and so are the children of an N+1 loop
// (the Advisor does not pass them: loading them with their parent is the fix). Memory is bounded:
// at most cache_max_keys (fingerprint, identity, parameters) keys, the least recently called
// dropped first, and as many fingerprints.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>

#include "analyzer/event.hpp"
#include "analyzer/query_shape.hpp"
#include "rules/findings.hpp"
#include "rules/rule_settings.hpp"

namespace pglens::rules {

class CacheOpportunityRule {
 public:
  explicit CacheOpportunityRule(const RuleSettings& settings) : settings_(settings) {}

  // Analyzer thread. Time is the event's finished_at.
  void consume(const analyzer::ExecutionEvent& event, const analyzer::StatementShape& shape);
  // Reports the fingerprints that qualify and have new calls; a reported one that no longer
  // qualifies is resolved.
  void tick(FindingStore& findings);

  std::size_t keys() const { return keys_.size(); }
  std::size_t fingerprints() const { return groups_.size(); }

 private:
  using Time = std::chrono::system_clock::time_point;
  // One fingerprint as run by one (database, user, application_name).
  struct Group {
    std::string fingerprint_hex, normalized, database, user, application_name;
    bool extended = false;
    std::uint64_t calls = 0, hits = 0, distinct_keys = 0, result_changes = 0;
    std::chrono::nanoseconds saved{0};              // latency of the hits
    std::chrono::nanoseconds change_intervals{0};   // sum of the times between result changes
    std::chrono::nanoseconds longest_unchanged{0};  // the longest a result was seen unchanged
    std::uint64_t reported_calls = 0;               // calls at the last report
    bool reported = false;
    Time last_call{};
  };
  struct Key {
    std::uint64_t group = 0;   // the Group's key
    std::uint64_t result = 0;  // hash of the last result
    Time last_call{}, result_since{};
    std::list<std::uint64_t>::iterator recency;
  };
  void forget_least_recent_key();
  void forget_least_recent_group();

  const RuleSettings& settings_;
  std::unordered_map<std::uint64_t, Group> groups_;  // by hash of (fingerprint, identity)
  std::unordered_map<std::uint64_t, Key> keys_;      // by hash of (group, parameters)
  std::list<std::uint64_t> recency_;                 // keys, most recently called first
};

}  // namespace pglens::rules
