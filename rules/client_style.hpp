// Which ORM or driver a statement most likely came from, told by its application_name or by the
// shape of the SQL it writes, so advice can name the fix in that library's own words.
#pragma once

#include <string>
#include <string_view>

#include "analyzer/event.hpp"

namespace pglens::rules {

enum class ClientStyle {
  Unknown,
  SqlAlchemy,            // "SELECT customers.id AS customers_id ...", application_name "sqlalchemy"
  Django,                // "SELECT "customers"."id", "customers"."name" FROM "customers" ..."
  Jdbc,                  // pgJDBC: its startup parameters, or an application_name naming JDBC
  SimpleProtocolDriver,  // parameters inlined by the client (psycopg2 and the like)
  ExtendedProtocolDriver,  // Bind parameters (asyncpg, psycopg 3, node-postgres, ...)
};

std::string_view to_string(ClientStyle style);

// `sql`: the statement as sent (with its quoting and aliases, not the normalized text).
ClientStyle client_style(std::string_view sql, const analyzer::SessionInfo* who, bool extended);

}  // namespace pglens::rules
