#include "proxy/admin_console.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <chrono>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <sstream>

#include "config/config_keys.hpp"
#include "proxy/proxy_server.hpp"

namespace pglens::proxy {

namespace {

using protocol::Bytes;

constexpr std::string_view kVersion = "pglens 0.1.0";
// How the console itself appears in SHOW output: PgBouncer's name for it, which tools filter on.
constexpr std::string_view kAdminName = "pgbouncer";

// Type OIDs: text, int4, int8. Every value is sent in text format.
constexpr std::uint32_t kText = 25, kInt4 = 23, kInt8 = 20;

struct Column {
  std::string_view name;
  std::uint32_t type_oid;
};
using Cell = std::optional<std::string>;  // nullopt is SQL NULL
using Row = std::vector<Cell>;

Cell text(std::string_view s) {
  return std::string(s);
}
Cell num(std::int64_t v) {
  return std::to_string(v);
}
Cell num(std::uint64_t v) {
  return std::to_string(v);
}
Cell num(int v) {
  return std::to_string(v);
}

// The columns PgBouncer 1.18 sends, in its order (checked against Debian's pgbouncer 1.18.0;
// PgBouncer sends SHOW STATS figures as numeric, pglens as int8).
constexpr Column kPoolsColumns[] = {
    {"database", kText},
    {"user", kText},
    {"cl_active", kInt4},
    {"cl_waiting", kInt4},
    {"cl_active_cancel_req", kInt4},
    {"cl_waiting_cancel_req", kInt4},
    {"sv_active", kInt4},
    {"sv_active_cancel", kInt4},
    {"sv_being_canceled", kInt4},
    {"sv_idle", kInt4},
    {"sv_used", kInt4},
    {"sv_tested", kInt4},
    {"sv_login", kInt4},
    {"maxwait", kInt4},
    {"maxwait_us", kInt4},
    {"pool_mode", kText},
};
constexpr Column kStatsColumns[] = {
    {"database", kText},
    {"total_xact_count", kInt8},
    {"total_query_count", kInt8},
    {"total_received", kInt8},
    {"total_sent", kInt8},
    {"total_xact_time", kInt8},
    {"total_query_time", kInt8},
    {"total_wait_time", kInt8},
    {"avg_xact_count", kInt8},
    {"avg_query_count", kInt8},
    {"avg_recv", kInt8},
    {"avg_sent", kInt8},
    {"avg_xact_time", kInt8},
    {"avg_query_time", kInt8},
    {"avg_wait_time", kInt8},
    // Not in PgBouncer since 1.8; Debian's prometheus-pgbouncer-exporter 1.7 still reads it and
    // fails without it. Last, so the columns before it are exactly PgBouncer's.
    {"total_requests", kInt8},
};
// SHOW CLIENTS and SHOW SERVERS share one layout.
constexpr Column kConnectionColumns[] = {
    {"type", kText},         {"user", kText},       {"database", kText},
    {"state", kText},        {"addr", kText},       {"port", kInt4},
    {"local_addr", kText},   {"local_port", kInt4}, {"connect_time", kText},
    {"request_time", kText}, {"wait", kInt4},       {"wait_us", kInt4},
    {"close_needed", kInt4}, {"ptr", kText},        {"link", kText},
    {"remote_pid", kInt4},   {"tls", kText},        {"application_name", kText},
};
constexpr Column kDatabasesColumns[] = {
    {"name", kText},
    {"host", kText},
    {"port", kInt4},
    {"database", kText},
    {"force_user", kText},
    {"pool_size", kInt4},
    {"min_pool_size", kInt4},
    {"reserve_pool", kInt4},
    {"pool_mode", kText},
    {"max_connections", kInt4},
    {"current_connections", kInt4},
    {"paused", kInt4},
    {"disabled", kInt4},
};
constexpr Column kListsColumns[] = {{"list", kText}, {"items", kInt4}};
constexpr Column kConfigColumns[] = {
    {"key", kText}, {"value", kText}, {"default", kText}, {"changeable", kText}};
constexpr Column kVersionColumns[] = {{"version", kText}};
constexpr std::uint32_t kFloat8 = 701;
// The same columns as /api/fingerprints.
constexpr Column kFingerprintColumns[] = {
    {"fingerprint", kText}, {"query", kText},    {"command", kText},
    {"database", kText},    {"user", kText},     {"application_name", kText},
    {"calls", kInt8},       {"errors", kInt8},   {"rows", kInt8},
    {"total_ms", kFloat8},  {"min_ms", kFloat8}, {"max_ms", kFloat8},
    {"mean_ms", kFloat8},   {"p50_ms", kFloat8}, {"p95_ms", kFloat8},
    {"p99_ms", kFloat8},
};
constexpr Column kAdviceColumns[] = {
    {"rule", kText},        {"severity", kText},
    {"fingerprint", kText}, {"query", kText},
    {"count", kInt8},       {"advice", kText},
    {"fix", kText},         {"estimated_savings_ms", kFloat8},
    {"resolved", kText},    {"details", kText},
};

// RowDescription, a DataRow per row, CommandComplete "SHOW": the shape of every SHOW.
Bytes table(std::span<const Column> columns, const std::vector<Row>& rows) {
  Bytes out;
  protocol::RowDescription description;
  for (const auto& c : columns) {
    protocol::FieldDescription f;
    f.name = std::string(c.name);
    f.type_oid = c.type_oid;
    f.type_size = c.type_oid == kInt8 ? 8 : c.type_oid == kInt4 ? 4 : -1;
    description.fields.push_back(std::move(f));
  }
  description.encode(out);
  for (const auto& row : rows) {
    assert(row.size() == columns.size());
    protocol::DataRow data;
    for (const auto& cell : row)
      data.values.push_back(cell ? std::optional<Bytes>(Bytes(cell->begin(), cell->end()))
                                 : std::nullopt);
    data.encode(out);
  }
  protocol::CommandComplete{"SHOW"}.encode(out);
  return out;
}

template <typename Map>
std::vector<Row> values_of(Map&& rows) {
  std::vector<Row> out;
  for (auto& [key, row] : rows) out.push_back(std::move(row));
  return out;
}

Bytes command_complete(std::string tag) {
  return protocol::encoded(protocol::CommandComplete{std::move(tag)});
}

Bytes error(std::string_view sqlstate, std::string_view message) {
  return protocol::encoded(protocol::make_error(sqlstate, message));
}

bool is_admin_database(std::string_view database) {
  return database == "pglens" || database == "pgbouncer";
}

PoolKey admin_key() {
  return {std::string(kAdminName), std::string(kAdminName)};
}

std::int64_t to_us(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// PgBouncer's format: "2024-05-01 12:34:56 UTC".
std::string timestamp(std::int64_t us) {
  std::time_t t = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// One consistent look at who is connected, taken once per command.
struct ClientView {
  std::shared_ptr<const ClientInfo> info;
  ClientState state;
  // The pool it belongs to; the console's own clients are counted under admin_key().
  PoolKey pool_key() const {
    return is_admin_database(info->database) ? admin_key() : PoolKey{info->database, info->user};
  }
};

struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::vector<std::shared_ptr<ServerPool>> pools;
  std::vector<ClientView> clients;  // logged in (their user and database are set)
  int login_clients = 0;
  std::int64_t now_us = 0;

  explicit Snapshot(ProxyServer& server)
      : config(server.config()),
        pools(server.pools()),
        now_us(to_us(std::chrono::system_clock::now())) {
    for (auto& c : server.clients().snapshot()) {
      // The session writes user and database before it leaves Login, so they are only read after.
      auto state = c->state.load();
      if (state == ClientState::Login)
        ++login_clients;
      else
        clients.push_back({std::move(c), state});
    }
  }

  // How long a waiting client has waited: since its last request (or its connect, at login).
  std::int64_t waited_us(const ClientView& c) const {
    if (c.state != ClientState::Waiting) return 0;
    auto since = c.info->request_time_us.load();
    if (since == 0) since = to_us(c.info->connect_time);
    return std::max<std::int64_t>(0, now_us - since);
  }

  std::string_view pool_mode(const std::string& database) const {
    return to_string(config->pool_mode_for(config->route_for(database)));
  }
};

// ---- SHOW ----

Bytes show_pools(ProxyServer& server) {
  Snapshot s(server);
  struct ClientCounts {
    int active = 0, waiting = 0;
    std::int64_t max_wait_us = 0;
  };
  std::map<PoolKey, ClientCounts> clients;
  for (const auto& c : s.clients) {
    auto& n = clients[c.pool_key()];
    if (c.state == ClientState::Waiting) {
      ++n.waiting;
      n.max_wait_us = std::max(n.max_wait_us, s.waited_us(c));
    } else {
      ++n.active;  // PgBouncer counts idle clients as active too
    }
  }
  std::map<PoolKey, Row> rows;
  auto add = [&](const PoolKey& key, const pool::PoolCounts& sv, std::string_view mode) {
    const auto& cl = clients[key];
    rows[key] = Row{text(key.database),
                    text(key.user),
                    num(cl.active),
                    num(cl.waiting),
                    num(0),  // cl_active_cancel_req: cancels are forwarded, not queued
                    num(0),  // cl_waiting_cancel_req
                    num(sv.active),
                    num(0),  // sv_active_cancel
                    num(0),  // sv_being_canceled
                    num(sv.idle),
                    num(0),  // sv_used: pglens pings (sv_tested) instead of parking connections
                    num(sv.pinging),
                    num(sv.connecting),
                    num(cl.max_wait_us / 1'000'000),
                    num(cl.max_wait_us % 1'000'000),
                    text(mode)};
  };
  for (const auto& pool : s.pools)
    add(pool->key(), pool->counts(), s.pool_mode(pool->key().database));
  add(admin_key(), {}, "statement");
  return table(kPoolsColumns, values_of(rows));
}

Bytes show_stats(ProxyServer& server) {
  Snapshot s(server);
  struct Totals {
    std::uint64_t xacts = 0, queries = 0, received = 0, sent = 0, xact_us = 0, query_us = 0,
                  wait_us = 0;
  };
  std::map<std::string, Totals> by_database;  // PgBouncer reports per database, not per pool
  by_database[std::string(kAdminName)];
  for (const auto& pool : s.pools) {
    auto& t = by_database[pool->key().database];
    const auto& traffic = pool->traffic;
    t.xacts += traffic.transactions.load();
    t.queries += traffic.queries.load();
    t.received += traffic.bytes_received.load();
    t.sent += traffic.bytes_sent.load();
    t.xact_us += traffic.transaction_us.load();
    t.query_us += traffic.query_us.load();
    t.wait_us += traffic.wait_us.load();
  }
  // Averages are since start (PgBouncer's are over its last stats_period).
  double uptime =
      std::max(1e-3, std::chrono::duration<double>(Clock::now() - server.started_at()).count());
  auto per_second = [&](std::uint64_t v) {
    return num(static_cast<std::uint64_t>(static_cast<double>(v) / uptime));
  };
  auto mean = [](std::uint64_t total, std::uint64_t count) {
    return num(count == 0 ? std::uint64_t{0} : total / count);
  };
  std::vector<Row> rows;
  for (const auto& [database, t] : by_database)
    rows.push_back(Row{text(database), num(t.xacts), num(t.queries), num(t.received), num(t.sent),
                       num(t.xact_us), num(t.query_us), num(t.wait_us), per_second(t.xacts),
                       per_second(t.queries), per_second(t.received), per_second(t.sent),
                       mean(t.xact_us, t.xacts), mean(t.query_us, t.queries), per_second(t.wait_us),
                       num(t.queries)});
  return table(kStatsColumns, rows);
}

Bytes show_clients(ProxyServer& server) {
  Snapshot s(server);
  std::vector<Row> rows;
  for (const auto& c : s.clients) {
    const auto& info = *c.info;
    auto waited = s.waited_us(c);
    auto server_id = info.server_id.load();
    auto request_us = info.request_time_us.load();
    rows.push_back(
        Row{text("C"), text(info.user), text(info.database),
            text(c.state == ClientState::Waiting ? "waiting" : "active"), text(info.address),
            num(info.port), text(s.config->listen_host), num(static_cast<int>(server.port())),
            text(timestamp(to_us(info.connect_time))),
            text(timestamp(request_us != 0 ? request_us : to_us(info.connect_time))),
            num(waited / 1'000'000), num(waited % 1'000'000), num(0),
            text("c" + std::to_string(info.id)),
            text(server_id != 0 && c.state == ClientState::Active ? "s" + std::to_string(server_id)
                                                                  : ""),
            num(0), text(""), text(info.application_name)});
  }
  return table(kConnectionColumns, rows);
}

Bytes show_servers(ProxyServer& server) {
  Snapshot s(server);
  std::map<PoolKey, std::shared_ptr<ServerPool>> pools;
  for (const auto& pool : s.pools) pools[pool->key()] = pool;
  std::map<std::uint64_t, Row> rows;  // by server id
  auto add = [&](const ServerPool& pool, std::uint64_t id, std::string_view state,
                 const ClientView* client) {
    const auto& target = pool.target();
    auto request_us = client ? client->info->request_time_us.load() : 0;
    rows.emplace(id, Row{text("S"), text(target.user), text(pool.key().database), text(state),
                         text(target.upstream.host), num(static_cast<int>(target.upstream.port)),
                         text(""), num(0),  // local address: not kept per connection
                         text(""),          // connect_time: not kept per connection
                         text(request_us != 0 ? timestamp(request_us) : ""), num(0), num(0), num(0),
                         text("s" + std::to_string(id)),
                         text(client ? "c" + std::to_string(client->info->id) : ""), num(0),
                         text(""), text(client ? client->info->application_name : "")});
  };
  // Connections lent to clients are known through the clients holding them.
  for (const auto& c : s.clients) {
    auto id = c.info->server_id.load();
    if (c.state != ClientState::Active || id == 0) continue;
    if (auto it = pools.find(c.pool_key()); it != pools.end()) add(*it->second, id, "active", &c);
  }
  for (const auto& pool : s.pools) {
    for (const auto& [id, state] : pool->connection_states()) {
      switch (state) {
        case pool::ConnState::Idle:
          add(*pool, id, "idle", nullptr);
          break;
        case pool::ConnState::Pinging:
          add(*pool, id, "tested", nullptr);
          break;
        case pool::ConnState::Connecting:
          add(*pool, id, "new", nullptr);
          break;
        case pool::ConnState::Active:
          add(*pool, id, "active", nullptr);
          break;
      }
    }
  }
  return table(kConnectionColumns, values_of(rows));
}

// [databases] routes, databases served through the default upstream that have a pool, and the
// console itself, by name.
std::map<std::string, Row> database_rows(ProxyServer& server, const Snapshot& s) {
  std::map<std::string, int> connections;
  for (const auto& pool : s.pools) connections[pool->key().database] += pool->counts().total();
  std::map<std::string, Row> rows;
  int paused = server.paused() ? 1 : 0;
  auto add = [&](const std::string& name, const config::DatabaseRoute& route) {
    const auto& up = route.upstream;
    auto settings = s.config->pool_settings_for(route);
    // As ProxyServer::pool_for: the URL's user is used only with the URL's database.
    Cell force_user = !up.dbname.empty() && !up.user.empty() ? text(up.user) : std::nullopt;
    Cell mode = route.pool_mode ? text(to_string(*route.pool_mode)) : std::nullopt;
    rows[name] = Row{text(name),
                     text(up.host),
                     num(static_cast<int>(up.port)),
                     text(up.dbname.empty() ? name : up.dbname),
                     force_user,
                     num(settings.pool_size),
                     num(settings.min_pool_size),
                     num(settings.max_overflow),
                     mode,
                     num(0),  // max_connections: pglens limits per pool only
                     num(connections[name]),
                     num(paused),
                     num(0)};
  };
  for (const auto& [name, route] : s.config->databases) add(name, route);
  for (const auto& pool : s.pools)
    if (!rows.contains(pool->key().database))
      add(pool->key().database, s.config->route_for(pool->key().database));
  rows[std::string(kAdminName)] = Row{text(kAdminName),
                                      std::nullopt,
                                      num(static_cast<int>(server.port())),
                                      text(kAdminName),
                                      text(kAdminName),
                                      num(0),
                                      num(0),
                                      num(0),
                                      text("statement"),
                                      num(0),
                                      num(0),
                                      num(0),
                                      num(0)};
  return rows;
}

Bytes show_databases(ProxyServer& server) {
  Snapshot s(server);
  return table(kDatabasesColumns, values_of(database_rows(server, s)));
}

Bytes show_lists(ProxyServer& server) {
  Snapshot s(server);
  std::set<std::string> users{std::string(kAdminName)};
  int servers = 0;
  for (const auto& pool : s.pools) {
    users.insert(pool->key().user);
    servers += pool->counts().total();
  }
  auto databases = static_cast<int>(database_rows(server, s).size());
  auto clients = static_cast<int>(s.clients.size()) + s.login_clients;
  // free_*: PgBouncer's preallocated, unused slots; pglens preallocates none.
  std::vector<std::pair<std::string_view, int>> items = {
      {"databases", databases},
      {"users", static_cast<int>(users.size())},
      {"pools", static_cast<int>(s.pools.size()) + 1},  // + the console's
      {"free_clients", 0},
      {"used_clients", clients},
      {"login_clients", s.login_clients},
      {"free_servers", 0},
      {"used_servers", servers},
      {"dns_names", 0},
      {"dns_zones", 0},
      {"dns_queries", 0},
      {"dns_pending", 0},
  };
  std::vector<Row> rows;
  for (const auto& [name, count] : items) rows.push_back(Row{text(name), num(count)});
  return table(kListsColumns, rows);
}

Bytes show_config(ProxyServer& server) {
  auto current = server.config();
  const config::Config defaults;
  std::vector<Row> rows;
  for (const auto& key : config::config_keys())
    rows.push_back(Row{text(key.name), text(key.show(*current)), text(key.show(defaults)),
                       text(key.reloadable ? "yes" : "no")});
  return table(kConfigColumns, rows);
}

Bytes show_version(ProxyServer&) {
  return table(kVersionColumns, {Row{text(kVersion)}});
}

Cell real(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return std::string(buf);
}

Bytes show_fingerprints(ProxyServer& server) {
  std::vector<Row> rows;
  if (auto* analyzer = server.analyzer())
    for (const auto& f : analyzer->fingerprints(analyzer::SortBy::TotalTime, 1000))
      rows.push_back(Row{text(f.fingerprint), text(f.query), text(f.command), text(f.database),
                         text(f.user), text(f.application_name), num(f.calls), num(f.errors),
                         num(f.rows), real(f.total_ms), real(f.min_ms), real(f.max_ms),
                         real(f.mean_ms), real(f.p50_ms), real(f.p95_ms), real(f.p99_ms)});
  return table(kFingerprintColumns, rows);
}

Bytes show_advice(ProxyServer& server) {
  std::vector<Row> rows;
  if (auto* advisor = server.advisor())
    for (const auto& f : advisor->findings().snapshot()) {
      auto details = f.details;
      rows.push_back(Row{text(f.rule), text(rules::to_string(f.severity)), text(f.fingerprint),
                         text(f.query), num(f.count), text(f.advice), text(f.fix),
                         real(f.estimated_savings_ms), text(f.resolved ? "yes" : "no"),
                         text(details.dump())});
    }
  return table(kAdviceColumns, rows);
}

Bytes show_help(ProxyServer&) {
  // As PgBouncer answers it: a NOTICE listing the commands, then an empty SHOW.
  protocol::NoticeResponse notice;
  notice.fields = {
      {'S', "NOTICE"},
      {'V', "NOTICE"},
      {'C', "00000"},
      {'M', "Console usage"},
      {'D',
       "\n\tSHOW "
       "HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|LISTS|STATS|VERSION|FINGERPRINTS|ADVICE"
       "\n\tRELOAD\n\tPAUSE\n\tRESUME\n\tSHUTDOWN"}};
  auto out = protocol::encoded(notice);
  protocol::CommandComplete{"SHOW"}.encode(out);
  return out;
}

// ---- process control ----

Bytes pause(ProxyServer& server) {
  // Returns at once; sessions finish their transactions and then wait (PgBouncer's PAUSE
  // returns only once they have).
  server.pause();
  return command_complete("PAUSE");
}

Bytes resume(ProxyServer& server) {
  server.resume();
  return command_complete("RESUME");
}

Bytes reload(ProxyServer& server) {
  std::string why;
  if (!server.reload(&why)) return error("F0000", "pglens: RELOAD failed: " + why);
  return command_complete("RELOAD");
}

Bytes shutdown(ProxyServer& server) {
  server.shutdown_gracefully();
  return command_complete("SHUTDOWN");
}

struct Command {
  std::string_view name;  // upper case, words separated by one space
  Bytes (*run)(ProxyServer&);
};
constexpr Command kCommands[] = {
    {"SHOW POOLS", show_pools},
    {"SHOW STATS", show_stats},
    {"SHOW CLIENTS", show_clients},
    {"SHOW SERVERS", show_servers},
    {"SHOW DATABASES", show_databases},
    {"SHOW LISTS", show_lists},
    {"SHOW CONFIG", show_config},
    {"SHOW VERSION", show_version},
    {"SHOW FINGERPRINTS", show_fingerprints},
    {"SHOW ADVICE", show_advice},
    {"SHOW HELP", show_help},
    {"PAUSE", pause},
    {"RESUME", resume},
    {"RELOAD", reload},
    {"SHUTDOWN", shutdown},
};

// "  show\tpools ;" → {"SHOW", "POOLS"}: trailing semicolons and all whitespace dropped.
std::vector<std::string> words_of(std::string_view sql) {
  while (!sql.empty() &&
         (sql.back() == ';' || std::isspace(static_cast<unsigned char>(sql.back()))))
    sql.remove_suffix(1);
  std::vector<std::string> words;
  std::istringstream in{std::string(sql)};
  for (std::string w; in >> w;) {
    for (auto& ch : w) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    words.push_back(std::move(w));
  }
  return words;
}

}  // namespace

std::vector<protocol::ParameterStatus> AdminConsole::parameters() {
  return {{"server_version", "15.0 (pglens 0.1.0)"},
          {"client_encoding", "UTF8"},
          {"server_encoding", "UTF8"},
          {"DateStyle", "ISO, MDY"},
          {"standard_conforming_strings", "on"}};
}

AdminConsole::Result AdminConsole::execute(const std::string& sql) {
  Result r;
  try {
    auto words = words_of(sql);
    if (words.empty()) {
      protocol::EmptyQueryResponse{}.encode(r.response);
      return r;
    }
    std::string name;
    for (const auto& w : words) name += (name.empty() ? "" : " ") + w;
    for (const auto& command : kCommands) {
      if (command.name == name) {
        r.response = command.run(server_);
        return r;
      }
    }
    if ((words[0] == "PAUSE" || words[0] == "RESUME") && words.size() > 1) {
      r.response = error("0A000", "pglens admin console: " + words[0] +
                                      " applies to every database; run it without a name");
      return r;
    }
    r.response = error("42601", "pglens admin console: unknown command \"" + name +
                                    "\"; SHOW HELP lists the commands");
  } catch (const std::exception& e) {
    r.response = error("XX000", std::string("pglens admin console: ") + e.what());
  }
  return r;
}

}  // namespace pglens::proxy
