// The two rules that read one client session's statement sequence: N+1 queries and row-by-row
// inserts. Both keep a little state per session and judge a run of statements when it ends.
#pragma once

#include <chrono>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "analyzer/event.hpp"
#include "analyzer/query_shape.hpp"
#include "rules/findings.hpp"
#include "rules/rule_settings.hpp"

namespace pglens::rules {

using analyzer::ExecutionEvent;
using analyzer::StatementShape;
using SteadyClock = std::chrono::steady_clock;

// N+1: a query P returns rows; then one other query Q runs again and again with differing
// parameters that are values of P's rows. The link to P's values is what tells it from
// independent point lookups.
class NPlusOneRule {
 public:
  explicit NPlusOneRule(const RuleSettings& settings) : settings_(settings) {}
  // True when the statement repeats a query with parameters taken from the rows before it: a
  // child of a possible N+1 (whose fix is loading it with its parent, not caching it).
  bool consume(const ExecutionEvent& event, const StatementShape& shape,
               SteadyClock::time_point now, FindingStore& findings);
  // Judges runs that went quiet.
  void tick(SteadyClock::time_point now, FindingStore& findings);

 private:
  struct Parent {
    std::string fingerprint, normalized;
    std::vector<std::string> columns;
    // value hash → the columns (bit i: column i) whose sampled values it is
    std::unordered_map<std::uint64_t, std::uint32_t> value_columns;
    std::uint64_t rows = 0, sampled_rows = 0;
  };
  struct Run {
    std::uint64_t fingerprint = 0;
    std::string fingerprint_hex, normalized;
    bool extended = false;
    std::shared_ptr<const Parent> parent;
    int executions = 0, linked = 0;
    std::set<std::uint64_t> values;  // distinct parameter values
    std::map<std::size_t, int> column_hits;
    std::chrono::nanoseconds total{0};
  };
  struct Session {
    std::shared_ptr<const analyzer::SessionInfo> who;
    std::shared_ptr<const Parent> parent;  // the last multi-row result
    std::optional<Run> run;
    SteadyClock::time_point last_seen{};
  };
  void close_run(Session& s, FindingStore& findings);
  Session& session(const ExecutionEvent& event, SteadyClock::time_point now);

  const RuleSettings& settings_;
  std::unordered_map<std::uint64_t, Session> sessions_;
};

// Row by row: a run of single-row INSERTs of one statement with nothing but transaction control
// between them.
class RowByRowRule {
 public:
  explicit RowByRowRule(const RuleSettings& settings) : settings_(settings) {}
  void consume(const ExecutionEvent& event, const StatementShape& shape,
               SteadyClock::time_point now, FindingStore& findings);
  void tick(SteadyClock::time_point now, FindingStore& findings);

 private:
  struct Run {
    std::uint64_t fingerprint = 0;
    std::string fingerprint_hex, normalized, table;
    int statements = 0, pipelined = 0;
    int reads_between = 0;  // SELECTs among the inserts
    bool extended = false;
    std::size_t columns = 0;
    std::set<std::uint64_t> transactions;
    std::set<std::uint64_t> requests;  // client round trips (ExecutionEvent::request)
    std::chrono::nanoseconds total{0};
  };
  struct Session {
    std::shared_ptr<const analyzer::SessionInfo> who;
    std::optional<Run> run;
    SteadyClock::time_point last_seen{};
  };
  void close_run(Session& s, FindingStore& findings);

  const RuleSettings& settings_;
  std::unordered_map<std::uint64_t, Session> sessions_;
};

}  // namespace pglens::rules
