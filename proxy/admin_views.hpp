// What the admin console's commands share: result tables (columns, cells, the RowDescription /
// DataRow / CommandComplete they become) and the View a command reads, built from one snapshot.
// Internal to the console (admin_console.cpp, admin_views.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/admin_console.hpp"
#include "proxy/proxy_snapshot.hpp"

namespace pglens::proxy::admin {

using protocol::Bytes;

// How the console itself appears in SHOW output: PgBouncer's name for it, which tools filter on.
inline constexpr std::string_view kAdminName = "pgbouncer";

// Type OIDs: text, int4, int8. Every value is sent in text format.
inline constexpr std::uint32_t kText = 25, kInt4 = 23, kInt8 = 20;

struct Column {
  std::string_view name;
  std::uint32_t type_oid;
};
using Cell = std::optional<std::string>;  // nullopt is SQL NULL
using Row = std::vector<Cell>;

inline Cell text(std::string_view s) {
  return std::string(s);
}
inline Cell num(std::int64_t v) {
  return std::to_string(v);
}
inline Cell num(std::uint64_t v) {
  return std::to_string(v);
}
inline Cell num(int v) {
  return std::to_string(v);
}

inline constexpr std::uint32_t kFloat8 = 701;
Cell real(double v);

// RowDescription, a DataRow per row, CommandComplete "SHOW": the shape of every SHOW.
Bytes table(std::span<const Column> columns, const std::vector<Row>& rows);

std::int64_t to_us(std::chrono::system_clock::time_point t);
bool is_admin_database(std::string_view database);

// What a command reads: the snapshot, with its logged-in clients apart, and the analysis.
struct View {
  const ProxySnapshot& s;
  const AdminConsole::Analysis& analysis;
  const AdminConsole::Controls& controls;
  std::vector<const ClientSnapshot*> clients;  // logged in (their user and database are set)
  int login_clients = 0;
  std::int64_t now_us = 0;

  View(const ProxySnapshot& snapshot, const AdminConsole::Analysis& a,
       const AdminConsole::Controls& c);
  // How long a waiting client has waited: since its last request (or its connect, at login).
  std::int64_t waited_us(const ClientSnapshot& c) const;
};

// PgBouncer 1.18's views, column for column (admin_views.cpp).
Bytes show_pools(const View& s);
Bytes show_stats(const View& s);
Bytes show_clients(const View& s);
Bytes show_servers(const View& s);
Bytes show_databases(const View& s);
Bytes show_lists(const View& s);

}  // namespace pglens::proxy::admin
