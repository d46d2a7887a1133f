// SessionCore, byte by byte: client bytes in → server bytes out, server bytes in → client bytes
// out, with a fake clock and no sockets. Each test scripts one exchange the way the proxy's
// coroutines drive the core: feed, send what the outputs hold, carry out the actions.
//
// docs/faults.md lists, for each connection state, what a fault does and which test here pins
// it.
#include "tests/unit/session_core_harness.hpp"

namespace pglens::session {
namespace {

using namespace std::chrono_literals;
using pool::PoolMode;
using protocol::Bytes;
using Kind = Action::Kind;

// ---- login ----

TEST_F(CoreTest, LoginInSessionModeKeepsTheServerConnection) {
  log_in(PoolMode::Session, server1);
  EXPECT_TRUE(core->holds_server());
}

TEST_F(CoreTest, LoginInTransactionModeGivesTheServerConnectionBack) {
  log_in(PoolMode::Transaction, server1);
  EXPECT_FALSE(core->holds_server());
}

TEST_F(CoreTest, ClientBytesWaitUntilTheLoginIsAnswered) {
  make(PoolMode::Transaction);
  core->start(now);
  take_actions();
  EXPECT_TRUE(core->client_paused());
  EXPECT_EQ(client(Q("SELECT 1")), 0u);
  EXPECT_EQ(take_actions(), kNone);
}

TEST_F(CoreTest, LoginBringsTheServerInLineWithTheClientsParameters) {
  make(PoolMode::Transaction, {{"application_name", "shop"}, {"TimeZone", "UTC"}});
  core->start(now);
  take_actions();
  core->on_server_acquired(server1, 0ns, now);
  // TimeZone is the server's default already: only application_name is set.
  EXPECT_EQ(to_server(), Q("SELECT pg_catalog.set_config('application_name', 'shop', false);"));
  EXPECT_EQ(take_actions(), (Actions{{Kind::ReadServer}}));
  EXPECT_EQ(to_client(), Bytes{});  // nothing for the client until the server answers
  server(CC("SELECT 1") + Z());
  auto parameters = server1.parameters;
  parameters[2].value = "shop";  // the client sees the value it asked for
  EXPECT_EQ(to_client(), login_answer(parameters, kClientKey));
  EXPECT_EQ(take_actions(), (Actions{{Kind::Release, true}, {Kind::ResumeClient}}));
  EXPECT_EQ(server1.applied.at("application_name"), "shop");
}

TEST_F(CoreTest, LoginNeedsNoSyncWhenTheServerHasTheValuesAlready) {
  make(PoolMode::Session, {{"TimeZone", "UTC"}});
  core->start(now);
  take_actions();
  core->on_server_acquired(server1, 0ns, now);
  EXPECT_EQ(to_server(), Bytes{});
  EXPECT_EQ(to_client(), login_answer(server1.parameters, kClientKey));
}

TEST_F(CoreTest, UpstreamLoginFailureIsTheClientsFatalError) {
  make(PoolMode::Transaction);
  core->start(now);
  take_actions();
  core->on_acquire_failed(protocol::make_error("3D000", "database \"nope\" does not exist"), now);
  EXPECT_EQ(to_client(),
            wire(protocol::make_error("3D000", "database \"nope\" does not exist", "FATAL")));
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false,
                                      "upstream login failed: database \"nope\" does not exist"}}));
  EXPECT_TRUE(core->ended());
}

TEST_F(CoreTest, ParameterSyncErrorAtLoginClosesTheConnectionAndFailsTheLogin) {
  make(PoolMode::Transaction, {{"TimeZone", "Mars/Olympus"}});
  core->start(now);
  take_actions();
  core->on_server_acquired(server1, 0ns, now);
  to_server();
  take_actions();
  server(Err("22023", "invalid value for parameter \"TimeZone\"") + Z());
  auto actions = take_actions();
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].kind, Kind::Release);
  EXPECT_FALSE(actions[0].reusable);
  EXPECT_EQ(actions[1].kind, Kind::CloseClient);
  EXPECT_EQ(to_client(), wire(protocol::make_error(
                             "22023", "invalid value for parameter \"TimeZone\"", "FATAL")));
}

// ---- simple protocol, transaction mode ----

TEST_F(CoreTest, SimpleQueryTakesAServerAndGivesItBackAtReadyForQuery) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT 1"), server1);
  EXPECT_EQ(to_server(), Q("SELECT 1"));
  server(T("?column?") + DR("1") + CC("SELECT 1") + Z());
  EXPECT_EQ(to_client(), T("?column?") + DR("1") + CC("SELECT 1") + Z());
  EXPECT_EQ(take_actions(), kReleased);
  EXPECT_FALSE(core->holds_server());
  EXPECT_EQ(traffic.queries.load(), 1u);
  EXPECT_EQ(traffic.transactions.load(), 1u);
}

TEST_F(CoreTest, ForwardedMessagesAreNotCopied) {
  log_in(PoolMode::Transaction, server1);
  Bytes request = Q("SELECT 1") + Q("SELECT 2");
  EXPECT_EQ(core->on_client_bytes(request, now), 0u);
  take_actions();
  core->on_server_acquired(server1, 0ns, now);
  take_actions();
  EXPECT_EQ(core->on_client_bytes(request, now), request.size());
  // One piece: the input itself.
  ASSERT_EQ(core->server_output().pieces(), 1u);
  core->server_output().for_each([&](const std::uint8_t* data, std::size_t size) {
    EXPECT_EQ(data, request.data());
    EXPECT_EQ(size, request.size());
  });
}

TEST_F(CoreTest, MultiStatementQueryIsOneRoundTrip) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT 1; SELECT 2"), server1);
  to_server();
  server(T("a") + DR("1") + CC("SELECT 1"));
  EXPECT_EQ(take_actions(), kNone);  // more to come
  server(T("b") + DR("2") + CC("SELECT 1") + Z());
  EXPECT_EQ(to_client(),
            T("a") + DR("1") + CC("SELECT 1") + T("b") + DR("2") + CC("SELECT 1") + Z());
  EXPECT_EQ(take_actions(), kReleased);
  EXPECT_EQ(traffic.queries.load(), 1u);
}

TEST_F(CoreTest, PipelinedQueriesShareTheConnectionUntilTheLastAnswer) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT 1") + Q("SELECT 2"), server1);
  EXPECT_EQ(to_server(), Q("SELECT 1") + Q("SELECT 2"));
  server(CC("SELECT 1") + Z());
  EXPECT_EQ(take_actions(), kNone);  // the second is still unanswered
  server(CC("SELECT 1") + Z());
  EXPECT_EQ(take_actions(), kReleased);
}

TEST_F(CoreTest, ExplicitTransactionKeepsTheConnection) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("BEGIN"), server1);
  server(CC("BEGIN") + Z('T'));
  EXPECT_EQ(take_actions(), kNone);
  EXPECT_EQ(core->transaction_status(), 'T');
  EXPECT_EQ(client(Q("SELECT 1")), Q("SELECT 1").size());  // no acquire: it holds one
  EXPECT_EQ(take_actions(), kNone);
  server(CC("SELECT 1") + Z('T'));
  client(Q("COMMIT"));
  server(CC("COMMIT") + Z('I'));
  EXPECT_EQ(take_actions(), kReleased);
  EXPECT_EQ(traffic.transactions.load(), 1u);
  EXPECT_EQ(traffic.queries.load(), 3u);
}

TEST_F(CoreTest, ErrorMidTransactionKeepsTheConnectionUntilRollback) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("BEGIN"), server1);
  server(CC("BEGIN") + Z('T'));
  client(Q("SELECT nope"));
  server(Err("42703", "column \"nope\" does not exist") + Z('E'));
  EXPECT_EQ(take_actions(), kNone);
  EXPECT_EQ(core->transaction_status(), 'E');
  client(Q("ROLLBACK"));
  server(CC("ROLLBACK") + Z('I'));
  EXPECT_EQ(to_client(), CC("BEGIN") + Z('T') + Err("42703", "column \"nope\" does not exist") +
                             Z('E') + CC("ROLLBACK") + Z('I'));
  EXPECT_EQ(take_actions(), kReleased);
}

TEST_F(CoreTest, MessageSplitAcrossReadsGoesOutWhole) {
  log_in(PoolMode::Transaction, server1);
  Bytes q = Q("SELECT 'a long enough query'");
  Bytes first(q.begin(), q.begin() + 3), second(q.begin() + 3, q.begin() + 12),
      third(q.begin() + 12, q.end());
  client_acquiring(first, server1);
  EXPECT_EQ(client(second), second.size());
  EXPECT_EQ(to_server(), Bytes{});  // not whole yet
  EXPECT_EQ(client(third), third.size());
  EXPECT_EQ(to_server(), q);
}

TEST_F(CoreTest, ServerAnswerSplitAcrossReadsReachesTheClientWhole) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT 1"), server1);
  Bytes answer = T("x") + DR("1") + CC("SELECT 1") + Z();
  for (std::size_t i = 0; i < answer.size(); i += 5) {
    server(Bytes(answer.begin() + static_cast<std::ptrdiff_t>(i),
                 answer.begin() + static_cast<std::ptrdiff_t>(std::min(i + 5, answer.size()))));
    if (i + 5 < answer.size()) {
      EXPECT_EQ(take_actions(), kNone);
    }
  }
  EXPECT_EQ(take_actions(), kReleased);
}

TEST_F(CoreTest, LargeDataRowIsStreamedThrough) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT big"), server1);
  Bytes big = DR(std::string(200'000, 'x'));
  Bytes answer = T("big") + big + CC("SELECT 1") + Z();
  Bytes got;
  for (std::size_t i = 0; i < answer.size(); i += 65536) {
    server(Bytes(answer.begin() + static_cast<std::ptrdiff_t>(i),
                 answer.begin() + static_cast<std::ptrdiff_t>(std::min(i + 65536, answer.size()))));
    auto part = to_client();
    got.insert(got.end(), part.begin(), part.end());
  }
  EXPECT_EQ(got, answer);
  EXPECT_EQ(take_actions(), kReleased);
}

TEST_F(CoreTest, FlushOutsideABatchTakesNoServer) {
  log_in(PoolMode::Transaction, server1);
  EXPECT_EQ(client(H()), H().size());
  EXPECT_EQ(take_actions(), kNone);
  EXPECT_EQ(to_server(), Bytes{});
}

TEST_F(CoreTest, CopyDataOutsideACopyIsDropped) {
  log_in(PoolMode::Transaction, server1);
  EXPECT_EQ(client(d("stray") + c()), (d("stray") + c()).size());
  EXPECT_EQ(take_actions(), kNone);
  EXPECT_EQ(to_server(), Bytes{});
}

TEST_F(CoreTest, EmptyQueryIsForwarded) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q(""), server1);
  server(EmptyOk() + Z());
  EXPECT_EQ(to_client(), EmptyOk() + Z());
  EXPECT_EQ(take_actions(), kReleased);
}

// ---- extended protocol ----

TEST_F(CoreTest, UnnamedExtendedBatchIsForwardedAsItIs) {
  log_in(PoolMode::Transaction, server1);
  Bytes batch = P("", "SELECT $1") + B("", {"7"}) + Dp() + E() + S();
  client_acquiring(batch, server1);
  EXPECT_EQ(to_server(), batch);
  Bytes answer = ParseOk() + BindOk() + T("x") + DR("7") + CC("SELECT 1") + Z();
  server(answer);
  EXPECT_EQ(to_client(), answer);
  EXPECT_EQ(take_actions(), kReleased);
}

TEST_F(CoreTest, OpenBatchKeepsTheConnectionUntilItsSync) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(P("", "SELECT 1") + B("") + E() + H(), server1);
  server(ParseOk() + BindOk() + CC("SELECT 1"));
  EXPECT_EQ(take_actions(), kNone);  // unsynced: the client may go on with this batch
  client(S());
  server(Z());
  EXPECT_EQ(take_actions(), kReleased);
}

TEST_F(CoreTest, NamedStatementIsPreparedUnderItsServerName) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(P("s1", "SELECT $1") + B("s1", {"1"}) + E() + S(), server1);
  std::string name = named("SELECT $1");
  EXPECT_EQ(to_server(), P(name, "SELECT $1") + B(name, {"1"}) + E() + S());
  server(ParseOk() + BindOk() + DR("1") + CC("SELECT 1") + Z());
  EXPECT_EQ(to_client(), ParseOk() + BindOk() + DR("1") + CC("SELECT 1") + Z());
  EXPECT_TRUE(server1.statements.touch(name));
}

TEST_F(CoreTest, NamedStatementIsPreparedOnAFreshServerConnectionFirst) {
  log_in(PoolMode::Transaction, server1);
  std::string name = named("SELECT $1");
  client_acquiring(P("s1", "SELECT $1") + S(), server1);
  to_server();
  server(ParseOk() + Z());
  EXPECT_EQ(take_actions(), kReleased);
  to_client();
  // The next transaction gets server2, which has never seen the statement.
  client_acquiring(B("s1", {"2"}) + E() + S(), server2);
  EXPECT_EQ(to_server(), P(name, "SELECT $1") + B(name, {"2"}) + E() + S());
  server(ParseOk() + BindOk() + DR("2") + CC("SELECT 1") + Z());
  // pglens' own Parse is answered to pglens, not to the client.
  EXPECT_EQ(to_client(), BindOk() + DR("2") + CC("SELECT 1") + Z());
  EXPECT_TRUE(server2.statements.touch(name));
}

TEST_F(CoreTest, ParseOfAStatementTheServerHasBecomesAPlaceholderClose) {
  log_in(PoolMode::Transaction, server1);
  std::string name = named("SELECT 1");
  server1.statements.insert(name);
  client_acquiring(P("s1", "SELECT 1") + S(), server1);
  EXPECT_EQ(to_server(), Cs("pglens_placeholder") + S());
  server(CloseOk() + Z());
  EXPECT_EQ(to_client(), ParseOk() + Z());
}

TEST_F(CoreTest, DescribeOfANamedStatementIsRenamed) {
  log_in(PoolMode::Transaction, server1);
  std::string name = named("SELECT $1");
  client_acquiring(P("s1", "SELECT $1") + Ds("s1") + S(), server1);
  EXPECT_EQ(to_server(), P(name, "SELECT $1") + Ds(name) + S());
}

TEST_F(CoreTest, CloseOfAClientStatementKeepsItOnTheServer) {
  log_in(PoolMode::Transaction, server1);
  std::string name = named("SELECT 1");
  client_acquiring(P("s1", "SELECT 1") + Cs("s1") + S(), server1);
  EXPECT_EQ(to_server(), P(name, "SELECT 1") + Cs("pglens_placeholder") + S());
  server(ParseOk() + CloseOk() + Z());
  EXPECT_EQ(to_client(), ParseOk() + CloseOk() + Z());
  EXPECT_TRUE(server1.statements.touch(name));  // other clients may use it
}

TEST_F(CoreTest, DeallocateIsAnsweredForTheClientsNames) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(P("s1", "SELECT 1") + S(), server1);
  server(ParseOk() + Z());
  EXPECT_EQ(take_actions(), kReleased);
  to_server();
  to_client();
  client_acquiring(Q("DEALLOCATE s1"), server1);
  EXPECT_EQ(to_server(), Q(""));
  server(EmptyOk() + Z());
  EXPECT_EQ(to_client(), CC("DEALLOCATE") + Z());
  EXPECT_EQ(take_actions(), kReleased);
  // The client's name is gone: a Bind of it goes to the server as the client wrote it.
  client_acquiring(B("s1") + S(), server1);
  EXPECT_EQ(to_server(), B("s1") + S());
}

TEST_F(CoreTest, DeallocateAllForgetsEveryClientName) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(P("a", "SELECT 1") + P("b", "SELECT 2") + S(), server1);
  server(ParseOk() + ParseOk() + Z());
  take_actions();
  to_server();
  client_acquiring(Q("deallocate all;"), server1);
  EXPECT_EQ(to_server(), Q(""));
  server(EmptyOk() + Z());
  take_actions();
  client_acquiring(B("a") + B("b") + S(), server1);
  EXPECT_EQ(to_server(), B("a") + B("b") + S());
}

TEST_F(CoreTest, ErrorInABatchSkipsToSync) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(P("", "SELEC 1") + B("") + E() + S(), server1);
  server(Err("42601", "syntax error") + Z());
  EXPECT_EQ(to_client(), Err("42601", "syntax error") + Z());
  EXPECT_EQ(take_actions(), kReleased);
}

TEST_F(CoreTest, FailedParseOfANamedStatementIsForgottenByTheServerCache) {
  log_in(PoolMode::Transaction, server1);
  std::string name = named("SELEC 1");
  client_acquiring(P("s1", "SELEC 1") + S(), server1);
  server(Err("42601", "syntax error") + Z());
  EXPECT_FALSE(server1.statements.touch(name));
}

// ---- parameters ----

TEST_F(CoreTest, FreshConnectionIsBroughtInLineBeforeTheRequest) {
  make(PoolMode::Transaction, {{"application_name", "shop"}});
  core->start(now);
  take_actions();
  server1.applied = {{"application_name", "shop"}};
  core->on_server_acquired(server1, 0ns, now);
  take_actions();
  to_client();
  // server2 has never seen this client: it is synced first, the query waits.
  EXPECT_EQ(client(Q("SELECT 1")), 0u);
  take_actions();
  core->on_server_acquired(server2, 0ns, now);
  EXPECT_EQ(to_server(), Q("SELECT pg_catalog.set_config('application_name', 'shop', false);"));
  EXPECT_EQ(take_actions(), (Actions{{Kind::ReadServer}}));
  EXPECT_TRUE(core->client_paused());
  EXPECT_EQ(client(Q("SELECT 1")), 0u);
  server(CC("SELECT 1") + Z());
  EXPECT_EQ(to_client(), Bytes{});                             // the sync's answer is pglens' own
  EXPECT_EQ(take_actions(), (Actions{{Kind::ResumeClient}}));  // and the connection stays
  EXPECT_EQ(client(Q("SELECT 1")), Q("SELECT 1").size());
  EXPECT_EQ(to_server(), Q("SELECT 1"));
  EXPECT_EQ(server2.applied.at("application_name"), "shop");
}

TEST_F(CoreTest, SetByTheClientFollowsItToTheNextConnection) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SET application_name = 'report'"), server1);
  to_server();
  server(PS("application_name", "report") + CC("SET") + Z());
  EXPECT_EQ(take_actions(), kReleased);
  EXPECT_EQ(core->client_parameters().at("application_name"), "report");
  EXPECT_EQ(server1.applied.at("application_name"), "report");
  EXPECT_EQ(client(Q("SELECT 1")), 0u);
  take_actions();
  core->on_server_acquired(server2, 0ns, now);
  EXPECT_EQ(to_server(), Q("SELECT pg_catalog.set_config('application_name', 'report', false);"));
}

TEST_F(CoreTest, DiscardAllForgetsWhatTheServerHad) {
  log_in(PoolMode::Transaction, server1);
  server1.statements.insert("pglens_x");
  client_acquiring(Q("DISCARD ALL"), server1);
  server1.applied = {{"TimeZone", "UTC"}};  // as a SET earlier in the transaction would leave it
  server(CC("DISCARD ALL") + Z());
  EXPECT_EQ(server1.statements.size(), 0u);
  EXPECT_TRUE(server1.applied.empty());
}

// ---- COPY ----

TEST_F(CoreTest, CopyInStreamsTheClientsRowsToTheServer) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("COPY t FROM STDIN"), server1);
  server(CopyIn());
  EXPECT_EQ(to_client(), CopyIn());
  EXPECT_EQ(take_actions(), kNone);
  Bytes rows = d("1\n") + d("2\n") + c();
  EXPECT_EQ(client(rows), rows.size());
  EXPECT_EQ(to_server(), Q("COPY t FROM STDIN") + rows);
  server(CC("COPY 2") + Z());
  EXPECT_EQ(to_client(), CC("COPY 2") + Z());
  EXPECT_EQ(take_actions(), kReleased);
}

TEST_F(CoreTest, LargeCopyDataIsStreamedToTheServer) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("COPY t FROM STDIN"), server1);
  server(CopyIn());
  to_server();
  Bytes big = d(std::string(150'000, 'r')) + c();
  Bytes sent;
  for (std::size_t i = 0; i < big.size(); i += 40'000) {
    Bytes part(big.begin() + static_cast<std::ptrdiff_t>(i),
               big.begin() + static_cast<std::ptrdiff_t>(std::min(i + 40'000, big.size())));
    EXPECT_EQ(client(part), part.size());
    auto out = to_server();
    sent.insert(sent.end(), out.begin(), out.end());
  }
  EXPECT_EQ(sent, big);
}

TEST_F(CoreTest, CopyOutStreamsTheServersRowsToTheClient) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("COPY t TO STDOUT"), server1);
  Bytes answer = CopyOut() + d("1\n") + d("2\n") + c() + CC("COPY 2") + Z();
  server(answer);
  EXPECT_EQ(to_client(), answer);
  EXPECT_EQ(take_actions(), kReleased);
}

// ---- session mode ----

TEST_F(CoreTest, SessionModeForwardsBytesAsTheyAre) {
  log_in(PoolMode::Session, server1);
  Bytes q = P("s1", "SELECT 1") + B("s1") + E() + S();
  Bytes half1(q.begin(), q.begin() + 7), half2(q.begin() + 7, q.end());
  EXPECT_EQ(client(half1), half1.size());
  EXPECT_EQ(to_server(), half1);  // not even whole messages wait
  EXPECT_EQ(client(half2), half2.size());
  EXPECT_EQ(to_server(), half2);  // and named statements keep their names
  Bytes answer = ParseOk() + BindOk() + DR("1") + CC("SELECT 1") + Z();
  server(answer);
  EXPECT_EQ(to_client(), answer);
  EXPECT_EQ(take_actions(), kNone);  // the connection is the session's
}

TEST_F(CoreTest, SessionModeTerminateIsNotForwardedAndTheResetQueryRuns) {
  log_in(PoolMode::Session, server1);
  server1.applied = {{"TimeZone", "UTC"}};
  Bytes x = X();
  EXPECT_EQ(client(Q("SELECT 1") + x), (Q("SELECT 1") + x).size());
  EXPECT_EQ(to_server(), Q("SELECT 1"));
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "client sent Terminate"}}));
  server(CC("SELECT 1") + Z());
  to_client();
  core->finish(now);
  EXPECT_EQ(to_server(), Q("DISCARD ALL"));
  EXPECT_EQ(take_actions(), kNone);
  EXPECT_TRUE(core->holds_server());
  server(CC("DISCARD ALL") + Z());
  EXPECT_EQ(to_client(), Bytes{});
  EXPECT_EQ(take_actions(), kReleased);
  EXPECT_TRUE(server1.applied.empty());
}

TEST_F(CoreTest, SessionModeTerminateSplitAcrossReadsIsNotForwarded) {
  log_in(PoolMode::Session, server1);
  Bytes x = X();
  EXPECT_EQ(client(Bytes(x.begin(), x.begin() + 2)), 2u);
  EXPECT_EQ(client(Bytes(x.begin() + 2, x.end())), 3u);
  EXPECT_EQ(to_server(), Bytes{});
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "client sent Terminate"}}));
}

TEST_F(CoreTest, FailedResetQueryClosesTheConnection) {
  log_in(PoolMode::Session, server1);
  client(X());
  take_actions();
  core->finish(now);
  to_server();
  server(Err("XX000", "boom") + Z());
  auto actions = take_actions();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, Kind::Release);
  EXPECT_FALSE(actions[0].reusable);
}

TEST_F(CoreTest, SessionModeAfterAnUnfinishedTransactionSkipsTheResetQuery) {
  log_in(PoolMode::Session, server1);
  client(Q("BEGIN"));
  server(CC("BEGIN") + Z('T'));
  core->on_client_gone("client closed connection", now);
  core->finish(now);
  EXPECT_EQ(to_server(), Q("BEGIN"));  // no DISCARD ALL behind it
  auto actions = take_actions();
  EXPECT_EQ(actions.back(), (Action{Kind::Release, false, "left unclean"}));
}

// ---- statement mode ----

TEST_F(CoreTest, StatementModeRefusesTransactionBlocks) {
  log_in(PoolMode::Statement, server1);
  client_acquiring(Q("BEGIN"), server1);
  server(CC("BEGIN") + Z('T'));
  // Not its ReadyForQuery: the client's BEGIN fails with the error.
  EXPECT_EQ(to_client(),
            CC("BEGIN") +
                wire(protocol::make_error(
                    "25001", "pglens: transaction blocks are not allowed in statement pooling mode",
                    "FATAL")));
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::CloseClient, false, "transaction block in statement mode"}}));
  core->finish(now);
  auto actions = take_actions();
  EXPECT_EQ(actions.back(), (Action{Kind::Release, false, "left unclean"}));
}

TEST_F(CoreTest, StatementModeGivesTheConnectionBackAfterEachStatement) {
  log_in(PoolMode::Statement, server1);
  client_acquiring(Q("SELECT 1"), server1);
  server(CC("SELECT 1") + Z());
  EXPECT_EQ(take_actions(), kReleased);
}

// ---- no server connection to be had ----

TEST_F(CoreTest, QueryRefusedWhenNoServerConnectionIsFree) {
  log_in(PoolMode::Transaction, server1);
  EXPECT_EQ(client(Q("SELECT 1")), 0u);
  take_actions();
  core->on_acquire_failed(protocol::make_error("53300", "pglens: no server connection"), now);
  EXPECT_EQ(to_client(), Err("53300", "pglens: no server connection") + Z());
  EXPECT_EQ(take_actions(), (Actions{{Kind::Warn, false, "pglens: no server connection"}}));
  // The refused query is answered: it is taken without a server, and the next one asks again.
  EXPECT_EQ(client(Q("SELECT 1") + Q("SELECT 2")), Q("SELECT 1").size());
  EXPECT_EQ(take_actions(), (Actions{{Kind::Acquire}}));
  EXPECT_FALSE(core->ended());
}

TEST_F(CoreTest, BatchRefusedSkipsToItsSync) {
  log_in(PoolMode::Transaction, server1);
  Bytes batch = P("", "SELECT 1") + B("") + E() + S();
  EXPECT_EQ(client(batch), 0u);
  take_actions();
  core->on_acquire_failed(protocol::make_error("53300", "pglens: no server connection"), now);
  EXPECT_EQ(client(batch), batch.size());
  EXPECT_EQ(to_client(), Err("53300", "pglens: no server connection") + Z());
  EXPECT_EQ(to_server(), Bytes{});
}

// ---- cancel ----

TEST_F(CoreTest, ClientGoneWhileAQueryRunsCancelsItAndClosesTheConnection) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT pg_sleep(10)"), server1);
  to_server();
  core->on_client_gone("client closed connection", now);
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::CloseClient, false, "client closed connection (mid-transaction)"}}));
  core->finish(now);
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::CancelServer}, {Kind::Release, false, "left unclean"}}));
}

TEST_F(CoreTest, ClientGoneIdleInTransactionModeHoldsNothing) {
  log_in(PoolMode::Transaction, server1);
  core->on_client_gone("client closed connection", now);
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "client closed connection"}}));
  core->finish(now);
  EXPECT_EQ(take_actions(), kNone);
}

TEST_F(CoreTest, ClientGoneInsideATransactionClosesTheConnectionWithoutCancel) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("BEGIN"), server1);
  server(CC("BEGIN") + Z('T'));
  core->on_client_gone("client closed connection", now);
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::CloseClient, false, "client closed connection (mid-transaction)"}}));
  core->finish(now);
  // Nothing runs there (the round trip ended): closing it is enough, its locks go with it.
  EXPECT_EQ(take_actions(), (Actions{{Kind::Release, false, "left unclean"}}));
}

TEST_F(CoreTest, ClientGoneMidMessage) {
  log_in(PoolMode::Transaction, server1);
  Bytes q = Q("SELECT 1");
  client_acquiring(Bytes(q.begin(), q.begin() + 6), server1);
  core->on_client_gone("client closed connection", now);
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::CloseClient, false, "client closed connection (mid-message)"}}));
}

TEST_F(CoreTest, TerminateWhileIdleEndsTheSession) {
  log_in(PoolMode::Transaction, server1);
  EXPECT_EQ(client(X()), X().size());
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "client sent Terminate"}}));
  core->finish(now);
  EXPECT_EQ(take_actions(), kNone);
}

// ---- bad input ----

TEST_F(CoreTest, ProtocolViolationFromTheClientEndsItsSessionAfterWhatCameBefore) {
  log_in(PoolMode::Transaction, server1);
  Bytes bad = Q("SELECT 1") + raw('!', "xx");
  EXPECT_EQ(client(bad), 0u);
  take_actions();
  core->on_server_acquired(server1, 0ns, now);
  take_actions();
  EXPECT_EQ(client(bad), Q("SELECT 1").size());  // the bad message is not taken
  EXPECT_EQ(to_server(), Q("SELECT 1"));         // what came before the bad message still goes
  EXPECT_EQ(to_client(),
            wire(protocol::make_error("08P01",
                                      "pglens: protocol violation from client: unknown message "
                                      "type '!'",
                                      "FATAL")));
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::CloseClient, false, "protocol violation: unknown message type '!'"}}));
  core->finish(now);
  EXPECT_EQ(take_actions().back(), (Action{Kind::Release, false, "left unclean"}));
}

TEST_F(CoreTest, ProtocolViolationFromTheServerEndsTheSession) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT 1"), server1);
  server(raw('!', "?"));
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::CloseClient, false,
                      "protocol violation from server: unknown message type '!'"}}));
}

// ---- the server lost, in each state ----

TEST_F(CoreTest, ServerLostWhileIdleInSessionModeEndsTheSession) {
  log_in(PoolMode::Session, server1);
  core->on_server_lost("server closed connection", now);
  EXPECT_EQ(to_client(),
            wire(protocol::make_error("08006", "pglens: the server connection was lost", "FATAL")));
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "server closed connection"}}));
  core->finish(now);
  EXPECT_EQ(take_actions(), (Actions{{Kind::Release, false, "left unclean"}}));
}

// In transaction mode an idle client holds no connection: a connection that dies in the pool is
// the pool's to notice (issue 18: idle connections are watched and replaced). The client's next
// query then gets a working connection.
TEST_F(CoreTest, ServerLostWhileIdleInTransactionModeIsNotTheClientsConcern) {
  log_in(PoolMode::Transaction, server1);
  EXPECT_FALSE(core->holds_server());
  core->on_server_lost("server closed connection", now);
  EXPECT_EQ(take_actions(), kNone);
  EXPECT_EQ(to_client(), Bytes{});
}

// A fresh connection dies while pglens brings it in line: nothing reached the client, so the
// request waits for another connection, which is synced and gets it.
TEST_F(CoreTest, ServerLostDuringParameterSyncIsRetriedOnAnotherConnection) {
  make(PoolMode::Transaction, {{"application_name", "shop"}});
  core->start(now);
  take_actions();
  core->on_server_acquired(server1, 0ns, now);  // login: synced
  server(CC("SELECT 1") + Z());
  take_actions();
  to_client();
  EXPECT_EQ(client(Q("SELECT 1")), 0u);
  take_actions();
  core->on_server_acquired(server2, 0ns, now);  // fresh: syncing
  to_server();
  take_actions();
  core->on_server_lost("server closed connection", now);
  EXPECT_EQ(to_client(), Bytes{});
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::Release, false,
                      "server closed connection; its requests go to another connection"},
                     {Kind::Acquire}}));
  EXPECT_TRUE(core->client_paused());
  core->on_server_acquired(server3, 0ns, now);
  EXPECT_EQ(to_server(), Q("SELECT pg_catalog.set_config('application_name', 'shop', false);"));
  server(CC("SELECT 1") + Z());
  EXPECT_EQ(take_actions(), (Actions{{Kind::ReadServer}, {Kind::ResumeClient}}));
  EXPECT_EQ(client(Q("SELECT 1")), Q("SELECT 1").size());
  EXPECT_EQ(to_server(), Q("SELECT 1"));
}

// A connection that just closes after the request went out: the request may have run (and
// committed, its answer lost on the way), so it is not sent again.
TEST_F(CoreTest, ServerClosedBeforeTheFirstAnswerIsNotRetried) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(P("", "SELECT $1") + B("", {"1"}) + E() + S(), server1);
  to_server();
  core->on_server_lost("server closed connection", now);
  EXPECT_EQ(to_client(),
            wire(protocol::make_error("08006", "pglens: the server connection was lost", "FATAL")));
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "server closed connection"}}));
}

// pg_terminate_backend on an idle pooled connection: the backend sent FATAL 57P01 and closed.
// That FATAL comes where the answer should; it is not the client's, and the request goes again.
TEST_F(CoreTest, FatalInsteadOfTheFirstAnswerIsARetryNotTheClientsError) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(P("", "SELECT $1") + B("", {"1"}) + E() + S(), server1);
  to_server();
  server(terminated());
  EXPECT_EQ(to_client(), Bytes{});
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::Release, false,
                      "server sent FATAL 57P01: terminating connection due to administrator "
                      "command; its requests go to another connection"},
                     {Kind::Acquire}}));
  core->on_server_acquired(server2, 0ns, now);
  EXPECT_EQ(to_server(), P("", "SELECT $1") + B("", {"1"}) + E() + S());
  EXPECT_EQ(take_actions(), (Actions{{Kind::ReadServer}, {Kind::ResumeClient}}));
  server(ParseOk() + BindOk() + DR("1") + CC("SELECT 1") + Z());
  EXPECT_EQ(to_client(), ParseOk() + BindOk() + DR("1") + CC("SELECT 1") + Z());
  EXPECT_EQ(take_actions(), kReleased);
  EXPECT_EQ(traffic.transactions.load(), 1u);
}

TEST_F(CoreTest, FatalInsteadOfTheFirstAnswerToASimpleQuery) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT 1"), server1);
  to_server();
  server(terminated());
  EXPECT_EQ(to_client(), Bytes{});
  auto actions = take_actions();
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].reason,
            "server sent FATAL 57P01: terminating connection due to administrator command; its "
            "requests go to another connection");
  EXPECT_EQ(actions[1].kind, Kind::Acquire);
  core->on_server_acquired(server2, 0ns, now);
  EXPECT_EQ(to_server(), Q("SELECT 1"));
  server(CC("SELECT 1") + Z());
  EXPECT_EQ(to_client(), CC("SELECT 1") + Z());
}

// The retried request names a statement the new connection has never seen: it is prepared
// there first, as for any fresh connection.
TEST_F(CoreTest, RetryPreparesNamedStatementsOnTheNewConnection) {
  log_in(PoolMode::Transaction, server1);
  std::string name = named("SELECT $1");
  client_acquiring(P("s1", "SELECT $1") + B("s1", {"3"}) + E() + S(), server1);
  to_server();
  server(terminated());
  take_actions();
  core->on_server_acquired(server2, 0ns, now);
  EXPECT_EQ(to_server(), P(name, "SELECT $1") + B(name, {"3"}) + E() + S());
  server(ParseOk() + BindOk() + DR("3") + CC("SELECT 1") + Z());
  EXPECT_EQ(to_client(), ParseOk() + BindOk() + DR("3") + CC("SELECT 1") + Z());
}

// Three connections in a row end before answering: the request never ran, so the client gets
// the server's error for it (57P01, as an ERROR) and stays connected.
TEST_F(CoreTest, RetryIsTriedTwiceThenTheRequestGetsTheServersError) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT 1"), server1);
  for (auto* s : {&server2, &server3}) {
    server(terminated());
    EXPECT_EQ(take_actions().back().kind, Kind::Acquire);
    core->on_server_acquired(*s, 0ns, now);
    take_actions();
  }
  to_server();
  server(terminated());
  EXPECT_EQ(to_client(), Err("57P01", "terminating connection due to administrator command") + Z());
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::Release, false,
                      "server sent FATAL 57P01: terminating connection due to administrator "
                      "command; no retry left"},
                     {Kind::Warn, false, "terminating connection due to administrator command"}}));
  EXPECT_FALSE(core->ended());
  client_acquiring(Q("SELECT 2"), server1);  // and goes on
  EXPECT_EQ(to_server(), Q("SELECT 2"));
}

// The retry finds no connection (Postgres down past pool_timeout): the request, which never
// ran, gets the pool's error; the client stays.
TEST_F(CoreTest, RetryWithNoConnectionToBeHadGivesTheRequestThePoolsError) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(P("", "SELECT 1") + B("") + E() + S(), server1);
  server(terminated());
  take_actions();
  core->on_acquire_failed(protocol::make_error("08006", "the server cannot be reached"), now);
  EXPECT_EQ(to_client(), Err("08006", "the server cannot be reached") + Z());
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::Warn, false, "the server cannot be reached"}, {Kind::ResumeClient}}));
  EXPECT_FALSE(core->ended());
}

TEST_F(CoreTest, NoRetryOnceAnAnswerReachedTheClient) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT generate_series(1, 3)"), server1);
  server(T("g"));
  server(terminated());  // its FATAL reaches the client, and ends its session
  EXPECT_EQ(to_client(), T("g") + terminated());
  core->on_server_lost("server closed connection", now);
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "server closed connection"}}));
}

TEST_F(CoreTest, NoRetryOfTheSecondRequestOfATransaction) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("BEGIN"), server1);
  server(CC("BEGIN") + Z('T'));
  client(Q("INSERT INTO t VALUES (1)"));
  server(terminated());
  core->on_server_lost("server closed connection", now);
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "server closed connection"}}));
}

TEST_F(CoreTest, ServerLostDuringTheStateResetOnlyLosesTheConnection) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SET statement_timeout = 5"), server1);
  server(CC("SET") + Z());
  EXPECT_EQ(to_client(), CC("SET") + Z());  // the client has its answer
  take_actions();
  EXPECT_EQ(to_server(), Q("SET statement_timeout = 5") + Q("DISCARD ALL"));
  core->on_server_lost("server closed connection", now);
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::Release, false, "server closed connection during the state reset"},
                     {Kind::ResumeClient}}));
  EXPECT_FALSE(core->ended());
  EXPECT_EQ(to_client(), Bytes{});
}

TEST_F(CoreTest, ServerLostMidResultBetweenMessagesSendsAFatalError) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT generate_series(1, 3)"), server1);
  server(T("g") + DR("1"));
  core->on_server_lost("server read error: Connection reset by peer", now);
  EXPECT_EQ(to_client(), T("g") + DR("1") +
                             wire(protocol::make_error(
                                 "08006", "pglens: the server connection was lost", "FATAL")));
  EXPECT_EQ(take_actions(),
            (Actions{{Kind::CloseClient, false, "server read error: Connection reset by peer"}}));
}

TEST_F(CoreTest, ServerLostInsideAMessageClosesWithoutAnother) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT 1"), server1);
  Bytes row = DR("1234567890");
  server(T("g") + Bytes(row.begin(), row.begin() + 7));
  to_client();
  core->on_server_lost("server closed connection", now);
  // A message cannot follow half a message: the client only sees the connection close.
  EXPECT_EQ(to_client(), Bytes{});
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "server closed connection"}}));
}

TEST_F(CoreTest, ServerLostInsideATransactionEndsTheSession) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("BEGIN"), server1);
  server(CC("BEGIN") + Z('T'));
  to_client();
  core->on_server_lost("server closed connection", now);
  EXPECT_EQ(to_client(),
            wire(protocol::make_error("08006", "pglens: the server connection was lost", "FATAL")));
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "server closed connection"}}));
  core->finish(now);
  EXPECT_EQ(take_actions(), (Actions{{Kind::Release, false, "left unclean"}}));
}

// The backend is terminated while its client is idle inside a transaction: Postgres' own
// FATAL reaches the client with its SQLSTATE, and pglens adds no second one.
TEST_F(CoreTest, ServerFatalInsideATransactionReachesTheClientWithItsSqlstate) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("BEGIN"), server1);
  server(CC("BEGIN") + Z('T'));
  to_client();
  Bytes fatal57 = wire(protocol::make_error(
      "57P01", "terminating connection due to administrator command", "FATAL"));
  server(fatal57);
  EXPECT_EQ(to_client(), fatal57);
  core->on_server_lost("server closed connection", now);
  EXPECT_EQ(to_client(), Bytes{});
  EXPECT_EQ(take_actions(), (Actions{{Kind::CloseClient, false, "server closed connection"}}));
}

TEST_F(CoreTest, GarbageAnswerToTheResetQueryClosesTheConnection) {
  log_in(PoolMode::Session, server1);
  client(X());
  take_actions();
  core->finish(now);
  to_server();
  server(raw('!', "?"));
  auto actions = take_actions();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, Kind::Release);
  EXPECT_FALSE(actions[0].reusable);
  EXPECT_FALSE(core->holds_server());
}

TEST_F(CoreTest, ServerLostDuringTheResetQueryClosesTheConnection) {
  log_in(PoolMode::Session, server1);
  client(X());
  take_actions();
  core->finish(now);
  to_server();
  core->on_server_lost("server closed connection", now);
  EXPECT_EQ(
      take_actions(),
      (Actions{{Kind::Release, false, "server closed connection during server_reset_query"}}));
  EXPECT_FALSE(core->holds_server());
}

// ---- time and analysis ----

TEST_F(CoreTest, RoundTripTimesComeFromTheClockPassedIn) {
  log_in(PoolMode::Transaction, server1);
  client_acquiring(Q("SELECT 1"), server1);
  now += 3ms;
  server(CC("SELECT 1") + Z());
  EXPECT_EQ(traffic.query_us.load(), 3000u);
  EXPECT_EQ(traffic.transaction_us.load(), 3000u);
}

TEST_F(CoreTest, EveryStatementReachesTheAnalysisWithItsPoolWait) {
  auto who = std::make_shared<analyzer::SessionInfo>();
  who->session_id = 9;
  make(PoolMode::Transaction, {}, std::make_unique<ExecutionTracker>(who, queue));
  core->start(now);
  take_actions();
  core->on_server_acquired(server1, 0ns, now);
  take_actions();
  EXPECT_EQ(client(P("", "SELECT $1") + B("", {"5"}) + E() + S()), 0u);
  take_actions();
  core->on_server_acquired(server1, 2ms, now);
  take_actions();
  client(P("", "SELECT $1") + B("", {"5"}) + E() + S());
  now += 1ms;
  server(ParseOk() + BindOk() + DR("5") + CC("SELECT 1") + Z());
  analyzer::EventBatch batch;
  ASSERT_TRUE(queue.pop_all(batch, 0ms));
  std::vector<analyzer::ExecutionEvent> events;
  analyzer::EventReader reader;
  reader.read(batch, [&](const analyzer::ExecutionEvent& e) { events.push_back(e); });
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(*events[0].sql, "SELECT $1");
  EXPECT_EQ(events[0].rows, 1u);
  EXPECT_EQ(events[0].latency, 1ms);
  EXPECT_EQ(events[0].pool_wait, 2ms);
}

}  // namespace
}  // namespace pglens::session
