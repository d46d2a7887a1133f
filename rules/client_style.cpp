#include "rules/client_style.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

namespace pglens::rules {

namespace {
bool contains_nocase(std::string_view text, std::string_view what) {
  auto it = std::search(text.begin(), text.end(), what.begin(), what.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
  return it != text.end();
}
}  // namespace

std::string_view to_string(ClientStyle style) {
  switch (style) {
    case ClientStyle::SqlAlchemy:
      return "sqlalchemy";
    case ClientStyle::Django:
      return "django";
    case ClientStyle::Jdbc:
      return "jdbc";
    case ClientStyle::SimpleProtocolDriver:
      return "simple-protocol driver";
    case ClientStyle::ExtendedProtocolDriver:
      return "extended-protocol driver";
    case ClientStyle::Unknown:
      break;
  }
  return "unknown";
}

ClientStyle client_style(std::string_view sql, const analyzer::SessionInfo* who, bool extended) {
  if (who != nullptr) {
    const auto& app = who->application_name;
    if (contains_nocase(app, "sqlalchemy")) return ClientStyle::SqlAlchemy;
    if (contains_nocase(app, "django")) return ClientStyle::Django;
    if (contains_nocase(app, "jdbc") || who->driver == "pgjdbc") return ClientStyle::Jdbc;
  }
  // SQLAlchemy labels every selected column table_column; its INSERTs return table.id.
  static const std::regex sqlalchemy(R"(\b(\w+)\.(\w+) AS \1_\2\b|\bRETURNING (\w+)\.\w+$)");
  // Django qualifies and quotes every column: "table"."column".
  static const std::regex django(R"rx("\w+"\."\w+")rx");
  std::string text(sql.substr(0, 2048));
  if (std::regex_search(text, sqlalchemy)) return ClientStyle::SqlAlchemy;
  if (std::regex_search(text, django)) return ClientStyle::Django;
  return extended ? ClientStyle::ExtendedProtocolDriver : ClientStyle::SimpleProtocolDriver;
}

}  // namespace pglens::rules
