// Each fingerprint graded against the database standards of the guide: a primary-key lookup
// under 1 ms, an indexed query under 10 ms, a JOIN under 50 ms, an aggregate under 100 ms, and a
// full table scan avoided. The class comes from the statement's shape (libpg_query), or from its
// plan where the missing-index rule EXPLAINed a captured instance; the grade compares the p95.
// Everything here but PlanClasses is pure.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "analyzer/query_shape.hpp"

namespace pglens::analyzer {

enum class StandardClass { PrimaryKeyLookup, Indexed, Join, Aggregate, FullScan, Write, Other };
// "primary_key_lookup", "indexed", "join", "aggregate", "full_scan", "write", "other"
std::string_view to_string(StandardClass c);
// The standard's p95 limit in milliseconds; none for a full scan (avoid), a write or other.
std::optional<double> standard_limit_ms(StandardClass c);

// From the shape alone. A SELECT: an aggregate, else a JOIN, else `id = constant` on one table
// (taken for its primary key), else a WHERE or a LIMIT (taken for an indexed read), else every
// row of its table (a full scan); no table at all (SELECT 1, nextval) is other. INSERT, UPDATE,
// DELETE, MERGE, COPY and data-modifying SELECTs are writes; everything else is other.
StandardClass classify_shape(const StatementShape& shape);

// What an EXPLAIN (FORMAT JSON, VERBOSE) plan tells the grading, read off its nodes.
struct PlanFacts {
  std::vector<std::string> seq_scanned;  // "schema.table" of each Seq Scan
  std::vector<std::string> indexes;      // "schema.index" of each index scan (plain, only, bitmap)
  bool join = false;                     // Nested Loop, Hash Join, Merge Join
  bool aggregate = false;                // Aggregate, Group (not WindowAgg)
  double rows = 0;                       // the top node's estimated rows
};
// `plan` is the "Plan" object of the EXPLAIN's output (its first element's).
PlanFacts plan_facts(const nlohmann::json& plan);

// The plan's class, where it says more than the shape: a Seq Scan of a table of at least
// `large_rows` rows (table_rows: by "schema.table") is a full scan; then an aggregate, then a
// join; index scans only, all on primary keys, for at most one row, a primary-key lookup; other
// index scans, indexed. A plan of small-table scans or no scan at all: nullopt (the shape stands).
std::optional<StandardClass> classify_plan(const PlanFacts& facts,
                                           const std::map<std::string, double>& table_rows,
                                           const std::set<std::string>& primary_key_indexes,
                                           double large_rows);

enum class Grade { Ok, Over, Avoid, NotApplicable };
std::string_view to_string(Grade g);  // "ok", "over", "avoid", "n/a"

struct StandardGrade {
  StandardClass cls = StandardClass::Other;
  std::optional<double> limit_ms;
  Grade grade = Grade::NotApplicable;
  std::optional<double> over_by;  // p95 ÷ limit, where there is a limit (below 1 when ok)
  bool from_plan = false;         // basis: "plan", else "shape"
  // "ok", "over 3.2x", "avoid" or "n/a": how the console and the report show it.
  std::string summary() const;
};
StandardGrade grade_against_standard(StandardClass cls, bool from_plan, double p95_ms);

// The class each fingerprint's captured plan gave, written by the missing-index rule's worker
// and read wherever fingerprints are graded. Bounded: when full, the oldest entry makes room.
class PlanClasses {
 public:
  explicit PlanClasses(std::size_t max_entries = 10'000)
      : max_entries_(max_entries == 0 ? 1 : max_entries) {}
  void set(std::uint64_t fingerprint, std::optional<StandardClass> cls);
  std::optional<StandardClass> get(std::uint64_t fingerprint) const;

 private:
  mutable std::mutex mutex_;
  std::size_t max_entries_;
  std::uint64_t next_order_ = 0;
  struct Entry {
    std::optional<StandardClass> cls;
    std::uint64_t order = 0;
  };
  std::unordered_map<std::uint64_t, Entry> entries_;
};

}  // namespace pglens::analyzer
