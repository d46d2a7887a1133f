#include "proxy/admin_views.hpp"

#include <algorithm>
#include <cassert>
#include <ctime>
#include <map>
#include <set>

namespace pglens::proxy::admin {

namespace {
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
template <typename Map>
std::vector<Row> values_of(Map&& rows) {
  std::vector<Row> out;
  for (auto& [key, row] : rows) out.push_back(std::move(row));
  return out;
}

PoolKey admin_key() {
  return {std::string(kAdminName), std::string(kAdminName)};
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

// The console's own clients are counted under admin_key().
PoolKey pool_key(const ClientSnapshot& c) {
  return is_admin_database(c.database) ? admin_key() : PoolKey{c.database, c.user};
}

}  // namespace

bool is_admin_database(std::string_view database) {
  return database == "pglens" || database == "pgbouncer";
}

std::int64_t to_us(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

Cell real(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return std::string(buf);
}

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

View::View(const ProxySnapshot& snapshot, const AdminConsole::Analysis& a,
           const AdminConsole::Controls& k)
    : s(snapshot), analysis(a), controls(k), now_us(to_us(snapshot.taken_at)) {
  for (const auto& c : s.clients) {
    if (c.state == ClientState::Login)
      ++login_clients;
    else
      clients.push_back(&c);
  }
}

std::int64_t View::waited_us(const ClientSnapshot& c) const {
  if (c.state != ClientState::Waiting) return 0;
  auto since = c.request_time_us;
  if (since == 0) since = to_us(c.connect_time);
  return std::max<std::int64_t>(0, now_us - since);
}

Bytes show_pools(const View& s) {
  struct ClientCounts {
    int active = 0, waiting = 0;
    std::int64_t max_wait_us = 0;
  };
  std::map<PoolKey, ClientCounts> clients;
  for (const auto* c : s.clients) {
    auto& n = clients[pool_key(*c)];
    if (c->state == ClientState::Waiting) {
      ++n.waiting;
      n.max_wait_us = std::max(n.max_wait_us, s.waited_us(*c));
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
  for (const auto& pool : s.s.pools) add(pool.key, pool.counts, to_string(pool.mode));
  add(admin_key(), {}, "statement");
  return table(kPoolsColumns, values_of(rows));
}

Bytes show_stats(const View& s) {
  struct Totals {
    std::uint64_t xacts = 0, queries = 0, received = 0, sent = 0, xact_us = 0, query_us = 0,
                  wait_us = 0;
  };
  std::map<std::string, Totals> by_database;  // PgBouncer reports per database, not per pool
  by_database[std::string(kAdminName)];
  for (const auto& pool : s.s.pools) {
    auto& t = by_database[pool.key.database];
    const auto& traffic = pool.traffic;
    t.xacts += traffic.transactions;
    t.queries += traffic.queries;
    t.received += traffic.bytes_received;
    t.sent += traffic.bytes_sent;
    t.xact_us += traffic.transaction_us;
    t.query_us += traffic.query_us;
    t.wait_us += traffic.wait_us;
  }
  // Averages are since start (PgBouncer's are over its last stats_period).
  double uptime = std::max(1e-3, std::chrono::duration<double>(s.s.uptime).count());
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

Bytes show_clients(const View& s) {
  std::vector<Row> rows;
  for (const auto* c : s.clients) {
    const auto& info = *c;
    auto waited = s.waited_us(info);
    auto server_id = info.server_id;
    auto request_us = info.request_time_us;
    rows.push_back(Row{
        text("C"), text(info.user), text(info.database),
        text(info.state == ClientState::Waiting ? "waiting" : "active"), text(info.address),
        num(info.port), text(s.s.config->listen_host), num(static_cast<int>(s.s.port)),
        text(timestamp(to_us(info.connect_time))),
        text(timestamp(request_us != 0 ? request_us : to_us(info.connect_time))),
        num(waited / 1'000'000), num(waited % 1'000'000), num(0),
        text("c" + std::to_string(info.id)),
        text(server_id != 0 && info.state == ClientState::Active ? "s" + std::to_string(server_id)
                                                                 : ""),
        num(0), text(info.tls), text(info.application_name)});
  }
  return table(kConnectionColumns, rows);
}

Bytes show_servers(const View& s) {
  std::map<PoolKey, const PoolSnapshot*> pools;
  for (const auto& pool : s.s.pools) pools[pool.key] = &pool;
  std::map<std::uint64_t, Row> rows;  // by server id
  auto add = [&](const PoolSnapshot& pool, std::uint64_t id, std::string_view state,
                 const ClientSnapshot* client) {
    auto request_us = client ? client->request_time_us : 0;
    rows.emplace(id, Row{text("S"), text(pool.server_user), text(pool.key.database), text(state),
                         text(pool.server_host), num(static_cast<int>(pool.server_port)), text(""),
                         num(0),    // local address: not kept per connection
                         text(""),  // connect_time: not kept per connection
                         text(request_us != 0 ? timestamp(request_us) : ""), num(0), num(0), num(0),
                         text("s" + std::to_string(id)),
                         text(client ? "c" + std::to_string(client->id) : ""), num(0),
                         text(pool.tls.count(id) ? pool.tls.at(id) : ""),
                         text(client ? client->application_name : "")});
  };
  // Connections lent to clients are known through the clients holding them.
  for (const auto* c : s.clients) {
    auto id = c->server_id;
    if (c->state != ClientState::Active || id == 0) continue;
    if (auto it = pools.find(pool_key(*c)); it != pools.end()) add(*it->second, id, "active", c);
  }
  for (const auto& p : s.s.pools) {
    const auto* pool = &p;
    for (const auto& [id, state] : pool->connections) {
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

namespace {
// [databases] routes, databases served through the default upstream that have a pool, and the
// console itself, by name.
std::map<std::string, Row> database_rows(const View& view) {
  const auto& s = view.s;
  std::map<std::string, int> connections;
  for (const auto& pool : s.pools) connections[pool.key.database] += pool.counts.total();
  std::map<std::string, Row> rows;
  int paused = s.paused ? 1 : 0;
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
    if (!rows.contains(pool.key.database))
      add(pool.key.database, s.config->route_for(pool.key.database));
  rows[std::string(kAdminName)] = Row{text(kAdminName),
                                      std::nullopt,
                                      num(static_cast<int>(s.port)),
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
}  // namespace

Bytes show_databases(const View& s) {
  return table(kDatabasesColumns, values_of(database_rows(s)));
}

Bytes show_lists(const View& s) {
  std::set<std::string> users{std::string(kAdminName)};
  int servers = 0;
  for (const auto& pool : s.s.pools) {
    users.insert(pool.key.user);
    servers += pool.counts.total();
  }
  auto databases = static_cast<int>(database_rows(s).size());
  auto clients = static_cast<int>(s.clients.size()) + s.login_clients;
  // free_*: PgBouncer's preallocated, unused slots; pglens preallocates none.
  std::vector<std::pair<std::string_view, int>> items = {
      {"databases", databases},
      {"users", static_cast<int>(users.size())},
      {"pools", static_cast<int>(s.s.pools.size()) + 1},  // + the console's
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

}  // namespace pglens::proxy::admin
