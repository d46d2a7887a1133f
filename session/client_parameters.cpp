#include "session/client_parameters.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace pglens::session {

namespace {
constexpr std::array<std::string_view, 8> kTracked = {"application_name",
                                                      "client_encoding",
                                                      "DateStyle",
                                                      "IntervalStyle",
                                                      "TimeZone",
                                                      "search_path",
                                                      "standard_conforming_strings",
                                                      "extra_float_digits"};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string quote_literal(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::optional<std::string> server_default(const std::vector<protocol::ParameterStatus>& defaults,
                                          const std::string& name) {
  for (const auto& p : defaults)
    if (p.name == name) return p.value;
  return std::nullopt;
}
}  // namespace

std::optional<std::string> tracked_parameter(std::string_view name) {
  for (auto t : kTracked)
    if (iequals(t, name)) return std::string(t);
  return std::nullopt;
}

std::string parameter_sync_sql(const std::map<std::string, std::string>& desired,
                               const std::map<std::string, std::string>& current,
                               const std::vector<protocol::ParameterStatus>& server_defaults) {
  std::string sets, resets;
  for (auto name : kTracked) {
    std::string key(name);
    auto want = desired.find(key);
    auto have = current.find(key);
    auto fallback = server_default(server_defaults, key);
    // What the backend has now, and what the client should see; a value equal to the server's
    // default needs no statement.
    std::optional<std::string> now = have != current.end() ? std::optional(have->second) : fallback;
    if (want != desired.end()) {
      if (now && *now == want->second) continue;
      sets += sets.empty() ? "SELECT " : ", ";
      sets += "pg_catalog.set_config(" + quote_literal(key) + ", " + quote_literal(want->second) +
              ", false)";
    } else if (have != current.end()) {
      resets += "RESET " + key + ";";
    }
  }
  if (!sets.empty()) sets += ";";
  return sets + resets;
}

}  // namespace pglens::session
