// Pooling through pglens against the real Postgres: the pool's limits and knobs (pool_size plus
// max_overflow, pool_timeout, pool_pre_ping, pool_recycle, max_client_conn), named prepared
// statements carried across server connections, what a client leaves behind (locks, SET LOCAL,
// its parameters), statement mode, a Postgres restart under load, client authentication from an
// auth_file, and the config file with its SIGHUP reload. pgbench and asyncpg run from
// pooling_pgbench.sh and pooling_asyncpg.sh beside this file.
//
// Tests that count server connections in pg_stat_activity log in as a role of their own, so the
// connections of tests running beside them against the same cluster are not counted, and leave
// out pglens' own side connections (application_name pglens-..., the advisor's), which are not
// the pool's.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "protocol/decoder.hpp"
#include "protocol/messages.hpp"
#include "tests/support/test_env.hpp"

namespace pglens::test {
namespace {

using namespace std::chrono_literals;
namespace pp = pglens::protocol;
using Clock = std::chrono::steady_clock;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A connection straight to the cluster, to watch pglens' server connections and act behind its
// back.
std::string direct_conninfo(const Cluster& cluster = Cluster::get()) {
  return "host=" + cluster.host + " port=" + std::to_string(cluster.port) +
         " user=postgres dbname=pglens_test connect_timeout=10 application_name=pooling_monitor";
}

// A login role (trust) that only one test uses.
void ensure_role(const std::string& role) {
  auto c = connect(direct_conninfo());
  auto r = exec(c.get(), "DO $$BEGIN CREATE ROLE " + role +
                             " LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$");
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQerrorMessage(c.get());
}

// pglens' own side connections (the advisor's, application_name pglens-...) are not the pool's.
const std::string kPoolBackends =
    "pid <> pg_backend_pid() AND backend_type = 'client backend' AND "
    "application_name NOT LIKE 'pglens-%'";

// Server connections logged in as `role`; -1 on error.
int backends_of(PGconn* monitor, const std::string& role) {
  auto v = scalar(monitor, "SELECT count(*) FROM pg_stat_activity WHERE usename = '" + role +
                               "' AND " + kPoolBackends);
  try {
    return std::stoi(v);
  } catch (...) {
    return -1;
  }
}

std::string sqlstate_of(const PGresult* r) {
  const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return s ? s : "";
}

// Problems found on worker threads, reported on the test's thread.
class Problems {
 public:
  void add(std::string what) {
    std::lock_guard lock(mutex_);
    if (list_.size() < 20) list_.push_back(std::move(what));
    ++count_;
  }
  int count() const {
    std::lock_guard lock(mutex_);
    return count_;
  }
  std::string text() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& p : list_) out += "  " + p + "\n";
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> list_;
  int count_ = 0;
};

// A client speaking the protocol message by message, for what libpq 15 cannot send (Close of a
// prepared statement is PQclosePrepared in libpq 17).
class RawClient {
 public:
  struct Message {
    char type;
    std::string body;
  };

  RawClient(int port, const std::string& user = "postgres") : socket_(port) {
    pp::StartupPacket p;
    p.protocol = pp::kProtocolV3;
    p.params = {{"user", user}, {"database", "pglens_test"}};
    pp::Bytes out;
    pp::encode(out, p);
    send(out);
    login_ = until_ready();
  }

  const std::vector<Message>& login() const { return login_; }

  void send(const pp::Bytes& bytes) { socket_.send(bytes); }

  // Every message up to and including the next ReadyForQuery (empty on timeout or close).
  std::vector<Message> until_ready(std::chrono::milliseconds limit = 10s) {
    std::vector<Message> got;
    auto deadline = Clock::now() + limit;
    while (true) {
      while (!pending_.empty()) {
        auto r = decoder_.next(pp::ByteView(pending_));
        if (r.status == pp::DecodeStatus::Error) return {};
        auto consumed = r.consumed;
        if (r.status == pp::DecodeStatus::Frame) {
          got.push_back({r.frame.type, std::string(pp::as_chars(r.frame.data))});
        }
        pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(consumed));
        if (r.status == pp::DecodeStatus::NeedMore) break;
        if (got.back().type == 'Z') return got;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return {};
      auto got = socket_.read_some(left);
      if (got.empty()) return {};
      pending_.insert(pending_.end(), got.begin(), got.end());
    }
  }

 private:
  RawSocket socket_;
  pp::MessageDecoder decoder_{pp::Direction::Backend};
  pp::Bytes pending_;
  std::vector<Message> login_;
};

// The message types, e.g. "12DCZ", and the first column of every DataRow.
std::string types_of(const std::vector<RawClient::Message>& msgs) {
  std::string s;
  for (const auto& m : msgs) s += m.type;
  return s;
}
std::vector<std::string> values_of(const std::vector<RawClient::Message>& msgs) {
  std::vector<std::string> out;
  for (const auto& m : msgs) {
    if (m.type != 'D') continue;
    auto row = pp::DataRow::decode(
        pp::ByteView(reinterpret_cast<const std::uint8_t*>(m.body.data()), m.body.size()));
    if (row && !row->values.empty() && row->values[0])
      out.emplace_back(row->values[0]->begin(), row->values[0]->end());
  }
  return out;
}
std::string sqlstate_in(const std::vector<RawClient::Message>& msgs) {
  for (const auto& m : msgs) {
    if (m.type != 'E') continue;
    auto e = pp::ErrorResponse::decode(
        pp::ByteView(reinterpret_cast<const std::uint8_t*>(m.body.data()), m.body.size()));
    if (e) return std::string(e->sqlstate());
  }
  return "";
}

// Parse (when text is given), Bind and Execute of statement `name`, then Sync.
pp::Bytes run_statement(const std::string& name, const std::optional<std::string>& text) {
  pp::Bytes out;
  if (text) pp::Parse{name, *text, {}}.encode(out);
  pp::Bind bind;
  bind.statement = name;
  bind.encode(out);
  pp::Execute{}.encode(out);
  pp::Sync{}.encode(out);
  return out;
}

// Executes the prepared statement `name` with one parameter; its value or "<error: ...>".
std::string exec_prepared(PGconn* c, const char* name, const std::string& arg) {
  const char* values[] = {arg.c_str()};
  Result r(PQexecPrepared(c, name, 1, values, nullptr, nullptr, 0));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
    return std::string("<error: ") + PQresultErrorMessage(r.get()) + ">";
  return PQgetvalue(r.get(), 0, 0);
}

// ---- the pool's limits ----

// pool_size 3 + max_overflow 2 under the load of 12 clients: pg_stat_activity never shows more
// than 5 server connections, and the overflow is used.
TEST(Pooling, NeverMoreServerConnectionsThanPoolSizePlusOverflow) {
  const std::string role = "pglens_pool_limit";
  ensure_role(role);
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "3", "--max-overflow", "2",
               "--pool-timeout", "20"});
  auto monitor = connect(direct_conninfo());
  std::atomic<bool> stop{false};
  std::atomic<int> queries{0};
  Problems problems;
  std::vector<std::thread> load;
  for (int i = 0; i < 12; ++i) {
    load.emplace_back([&, i] {
      Connection c(PQconnectdb(proxy.conninfo(role).c_str()));
      if (PQstatus(c.get()) != CONNECTION_OK)
        return problems.add("client " + std::to_string(i) + ": " + PQerrorMessage(c.get()));
      auto sql = "SELECT " + std::to_string(i) + " FROM pg_sleep(0.02)";
      while (!stop) {
        auto v = scalar(c.get(), sql);
        if (v != std::to_string(i)) return problems.add("client " + std::to_string(i) + ": " + v);
        ++queries;
      }
    });
  }
  int max_seen = 0, samples = 0;
  auto until = Clock::now() + 2500ms;
  while (Clock::now() < until) {
    int n = backends_of(monitor.get(), role);
    ASSERT_GE(n, 0) << PQerrorMessage(monitor.get());
    max_seen = std::max(max_seen, n);
    ++samples;
    std::this_thread::sleep_for(10ms);
  }
  stop = true;
  for (auto& t : load) t.join();
  std::cout << samples << " samples of pg_stat_activity, at most " << max_seen
            << " server connections; " << queries << " queries\n";
  EXPECT_EQ(problems.count(), 0) << problems.text();
  EXPECT_LE(max_seen, 5) << "more than pool_size + max_overflow server connections";
  EXPECT_GT(max_seen, 3) << "the overflow was never used under load";
  EXPECT_GT(queries, 100);
}

// pool_timeout: with the only connection held by an open transaction, another client's query
// fails after about pool_timeout with SQLSTATE 53300, the client stays connected, and its next
// query succeeds once the transaction has ended.
TEST(Pooling, PoolTimeoutErrorAndRecovery) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "1", "--max-overflow", "0",
               "--pool-timeout", "1"});
  auto holder = connect(proxy.conninfo());
  auto waiter = connect(proxy.conninfo());
  ASSERT_EQ(PQresultStatus(exec(holder.get(), "BEGIN").get()), PGRES_COMMAND_OK);
  ASSERT_EQ(scalar(holder.get(), "SELECT 'holding'"), "holding");

  auto started = Clock::now();
  auto r = exec(waiter.get(), "SELECT 'waited'");
  double took = seconds_since(started);
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
  EXPECT_EQ(sqlstate_of(r.get()), "53300");
  std::string message = PQresultErrorMessage(r.get());
  std::cout << "after " << took << " s: " << message;
  EXPECT_TRUE(contains(message, "pool_timeout")) << message;
  EXPECT_STREQ(PQresultErrorField(r.get(), PG_DIAG_SEVERITY), "ERROR");
  EXPECT_GE(took, 0.9);
  EXPECT_LE(took, 3.0);
  EXPECT_EQ(PQstatus(waiter.get()), CONNECTION_OK);
  EXPECT_EQ(PQtransactionStatus(waiter.get()), PQTRANS_IDLE);

  // The extended protocol gets the same answer, and the batch ends cleanly at its Sync.
  const char* params[] = {"7"};
  Result ext(PQexecParams(waiter.get(), "SELECT $1::int", 1, nullptr, params, nullptr, nullptr, 0));
  EXPECT_EQ(sqlstate_of(ext.get()), "53300") << PQerrorMessage(waiter.get());
  EXPECT_EQ(PQstatus(waiter.get()), CONNECTION_OK);

  ASSERT_EQ(PQresultStatus(exec(holder.get(), "COMMIT").get()), PGRES_COMMAND_OK);
  EXPECT_EQ(scalar(waiter.get(), "SELECT 'served'"), "served");
  Result ext2(
      PQexecParams(waiter.get(), "SELECT $1::int", 1, nullptr, params, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(ext2.get()), PGRES_TUPLES_OK) << PQerrorMessage(waiter.get());
  EXPECT_STREQ(PQgetvalue(ext2.get(), 0, 0), "7");
  EXPECT_EQ(scalar(holder.get(), "SELECT 'holder too'"), "holder too");
}

// max_client_conn 3: the fourth client is refused with a clear message; the others go on, and
// a place freed is taken again.
TEST(Pooling, MaxClientConnRefusesTheNextClient) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--max-client-conn", "3", "--pool-size", "2"});
  std::vector<Connection> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect(proxy.conninfo()));
  Connection fourth(PQconnectdb(proxy.conninfo().c_str()));
  EXPECT_EQ(PQstatus(fourth.get()), CONNECTION_BAD);
  std::string message = PQerrorMessage(fourth.get());
  EXPECT_TRUE(contains(message, "max_client_conn")) << message;
  for (auto& c : clients) EXPECT_EQ(scalar(c.get(), "SELECT 1"), "1");
  clients.pop_back();
  bool admitted = eventually(
      [&] {
        Connection again(PQconnectdb(proxy.conninfo().c_str()));
        return PQstatus(again.get()) == CONNECTION_OK && scalar(again.get(), "SELECT 2") == "2";
      },
      3s);
  EXPECT_TRUE(admitted) << "a freed place was not given to a new client";
}

// ---- pre-ping and recycle ----

// pool_pre_ping: the pool's idle server connections are killed behind pglens' back; the next
// queries through pglens succeed anyway, on new backends.
TEST(Pooling, PrePingReplacesKilledServerConnections) {
  const std::string role = "pglens_pool_preping";
  ensure_role(role);
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "2", "--max-overflow", "0",
               "--pool-pre-ping", "--server-check-delay", "0"});
  auto monitor = connect(direct_conninfo());
  auto a = connect(proxy.conninfo(role));
  auto b = connect(proxy.conninfo(role));
  // Both in a transaction at once: the pool opens its two connections.
  exec(a.get(), "BEGIN");
  exec(b.get(), "BEGIN");
  auto old_a = scalar(a.get(), "SELECT pg_backend_pid()");
  auto old_b = scalar(b.get(), "SELECT pg_backend_pid()");
  EXPECT_NE(old_a, old_b);
  exec(a.get(), "COMMIT");
  exec(b.get(), "COMMIT");
  Result prepared(PQprepare(a.get(), "plus_one", "SELECT $1::int + 1", 1, nullptr));
  ASSERT_EQ(PQresultStatus(prepared.get()), PGRES_COMMAND_OK) << PQerrorMessage(a.get());
  ASSERT_TRUE(eventually([&] { return backends_of(monitor.get(), role) == 2; }, 5s));

  auto killed = scalar(monitor.get(),
                       "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                       "usename = '" +
                           role + "' AND " + kPoolBackends);
  EXPECT_EQ(killed, "2");
  ASSERT_TRUE(eventually([&] { return backends_of(monitor.get(), role) == 0; }, 5s))
      << "the killed backends did not go away";

  // Invisible to the clients: no error, and again two transactions at once.
  EXPECT_EQ(scalar(a.get(), "SELECT 'a after kill'"), "a after kill");
  EXPECT_EQ(scalar(b.get(), "SELECT 'b after kill'"), "b after kill");
  EXPECT_EQ(exec_prepared(a.get(), "plus_one", "41"), "42");
  exec(a.get(), "BEGIN");
  exec(b.get(), "BEGIN");
  auto new_a = scalar(a.get(), "SELECT pg_backend_pid()");
  auto new_b = scalar(b.get(), "SELECT pg_backend_pid()");
  EXPECT_EQ(PQresultStatus(exec(a.get(), "COMMIT").get()), PGRES_COMMAND_OK);
  EXPECT_EQ(PQresultStatus(exec(b.get(), "COMMIT").get()), PGRES_COMMAND_OK);
  EXPECT_NE(new_a, old_a);
  EXPECT_NE(new_a, old_b);
  EXPECT_NE(new_b, old_a);
  EXPECT_NE(new_b, old_b);
  auto c = connect(proxy.conninfo(role));
  EXPECT_EQ(scalar(c.get(), "SELECT 'new client'"), "new client");
  EXPECT_TRUE(contains(proxy.log(), "pre-ping found server connection")) << proxy.log();
}

// pool_recycle 1: after more than a second the next transaction runs on a new backend; without
// it the same backend serves on.
TEST(Pooling, PoolRecycleReplacesConnectionsByAge) {
  {
    Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "1", "--max-overflow", "0",
                 "--pool-recycle", "1"});
    auto c = connect(proxy.conninfo());
    Result prepared(PQprepare(c.get(), "twice", "SELECT $1::int * 2", 1, nullptr));
    ASSERT_EQ(PQresultStatus(prepared.get()), PGRES_COMMAND_OK) << PQerrorMessage(c.get());
    auto first = scalar(c.get(), "SELECT pg_backend_pid()");
    EXPECT_EQ(scalar(c.get(), "SELECT pg_backend_pid()"), first) << "recycled too early";
    std::this_thread::sleep_for(1300ms);
    auto later = scalar(c.get(), "SELECT pg_backend_pid()");
    EXPECT_NE(later, first) << "a connection older than pool_recycle was reused";
    EXPECT_EQ(scalar(c.get(), "SELECT pg_backend_pid()"), later);
    // The client's statement is prepared again on the new backend, unseen.
    EXPECT_EQ(exec_prepared(c.get(), "twice", "21"), "42");
  }
  {
    Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "1", "--max-overflow", "0"});
    auto c = connect(proxy.conninfo());
    auto first = scalar(c.get(), "SELECT pg_backend_pid()");
    std::this_thread::sleep_for(1300ms);
    EXPECT_EQ(scalar(c.get(), "SELECT pg_backend_pid()"), first)
        << "without pool_recycle the connection should have been kept";
  }
}

// ---- prepared statements ----

// 40 clients on a pool of 4, each with named statements (one name shared by all with the same
// text, one name shared with a different text per client), executed many times in and out of
// transactions on whichever server connection they get; then DEALLOCATE and a re-prepare of the
// same name with other text.
TEST(Pooling, NamedPreparedStatementsFortyClientsOnAPoolOfFour) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "4", "--max-overflow", "0",
               "--pool-timeout", "30"});
  constexpr int kClients = 40;
  constexpr int kRounds = 25;
  Problems problems;
  std::atomic<int> executions{0};
  in_parallel(kClients, [&](int i) {
    auto who = "client " + std::to_string(i) + ": ";
    Connection c(PQconnectdb(proxy.conninfo().c_str()));
    if (PQstatus(c.get()) != CONNECTION_OK) return problems.add(who + PQerrorMessage(c.get()));
    auto expect_ok = [&](PGresult* raw, ExecStatusType want, const std::string& what) {
      Result r(raw);
      if (PQresultStatus(r.get()) != want) {
        problems.add(who + what + ": " + PQresultErrorMessage(r.get()));
        return Result();
      }
      return r;
    };
    auto run = [&](const char* name, const std::vector<std::string>& args,
                   const std::string& want) {
      std::vector<const char*> values;
      for (const auto& a : args) values.push_back(a.c_str());
      auto r = expect_ok(PQexecPrepared(c.get(), name, static_cast<int>(values.size()),
                                        values.data(), nullptr, nullptr, 0),
                         PGRES_TUPLES_OK, std::string("execute ") + name);
      if (!r) return false;
      ++executions;
      std::string got = PQgetvalue(r.get(), 0, 0);
      if (got != want) problems.add(who + name + " gave " + got + ", expected " + want);
      return got == want;
    };
    auto mine_text = "SELECT $1::text || '-" + std::to_string(i) + "'";
    if (!expect_ok(PQprepare(c.get(), "calc", "SELECT $1::int * 1000 + $2::int", 2, nullptr),
                   PGRES_COMMAND_OK, "prepare calc") ||
        !expect_ok(PQprepare(c.get(), "mine", mine_text.c_str(), 1, nullptr), PGRES_COMMAND_OK,
                   "prepare mine"))
      return;
    auto is = std::to_string(i);
    for (int round = 0; round < kRounds; ++round) {
      auto rs = std::to_string(round);
      bool in_tx = round % 3 == 1;
      if (in_tx && !expect_ok(PQexec(c.get(), "BEGIN"), PGRES_COMMAND_OK, "BEGIN")) return;
      if (!run("calc", {rs, is}, std::to_string(round * 1000 + i))) return;
      if (!run("mine", {rs}, rs + "-" + is)) return;
      if (in_tx) {
        if (!run("calc", {is, rs}, std::to_string(i * 1000 + round))) return;
        if (!expect_ok(PQexec(c.get(), "COMMIT"), PGRES_COMMAND_OK, "COMMIT")) return;
      }
      if (round % 5 == 0) {
        auto d = expect_ok(PQdescribePrepared(c.get(), "calc"), PGRES_COMMAND_OK, "describe");
        if (!d) return;
        if (PQnparams(d.get()) != 2 || PQnfields(d.get()) != 1)
          problems.add(who + "describe calc: wrong shape");
      }
    }
    // DEALLOCATE, then the name is free for another text.
    if (!expect_ok(PQexec(c.get(), "DEALLOCATE calc"), PGRES_COMMAND_OK, "DEALLOCATE")) return;
    {
      const char* v[] = {"1", "2"};
      Result gone(PQexecPrepared(c.get(), "calc", 2, v, nullptr, nullptr, 0));
      if (sqlstate_of(gone.get()) != "26000")
        problems.add(who +
                     "calc still usable after DEALLOCATE: " + PQresultErrorMessage(gone.get()));
    }
    if (!expect_ok(PQprepare(c.get(), "calc", "SELECT $1::int - $2::int", 2, nullptr),
                   PGRES_COMMAND_OK, "re-prepare calc"))
      return;
    for (int round = 0; round < 5; ++round)
      if (!run("calc", {std::to_string(round), is}, std::to_string(round - i))) return;
    // DEALLOCATE ALL forgets both.
    if (!expect_ok(PQexec(c.get(), "DEALLOCATE ALL"), PGRES_COMMAND_OK, "DEALLOCATE ALL")) return;
    {
      const char* v[] = {"x"};
      Result gone(PQexecPrepared(c.get(), "mine", 1, v, nullptr, nullptr, 0));
      if (sqlstate_of(gone.get()) != "26000")
        problems.add(who + "mine still usable after DEALLOCATE ALL");
    }
    if (!expect_ok(PQprepare(c.get(), "mine", "SELECT 'again ' || $1::text", 1, nullptr),
                   PGRES_COMMAND_OK, "re-prepare mine"))
      return;
    run("mine", {is}, "again " + is);
  });
  std::cout << executions << " executions of prepared statements\n";
  EXPECT_EQ(problems.count(), 0) << problems.text();
  EXPECT_GE(executions, kClients * (kRounds * 2 + 6));
}

// Close (the protocol message; libpq 15 has no PQclosePrepared) of a named statement, and the
// same name prepared again with other text, while another client uses that name for its own text.
TEST(Pooling, CloseStatementThenPrepareTheSameNameWithOtherText) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "1", "--max-overflow", "0"});
  RawClient a(proxy.port());
  RawClient b(proxy.port());
  ASSERT_EQ(types_of(a.login()).back(), 'Z');
  ASSERT_EQ(types_of(b.login()).back(), 'Z');

  a.send(run_statement("s1", "SELECT 'a first'::text"));
  auto r = a.until_ready();
  EXPECT_EQ(types_of(r), "12DCZ");
  EXPECT_EQ(values_of(r), std::vector<std::string>{"a first"});
  b.send(run_statement("s1", "SELECT 'b first'::text"));
  EXPECT_EQ(values_of(b.until_ready()), std::vector<std::string>{"b first"});

  pp::Bytes close;
  pp::Close{'S', "s1"}.encode(close);
  pp::Sync{}.encode(close);
  a.send(close);
  EXPECT_EQ(types_of(a.until_ready()), "3Z");
  a.send(run_statement("s1", std::nullopt));
  r = a.until_ready();
  EXPECT_EQ(sqlstate_in(r), "26000") << types_of(r);  // invalid_sql_statement_name

  a.send(run_statement("s1", "SELECT 'a second'::text"));
  EXPECT_EQ(values_of(a.until_ready()), std::vector<std::string>{"a second"});
  b.send(run_statement("s1", std::nullopt));
  EXPECT_EQ(values_of(b.until_ready()), std::vector<std::string>{"b first"});

  // Close and Parse of the same name in one batch.
  pp::Bytes batch;
  pp::Close{'S', "s1"}.encode(batch);
  auto rest = run_statement("s1", "SELECT 'a third'::text");
  batch.insert(batch.end(), rest.begin(), rest.end());
  a.send(batch);
  r = a.until_ready();
  EXPECT_EQ(types_of(r), "312DCZ");
  EXPECT_EQ(values_of(r), std::vector<std::string>{"a third"});
  // Closing a name that does not exist is not an error, as on Postgres.
  a.send(close);
  a.send(close);
  EXPECT_EQ(types_of(a.until_ready()), "3Z");
  EXPECT_EQ(types_of(a.until_ready()), "3Z");
  b.send(run_statement("s1", std::nullopt));
  EXPECT_EQ(values_of(b.until_ready()), std::vector<std::string>{"b first"});
}

// ---- what a client leaves behind ----

// A client that goes away inside a transaction holding an exclusive lock: the lock is gone at
// once (the server connection is rolled back or closed, not parked in the pool, and a query still
// running there is cancelled), and its uncommitted row never shows.
TEST(Pooling, ClientGoneMidTransactionReleasesItsLocksAtOnce) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "1", "--max-overflow", "0"});
  auto direct = connect(direct_conninfo());
  ASSERT_EQ(PQresultStatus(exec(direct.get(),
                                "DROP TABLE IF EXISTS pooling_lock_t; "
                                "CREATE TABLE pooling_lock_t (id int)")
                               .get()),
            PGRES_COMMAND_OK)
      << PQerrorMessage(direct.get());
  const std::vector<const char*> take_lock = {"BEGIN", "INSERT INTO pooling_lock_t VALUES (1)",
                                              "LOCK TABLE pooling_lock_t IN ACCESS EXCLUSIVE MODE"};
  enum class Way { Terminate, SocketClosed, MidCopy, PsqlKilledMidQuery };
  for (Way way : {Way::Terminate, Way::SocketClosed, Way::MidCopy, Way::PsqlKilledMidQuery}) {
    const char* how = way == Way::Terminate      ? "PQfinish (Terminate) while idle in transaction"
                      : way == Way::SocketClosed ? "socket closed while idle in transaction"
                      : way == Way::MidCopy      ? "socket closed in the middle of COPY FROM STDIN"
                                                 : "psql killed while its query runs";
    SCOPED_TRACE(how);
    if (way == Way::PsqlKilledMidQuery) {
      std::string command = "psql -X -q -h 127.0.0.1 -p " + std::to_string(proxy.port()) +
                            " -U postgres -d pglens_test";
      for (const char* sql : take_lock) command += std::string(" -c '") + sql + "'";
      command += " -c 'SELECT pg_sleep(30)' >/dev/null 2>&1 & echo $!";
      auto started = run(command);
      int pid = std::atoi(started.output.c_str());
      ASSERT_GT(pid, 0) << started.output;
      bool sleeping = eventually(
          [&] {
            return scalar(direct.get(),
                          "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
                          "query = 'SELECT pg_sleep(30)'") == "1";
          },
          5s);
      ::kill(pid, SIGKILL);
      ASSERT_TRUE(sleeping) << "psql never got to its pg_sleep";
    } else {
      auto a = connect(proxy.conninfo());
      for (const char* sql : take_lock)
        ASSERT_EQ(PQresultStatus(exec(a.get(), sql).get()), PGRES_COMMAND_OK)
            << sql << ": " << PQerrorMessage(a.get());
      ASSERT_EQ(PQtransactionStatus(a.get()), PQTRANS_INTRANS);
      if (way == Way::MidCopy) {
        ASSERT_EQ(PQresultStatus(exec(a.get(), "COPY pooling_lock_t FROM STDIN").get()),
                  PGRES_COPY_IN);
        ASSERT_EQ(PQputCopyData(a.get(), "2\n3\n", 4), 1);
        ASSERT_EQ(PQflush(a.get()), 0);
        std::this_thread::sleep_for(100ms);
      }
      if (way != Way::Terminate) ::shutdown(PQsocket(a.get()), SHUT_RDWR);
    }  // PQfinish
    auto started = Clock::now();
    exec(direct.get(), "BEGIN");
    exec(direct.get(), "SET LOCAL lock_timeout = '3s'");
    auto locked = exec(direct.get(), "LOCK TABLE pooling_lock_t IN ACCESS EXCLUSIVE MODE");
    double took = seconds_since(started);
    EXPECT_EQ(PQresultStatus(locked.get()), PGRES_COMMAND_OK) << PQerrorMessage(direct.get());
    EXPECT_EQ(scalar(direct.get(), "SELECT count(*) FROM pooling_lock_t"), "0");
    exec(direct.get(), "ROLLBACK");
    std::cout << how << ": lock free after " << took << " s\n";
    EXPECT_LT(took, 1.5);
    // The pool's only slot is free again, and what it hands out is clean.
    auto b = connect(proxy.conninfo());
    EXPECT_EQ(PQtransactionStatus(b.get()), PQTRANS_IDLE);
    exec(b.get(), "BEGIN");
    exec(b.get(), "SET LOCAL lock_timeout = '2s'");
    auto again = exec(b.get(), "LOCK TABLE pooling_lock_t IN ACCESS EXCLUSIVE MODE");
    EXPECT_EQ(PQresultStatus(again.get()), PGRES_COMMAND_OK) << PQerrorMessage(b.get());
    EXPECT_EQ(scalar(b.get(), "SELECT count(*) FROM pooling_lock_t"), "0");
    EXPECT_EQ(PQresultStatus(exec(b.get(), "COMMIT").get()), PGRES_COMMAND_OK);
  }
  exec(direct.get(), "DROP TABLE pooling_lock_t");
}

// SET LOCAL ends with its transaction: the next client on the same server connection sees the
// default.
TEST(Pooling, SetLocalNeverLeaksAcrossClients) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "1", "--max-overflow", "0"});
  auto a = connect(proxy.conninfo());
  auto b = connect(proxy.conninfo());
  auto fallback = scalar(b.get(), "SHOW statement_timeout");
  ASSERT_NE(fallback, "1234ms");
  for (const char* end : {"COMMIT", "ROLLBACK"}) {
    SCOPED_TRACE(end);
    auto pid = scalar(a.get(), "SELECT pg_backend_pid()");
    exec(a.get(), "BEGIN");
    exec(a.get(), "SET LOCAL statement_timeout = '1234ms'");
    EXPECT_EQ(scalar(a.get(), "SHOW statement_timeout"), "1234ms");
    exec(a.get(), end);
    EXPECT_EQ(scalar(b.get(), "SELECT pg_backend_pid()"), pid) << "not the same server connection";
    EXPECT_EQ(scalar(b.get(), "SHOW statement_timeout"), fallback);
    EXPECT_EQ(scalar(a.get(), "SHOW statement_timeout"), fallback);
  }
}

// Two clients share one server connection; each sees its own application_name (from its startup
// and from a SET), DateStyle and TimeZone (from PGDATESTYLE and PGTZ, which libpq sends in the
// startup packet), in SHOW, in ParameterStatus and in pg_stat_activity while its query runs.
TEST(Pooling, SessionParametersFollowTheClient) {
  const std::string role = "pglens_pool_params";
  ensure_role(role);
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "1", "--max-overflow", "0"});
  auto monitor = connect(direct_conninfo());
  auto default_tz = scalar(monitor.get(), "SHOW TimeZone");
  auto default_datestyle = scalar(monitor.get(), "SHOW DateStyle");
  ASSERT_NE(default_tz, "Asia/Tokyo");
  ASSERT_NE(default_datestyle, "SQL, DMY");
  ::setenv("PGDATESTYLE", "SQL, DMY", 1);
  ::setenv("PGTZ", "Asia/Tokyo", 1);
  auto a = connect(proxy.conninfo(role, "pglens_test", "application_name=alpha"));
  ::unsetenv("PGDATESTYLE");
  ::unsetenv("PGTZ");
  auto b = connect(proxy.conninfo(role, "pglens_test", "application_name=beta"));
  ASSERT_EQ(PQstatus(a.get()), CONNECTION_OK);
  ASSERT_EQ(PQstatus(b.get()), CONNECTION_OK);
  EXPECT_STREQ(PQparameterStatus(a.get(), "application_name"), "alpha");
  EXPECT_STREQ(PQparameterStatus(b.get(), "application_name"), "beta");
  EXPECT_STREQ(PQparameterStatus(a.get(), "DateStyle"), "SQL, DMY");
  EXPECT_EQ(PQparameterStatus(b.get(), "DateStyle"), default_datestyle);
  EXPECT_STREQ(PQparameterStatus(a.get(), "TimeZone"), "Asia/Tokyo");
  EXPECT_EQ(PQparameterStatus(b.get(), "TimeZone"), default_tz);

  auto own_row = "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()";
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    EXPECT_EQ(scalar(a.get(), "SHOW application_name"), "alpha");
    EXPECT_EQ(scalar(b.get(), "SHOW application_name"), "beta");
    EXPECT_EQ(scalar(a.get(), own_row), "alpha");
    EXPECT_EQ(scalar(b.get(), own_row), "beta");
    EXPECT_EQ(scalar(a.get(), "SELECT DATE '2024-03-01'::text"), "01/03/2024");
    EXPECT_EQ(scalar(b.get(), "SELECT DATE '2024-03-01'::text"), "2024-03-01");
    EXPECT_EQ(scalar(a.get(), "SHOW TimeZone"), "Asia/Tokyo");
    EXPECT_EQ(scalar(b.get(), "SHOW TimeZone"), default_tz);
  }
  EXPECT_EQ(scalar(a.get(), "SELECT pg_backend_pid()"), scalar(b.get(), "SELECT pg_backend_pid()"))
      << "the two clients should share the one server connection";

  // Seen from outside while each one's query runs.
  for (auto [client, name] : {std::pair{a.get(), "alpha"}, std::pair{b.get(), "beta"}}) {
    ASSERT_TRUE(PQsendQuery(client, "SELECT pg_sleep(0.5)"));
    std::string seen;
    eventually(
        [&] {
          seen = scalar(monitor.get(),
                        "SELECT application_name FROM pg_stat_activity WHERE usename = '" + role +
                            "' AND state = 'active' AND query LIKE 'SELECT pg_sleep%'");
          return seen == name;
        },
        400ms);
    EXPECT_EQ(seen, name);
    while (auto* r = PQgetResult(client)) PQclear(r);
  }

  // A SET of a reported parameter follows its client too.
  exec(a.get(), "SET application_name = 'alpha2'");
  EXPECT_STREQ(PQparameterStatus(a.get(), "application_name"), "alpha2");
  EXPECT_EQ(scalar(b.get(), "SHOW application_name"), "beta");
  EXPECT_EQ(scalar(a.get(), "SHOW application_name"), "alpha2");
  EXPECT_EQ(scalar(b.get(), own_row), "beta");
  EXPECT_STREQ(PQparameterStatus(b.get(), "application_name"), "beta");
}

// ---- statement mode ----

TEST(Pooling, StatementModeRejectsTransactionBlocks) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-mode", "statement", "--pool-size", "1",
               "--max-overflow", "0"});
  auto c = connect(proxy.conninfo());
  EXPECT_EQ(scalar(c.get(), "SELECT 'single'"), "single");
  const char* params[] = {"41"};
  Result ext(PQexecParams(c.get(), "SELECT $1::int + 1", 1, nullptr, params, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(ext.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
  EXPECT_STREQ(PQgetvalue(ext.get(), 0, 0), "42");
  // A multi-statement query is one implicit transaction: allowed.
  EXPECT_EQ(PQresultStatus(exec(c.get(), "SELECT 1; SELECT 2").get()), PGRES_TUPLES_OK);

  auto begin = exec(c.get(), "BEGIN");
  std::string message = PQerrorMessage(c.get());
  std::cout << "BEGIN in statement mode: " << message;
  EXPECT_TRUE(contains(message, "statement pooling mode")) << message;

  // The server connection the BEGIN ran on never reaches another client inside that
  // transaction.
  auto d = connect(proxy.conninfo());
  EXPECT_EQ(PQtransactionStatus(d.get()), PQTRANS_IDLE);
  EXPECT_EQ(scalar(d.get(), "SELECT now() = statement_timestamp()"), "t");
  EXPECT_EQ(scalar(d.get(), "SELECT 'still single'"), "still single");
}

// ---- Postgres restarted under load ----

// Clients in flight get errors when Postgres goes down, new clients get a clear error while it is
// down and succeed once it is back, and nothing hangs.
TEST(Pooling, PostgresRestartUnderLoad) {
  auto test_started = Clock::now();
  std::unique_ptr<OwnCluster> own;
  try {
    own = std::make_unique<OwnCluster>();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  Proxy proxy({"--upstream", own->cluster().url(), "--pool-size", "8", "--max-overflow", "0",
               "--pool-timeout", "5", "--server-connect-timeout", "2"});

  constexpr int kClients = 6;
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, errors{0}, hangs{0}, connect_failures{0};
  std::vector<std::atomic<std::int64_t>> last_ok(kClients);
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
        .count();
  };
  std::vector<std::thread> load;
  for (int i = 0; i < kClients; ++i) {
    last_ok[i] = 0;
    load.emplace_back([&, i] {
      Connection c;
      auto sql = "SELECT " + std::to_string(i) + " FROM pg_sleep(0.01)";
      while (!stop) {
        if (!c || PQstatus(c.get()) != CONNECTION_OK) {
          c.reset(
              PQconnectdb(proxy.conninfo("postgres", "pglens_test", "connect_timeout=5").c_str()));
          if (PQstatus(c.get()) != CONNECTION_OK) {
            ++connect_failures;
            c.reset();
            std::this_thread::sleep_for(50ms);
            continue;
          }
        }
        auto o = exec_within(c.get(), sql, 10s);
        if (o.timed_out) {
          ++hangs;
          c.reset();
        } else if (o.ok && o.value == std::to_string(i)) {
          ++ok;
          last_ok[i] = now_ms();
        } else {
          ++errors;
          std::this_thread::sleep_for(20ms);
        }
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return ok.load() > 50; }, 5s)) << "no load before the restart";

  // A query running when the server goes down.
  auto in_flight = connect(proxy.conninfo());
  ASSERT_TRUE(PQsendQuery(in_flight.get(), "SELECT pg_sleep(20)"));
  std::this_thread::sleep_for(200ms);
  auto stopped_at = Clock::now();
  auto stopped = own->stop();
  ASSERT_EQ(stopped.status, 0) << stopped.output;
  {
    // Its answer: an error, soon.
    bool got_error = false, answered = false;
    auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
      pollfd p{PQsocket(in_flight.get()), POLLIN, 0};
      ::poll(&p, 1, 100);
      if (!PQconsumeInput(in_flight.get()) || !PQisBusy(in_flight.get())) {
        answered = true;
        break;
      }
    }
    EXPECT_TRUE(answered) << "the query in flight got no answer";
    while (answered && !PQisBusy(in_flight.get())) {
      PGresult* r = PQgetResult(in_flight.get());
      if (r == nullptr) break;
      if (PQresultStatus(r) == PGRES_FATAL_ERROR) got_error = true;
      PQclear(r);
    }
    EXPECT_TRUE(got_error || PQstatus(in_flight.get()) == CONNECTION_BAD);
    EXPECT_LT(seconds_since(stopped_at), 6.0);
  }
  // While it is down, a new client waits for it up to pool_timeout (5 s), then is told why.
  auto refused_from = Clock::now();
  Connection refused(PQconnectdb(proxy.conninfo().c_str()));
  EXPECT_EQ(PQstatus(refused.get()), CONNECTION_BAD);
  std::string why = PQerrorMessage(refused.get());
  std::cout << "while down: " << why;
  EXPECT_NE(why.find("the server cannot be reached"), std::string::npos) << why;
  EXPECT_GT(seconds_since(refused_from), 4.5);
  EXPECT_LT(seconds_since(refused_from), 7.0);
  std::this_thread::sleep_for(500ms);

  auto started = own->start();
  ASSERT_EQ(started.status, 0) << started.output;
  auto up_ms = now_ms();
  auto up_at = Clock::now();
  bool all_back = eventually(
      [&] {
        for (auto& t : last_ok)
          if (t.load() <= up_ms) return false;
        return true;
      },
      20s);
  double recovery = seconds_since(up_at);
  bool fresh_ok = eventually(
      [&] {
        Connection c(PQconnectdb(proxy.conninfo().c_str()));
        return PQstatus(c.get()) == CONNECTION_OK && scalar(c.get(), "SELECT 'back'") == "back";
      },
      10s);
  stop = true;
  for (auto& t : load) t.join();
  std::cout << ok << " queries ok, " << errors << " errors, " << connect_failures
            << " failed connects, " << hangs << " hangs; every client served again " << recovery
            << " s after the restart\n";
  EXPECT_TRUE(all_back) << "some clients were not served again after the restart";
  EXPECT_TRUE(fresh_ok) << "a new client was not served after the restart";
  EXPECT_EQ(hangs, 0);
  EXPECT_TRUE(proxy.running());
  EXPECT_LT(seconds_since(test_started), 60.0);
}

// ---- client authentication ----

class PoolingAuth : public ::testing::Test {
 protected:
  void SetUp() override {
    auto direct = connect(direct_conninfo());
    auto md5 =
        scalar(direct.get(), "SELECT rolpassword FROM pg_authid WHERE rolname = 'pglens_md5'");
    auto scram =
        scalar(direct.get(), "SELECT rolpassword FROM pg_authid WHERE rolname = 'pglens_scram'");
    ASSERT_EQ(md5.rfind("md5", 0), 0u) << md5;
    ASSERT_EQ(scram.rfind("SCRAM-SHA-256$", 0), 0u) << scram;
    userlist_ = write_temp_file(".txt",
                                "; PgBouncer userlist: plaintext, md5 and SCRAM secrets\n"
                                "\"postgres\" \"pg-secret\"\n"
                                "\"pglens_plain\" \"plain-secret\"\n"
                                "\"pglens_md5\" \"" +
                                    md5 +
                                    "\"\n"
                                    "\"pglens_scram\" \"" +
                                    scram + "\"\n");
  }
  void TearDown() override { ::unlink(userlist_.c_str()); }

  // Connects as user with password; "" when it worked, else libpq's message.
  static std::string login(const Proxy& proxy, const std::string& user, const std::string& password,
                           std::string* current_user = nullptr) {
    Connection c(PQconnectdb(proxy.conninfo(user, "pglens_test", "password=" + password).c_str()));
    if (PQstatus(c.get()) != CONNECTION_OK) return PQerrorMessage(c.get());
    if (current_user) *current_user = scalar(c.get(), "SELECT current_user");
    return "";
  }

  static CommandResult psql(const Proxy& proxy, const std::string& user,
                            const std::string& password) {
    return run("PGPASSWORD=" + password + " psql -X -w -h 127.0.0.1 -p " +
               std::to_string(proxy.port()) + " -U " + user +
               " -d pglens_test -Atc 'SELECT current_user'");
  }

  std::string userlist_;
};

// --auth-type md5. The upstream URL has no password: the server's password check of pglens_plain
// is answered with its plaintext password from the auth_file.
TEST_F(PoolingAuth, Md5AgainstTheAuthFile) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--auth-type", "md5", "--auth-file", userlist_,
               "--pool-size", "2"});
  std::string who;
  EXPECT_EQ(login(proxy, "pglens_plain", "plain-secret", &who), "");
  EXPECT_EQ(who, "pglens_plain");
  EXPECT_EQ(login(proxy, "postgres", "pg-secret", &who), "");
  EXPECT_EQ(who, "postgres");
  for (auto [user, password] :
       {std::pair{"postgres", "wrong"}, std::pair{"pglens_plain", "wrong"},
        std::pair{"pglens_md5", "wrong"}, std::pair{"nobody", "whatever"}}) {
    auto message = login(proxy, user, password);
    EXPECT_TRUE(
        contains(message, "password authentication failed for user \"" + std::string(user) + "\""))
        << user << ": " << message;
  }
  auto good = psql(proxy, "pglens_plain", "plain-secret");
  EXPECT_EQ(good.status, 0) << good.output;
  EXPECT_EQ(good.output, "pglens_plain\n");
  auto bad = psql(proxy, "pglens_plain", "not-it");
  EXPECT_NE(bad.status, 0);
  EXPECT_TRUE(contains(bad.output, "password authentication failed")) << bad.output;
}

// --auth-type scram-sha-256: a SCRAM verifier and a plaintext secret both check a SCRAM login;
// the upstream login uses the URL's password.
TEST_F(PoolingAuth, ScramAgainstTheAuthFile) {
  Proxy proxy({"--upstream", Cluster::get().url(":scram-secret"), "--auth-type", "scram-sha-256",
               "--auth-file", userlist_, "--pool-size", "2"});
  std::string who;
  EXPECT_EQ(login(proxy, "pglens_scram", "scram-secret", &who), "");
  EXPECT_EQ(who, "pglens_scram");
  EXPECT_EQ(login(proxy, "postgres", "pg-secret", &who), "");
  EXPECT_EQ(who, "postgres");
  for (auto [user, password] :
       {std::pair{"pglens_scram", "wrong"}, std::pair{"postgres", "wrong"},
        std::pair{"pglens_md5", "wrong"}, std::pair{"nobody", "whatever"}}) {
    auto message = login(proxy, user, password);
    EXPECT_TRUE(
        contains(message, "password authentication failed for user \"" + std::string(user) + "\""))
        << user << ": " << message;
  }
  auto good = psql(proxy, "pglens_scram", "scram-secret");
  EXPECT_EQ(good.status, 0) << good.output;
  EXPECT_EQ(good.output, "pglens_scram\n");
  auto bad = psql(proxy, "pglens_scram", "not-it");
  EXPECT_NE(bad.status, 0);
  EXPECT_TRUE(contains(bad.output, "password authentication failed")) << bad.output;
}

// ---- config file and reload ----

// Runs n clients' pg_sleep(seconds) at once (connected beforehand); the wall time of the batch.
double concurrent_sleeps(const Proxy& proxy, int n, double seconds, Problems& problems) {
  std::vector<Connection> clients;
  for (int i = 0; i < n; ++i) clients.push_back(connect(proxy.conninfo()));
  auto started = Clock::now();
  in_parallel(n, [&](int i) {
    auto v =
        scalar(clients[i].get(), "SELECT 'slept' FROM pg_sleep(" + std::to_string(seconds) + ")");
    if (v != "slept") problems.add("sleeper " + std::to_string(i) + ": " + v);
  });
  return seconds_since(started);
}

std::string executable_of(int pid) {
  return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe").string();
}

// pool_size from a --config file; SIGHUP after raising it lets more clients run at once, without
// dropping a client in the middle of a transaction; a bad file on SIGHUP is logged and the old
// config kept; a bad file at startup is refused, naming the key.
TEST(Pooling, ConfigFileAndSighupReload) {
  auto config_text = [](const std::string& pool_size) {
    return "[pglens]\nupstream = \"" + Cluster::get().url() + "\"\npool_size = " + pool_size +
           "\nmax_overflow = 0\npool_timeout = 20\n";
  };
  auto path = write_temp_file(".toml", config_text("2"));
  Proxy proxy({"--config", path});
  Problems problems;
  double with_two = concurrent_sleeps(proxy, 4, 0.8, problems);
  EXPECT_GE(with_two, 1.55) << "4 sleeps on pool_size 2 should take two rounds";

  auto keeper = connect(proxy.conninfo());
  exec(keeper.get(), "BEGIN");
  auto keeper_pid = scalar(keeper.get(), "SELECT pg_backend_pid()");
  std::ofstream(path) << config_text("4");
  ASSERT_EQ(::kill(proxy.pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return contains(proxy.log(), "configuration reloaded"); }, 5s))
      << proxy.log();
  // The client inside its transaction did not notice.
  EXPECT_EQ(scalar(keeper.get(), "SELECT pg_backend_pid()"), keeper_pid);
  EXPECT_EQ(PQresultStatus(exec(keeper.get(), "COMMIT").get()), PGRES_COMMAND_OK);
  double with_four = concurrent_sleeps(proxy, 4, 0.8, problems);
  EXPECT_LT(with_four, 1.4) << "pool_size 4 after the reload should run 4 sleeps at once";

  // A bad value on reload: logged with the key, the old config stays.
  std::ofstream(path) << config_text("0");
  ASSERT_EQ(::kill(proxy.pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return contains(proxy.log(), "reload on SIGHUP failed"); }, 5s))
      << proxy.log();
  auto log = proxy.log();
  EXPECT_TRUE(contains(log, "keeping the old config: pool_size: must be")) << log;
  EXPECT_TRUE(proxy.running());
  EXPECT_EQ(scalar(keeper.get(), "SELECT 'kept'"), "kept");
  double still_four = concurrent_sleeps(proxy, 4, 0.8, problems);
  EXPECT_LT(still_four, 1.4) << "the bad reload changed the pool";
  EXPECT_EQ(problems.count(), 0) << problems.text();
  std::cout << "4 sleeps of 0.8 s: " << with_two << " s on pool_size 2, " << with_four
            << " s after reload to 4, " << still_four << " s after a bad reload\n";

  // At startup, a bad file is refused with the key and the reason.
  auto bin = executable_of(proxy.pid());
  auto listen = " --listen 127.0.0.1:" + std::to_string(free_port());
  for (auto [text, key_and_reason] :
       {std::pair{config_text("\"lots\""), "pool_size: must be"},
        std::pair{config_text("2") + "pool_sise = 3\n",
                  "pool_sise: unknown key (did you mean pool_size?)"}}) {
    std::ofstream(path) << text;
    auto r = run("timeout 10 " + bin + " --config " + path + listen);
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, key_and_reason)) << r.output;
  }
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace pglens::test
