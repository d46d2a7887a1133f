#include "analyzer/syntax_check.hpp"

#include <pg_query.h>

namespace pglens::analyzer {

std::optional<SyntaxError> syntax_error(std::string_view sql) {
  std::string text(sql);  // libpg_query wants it NUL-terminated
  PgQueryParseResult parsed = pg_query_parse(text.c_str());
  std::optional<SyntaxError> error;
  if (parsed.error != nullptr)
    error = SyntaxError{parsed.error->message ? parsed.error->message : "syntax error",
                        parsed.error->cursorpos};
  pg_query_free_parse_result(parsed);
  return error;
}

}  // namespace pglens::analyzer
