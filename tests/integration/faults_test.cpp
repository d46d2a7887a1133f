// Faults against a real Postgres (docs/faults.md): server connections terminated while idle,
// Postgres restarted or stopped under load, the link cut or stalled by a relay, the timeouts,
// blocking prepares with fewer threads than clients, and session state that must not reach
// another client. Each checks that no idle client is lost, that no acknowledged row is lost (an
// acknowledged-insert counter against the table), and that only the clients whose request was in
// flight saw an error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/relay.hpp"
#include "tests/support/test_env.hpp"

namespace pglens::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string direct_conninfo(const Cluster& cluster = Cluster::get()) {
  return "host=" + cluster.host + " port=" + std::to_string(cluster.port) +
         " user=postgres dbname=pglens_test connect_timeout=10 application_name=faults_monitor";
}

// A login role only one test uses, so that terminating its backends touches no other test's
// on the shared cluster. Superuser: it writes the tables postgres creates.
std::string own_role(const std::string& role) {
  auto c = connect(direct_conninfo());
  exec(c.get(), "DO $$BEGIN CREATE ROLE " + role +
                    " LOGIN SUPERUSER; EXCEPTION WHEN duplicate_object THEN NULL; END$$");
  return role;
}

// Terminates every backend pglens holds on `cluster` (not the monitor's, nor pglens' own
// advisor's), those logged in as `role` when given: what an operator's pg_terminate_backend
// sweep, or a failover, does to a pool.
int terminate_pool_backends(const std::string& role = {}, const Cluster& cluster = Cluster::get()) {
  auto monitor = connect(direct_conninfo(cluster));
  auto n = scalar(monitor.get(),
                  "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                  "backend_type = 'client backend' AND pid <> pg_backend_pid() AND "
                  "application_name NOT LIKE 'pglens-%' AND application_name <> 'faults_monitor'" +
                      (role.empty() ? std::string() : " AND usename = '" + role + "'"));
  return std::atoi(n.c_str());
}

// A table of acknowledged inserts: a row per INSERT the client saw succeed.
class Ledger {
 public:
  explicit Ledger(std::string table, const Cluster& cluster = Cluster::get())
      : table_(std::move(table)), cluster_(cluster) {
    auto c = connect(direct_conninfo(cluster_));
    exec(c.get(), "DROP TABLE IF EXISTS " + table_);
    exec(c.get(), "CREATE TABLE " + table_ + " (id bigserial PRIMARY KEY, client int)");
  }
  std::string insert_sql(int client) const {
    return "INSERT INTO " + table_ + " (client) VALUES (" + std::to_string(client) + ")";
  }
  // Runs one insert through `c`; counts it when the client was told it worked.
  Outcome insert(PGconn* c, int client, std::chrono::milliseconds limit = 30s) {
    auto o = exec_within(c, insert_sql(client), limit);
    if (o.ok) ++acknowledged_;
    return o;
  }
  long long rows() const {
    auto c = connect(direct_conninfo(cluster_));
    return std::atoll(scalar(c.get(), "SELECT count(*) FROM " + table_).c_str());
  }
  long long acknowledged() const { return acknowledged_; }

 private:
  std::string table_;
  Cluster cluster_;
  std::atomic<long long> acknowledged_{0};
};

std::string metrics(int http_port) {
  return run("curl -s http://127.0.0.1:" + std::to_string(http_port) + "/metrics").output;
}

// The sum of a metric's samples whose labels contain `label` ("" for all).
double metric_sum(const std::string& text, const std::string& name, const std::string& label) {
  double sum = 0;
  std::regex line("^" + name + R"((\{[^}]*\})? ([0-9.e+-]+)$)");
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_match(l, m, line) && m[1].str().find(label) != std::string::npos)
      sum += std::stod(m[2]);
  }
  return sum;
}

// ---- server connections terminated while their clients are idle ----

// PgBouncer keeps every idle client when its server connections are terminated; so does
// pglens: watched idle connections are closed and replaced, and one handed out before its death
// was noticed ends with a FATAL that is retried, not passed on.
TEST(Faults, IdleClientsSurviveTheirServerConnectionsBeingTerminated) {
  int http = free_port();
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-mode", "transaction", "--pool-size", "8",
               "--pool-pre-ping", "--http", "127.0.0.1:" + std::to_string(http)});
  Ledger ledger("faults_terminated");
  auto role = own_role("faults_terminated");
  constexpr int kClients = 6;
  std::vector<Connection> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect(proxy.conninfo(role)));
    ASSERT_TRUE(ledger.insert(clients.back().get(), i).ok);
  }
  for (int round = 0; round < 2; ++round) {
    // Round 0: the connections sat in the pool past the watch delay, their deaths are noticed.
    // Round 1: terminated at once, before the pool watches them: handed out dead.
    if (round == 0) std::this_thread::sleep_for(1500ms);
    EXPECT_GT(terminate_pool_backends(role), 0);
    if (round == 0) std::this_thread::sleep_for(300ms);
    for (int i = 0; i < kClients; ++i) {
      auto o = ledger.insert(clients[static_cast<std::size_t>(i)].get(), i);
      EXPECT_TRUE(o.ok) << "round " << round << ", client " << i << ": " << o.message;
    }
  }
  EXPECT_EQ(ledger.rows(), ledger.acknowledged());
  EXPECT_EQ(ledger.rows(), 3 * kClients);
  auto m = metrics(http);
  EXPECT_GT(metric_sum(m, "pglens_server_closes_total", "reason=\"lost\""), 0) << m;
  EXPECT_TRUE(proxy.log_shows("lost")) << proxy.log();
}

// Right after every server connection is killed, 16 clients log in at once (pgJDBC's thread pool
// at start-up): none is handed a dead connection, none fails its parameter sync.
TEST(Faults, NewClientsRightAfterTerminationAllLogIn) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "8", "--pool-pre-ping"});
  auto role = own_role("faults_logins");
  {
    std::vector<Connection> warm;
    for (int i = 0; i < 8; ++i) {
      warm.push_back(connect(proxy.conninfo(role, "pglens_test", "application_name=warm")));
      exec(warm.back().get(), "SELECT 1");
    }
  }
  terminate_pool_backends(role);
  std::atomic<int> failed{0};
  std::mutex m;
  std::string first_error;
  in_parallel(16, [&](int i) {
    Connection c(PQconnectdb(
        proxy.conninfo(role, "pglens_test", "application_name=jdbc-" + std::to_string(i)).c_str()));
    auto o = PQstatus(c.get()) == CONNECTION_OK
                 ? exec_within(c.get(), "SELECT 1", 20s)
                 : Outcome{false, false, "", "", PQerrorMessage(c.get())};
    if (!o.ok) {
      ++failed;
      std::lock_guard lock(m);
      if (first_error.empty()) first_error = o.message;
    }
  });
  EXPECT_EQ(failed, 0) << first_error << "\n" << proxy.log();
}

// ---- Postgres restarted or stopped ----

// pg_ctl restart -m fast under 32 pgbench clients: pglens keeps listening, the run goes on once
// Postgres accepts again, a client idle across the restart keeps working, and the outage is in
// the log and the metrics.
TEST(Faults, PostgresRestartUnderPgbench) {
  std::unique_ptr<OwnCluster> own;
  try {
    own = std::make_unique<OwnCluster>();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  const Cluster& cluster = own->cluster();
  int http = free_port();
  Proxy proxy({"--upstream", cluster.url(), "--pool-size", "8", "--max-overflow", "0",
               "--pool-timeout", "20", "--http", "127.0.0.1:" + std::to_string(http)});
  Ledger ledger("faults_restart", cluster);
  auto idle = connect(proxy.conninfo());
  ASSERT_TRUE(ledger.insert(idle.get(), -1).ok);

  // Each pgbench transaction inserts a row: pgbench's count of those it completed is the
  // acknowledged count.
  std::string script = "/tmp/pglens-faults-restart-" + std::to_string(::getpid()) + ".sql";
  std::ofstream(script) << "INSERT INTO faults_restart (client) VALUES (:client_id);\n";
  CommandResult bench;
  std::thread load([&] {
    bench = run("pgbench -n -c 32 -j 2 -T 12 -P 1 -f " + script + " -h 127.0.0.1 -p " +
                std::to_string(proxy.port()) + " -U postgres pglens_test 2>&1");
  });
  std::this_thread::sleep_for(4s);
  auto restarted = own->restart();
  load.join();
  ::unlink(script.c_str());
  std::cout << bench.output.substr(bench.output.size() > 3000 ? bench.output.size() - 3000 : 0);
  ASSERT_EQ(restarted.status, 0) << restarted.output;
  EXPECT_TRUE(proxy.running());

  // Throughput comes back: progress lines after the restart show transactions again.
  std::regex progress(R"(progress: ([0-9.]+) s, ([0-9.]+) tps)");
  double last_tps = 0;
  int rounds_after = 0;
  for (std::sregex_iterator it(bench.output.begin(), bench.output.end(), progress), end; it != end;
       ++it) {
    if (std::stod((*it)[1]) > 7) {
      ++rounds_after;
      last_tps = std::max(last_tps, std::stod((*it)[2]));
    }
  }
  EXPECT_GT(rounds_after, 0) << bench.output;
  EXPECT_GT(last_tps, 100) << bench.output;
  // Acknowledged rows are all there (a transaction cut short was not counted, and a retried one
  // ran once).
  std::smatch processed;
  ASSERT_TRUE(std::regex_search(bench.output, processed,
                                std::regex(R"(number of transactions actually processed: (\d+))")))
      << bench.output;
  long long acknowledged = std::stoll(processed[1]) + ledger.acknowledged();
  EXPECT_EQ(ledger.rows(), acknowledged);
  // The client idle across the restart was not lost.
  auto o = ledger.insert(idle.get(), -1);
  EXPECT_TRUE(o.ok) << o.message;
  EXPECT_TRUE(proxy.log_shows("server connection failed (retrying")) << proxy.log();
  EXPECT_GT(metric_sum(metrics(http), "pglens_server_connect_failures_total", ""), 0);
}

// pg_ctl stop, start 10 s later: a client waiting through it gets its answer once Postgres is
// back (pool_timeout 20 s); one behind a shorter pool_timeout gets a clear error when it runs
// out; new clients work once it is back.
TEST(Faults, PostgresStoppedThenStartedTenSecondsLater) {
  std::unique_ptr<OwnCluster> own;
  try {
    own = std::make_unique<OwnCluster>();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  const Cluster& cluster = own->cluster();
  Proxy patient({"--upstream", cluster.url(), "--pool-size", "2", "--pool-timeout", "20"});
  Proxy hasty({"--upstream", cluster.url(), "--pool-size", "2", "--pool-timeout", "4"});
  Ledger ledger("faults_stop", cluster);
  auto a = connect(patient.conninfo());
  auto b = connect(hasty.conninfo());
  ASSERT_TRUE(ledger.insert(a.get(), 1).ok);
  ASSERT_TRUE(ledger.insert(b.get(), 2).ok);
  ASSERT_EQ(own->stop().status, 0);
  auto stopped_at = Clock::now();
  Outcome waited, refused;
  double refused_after = 0;
  std::thread wa([&] { waited = ledger.insert(a.get(), 1, 40s); });
  std::thread wb([&] {
    refused = ledger.insert(b.get(), 2, 40s);
    refused_after = seconds_since(stopped_at);
  });
  std::this_thread::sleep_for(10s);
  ASSERT_EQ(own->start().status, 0);
  wa.join();
  wb.join();
  EXPECT_TRUE(waited.ok) << waited.message;
  EXPECT_GT(seconds_since(stopped_at), 10.0);
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(refused.message.find("the server cannot be reached"), std::string::npos)
      << refused.message;
  EXPECT_GT(refused_after, 3.5);
  EXPECT_LT(refused_after, 9.0);
  // The refused client is still connected and works now; so do new ones.
  auto again = ledger.insert(b.get(), 2);
  EXPECT_TRUE(again.ok) << again.message;
  auto fresh = connect(hasty.conninfo());
  EXPECT_TRUE(ledger.insert(fresh.get(), 3).ok);
  EXPECT_EQ(ledger.rows(), ledger.acknowledged());
}

// ---- the link cut or stalled (a relay between pglens and Postgres) ----

TEST(Faults, LinkCutWhileIdleIsNoticedAndReplaced) {
  Relay relay(Cluster::get().port);
  Proxy proxy({"--upstream", relay.url(), "--pool-size", "4"});
  Ledger ledger("faults_cut_idle");
  std::vector<Connection> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(connect(proxy.conninfo()));
    ASSERT_TRUE(ledger.insert(clients.back().get(), i).ok);
  }
  std::this_thread::sleep_for(1500ms);  // idle past the watch delay
  relay.cut();
  EXPECT_TRUE(proxy.log_shows("lost", 3s)) << proxy.log();
  for (int i = 0; i < 3; ++i) {
    auto o = ledger.insert(clients[static_cast<std::size_t>(i)].get(), i);
    EXPECT_TRUE(o.ok) << o.message;
  }
  EXPECT_EQ(ledger.rows(), ledger.acknowledged());
}

// The link dies under a running statement: its client, and only it, gets an error (the statement
// may have run: it is not sent again), and is closed; the others go on.
TEST(Faults, LinkCutMidQueryFailsOnlyThatClient) {
  Relay relay(Cluster::get().port);
  Proxy proxy({"--upstream", relay.url(), "--pool-size", "4"});
  Ledger ledger("faults_cut_busy");
  auto busy = connect(proxy.conninfo());
  auto bystander = connect(proxy.conninfo());
  ASSERT_TRUE(ledger.insert(bystander.get(), 2).ok);
  Outcome cut_short;
  std::thread t([&] { cut_short = exec_within(busy.get(), "SELECT pg_sleep(3)", 20s); });
  std::this_thread::sleep_for(500ms);
  relay.cut();
  t.join();
  EXPECT_FALSE(cut_short.ok);
  EXPECT_FALSE(cut_short.timed_out);
  EXPECT_NE(cut_short.message.find("server connection was lost"), std::string::npos)
      << cut_short.message;
  auto o = ledger.insert(bystander.get(), 2);
  EXPECT_TRUE(o.ok) << o.message;
  EXPECT_EQ(ledger.rows(), ledger.acknowledged());
}

// No byte either way: query_timeout ends the wait, with a clear error, and the connection is
// closed; once the link is back, everyone is served.
TEST(Faults, StalledLinkEndsAtQueryTimeout) {
  Relay relay(Cluster::get().port);
  Proxy proxy({"--upstream", relay.url(), "--pool-size", "4", "--query-timeout", "2"});
  auto c = connect(proxy.conninfo());
  ASSERT_EQ(scalar(c.get(), "SELECT 1"), "1");
  relay.stall(true);
  auto started = Clock::now();
  auto o = exec_within(c.get(), "SELECT 2", 20s);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.sqlstate, "57014") << o.message;
  EXPECT_NE(o.message.find("query_timeout"), std::string::npos) << o.message;
  EXPECT_GT(seconds_since(started), 1.5);
  EXPECT_LT(seconds_since(started), 5.0);
  relay.stall(false);
  auto fresh = connect(proxy.conninfo());
  EXPECT_EQ(scalar(fresh.get(), "SELECT 3"), "3");
}

// A server that accepts the connection and then says nothing: server_connect_timeout, retried
// until pool_timeout, then a clear error; the pool serves again once the link is.
TEST(Faults, StalledConnectEndsAtServerConnectTimeout) {
  Relay relay(Cluster::get().port);
  Proxy proxy({"--upstream", relay.url(), "--pool-size", "2", "--server-connect-timeout", "1",
               "--pool-timeout", "3"});
  relay.stall(true);
  auto started = Clock::now();
  Connection c(
      PQconnectdb(proxy.conninfo("postgres", "pglens_test", "connect_timeout=20").c_str()));
  std::string message = PQerrorMessage(c.get());
  EXPECT_NE(PQstatus(c.get()), CONNECTION_OK);
  EXPECT_NE(message.find("timed out connecting"), std::string::npos) << message;
  EXPECT_GT(seconds_since(started), 2.5);
  EXPECT_LT(seconds_since(started), 8.0);
  // The stalled connections go first: unstalled first, one could finish its handshake and then be
  // cut under the next client.
  relay.cut();
  relay.stall(false);
  auto fresh = connect(proxy.conninfo());
  EXPECT_EQ(scalar(fresh.get(), "SELECT 1"), "1");
}

TEST(Faults, IdleTransactionTimeoutClosesTheClientAndRollsBack) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--idle-transaction-timeout", "1"});
  Ledger ledger("faults_idle_txn");
  auto c = connect(proxy.conninfo());
  exec(c.get(), "BEGIN");
  ASSERT_TRUE(ledger.insert(c.get(), 1).ok);  // inside the transaction: not acknowledged really
  std::this_thread::sleep_for(2s);
  auto o = exec_within(c.get(), "COMMIT", 5s);
  EXPECT_FALSE(o.ok);
  EXPECT_TRUE(proxy.log_shows("idle_transaction_timeout")) << proxy.log();
  EXPECT_EQ(ledger.rows(), 0);  // rolled back with its connection
}

TEST(Faults, ClientIdleTimeoutClosesAnIdleClient) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--client-idle-timeout", "1"});
  auto c = connect(proxy.conninfo());
  ASSERT_EQ(scalar(c.get(), "SELECT 1"), "1");
  std::this_thread::sleep_for(2500ms);
  auto o = exec_within(c.get(), "SELECT 1", 5s);
  EXPECT_FALSE(o.ok);
  EXPECT_TRUE(proxy.log_shows("client_idle_timeout")) << proxy.log();
  // A busy client is not idle: one querying every half second stays.
  auto busy = connect(proxy.conninfo());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(scalar(busy.get(), "SELECT 1"), "1");
    std::this_thread::sleep_for(500ms);
  }
}

// tcp_keepalive with its idle time on both sides of pglens, as ss shows the sockets' timers.
TEST(Faults, KeepaliveOnClientAndServerSockets) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--tcp-keepidle", "77", "--tcp-keepintvl", "5",
               "--tcp-keepcnt", "3"});
  auto c = connect(proxy.conninfo("postgres", "pglens_test", "keepalives=0"));
  ASSERT_EQ(scalar(c.get(), "SELECT 1"), "1");
  // pglens' end of the client connection (sport = its port) and its server connections; a socket
  // shows its keepalive timer when no other (a retransmission) is running.
  std::string filter = "'( sport = :" + std::to_string(proxy.port()) +
                       " or dport = :" + std::to_string(Cluster::get().port) + " )'";
  std::string seen;
  bool both = eventually(
      [&] {
        seen = run("ss -tnoH state established " + filter).output;
        int keepalive = 0;
        std::istringstream in(seen);
        for (std::string line; std::getline(in, line);)
          if (line.find("timer:(keepalive,1min1") != std::string::npos) ++keepalive;
        return keepalive >= 2;
      },
      3s);
  EXPECT_TRUE(both) << seen;
}

// ---- blocking prepares, fewer pgbench threads than clients ----

// pgbench -M prepared prepares with a blocking call while other clients of its thread hold
// server connections mid-transaction: with a pool of 8 and 32 clients on 2 threads it used to
// stall until pool_timeout. Parse is answered without a server connection now.
TEST(Faults, PreparedPgbenchWithTwoThreadsDoesNotStall) {
  auto direct = connect(direct_conninfo());
  exec(direct.get(), "DROP DATABASE IF EXISTS faults_pgbench");
  exec(direct.get(), "CREATE DATABASE faults_pgbench");
  auto init = run("pgbench -i -q -s 1 -h 127.0.0.1 -p " + std::to_string(Cluster::get().port) +
                  " -U postgres faults_pgbench 2>&1");
  ASSERT_EQ(init.status, 0) << init.output;
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "8", "--max-overflow", "0",
               "--pool-timeout", "20"});
  auto r = run("timeout 60 pgbench -n -M prepared -c 32 -j 2 -T 10 -h 127.0.0.1 -p " +
               std::to_string(proxy.port()) + " -U postgres faults_pgbench 2>&1");
  std::cout << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("number of failed transactions: 0"), std::string::npos) << r.output;
  std::smatch tps;
  ASSERT_TRUE(std::regex_search(r.output, tps, std::regex(R"(tps = ([0-9.]+))")));
  EXPECT_GT(std::stod(tps[1]), 200) << r.output;
  EXPECT_FALSE(proxy.log_shows("pool_timeout", 0ms)) << proxy.log();
}

// ---- session state never reaches another client ----

// One server connection, two clients taking turns: what one leaves on it (a SET, a temporary
// table, an advisory lock, a LISTEN) is reset before the other gets it, and counted.
TEST(Faults, SessionStateNeverReachesAnotherClient) {
  int http = free_port();
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "1", "--max-overflow", "0",
               "--http", "127.0.0.1:" + std::to_string(http)});
  auto a = connect(proxy.conninfo());
  auto b = connect(proxy.conninfo());
  auto direct = connect(direct_conninfo());
  std::string default_timeout = scalar(b.get(), "SHOW statement_timeout");

  exec(a.get(), "SET statement_timeout = '1234ms'");
  EXPECT_EQ(scalar(b.get(), "SHOW statement_timeout"), default_timeout);

  exec(a.get(), "CREATE TEMP TABLE faults_temp (x int)");
  EXPECT_EQ(scalar(b.get(), "SELECT count(*) FROM pg_class WHERE relname = 'faults_temp'"), "0");

  EXPECT_EQ(scalar(a.get(), "SELECT 1 FROM pg_advisory_lock(424242)"), "1");
  // Released by the reset, which runs right after the client's answer.
  EXPECT_TRUE(eventually(
      [&] {
        return scalar(direct.get(),
                      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                      "AND objid = 424242") == "0";
      },
      5s));

  exec(a.get(), "LISTEN faults_channel");
  EXPECT_EQ(scalar(b.get(), "SELECT count(*) FROM pg_listening_channels()"), "0");

  // Parameters the server reports follow their client instead: no reset for those.
  auto before = metric_sum(metrics(http), "pglens_server_state_resets_total", "");
  exec(a.get(), "SET application_name = 'client-a'");
  EXPECT_EQ(scalar(a.get(), "SHOW application_name"), "client-a");
  EXPECT_NE(scalar(b.get(), "SHOW application_name"), "client-a");
  auto m = metrics(http);
  EXPECT_EQ(metric_sum(m, "pglens_server_state_resets_total", ""), before);
  EXPECT_EQ(before, 4) << m;
  auto report = run(pglens_bin() + " report --from http://127.0.0.1:" + std::to_string(http));
  EXPECT_NE(report.output.find("Session state left on server connections"), std::string::npos)
      << report.output;
}

}  // namespace
}  // namespace pglens::test
