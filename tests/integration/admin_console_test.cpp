// The admin console (database "pgbouncer" or "pglens"): PgBouncer 1.18's SHOW columns in its
// order, values that follow real traffic through the proxy, and PAUSE/RESUME/RELOAD/SHUTDOWN.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include "tests/support/test_env.hpp"

namespace pglens::test {
namespace {

using namespace std::chrono_literals;
using Names = std::vector<std::string>;

// A SHOW result, with its rows keyed by column name.
struct Table {
  Names columns;
  std::vector<unsigned> types;
  std::vector<std::map<std::string, std::string>> rows;
  std::string error;     // libpq's message when the command failed
  std::string sqlstate;  // ...and its SQLSTATE
  std::string tag;       // CommandComplete

  // The first row whose `column` is `value`; an empty row when there is none.
  std::map<std::string, std::string> find(const std::string& column,
                                          const std::string& value) const {
    for (const auto& r : rows)
      if (auto it = r.find(column); it != r.end() && it->second == value) return r;
    return {};
  }
  long long number(const std::map<std::string, std::string>& row, const std::string& col) const {
    auto it = row.find(col);
    return it == row.end() ? -1 : std::atoll(it->second.c_str());
  }
};

Table show(PGconn* conn, const std::string& sql) {
  Table t;
  auto r = exec(conn, sql);
  auto status = PQresultStatus(r.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    t.error = PQresultErrorMessage(r.get());
    const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    t.sqlstate = state ? state : "";
    return t;
  }
  t.tag = PQcmdStatus(r.get());
  for (int c = 0; c < PQnfields(r.get()); ++c) {
    t.columns.emplace_back(PQfname(r.get(), c));
    t.types.push_back(PQftype(r.get(), c));
  }
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    std::map<std::string, std::string> row;
    for (int c = 0; c < PQnfields(r.get()); ++c)
      row[t.columns[static_cast<std::size_t>(c)]] =
          PQgetisnull(r.get(), i, c) ? "<null>" : PQgetvalue(r.get(), i, c);
    t.rows.push_back(std::move(row));
  }
  return t;
}

// Waits until the query sent with PQsendQuery has its result, or the timeout passes.
bool result_arrives(PGconn* conn, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!PQconsumeInput(conn)) return false;
    if (!PQisBusy(conn)) return true;
    pollfd p{PQsocket(conn), POLLIN, 0};
    ::poll(&p, 1, 50);
  }
  return false;
}

void drain(PGconn* conn) {
  while (auto* r = PQgetResult(conn)) PQclear(r);
}

// PgBouncer 1.18's columns, as its admin console sends them (Debian's pgbouncer 1.18.0).
const Names kPools = {"database",
                      "user",
                      "cl_active",
                      "cl_waiting",
                      "cl_active_cancel_req",
                      "cl_waiting_cancel_req",
                      "sv_active",
                      "sv_active_cancel",
                      "sv_being_canceled",
                      "sv_idle",
                      "sv_used",
                      "sv_tested",
                      "sv_login",
                      "maxwait",
                      "maxwait_us",
                      "pool_mode"};
// + total_requests, which Debian's prometheus-pgbouncer-exporter still reads.
const Names kStats = {"database",       "total_xact_count", "total_query_count", "total_received",
                      "total_sent",     "total_xact_time",  "total_query_time",  "total_wait_time",
                      "avg_xact_count", "avg_query_count",  "avg_recv",          "avg_sent",
                      "avg_xact_time",  "avg_query_time",   "avg_wait_time",     "total_requests"};
const Names kConnections = {
    "type",         "user",       "database",     "state",        "addr", "port",
    "local_addr",   "local_port", "connect_time", "request_time", "wait", "wait_us",
    "close_needed", "ptr",        "link",         "remote_pid",   "tls",  "application_name"};
const Names kDatabases = {"name",
                          "host",
                          "port",
                          "database",
                          "force_user",
                          "pool_size",
                          "min_pool_size",
                          "reserve_pool",
                          "pool_mode",
                          "max_connections",
                          "current_connections",
                          "paused",
                          "disabled"};
const Names kListsRows = {"databases",    "users",         "pools",        "free_clients",
                          "used_clients", "login_clients", "free_servers", "used_servers",
                          "dns_names",    "dns_zones",     "dns_queries",  "dns_pending"};

class AdminConsoleTest : public ::testing::Test {
 protected:
  Proxy proxy{{"--upstream", Cluster::get().url(), "--pool-mode", "transaction", "--admin-users",
               "postgres"}};
  Connection admin(const std::string& db = "pgbouncer") {
    return connect(proxy.conninfo("postgres", db));
  }
};

TEST_F(AdminConsoleTest, ShowColumnsArePgBouncers) {
  auto a = admin();
  EXPECT_EQ(show(a.get(), "SHOW POOLS").columns, kPools);
  EXPECT_EQ(show(a.get(), "SHOW STATS").columns, kStats);
  EXPECT_EQ(show(a.get(), "SHOW CLIENTS").columns, kConnections);
  EXPECT_EQ(show(a.get(), "SHOW SERVERS").columns, kConnections);
  EXPECT_EQ(show(a.get(), "SHOW DATABASES").columns, kDatabases);
  EXPECT_EQ(show(a.get(), "SHOW LISTS").columns, (Names{"list", "items"}));
  EXPECT_EQ(show(a.get(), "SHOW CONFIG").columns, (Names{"key", "value", "default", "changeable"}));
  EXPECT_EQ(show(a.get(), "SHOW VERSION").columns, Names{"version"});

  // Types a driver can convert: text, int4 counts, int8 totals.
  auto pools = show(a.get(), "SHOW POOLS");
  EXPECT_EQ(pools.types[0], 25u);
  EXPECT_EQ(pools.types[2], 23u);
  EXPECT_EQ(show(a.get(), "SHOW STATS").types[1], 20u);
  EXPECT_EQ(pools.tag, "SHOW");

  auto lists = show(a.get(), "SHOW LISTS");
  Names list_names;
  for (const auto& r : lists.rows) list_names.push_back(r.at("list"));
  EXPECT_EQ(list_names, kListsRows);
  EXPECT_EQ(show(a.get(), "SHOW VERSION").rows.at(0).at("version"), "pglens 0.1.0");
}

TEST_F(AdminConsoleTest, ValuesFollowTraffic) {
  std::vector<Connection> apps;
  for (int i = 0; i < 3; ++i)
    apps.push_back(connect(proxy.conninfo("postgres", "pglens_test",
                                          "application_name=admin-it-" + std::to_string(i))));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(scalar(apps[i % 3].get(), "SELECT 1"), "1");

  // Both names reach the console.
  for (const std::string db : {"pgbouncer", "pglens"}) {
    SCOPED_TRACE(db);
    auto a = admin(db);
    auto pools = show(a.get(), "SHOW POOLS");
    auto pool = pools.find("database", "pglens_test");
    ASSERT_FALSE(pool.empty()) << "no pglens_test pool";
    EXPECT_EQ(pool["user"], "postgres");
    EXPECT_EQ(pools.number(pool, "cl_active"), 3);
    EXPECT_EQ(pools.number(pool, "cl_waiting"), 0);
    EXPECT_GE(pools.number(pool, "sv_idle") + pools.number(pool, "sv_active"), 1);
    EXPECT_EQ(pool["pool_mode"], "transaction");
    // The console lists itself as PgBouncer does.
    auto self = pools.find("database", "pgbouncer");
    EXPECT_GE(pools.number(self, "cl_active"), 1);

    auto stats = show(a.get(), "SHOW STATS");
    auto s = stats.find("database", "pglens_test");
    ASSERT_FALSE(s.empty());
    EXPECT_GE(stats.number(s, "total_query_count"), 10);
    EXPECT_GE(stats.number(s, "total_xact_count"), 10);
    EXPECT_EQ(stats.number(s, "total_requests"), stats.number(s, "total_query_count"));
    EXPECT_GT(stats.number(s, "total_received"), 0);
    EXPECT_GT(stats.number(s, "total_sent"), 0);
    EXPECT_GT(stats.number(s, "total_query_time"), 0);

    auto clients = show(a.get(), "SHOW CLIENTS");
    for (int i = 0; i < 3; ++i) {
      auto c = clients.find("application_name", "admin-it-" + std::to_string(i));
      ASSERT_FALSE(c.empty()) << "client " << i << " missing";
      EXPECT_EQ(c["type"], "C");
      EXPECT_EQ(c["user"], "postgres");
      EXPECT_EQ(c["database"], "pglens_test");
      EXPECT_EQ(c["state"], "active");
      EXPECT_EQ(c["addr"], "127.0.0.1");
      EXPECT_EQ(c["link"], "");  // transaction mode: no server between transactions
    }
    EXPECT_FALSE(clients.find("database", db).empty()) << "the admin client itself";

    // The last transaction's connection may still be on its way back to the pool.
    auto servers = show(a.get(), "SHOW SERVERS");
    for (int i = 0; i < 40 && servers.find("state", "idle").empty(); ++i) {
      std::this_thread::sleep_for(50ms);
      servers = show(a.get(), "SHOW SERVERS");
    }
    auto sv = servers.find("database", "pglens_test");
    ASSERT_FALSE(sv.empty());
    EXPECT_EQ(sv["type"], "S");
    EXPECT_EQ(sv["state"], "idle");
    EXPECT_EQ(sv["port"], std::to_string(Cluster::get().port));

    auto dbs = show(a.get(), "SHOW DATABASES");
    auto d = dbs.find("name", "pglens_test");
    ASSERT_FALSE(d.empty());
    EXPECT_EQ(d["host"], Cluster::get().host);
    EXPECT_EQ(d["port"], std::to_string(Cluster::get().port));
    EXPECT_EQ(d["database"], "pglens_test");
    EXPECT_EQ(d["pool_size"], "20");
    EXPECT_EQ(d["reserve_pool"], "10");
    EXPECT_EQ(d["paused"], "0");
    EXPECT_GE(dbs.number(d, "current_connections"), 1);
    EXPECT_FALSE(dbs.find("name", "pgbouncer").empty());

    auto lists = show(a.get(), "SHOW LISTS");
    EXPECT_EQ(lists.number(lists.find("list", "pools"), "items"), 2);
    EXPECT_EQ(lists.number(lists.find("list", "databases"), "items"), 2);
    EXPECT_GE(lists.number(lists.find("list", "used_clients"), "items"), 4);
    EXPECT_GE(lists.number(lists.find("list", "used_servers"), "items"), 1);

    auto config = show(a.get(), "SHOW CONFIG");
    auto mode = config.find("key", "pool_mode");
    EXPECT_EQ(mode["value"], "transaction");
    EXPECT_EQ(mode["default"], "transaction");
    EXPECT_EQ(mode["changeable"], "yes");
    EXPECT_EQ(config.find("key", "admin_users")["value"], "postgres");
    EXPECT_EQ(config.find("key", "pool_size")["value"], "20");
    EXPECT_EQ(config.find("key", "listen")["changeable"], "no");
  }
}

TEST_F(AdminConsoleTest, ConfigListsEveryKeyOfTheExampleFile) {
  // The [pglens] keys of pglens.example.toml, in its order: SHOW CONFIG must not drift from it.
  std::string source = __FILE__;
  source = source.substr(0, source.rfind("/tests/integration/"));
  std::ifstream in(source + "/pglens.example.toml");
  ASSERT_TRUE(in) << source;
  Names keys;
  bool in_pglens = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("[")) in_pglens = line == "[pglens]";
    auto eq = line.find(" = ");
    if (in_pglens && !line.starts_with("#") && eq != std::string::npos)
      keys.push_back(line.substr(0, eq));
  }
  auto a = admin();
  Names shown;
  for (const auto& r : show(a.get(), "SHOW CONFIG").rows) shown.push_back(r.at("key"));
  EXPECT_EQ(shown, keys);
}

TEST_F(AdminConsoleTest, WaitingClientsAreCounted) {
  Proxy small{{"--upstream", Cluster::get().url(), "--pool-mode", "transaction", "--admin-users",
               "postgres", "--pool-size", "1", "--max-overflow", "0"}};
  auto holder = connect(small.conninfo());
  auto waiter = connect(small.conninfo("postgres", "pglens_test", "application_name=waiter"));
  auto a = connect(small.conninfo("postgres", "pgbouncer"));
  exec(holder.get(), "BEGIN");
  ASSERT_EQ(scalar(holder.get(), "SELECT 1"), "1");
  ASSERT_TRUE(PQsendQuery(waiter.get(), "SELECT 2"));
  std::this_thread::sleep_for(1200ms);

  auto pools = show(a.get(), "SHOW POOLS");
  auto pool = pools.find("database", "pglens_test");
  EXPECT_EQ(pools.number(pool, "cl_waiting"), 1);
  EXPECT_EQ(pools.number(pool, "cl_active"), 1);
  EXPECT_EQ(pools.number(pool, "sv_active"), 1);
  EXPECT_GE(pools.number(pool, "maxwait"), 1);
  auto clients = show(a.get(), "SHOW CLIENTS");
  EXPECT_EQ(clients.find("application_name", "waiter")["state"], "waiting");
  auto servers = show(a.get(), "SHOW SERVERS");
  auto active = servers.find("state", "active");
  EXPECT_EQ(active["database"], "pglens_test");
  EXPECT_EQ(active["link"].substr(0, 1), "c");

  exec(holder.get(), "COMMIT");
  ASSERT_TRUE(result_arrives(waiter.get(), 10s));
  drain(waiter.get());
}

TEST_F(AdminConsoleTest, CommandSyntax) {
  auto a = admin();
  for (const char* sql : {"show pools;", "  SHOW \t POOLS  ; ", "Show Pools", "SHOW POOLS;;"})
    EXPECT_EQ(show(a.get(), sql).columns, kPools) << sql;
  for (const char* sql : {"SHOW NONSENSE", "SELECT 1", "SHOW POOLS EXTRA"}) {
    auto t = show(a.get(), sql);
    EXPECT_EQ(t.sqlstate, "42601") << sql;
    EXPECT_NE(t.error.find("unknown command"), std::string::npos) << t.error;
  }
  auto help = show(a.get(), "SHOW HELP");
  EXPECT_EQ(help.tag, "SHOW");
  // The connection stays usable after errors.
  EXPECT_EQ(show(a.get(), "SHOW VERSION").rows.size(), 1u);
}

TEST_F(AdminConsoleTest, NonAdminUserIsRefused) {
  for (const std::string db : {"pgbouncer", "pglens"}) {
    Connection c(PQconnectdb(proxy.conninfo("pglens_plain", db).c_str()));
    EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
    EXPECT_NE(std::string(PQerrorMessage(c.get())).find("admin_users"), std::string::npos)
        << PQerrorMessage(c.get());
  }
}

TEST_F(AdminConsoleTest, PauseHoldsNewTransactionsUntilResume) {
  auto app = connect(proxy.conninfo());
  ASSERT_EQ(scalar(app.get(), "SELECT 1"), "1");
  auto a = admin();
  EXPECT_EQ(show(a.get(), "PAUSE").tag, "PAUSE");
  EXPECT_EQ(show(a.get(), "SHOW DATABASES").find("name", "pglens_test")["paused"], "1");

  ASSERT_TRUE(PQsendQuery(app.get(), "SELECT 'after pause'"));
  EXPECT_FALSE(result_arrives(app.get(), 700ms)) << "a new transaction ran while paused";
  EXPECT_EQ(show(a.get(), "RESUME").tag, "RESUME");
  ASSERT_TRUE(result_arrives(app.get(), 5s)) << "no result after RESUME";
  Result r(PQgetResult(app.get()));
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), "after pause");
  drain(app.get());
  EXPECT_EQ(show(a.get(), "SHOW DATABASES").find("name", "pglens_test")["paused"], "0");
}

TEST_F(AdminConsoleTest, ReloadWithoutConfigFileSaysWhy) {
  auto a = admin();
  auto t = show(a.get(), "RELOAD");
  EXPECT_EQ(t.sqlstate, "F0000");
  EXPECT_NE(t.error.find("without --config"), std::string::npos) << t.error;
}

TEST(AdminConsole, ReloadRereadsTheConfigFile) {
  char path[] = "/tmp/pglens-admin-config-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  auto write = [&](const std::string& pool_size) {
    std::ofstream(path) << "[pglens]\nupstream = \"" << Cluster::get().url()
                        << "\"\nadmin_users = [\"postgres\"]\npool_size = " << pool_size << "\n";
  };
  write("7");
  {
    Proxy proxy{{"--config", path}};
    auto a = connect(proxy.conninfo("postgres", "pglens"));
    EXPECT_EQ(show(a.get(), "SHOW CONFIG").find("key", "pool_size")["value"], "7");
    write("9");
    EXPECT_EQ(show(a.get(), "RELOAD").tag, "RELOAD");
    EXPECT_EQ(show(a.get(), "SHOW CONFIG").find("key", "pool_size")["value"], "9");
    // A bad file is refused with its reason, and the old values stay.
    write("-3");
    auto t = show(a.get(), "RELOAD");
    EXPECT_EQ(t.sqlstate, "F0000");
    EXPECT_NE(t.error.find("pool_size"), std::string::npos) << t.error;
    EXPECT_EQ(show(a.get(), "SHOW CONFIG").find("key", "pool_size")["value"], "9");
  }
  ::unlink(path);
}

TEST_F(AdminConsoleTest, ShutdownStopsTheProxy) {
  auto app = connect(proxy.conninfo());
  ASSERT_EQ(scalar(app.get(), "SELECT 1"), "1");
  auto a = admin();
  EXPECT_EQ(show(a.get(), "SHUTDOWN").tag, "SHUTDOWN");
  // Idle clients hold no server connection in transaction mode, so pglens exits at once.
  bool exited = false;
  for (int i = 0; i < 100 && !exited; ++i) {
    std::this_thread::sleep_for(50ms);
    exited = proxy.log().find("shutdown: no client holds a server connection") != std::string::npos;
  }
  EXPECT_TRUE(exited) << proxy.log();
  Connection late(PQconnectdb(proxy.conninfo().c_str()));
  EXPECT_EQ(PQstatus(late.get()), CONNECTION_BAD);
}

}  // namespace
}  // namespace pglens::test
