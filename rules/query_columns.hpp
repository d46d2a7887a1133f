// Which columns of which tables a statement filters, joins and sorts on: the raw material of an
// index suggestion. Aliases are resolved to the tables they stand for. Pure: parse tree in,
// columns out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pglens::rules {

enum class ColumnRole { Equality, Range, OrderBy };

struct ColumnUse {
  std::string table;  // as written in FROM, schema-qualified when it was
  std::string column;
  ColumnRole role;
  bool operator==(const ColumnUse&) const = default;
};

struct TableColumns {
  std::string table;
  // Index column order: equality columns first, then ranges, then ORDER BY; no repeats.
  std::vector<std::string> index_columns;
  bool operator==(const TableColumns&) const = default;
};

std::vector<ColumnUse> extract_column_uses(std::string_view statement_sql);
std::vector<TableColumns> index_candidates(std::string_view statement_sql);

}  // namespace pglens::rules
