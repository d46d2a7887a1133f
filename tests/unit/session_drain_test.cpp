// Shutting down (SIGTERM): which sessions may be closed now, which when their transaction ends
// (SessionCore::on_shutdown, at_rest), and the proxy's bookkeeping of what is left
// (drain_progress, drain_step), and /healthz while draining.
#include "proxy/drain.hpp"
#include "proxy/http_server.hpp"
#include "tests/unit/session_core_harness.hpp"

namespace pglens::session {
namespace {

using namespace std::chrono_literals;
using pool::PoolMode;
using protocol::Bytes;
using Kind = Action::Kind;

class DrainTest : public CoreTest {};

Bytes shutting_down(const std::string& sqlstate = "57P01") {
  return wire(protocol::make_error(sqlstate, "pglens is shutting down", "FATAL"));
}
const Actions kClosed{{Kind::CloseClient, false, "shutting down"}};

TEST_F(DrainTest, IdleClientInTransactionModeIsClosedAtOnce) {
  log_in(PoolMode::Transaction, server1);
  EXPECT_TRUE(core->at_rest());
  core->on_shutdown(now);
  EXPECT_EQ(to_client(), shutting_down());
  EXPECT_EQ(take_actions(), kClosed);
  EXPECT_TRUE(core->ended());
}

TEST_F(DrainTest, TransactionInFlightFinishesFirst) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("BEGIN"), server1);
  server(CC("BEGIN") + Z('T'));
  to_client();
  EXPECT_FALSE(core->at_rest());
  core->on_shutdown(now);
  EXPECT_EQ(to_client(), Bytes{});  // nothing said yet
  EXPECT_EQ(take_actions(), kNone);
  // The rest of the transaction runs as usual...
  EXPECT_EQ(client(Q("UPDATE t SET x = 1")), Q("UPDATE t SET x = 1").size());
  server(CC("UPDATE 1") + Z('T'));
  EXPECT_EQ(to_client(), CC("UPDATE 1") + Z('T'));
  EXPECT_EQ(take_actions(), kNone);
  EXPECT_EQ(client(Q("COMMIT")), Q("COMMIT").size());
  to_server();
  // ...and once COMMIT is answered the connection goes back and the client is told.
  server(CC("COMMIT") + Z('I'));
  EXPECT_EQ(to_client(), CC("COMMIT") + Z('I') + shutting_down());
  EXPECT_EQ(take_actions(), (Actions{{Kind::Release, true}, kClosed[0]}));
}

TEST_F(DrainTest, ARequestOutsideATransactionIsAnsweredFirst) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT pg_sleep(1)"), server1);
  core->on_shutdown(now);
  EXPECT_EQ(take_actions(), kNone);
  server(CC("SELECT 1") + Z('I'));
  EXPECT_EQ(to_client(), CC("SELECT 1") + Z('I') + shutting_down());
  EXPECT_EQ(take_actions(), (Actions{{Kind::Release, true}, kClosed[0]}));
}

TEST_F(DrainTest, ClientWaitingForAConnectionIsNotAtRest) {
  log_in(PoolMode::Transaction, server1);
  EXPECT_EQ(client(Q("SELECT 1")), 0u);
  EXPECT_EQ(take_actions(), (Actions{{Kind::Acquire}}));
  EXPECT_FALSE(core->at_rest());
  core->on_shutdown(now);
  EXPECT_EQ(take_actions(), kNone);
  core->on_server_acquired(server1, 1ms, now);
  take_actions();
  EXPECT_EQ(client(Q("SELECT 1")), Q("SELECT 1").size());
  server(CC("SELECT 1") + Z('I'));
  EXPECT_EQ(to_client(), CC("SELECT 1") + Z('I') + shutting_down());
}

TEST_F(DrainTest, ExtendedBatchWithoutSyncIsNotAtRest) {
  configure = [](SessionSettings& s) {
    s.check_syntax = [](std::string_view) -> std::optional<protocol::ErrorResponse> {
      return std::nullopt;
    };
  };
  log_in(PoolMode::Transaction, server1);
  EXPECT_EQ(client(P("s", "SELECT 1")), P("s", "SELECT 1").size());  // answered here
  to_client();
  EXPECT_FALSE(core->at_rest());
  core->on_shutdown(now);
  EXPECT_EQ(take_actions(), kNone);
  // Its Sync, answered here too, ends the batch: then it is closed.
  EXPECT_EQ(client(S()), S().size());
  EXPECT_EQ(to_client(), Z() + shutting_down());
  EXPECT_EQ(take_actions(), kClosed);
}

TEST_F(DrainTest, SessionModeClientIsClosedWhenIdleAndItsConnectionGoesBackClean) {
  log_in(PoolMode::Session, server1);
  EXPECT_EQ(client(Q("BEGIN")), Q("BEGIN").size());
  server(CC("BEGIN") + Z('T'));
  to_client();
  core->on_shutdown(now);
  EXPECT_EQ(take_actions(), kNone);
  EXPECT_EQ(client(Q("COMMIT")), Q("COMMIT").size());
  server(CC("COMMIT") + Z('I'));
  EXPECT_EQ(to_client(), CC("COMMIT") + Z('I') + shutting_down());
  EXPECT_EQ(take_actions(), kClosed);
  // The session's end resets the connection, which goes back to the pool.
  to_server();
  core->finish(now);
  EXPECT_EQ(to_server(), Q("DISCARD ALL"));
}

TEST_F(DrainTest, LoginAfterTheShutdownBeganIsRefused) {
  make(PoolMode::Transaction);
  core->on_shutdown(now);
  core->start(now);
  EXPECT_EQ(to_client(), shutting_down("57P03"));
  EXPECT_EQ(take_actions(), kClosed);
}

TEST_F(DrainTest, LoginUnderWayFinishesThenTheClientIsClosed) {
  make(PoolMode::Transaction);
  core->start(now);
  EXPECT_EQ(take_actions(), (Actions{{Kind::Acquire}}));
  core->on_shutdown(now);
  EXPECT_EQ(take_actions(), kNone);
  core->on_server_acquired(server1, 0ns, now);
  EXPECT_EQ(to_client(), login_answer(server1.parameters, kClientKey) + shutting_down());
  EXPECT_EQ(take_actions(), (Actions{{Kind::Release, true}, {Kind::ResumeClient}, kClosed[0]}));
}

}  // namespace
}  // namespace pglens::session

namespace pglens::proxy {
namespace {

std::shared_ptr<ClientInfo> client(ClientState state, std::string database = "app",
                                   bool in_transaction = false) {
  auto c = std::make_shared<ClientInfo>();
  c->database = std::move(database);
  c->state = state;
  c->in_transaction = in_transaction;
  return c;
}

TEST(DrainProgress, CountsSessionsButNotTheAdminConsoleOrLogins) {
  std::vector<std::shared_ptr<const ClientInfo>> clients{client(ClientState::Active, "app", true),
                                                         client(ClientState::Idle),
                                                         client(ClientState::Waiting),
                                                         client(ClientState::Login, ""),
                                                         client(ClientState::Idle, "pglens"),
                                                         client(ClientState::Idle, "pgbouncer")};
  auto p = drain_progress(clients);
  EXPECT_EQ(p.sessions, 3u);
  EXPECT_EQ(p.holding_server, 2u);
  EXPECT_EQ(p.in_transaction, 1u);
}

TEST(DrainStep, DoneWhenNoSessionIsLeftElseWaitsUntilTheDeadline) {
  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  auto deadline = t0 + std::chrono::seconds(30);
  EXPECT_EQ(drain_step({}, t0, deadline), DrainStep::Done);
  EXPECT_EQ(drain_step({}, deadline + std::chrono::seconds(1), deadline), DrainStep::Done);
  DrainProgress busy{2, 1, 1};
  EXPECT_EQ(drain_step(busy, t0, deadline), DrainStep::Wait);
  EXPECT_EQ(drain_step(busy, deadline, deadline), DrainStep::TimedOut);
}

TEST(DrainHealth, ReadinessAnswers503WhileDrainingLivenessStays200) {
  asio::io_context io;
  bool draining = false;
  HttpServer::Sources sources;
  sources.draining = [&] { return draining; };
  HttpServer http(io, sources);
  EXPECT_EQ(http.handle("GET", "/healthz").status, 200u);
  draining = true;
  auto ready = http.handle("GET", "/healthz");
  EXPECT_EQ(ready.status, 503u);
  EXPECT_EQ(ready.body, "draining\n");
  EXPECT_EQ(http.handle("GET", "/livez").status, 200u);
}

}  // namespace
}  // namespace pglens::proxy
