// The transparent proxy in session mode, through libpq, against the real throwaway Postgres.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "tests/support/test_env.hpp"

namespace pglens::test {
namespace {

using namespace std::chrono_literals;

// Session mode: every client keeps its own server connection, so LISTEN, session state and
// everything else behave exactly as on a direct connection.
class ProxyTest : public ::testing::Test {
 protected:
  Proxy proxy{{"--upstream", Cluster::get().url(), "--pool-mode", "session", "--pool-size", "600"}};
};

TEST_F(ProxyTest, SimpleAndMultiStatementQueries) {
  auto c = connect(proxy.conninfo());
  EXPECT_EQ(scalar(c.get(), "SELECT 40 + 2"), "42");
  // A multi-statement simple query: every result comes back, in order.
  ASSERT_TRUE(PQsendQuery(c.get(), "SELECT 1; SELECT 2; SELECT 'three'"));
  std::vector<std::string> values;
  while (auto* r = PQgetResult(c.get())) {
    if (PQresultStatus(r) == PGRES_TUPLES_OK) values.emplace_back(PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  EXPECT_EQ(values, (std::vector<std::string>{"1", "2", "three"}));
  // Startup parameters reach the server, and its ParameterStatus reaches the client.
  auto app = connect(proxy.conninfo("postgres", "pglens_test", "application_name=pglens-it"));
  EXPECT_EQ(scalar(app.get(), "SHOW application_name"), "pglens-it");
  EXPECT_STREQ(PQparameterStatus(app.get(), "application_name"), "pglens-it");
  EXPECT_NE(PQparameterStatus(app.get(), "server_version"), nullptr);
}

TEST_F(ProxyTest, ExtendedProtocolWithParameters) {
  auto c = connect(proxy.conninfo());
  const char* params[] = {"20", "22"};
  Result r(
      PQexecParams(c.get(), "SELECT $1::int + $2::int", 2, nullptr, params, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), "42");
  Result prep(PQprepare(c.get(), "add", "SELECT $1::int * 2", 1, nullptr));
  ASSERT_EQ(PQresultStatus(prep.get()), PGRES_COMMAND_OK);
  for (int i = 0; i < 10; ++i) {
    auto v = std::to_string(i);
    const char* p[] = {v.c_str()};
    Result e(PQexecPrepared(c.get(), "add", 1, p, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(e.get()), PGRES_TUPLES_OK);
    EXPECT_EQ(std::string(PQgetvalue(e.get(), 0, 0)), std::to_string(i * 2));
  }
}

TEST_F(ProxyTest, ErrorInsideTransactionThenRollback) {
  auto c = connect(proxy.conninfo());
  exec(c.get(), "BEGIN");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INTRANS);
  auto bad = exec(c.get(), "SELECT 1/0");
  EXPECT_STREQ(PQresultErrorField(bad.get(), PG_DIAG_SQLSTATE), "22012");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INERROR);
  exec(c.get(), "ROLLBACK");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_EQ(scalar(c.get(), "SELECT 'after'"), "after");
}

TEST_F(ProxyTest, LargeByteaRoundTrip) {
  // 50 MB in a Bind parameter one way and in a DataRow the other: both far above any buffer.
  constexpr std::size_t kSize = 50 * 1024 * 1024;
  std::string payload(kSize, '\0');
  std::mt19937 rng(7);
  for (auto& ch : payload) ch = static_cast<char>(rng());
  auto c = connect(proxy.conninfo());
  exec(c.get(), "DROP TABLE IF EXISTS big_blob; CREATE TABLE big_blob (id int, data bytea)");
  const char* values[] = {payload.data()};
  int lengths[] = {static_cast<int>(payload.size())};
  int formats[] = {1};
  Result ins(PQexecParams(c.get(), "INSERT INTO big_blob VALUES (1, $1)", 1, nullptr, values,
                          lengths, formats, 0));
  ASSERT_EQ(PQresultStatus(ins.get()), PGRES_COMMAND_OK) << PQerrorMessage(c.get());
  EXPECT_EQ(scalar(c.get(), "SELECT length(data) FROM big_blob"), std::to_string(kSize));
  Result sel(
      PQexecParams(c.get(), "SELECT data FROM big_blob", 0, nullptr, nullptr, nullptr, nullptr, 1));
  ASSERT_EQ(PQresultStatus(sel.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
  ASSERT_EQ(static_cast<std::size_t>(PQgetlength(sel.get(), 0, 0)), kSize);
  EXPECT_EQ(std::memcmp(PQgetvalue(sel.get(), 0, 0), payload.data(), kSize), 0);
  exec(c.get(), "DROP TABLE big_blob");
}

TEST_F(ProxyTest, CancelReachesTheRightBackend) {
  auto sleeper = connect(proxy.conninfo());
  auto bystander = connect(proxy.conninfo());
  ASSERT_TRUE(PQsendQuery(sleeper.get(), "SELECT pg_sleep(10)"));
  std::this_thread::sleep_for(300ms);
  auto cancelled_at = std::chrono::steady_clock::now();
  PGcancel* cancel = PQgetCancel(sleeper.get());
  char err[256];
  ASSERT_TRUE(PQcancel(cancel, err, sizeof err)) << err;
  PQfreeCancel(cancel);
  Result r(PQgetResult(sleeper.get()));
  auto took = std::chrono::steady_clock::now() - cancelled_at;
  while (auto* extra = PQgetResult(sleeper.get())) PQclear(extra);
  EXPECT_STREQ(PQresultErrorField(r.get(), PG_DIAG_SQLSTATE), "57014");  // query_canceled
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
  std::cout << "cancel took " << ms << " ms\n";
  EXPECT_LT(ms, 5000) << "the sleep ran on: the cancel did not reach its backend";
  // The session goes on, and the other client was not touched.
  EXPECT_EQ(scalar(sleeper.get(), "SELECT 'still here'"), "still here");
  EXPECT_EQ(scalar(bystander.get(), "SELECT 1"), "1");
}

TEST_F(ProxyTest, ListenNotify) {
  auto listener = connect(proxy.conninfo());
  auto notifier = connect(proxy.conninfo());
  exec(listener.get(), "LISTEN pglens_channel");
  exec(notifier.get(), "NOTIFY pglens_channel, 'hello'");
  PGnotify* n = nullptr;
  for (int i = 0; i < 100 && n == nullptr; ++i) {
    PQconsumeInput(listener.get());
    n = PQnotifies(listener.get());
    if (n == nullptr) std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(n, nullptr) << "no notification arrived";
  EXPECT_STREQ(n->relname, "pglens_channel");
  EXPECT_STREQ(n->extra, "hello");
  PQfreemem(n);
}

TEST_F(ProxyTest, NoticesAreForwarded) {
  auto c = connect(proxy.conninfo());
  std::string notice;
  PQsetNoticeProcessor(
      c.get(), [](void* arg, const char* message) { *static_cast<std::string*>(arg) += message; },
      &notice);
  exec(c.get(), "DO $$ BEGIN RAISE NOTICE 'pglens notice %', 7; END $$");
  EXPECT_NE(notice.find("pglens notice 7"), std::string::npos) << notice;
}

// Transaction mode (the default): 500 clients share a pool of 20 server connections.
TEST(ProxyTransactionMode, FiveHundredConcurrentClients) {
  Proxy proxy({"--upstream", Cluster::get().url(), "--pool-size", "20"});
  constexpr int kClients = 500;
  std::vector<Connection> clients;
  clients.reserve(kClients);
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect(proxy.conninfo()));
    ASSERT_EQ(PQstatus(clients.back().get()), CONNECTION_OK) << "client " << i;
  }
  // All 500 are open at once; each runs a query while the others hold their sessions.
  for (int i = 0; i < kClients; ++i) {
    auto q = "SELECT " + std::to_string(i);
    ASSERT_TRUE(PQsendQuery(clients[i].get(), q.c_str()));
  }
  for (int i = 0; i < kClients; ++i) {
    Result r(PQgetResult(clients[i].get()));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(clients[i].get());
    EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), std::to_string(i));
    while (auto* extra = PQgetResult(clients[i].get())) PQclear(extra);
  }
}

TEST(ProxyAuth, LogsInUpstreamWithEachPasswordMethod) {
  // The cluster checks pglens_scram with SCRAM-SHA-256, pglens_md5 with MD5 and pglens_plain with
  // a cleartext password: pglens must answer whichever the server asks for.
  for (auto [user, password] :
       {std::pair{"pglens_scram", "scram-secret"}, std::pair{"pglens_md5", "md5-secret"},
        std::pair{"pglens_plain", "plain-secret"}}) {
    Proxy proxy({"--upstream", Cluster::get().url(std::string(":") + password)});
    auto c = connect(proxy.conninfo(user));
    EXPECT_EQ(scalar(c.get(), "SELECT current_user"), user);
  }
}

TEST(ProxyAuth, WrongPasswordGivesTheServersError) {
  Proxy proxy({"--upstream", Cluster::get().url(":not-the-password")});
  Connection c(PQconnectdb(proxy.conninfo("pglens_scram").c_str()));
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(c.get())).find("password authentication failed"),
            std::string::npos)
      << PQerrorMessage(c.get());
}

TEST(ProxyUpstream, DownUpstreamGivesAClearError) {
  // The client waits for it up to pool_timeout, connects retried meanwhile, then is told why.
  Proxy proxy({"--upstream", "postgresql://127.0.0.1:" + std::to_string(free_port()),
               "--server-connect-timeout", "3", "--pool-timeout", "2"});
  auto started = std::chrono::steady_clock::now();
  Connection c(PQconnectdb(proxy.conninfo().c_str()));
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  std::string message = PQerrorMessage(c.get());
  EXPECT_NE(message.find("pglens: could not connect to upstream"), std::string::npos) << message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  // pglens itself keeps serving.
  EXPECT_TRUE(proxy.running());
}

TEST(ProxyUpstream, FixedDatabaseInTheUrl) {
  // With a database in the URL every client lands there, whatever it asked for.
  Proxy proxy({"--upstream", Cluster::get().url("postgres") + "/pglens_test"});
  auto c = connect(proxy.conninfo("postgres", "anything"));
  EXPECT_EQ(scalar(c.get(), "SELECT current_database()"), "pglens_test");
}

}  // namespace
}  // namespace pglens::test
