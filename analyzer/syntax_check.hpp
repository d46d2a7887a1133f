// Postgres' own parser (libpg_query) as a syntax check: what the server would say of a
// statement at Parse, for the Parse messages pglens answers without a server connection.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pglens::analyzer {

struct SyntaxError {
  std::string message;  // as Postgres words it: syntax error at or near "SELEC"
  int position = 0;     // 1-based character position, 0 when unknown
};

// nullopt when `sql` parses. Only syntax: names (tables, columns, functions) are the server's.
std::optional<SyntaxError> syntax_error(std::string_view sql);

}  // namespace pglens::analyzer
