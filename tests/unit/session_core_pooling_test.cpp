// SessionCore in transaction mode, beyond routing: Parse answered without a server connection
// (a blocking prepare never waits for the pool), session state left by a client's SQL reset
// before another client gets the connection, and the timeouts (query, idle in transaction,
// client idle) on a fake clock. And the scanner that finds such SQL.
#include "session/session_state.hpp"
#include "tests/unit/session_core_harness.hpp"

namespace pglens::session {
namespace {

using namespace std::chrono_literals;
using pool::PoolMode;
using protocol::Bytes;
using Kind = Action::Kind;

std::optional<protocol::ErrorResponse> toy_syntax(std::string_view sql) {
  if (sql.starts_with("SELEC "))
    return protocol::make_error("42601", "syntax error at or near \"SELEC\"");
  return std::nullopt;
}

// The harness' CoreTest under a suite name of this file's (each file has its own CoreTest).
class PoolingTest : public CoreTest {};

class LocalParseTest : public CoreTest {
 protected:
  LocalParseTest() {
    configure = [](SessionSettings& s) { s.check_syntax = toy_syntax; };
  }
};

// libpq's PQprepare: Parse, Sync, and wait. With no connection held, pglens answers it.
TEST_F(LocalParseTest, BlockingPrepareIsAnsweredWithoutAServerConnection) {
  log_in(PoolMode::Transaction, server1);
  Bytes prepare = P("P_0", "SELECT $1") + S();
  EXPECT_EQ(client(prepare), prepare.size());
  EXPECT_EQ(take_actions(), kNone);  // no Acquire
  EXPECT_EQ(to_client(), ParseOk() + Z());
  EXPECT_EQ(to_server(), Bytes{});
  // Its first execution prepares it on the connection it gets.
  std::string name = named("SELECT $1");
  client_acquiring(B("P_0", {"4"}) + E() + S(), server2);
  EXPECT_EQ(to_server(), P(name, "SELECT $1") + B(name, {"4"}) + E() + S());
  server(ParseOk() + BindOk() + DR("4") + CC("SELECT 1") + Z());
  EXPECT_EQ(to_client(), BindOk() + DR("4") + CC("SELECT 1") + Z());
}

TEST_F(LocalParseTest, SyntaxErrorComesBackAtParseAsTheServerWouldSendIt) {
  log_in(PoolMode::Transaction, server1);
  Bytes prepare = P("bad", "SELEC 1") + S();
  EXPECT_EQ(client(prepare), prepare.size());
  EXPECT_EQ(to_client(), Err("42601", "syntax error at or near \"SELEC\"") + Z());
  EXPECT_EQ(take_actions(), kNone);
}

TEST_F(LocalParseTest, DescribeAfterALocalParseTakesAServer) {
  log_in(PoolMode::Transaction, server1);
  std::string name = named("SELECT 1");
  EXPECT_EQ(client(P("s", "SELECT 1")), P("s", "SELECT 1").size());
  EXPECT_EQ(to_client(), ParseOk());
  client_acquiring(Ds("s") + S(), server1);
  EXPECT_EQ(to_server(), P(name, "SELECT 1") + Ds(name) + S());
  Bytes described = raw('t', std::string("\0\0", 2)) + T("?column?");
  server(ParseOk() + described + Z());
  EXPECT_EQ(to_client(), described + Z());  // its ParseComplete was sent already
}

TEST_F(LocalParseTest, UnnamedParseStillGoesToTheServer) {
  log_in(PoolMode::Transaction, server1);
  EXPECT_EQ(client(P("", "SELECT 1")), 0u);
  EXPECT_EQ(take_actions(), (Actions{{Kind::Acquire}}));
}

TEST_F(LocalParseTest, ParseInsideATransactionGoesToItsConnection) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("BEGIN"), server1);
  server(CC("BEGIN") + Z('T'));
  to_client();
  std::string name = named("SELECT 2");
  EXPECT_EQ(client(P("s2", "SELECT 2") + S()), (P("s2", "SELECT 2") + S()).size());
  EXPECT_EQ(to_server(), Q("BEGIN") + P(name, "SELECT 2") + S());
}

TEST_F(LocalParseTest, WithoutASyntaxCheckEveryParseTakesAServer) {
  configure = {};
  log_in(PoolMode::Transaction, server1);
  EXPECT_EQ(client(P("P_0", "SELECT 1") + S()), 0u);
  EXPECT_EQ(take_actions(), (Actions{{Kind::Acquire}}));
}

// ---- session state left by SQL ----

TEST_F(PoolingTest, SetOfAnUnreportedParameterResetsTheConnectionBeforeItGoesBack) {
  log_in(PoolMode::Transaction, server1);
  server1.statements.insert(named("SELECT 1"));
  client_acquiring(Q("SET search_path = app, public"), server1);
  server(CC("SET") + Z());
  EXPECT_EQ(to_client(), CC("SET") + Z());
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::Log, false, "resetting server connection s1 after SET search_path"}}));
  EXPECT_EQ(to_server(), Q("SET search_path = app, public") + Q("DISCARD ALL"));
  EXPECT_TRUE(core->holds_server());
  // The client's next request waits: it must not reach the connection behind the reset.
  EXPECT_TRUE(core->client_paused());
  EXPECT_EQ(client(Q("SELECT 1")), 0u);
  server(CC("DISCARD ALL") + Z());
  EXPECT_EQ(to_client(), Bytes{});  // the reset is pglens' own
  EXPECT_EQ(take_actions(), (Actions{{Kind::Release, true}, {Kind::ResumeClient}}));
  EXPECT_EQ(server1.statements.size(), 0u);  // DISCARD ALL dropped them on the server
  EXPECT_EQ(traffic.state_resets.load(), 1u);
}

TEST_F(PoolingTest, SetOfAReportedParameterNeedsNoReset) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SET application_name = 'x'"), server1);
  server(PS("application_name", "x") + CC("SET") + Z());
  EXPECT_EQ(take_actions(), kReleased);
  EXPECT_EQ(traffic.state_resets.load(), 0u);
}

TEST_F(PoolingTest, NamedStatementLeavesItsStateWhenItRuns) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(P("lock", "SELECT pg_advisory_lock($1)") + S(), server1);
  server(ParseOk() + Z());
  EXPECT_EQ(take_actions(), kReleased);  // prepared only: nothing held yet
  client_acquiring(B("lock", {"42"}) + E() + S(), server1);
  server(BindOk() + DR("") + CC("SELECT 1") + Z());
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::Log, false, "resetting server connection s1 after advisory lock"}}));
  EXPECT_EQ(core->holds_server(), true);  // until the reset is answered
}

TEST_F(PoolingTest, ClientDiscardAllNeedsNoSecondReset) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("LISTEN jobs; DISCARD ALL"), server1);
  server(CC("LISTEN") + CC("DISCARD ALL") + Z());
  EXPECT_EQ(take_actions(), kReleased);
}

TEST_F(PoolingTest, SessionModeNeverResetsMidSession) {
  log_in(PoolMode::Session, server1);
  client(Q("SET search_path = app"));
  server(CC("SET") + Z());
  EXPECT_EQ(take_actions(), kNone);
}

TEST(SessionState, FindsWhatOutlivesTheTransaction) {
  for (auto [sql, found] : std::vector<std::pair<std::string_view, std::string_view>>{
           {"SET search_path = app", "SET search_path"},
           {"set statement_timeout to 5", "SET statement_timeout"},
           {"SET SESSION work_mem = '64MB'", "SET work_mem"},
           {"SET ROLE reporting", "SET ROLE"},
           {"SET SESSION AUTHORIZATION bob", "SET SESSION AUTHORIZATION"},
           {"  /* hint */ -- c\n PREPARE q AS SELECT 1", "PREPARE"},
           {"LISTEN jobs", "LISTEN"},
           {"CREATE TEMP TABLE t (a int)", "CREATE TEMP"},
           {"create global temporary table t (a int)", "CREATE TEMP"},
           {"SELECT pg_advisory_lock(1)", "advisory lock"},
           {"SELECT pg_try_advisory_lock_shared(1)", "advisory lock"},
           {"select PG_ADVISORY_LOCK(1)", "advisory lock"},
           {"advisory_lock", "advisory lock"},
           {"SELECT 1; /* a */ SELECT 'x;y', \"v;\"; LISTEN jobs", "LISTEN"},
           {"DECLARE c CURSOR WITH HOLD FOR SELECT 1", "DECLARE ... WITH HOLD"},
           {"LOAD 'auto_explain'", "LOAD"},
           {"SELECT 1; SET search_path = x", "SET search_path"},
       })
    EXPECT_EQ(session_state_left_by(sql), found) << sql;
}

TEST(SessionState, LeavesAloneWhatEndsWithTheTransaction) {
  for (std::string_view sql : {
           "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
           "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
           "SET LOCAL search_path = app",
           "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
           "SET application_name = 'x'",
           "SET TIME ZONE 'UTC'",
           "set datestyle to iso",
           "SELECT pg_advisory_xact_lock(1)",
           "CREATE TABLE t (a int)",
           "DECLARE c CURSOR FOR SELECT 1",
           "SELECT 'SET search_path = x'",
           "SELECT $$ LISTEN x $$",
           "SELECT 1 -- trailing comment",
           "SELECT 'unterminated",
           "v",
           "dv",
           "-- LISTEN x\nSELECT 1",
           "",
       })
    EXPECT_EQ(session_state_left_by(sql), "") << sql;
}

// ---- timeouts ----

TEST_F(PoolingTest, NoDeadlineWhenNoTimeoutIsSet) {
  log_in(PoolMode::Transaction, server1);
  EXPECT_EQ(core->deadline(), std::nullopt);
  client_acquiring(Q("SELECT 1"), server1);
  EXPECT_EQ(core->deadline(), std::nullopt);
}

TEST_F(PoolingTest, QueryTimeoutCancelsTheQueryAndClosesTheClient) {
  configure = [](SessionSettings& s) { s.query_timeout = 2s; };
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT pg_sleep(60)"), server1);
  EXPECT_EQ(core->deadline(), now + 2s);
  core->on_timer(now + 1s);  // early: nothing
  EXPECT_EQ(take_actions(), kNone);
  core->on_timer(now + 2s);
  EXPECT_EQ(
      to_client(),
      wire(protocol::make_error(
          "57014", "pglens: query_timeout (2 s): the query was cancelled and the connection closed",
          "FATAL")));
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "query_timeout"}}));
  core->finish(now + 2s);
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::CancelServer}, {Kind::Release, false, "left unclean"}}));
}

TEST_F(PoolingTest, IdleTransactionTimeoutClosesTheClient) {
  configure = [](SessionSettings& s) { s.idle_transaction_timeout = 5s; };
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("BEGIN"), server1);
  now += 1s;
  server(CC("BEGIN") + Z('T'));
  to_client();
  EXPECT_EQ(core->deadline(), now + 5s);
  core->on_timer(now + 5s);
  EXPECT_EQ(
      to_client(),
      wire(protocol::make_error(
          "25P03", "pglens: idle_transaction_timeout (5 s): the transaction was idle too long",
          "FATAL")));
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "idle_transaction_timeout"}}));
}

TEST_F(PoolingTest, ClientIdleTimeoutClosesAnIdleClientAndActivityMovesIt) {
  configure = [](SessionSettings& s) { s.client_idle_timeout = 10s; };
  log_in(PoolMode::Transaction, server1);
  EXPECT_EQ(core->deadline(), now + 10s);
  now += 4s;
  client_acquiring(Q("SELECT 1"), server1);
  EXPECT_EQ(core->deadline(), std::nullopt);  // busy: it holds a connection
  server(CC("SELECT 1") + Z());
  take_actions();
  EXPECT_EQ(core->deadline(), now + 10s);
  core->on_timer(now + 10s);
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "client_idle_timeout"}}));
}

}  // namespace
}  // namespace pglens::session
