// What libpg_query tells about a SQL string: per statement, its fingerprint, normalized text,
// kind, and what the fingerprint cannot see (VALUES rows, IN-list sizes). Costly (a full parse):
// callers go through FingerprintCache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pglens::analyzer {

enum class StatementKind {
  Select,
  Insert,
  Update,
  Delete,
  Merge,
  Copy,
  Begin,
  Commit,
  Rollback,
  Savepoint,
  Set,
  Show,
  Prepare,
  Execute,
  Deallocate,
  Ddl,
  Other,
  Unparsed,  // libpg_query could not parse it
};
// Upper-case SQL word, used as the `command` label: "SELECT", "INSERT", "BEGIN", "UNPARSED"...
std::string_view to_string(StatementKind kind);
bool is_transaction_control(StatementKind kind);

inline constexpr std::size_t kMaxLiterals = 32;

struct StatementShape {
  std::uint64_t fingerprint = 0;  // libpg_query's; for unparseable text a hash of the text
  std::string fingerprint_hex;    // 16 hex digits
  std::string normalized;         // constants replaced by $n (pg_stat_statements style)
  StatementKind kind = StatementKind::Other;
  // The fingerprint's blind spots, carried beside it:
  int values_rows = 0;           // INSERT ... VALUES: number of rows (1 for a single-row insert)
  int in_list_size = 0;          // largest `IN (...)` list or `= ANY(ARRAY[...])` literal
  bool any_array_param = false;  // `= ANY($n)`: the size is in the parameter
  std::string target_table;      // INSERT/UPDATE/DELETE/COPY: the table, as written
  // Constants in the text, in order (what $1, $2... of `normalized` stand for), at most
  // kMaxLiterals: a simple-protocol client's parameters.
  std::vector<std::string> literals;
  // What the database standards' grading (analyzer/standard.hpp) reads off a SELECT's tree.
  struct ReadShape {
    int relations = 0;         // tables named anywhere in it (FROM, joins, subqueries, CTEs)
    bool join = false;         // a JOIN, or more than one table
    bool aggregate = false;    // an aggregate function (not a window) or GROUP BY
    bool where = false;        // a top-level WHERE
    bool limit = false;        // a top-level LIMIT / FETCH FIRST
    bool id_equality = false;  // the top-level WHERE has `id = <constant or parameter>` (ANDed)
  } read;
  // What makes a SELECT no plain read, for the cache rule:
  bool locking = false;             // FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE
  bool modifies = false;            // a data-modifying CTE, or SELECT INTO
  bool volatile_functions = false;  // nextval, now(), random(), CURRENT_TIMESTAMP and the like
};

struct QueryShape {
  std::vector<StatementShape> statements;  // one per statement of a (multi-statement) string
  bool parsed = true;
};

QueryShape analyze_query(std::string_view sql);

// A constant of the parse tree: where it starts in the text (a folded minus sign's position for
// a negative number) and its value as `literals` shows it.
struct Constant {
  int location = 0;
  std::string text;
};
// The same, also giving every constant of the first statement (not only kMaxLiterals), in text
// order: what FingerprintCache checks its templates against.
QueryShape analyze_query(std::string_view sql, std::vector<Constant>* constants);

// A fingerprint as it is shown everywhere: 16 hex digits.
std::string fingerprint_hex(std::uint64_t fingerprint);

}  // namespace pglens::analyzer
