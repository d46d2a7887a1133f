// ExecutionTracker: frames in, analyzer events out (no I/O). The session drives it together with
// the RequestLedger, as here.
#include "session/execution_tracker.hpp"

#include <gtest/gtest.h>

#include "protocol/messages.hpp"

namespace pglens::session {
namespace {

namespace pp = protocol;
using Clock = ExecutionTracker::Clock;

pp::Bytes body_of(const pp::Bytes& message) {
  return pp::Bytes(message.begin() + 5, message.end());
}

template <typename M>
pp::Bytes encoded_body(const M& m) {
  pp::Bytes out;
  m.encode(out);
  return body_of(out);
}

class TrackerTest : public ::testing::Test {
 protected:
  TrackerTest() : tracker(session(), queue) {}

  static std::shared_ptr<const analyzer::SessionInfo> session() {
    auto s = std::make_shared<analyzer::SessionInfo>();
    s->session_id = 7;
    s->database = "db";
    s->user = "u";
    return s;
  }

  // Client side: Parse/Bind/Execute/Sync of `sql` with text parameters, unnamed.
  void send_batch(const std::string& sql, const std::vector<std::string>& params) {
    auto parse = encoded_body(pp::Parse{"", sql, {}});
    tracker.on_parse(parse);
    ledger.push('P');
    pp::Bind bind;
    for (const auto& p : params) bind.params.emplace_back(pp::Bytes(p.begin(), p.end()));
    tracker.on_bind(encoded_body(bind));
    ledger.push('B');
    auto e = encoded_body(pp::Execute{"", 0});
    ledger.push('E', RequestLedger::Handling::Pass, {}, tracker.on_execute(e, now));
    tracker.on_sync();
    ledger.push('S');
  }

  // Server side: one response message.
  void receive(char type, const pp::Bytes& body = pp::Bytes{}) {
    pp::Frame f;
    f.kind = pp::FrameKind::Message;
    f.type = type;
    f.data = body;
    f.body_length = static_cast<std::uint32_t>(body.size());
    auto outcome = ledger.on_response(type);
    tracker.on_response(f, outcome, now);
    auto skipped = ledger.take_skipped_tags();  // as the session does
    if (!skipped.empty()) tracker.on_skipped(skipped);
    if (type == 'Z') tracker.on_ready(body.empty() ? 'I' : static_cast<char>(body[0]));
    drain();
  }

  // What reached the queue, decoded as the analyzer does, into `events`.
  void drain() {
    analyzer::EventBatch batch;
    if (!queue.pop_all(batch, std::chrono::milliseconds(0))) return;
    reader.read(batch, [&](const analyzer::ExecutionEvent& e) { events.push_back(e); });
  }

  // RowDescription of one text column, and a DataRow with one value.
  void receive_column(const std::string& name) {
    pp::RowDescription columns;
    columns.fields.push_back(pp::FieldDescription{name});
    receive('T', encoded_body(columns));
  }
  void receive_row(const std::string& value) {
    pp::DataRow row;
    row.values.emplace_back(pp::Bytes(value.begin(), value.end()));
    receive('D', encoded_body(row));
  }

  void complete(const std::string& tag) {
    pp::Bytes b(tag.begin(), tag.end());
    b.push_back(0);
    receive('C', b);
  }

  // Bind and Execute of the unnamed statement with one value, without a Sync.
  void bind_execute(const std::string& value) {
    pp::Bind bind;
    bind.params.emplace_back(pp::Bytes(value.begin(), value.end()));
    tracker.on_bind(encoded_body(bind));
    ledger.push('B');
    ledger.push('E', RequestLedger::Handling::Pass, {},
                tracker.on_execute(encoded_body(pp::Execute{"", 0}), now));
  }

  // Parse of `sql`, a Bind and Execute per value, then one Sync: a pipelined batch.
  void send_pipeline(const std::string& sql, const std::vector<std::string>& values) {
    tracker.on_parse(encoded_body(pp::Parse{"", sql, {}}));
    ledger.push('P');
    for (const auto& v : values) bind_execute(v);
    tracker.on_sync();
    ledger.push('S');
  }

  // After whatever came before: one more batch, tracked as usual.
  void expect_next_batch_tracked(const std::string& value) {
    events.clear();
    send_batch("SELECT $1", {value});
    receive('1');
    receive('2');
    complete("SELECT 1");
    receive('Z', {'I'});
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].parameters.at(0), value);
    EXPECT_FALSE(events[0].pipelined);
  }

  // Parse of "SELECT $1", the Bind message `bind_body`, Execute and Sync, all unnamed.
  void send_with_bind(const pp::Bytes& bind_body) {
    events.clear();
    tracker.on_parse(encoded_body(pp::Parse{"", "SELECT $1", {}}));
    ledger.push('P');
    tracker.on_bind(bind_body);
    ledger.push('B');
    ledger.push('E', RequestLedger::Handling::Pass, {},
                tracker.on_execute(encoded_body(pp::Execute{"", 0}), now));
    tracker.on_sync();
    ledger.push('S');
  }

  // The values of `bind` (of the unnamed statement), as the event of its Execute carries them.
  std::vector<std::optional<std::string>> parameters_of(const pp::Bind& bind) {
    send_with_bind(encoded_body(bind));
    receive('1');
    receive('2');
    complete("SELECT 1");
    receive('Z', {'I'});
    if (events.size() != 1)
      return {std::string("expected one event, got ") + std::to_string(events.size())};
    return events[0].parameters;
  }

  // Bind on `portal`, then two Executes with a row limit of 1 before one Sync.
  void expect_parameters_on_both_executes(const std::string& portal);

  analyzer::EventQueue queue{100'000};
  analyzer::EventReader reader;
  ExecutionTracker tracker;
  RequestLedger ledger;
  Clock::time_point now = Clock::now();
  std::vector<analyzer::ExecutionEvent> events;
};

TEST_F(TrackerTest, OneEventPerExecuteWithItsParametersAndRows) {
  send_batch("SELECT * FROM t WHERE id = $1", {"42"});
  receive('1');
  receive('2');
  complete("SELECT 3");
  receive('Z', {'I'});
  ASSERT_EQ(events.size(), 1u);
  const auto& e = events[0];
  EXPECT_EQ(*e.sql, "SELECT * FROM t WHERE id = $1");
  EXPECT_TRUE(e.extended);
  EXPECT_FALSE(e.pipelined);
  ASSERT_EQ(e.parameters.size(), 1u);
  EXPECT_EQ(e.parameters[0], "42");
  EXPECT_EQ(e.rows, 3u);
  EXPECT_EQ(e.session->session_id, 7u);
}

TEST_F(TrackerTest, BindValuesKeepNullsAndShowBinaryOnesInHex) {
  pp::Bind bind;
  bind.param_formats = {0, 1, 0};  // one code per value
  bind.params.emplace_back(pp::Bytes{'4', '2'});
  bind.params.emplace_back(pp::Bytes{0x00, 0x00, 0xbe, 0xef});
  bind.params.emplace_back(std::nullopt);
  auto p = parameters_of(bind);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0], "42");
  EXPECT_EQ(p[1], "\\x0000beef");
  EXPECT_EQ(p[2], std::nullopt);

  bind.param_formats = {1};  // one code for every value
  p = parameters_of(bind);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0], "\\x3432");
  EXPECT_EQ(p[1], "\\x0000beef");
  EXPECT_EQ(p[2], std::nullopt);

  bind.param_formats = {};  // none: all text
  bind.params.resize(1);
  p = parameters_of(bind);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], "42");
}

TEST_F(TrackerTest, BindValuesAreBoundedInCountAndSize) {
  pp::Bind bind;
  std::string long_text(analyzer::kMaxParameterBytes + 50, 'a');
  bind.params.emplace_back(pp::Bytes(long_text.begin(), long_text.end()));
  for (std::size_t i = 1; i < analyzer::kMaxParameters + 10; ++i) {
    auto v = std::to_string(i);
    bind.params.emplace_back(pp::Bytes(v.begin(), v.end()));
  }
  auto p = parameters_of(bind);
  ASSERT_EQ(p.size(), analyzer::kMaxParameters);
  EXPECT_EQ(p[0], long_text.substr(0, analyzer::kMaxParameterBytes));
  EXPECT_EQ(p.back(), std::to_string(analyzer::kMaxParameters - 1));

  // A binary value: as many of its bytes as fit the same bound in hex.
  pp::Bind binary;
  binary.param_formats = {1};
  binary.params.emplace_back(pp::Bytes(analyzer::kMaxParameterBytes * 2, 0xab));
  std::string hex = "\\x";
  for (std::size_t i = 0; i < analyzer::kMaxParameterBytes / 2; ++i) hex += "ab";
  p = parameters_of(binary);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], hex);
}

TEST_F(TrackerTest, ATruncatedBindRejectedByTheServerLeavesTheNextBatchTracked) {
  pp::Bind bind;
  bind.params.emplace_back(pp::Bytes{'4', '2'});
  auto body = encoded_body(bind);
  body.resize(body.size() - 4);  // cut into the value
  send_with_bind(body);
  receive('1');
  receive('E', encoded_body(pp::make_error("08P01", "bad bind")));  // the Bind's: no Execute ran
  receive('Z', {'I'});
  EXPECT_TRUE(events.empty());
  expect_next_batch_tracked("after");
}

TEST_F(TrackerTest, RowCountsComeFromTheCommandTag) {
  for (auto [tag, rows] : std::vector<std::pair<std::string, std::uint64_t>>{
           {"INSERT 0 5", 5}, {"UPDATE 12", 12}, {"BEGIN", 0}, {"SELECT x", 0}}) {
    events.clear();
    send_batch("SELECT 1", {});
    receive('1');
    receive('2');
    complete(tag);
    receive('Z', {'I'});
    ASSERT_EQ(events.size(), 1u) << tag;
    EXPECT_EQ(events[0].rows, rows) << tag;
  }
}

TEST_F(TrackerTest, EachExecuteOfTheUnnamedPortalKeepsItsOwnParameters) {
  // Two statements bound and executed in one pipelined batch: each event has the values its
  // own Bind carried.
  send_pipeline("INSERT INTO t VALUES ($1)", {"a", "b"});
  receive('1');
  receive('2');
  complete("INSERT 0 1");
  receive('2');
  complete("INSERT 0 1");
  receive('Z', {'I'});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].parameters.at(0), "a");
  EXPECT_EQ(events[1].parameters.at(0), "b");
  EXPECT_TRUE(events[0].pipelined);
  EXPECT_TRUE(events[1].pipelined);
}

TEST_F(TrackerTest, ANamedPortalExecutedTwiceReportsItsParametersBothTimes) {
  expect_parameters_on_both_executes("cursor");
}

TEST_F(TrackerTest, TheUnnamedPortalResumedAfterARowLimitKeepsItsParameters) {
  expect_parameters_on_both_executes("");
}

TEST_F(TrackerTest, ADeepPipelineReportsEveryStatementInOrder) {
  // Thousands of Executes before one Sync (a bulk insert pipeline), answered in order; then the
  // next batch is tracked as usual.
  constexpr int kStatements = 3000;
  std::vector<std::string> values;
  for (int i = 0; i < kStatements; ++i) values.push_back(std::to_string(i));
  send_pipeline("INSERT INTO t VALUES ($1)", values);
  receive('1');
  for (int i = 0; i < kStatements; ++i) {
    receive('2');
    complete("INSERT 0 1");
  }
  receive('Z', {'I'});
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kStatements));
  EXPECT_EQ(tracker.in_flight(), 0u);
  for (int i = 0; i < kStatements; ++i) {
    ASSERT_EQ(events[static_cast<std::size_t>(i)].parameters.at(0), std::to_string(i));
    EXPECT_TRUE(events[static_cast<std::size_t>(i)].pipelined);
  }
  expect_next_batch_tracked("next");
}

TEST_F(TrackerTest, APipelineThatNeverDrainsKeepsItsOrderAcrossSlotReuse) {
  // Answers arrive while more Executes are sent: the finished front is moved behind the live
  // statements for reuse, and the new ones fill those slots.
  tracker.on_parse(encoded_body(pp::Parse{"", "INSERT INTO t VALUES ($1)", {}}));
  ledger.push('P');
  int sent = 0, answered = 0;
  auto send = [&](int n) {
    for (int i = 0; i < n; ++i) bind_execute(std::to_string(sent++));
  };
  auto answer = [&](int n) {
    for (int i = 0; i < n; ++i, ++answered) {
      receive('2');
      complete("INSERT 0 1");
    }
  };
  send(100);
  receive('1');
  for (int round = 0; round < 20; ++round) {
    answer(70);
    send(70);
  }
  tracker.on_sync();
  ledger.push('S');
  answer(sent - answered);
  receive('Z', {'I'});
  ASSERT_EQ(events.size(), static_cast<std::size_t>(sent));
  for (int i = 0; i < sent; ++i)
    ASSERT_EQ(events[static_cast<std::size_t>(i)].parameters.at(0), std::to_string(i));
  EXPECT_EQ(tracker.in_flight(), 0u);
  expect_next_batch_tracked("next");
}

TEST_F(TrackerTest, AClosedOrUnknownStatementIsNotReported) {
  auto execute_unnamed_portal = [&] {
    return tracker.on_execute(encoded_body(pp::Execute{"", 0}), now);
  };
  tracker.on_parse(encoded_body(pp::Parse{"", "SELECT 1", {}}));
  tracker.on_close(encoded_body(pp::Close{'S', ""}));
  tracker.on_bind(encoded_body(pp::Bind{}));
  EXPECT_EQ(execute_unnamed_portal(), 0u);

  pp::Bind bind;
  bind.statement = "s1";
  tracker.on_bind(encoded_body(bind));  // never Parse'd
  EXPECT_EQ(execute_unnamed_portal(), 0u);

  tracker.on_parse(encoded_body(pp::Parse{"s1", "SELECT 2", {}}));
  tracker.on_bind(encoded_body(bind));
  tracker.on_close(encoded_body(pp::Close{'P', ""}));  // the portal, not the statement
  EXPECT_EQ(execute_unnamed_portal(), 0u);
  tracker.on_bind(encoded_body(bind));
  EXPECT_NE(execute_unnamed_portal(), 0u);
  tracker.on_close(encoded_body(pp::Close{'S', "s1"}));
  tracker.on_bind(encoded_body(bind));
  EXPECT_EQ(execute_unnamed_portal(), 0u);
}

TEST_F(TrackerTest, AfterAnErrorTheSkippedStatementsReportNothing) {
  // The second of three Executes fails: the server skips the third up to the Sync, so it ran
  // neither; the batch after is tracked as usual.
  send_pipeline("INSERT INTO t VALUES ($1)", {"a", "b", "c"});
  receive('1');
  receive('2');
  complete("INSERT 0 1");
  receive('2');
  receive('E', encoded_body(pp::make_error("23505", "duplicate key")));
  receive('Z', {'I'});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].parameters.at(0), "a");
  EXPECT_TRUE(events[0].sqlstate.empty());
  EXPECT_EQ(events[1].parameters.at(0), "b");
  EXPECT_EQ(events[1].sqlstate, "23505");
  EXPECT_EQ(tracker.in_flight(), 0u);  // "c" never ran: nothing waits for it
  expect_next_batch_tracked("d");
}

TEST_F(TrackerTest, AReusedSlotCarriesNothingOfItsLastStatement) {
  // The tracker fills the same slots again and again. After each kind of statement that sets
  // every field (extended, pipelined, with parameters, columns, a sampled row, rows and a pool
  // wait; failed; the second statement of a simple query), a plain simple query, which has none
  // of that, takes the same slot.
  auto expect_blank_simple_query = [&] {
    events.clear();
    ledger.push('Q', RequestLedger::Handling::Pass, {},
                tracker.on_query(encoded_body(pp::Query{"SET x = 1"}), now));
    complete("SET");
    receive('Z', {'I'});
    ASSERT_EQ(events.size(), 1u);
    const auto& e = events[0];
    EXPECT_EQ(*e.sql, "SET x = 1");
    EXPECT_EQ(e.session->session_id, 7u);
    EXPECT_FALSE(e.extended);
    EXPECT_FALSE(e.pipelined);
    EXPECT_EQ(e.statement_index, 0u);
    EXPECT_EQ(e.rows, 0u);
    EXPECT_TRUE(e.parameters.empty());
    EXPECT_TRUE(e.columns.empty());
    EXPECT_TRUE(e.result_sample.empty());
    EXPECT_TRUE(e.sqlstate.empty());
    EXPECT_EQ(e.pool_wait.count(), 0);
  };

  tracker.add_pool_wait(std::chrono::milliseconds(3));
  send_pipeline("SELECT id FROM t WHERE id = $1", {"1", "2"});
  receive('1');
  receive('2');
  receive_column("id");
  receive_row("1");
  complete("SELECT 1");
  receive('2');
  receive_column("id");
  complete("SELECT 0");
  receive('Z', {'I'});
  ASSERT_EQ(events.size(), 2u);
  ASSERT_EQ(events[0].result_sample.size(), 1u);
  ASSERT_TRUE(events[0].extended && events[0].pipelined && events[0].rows == 1);
  ASSERT_EQ(events[0].pool_wait, std::chrono::milliseconds(3));
  expect_blank_simple_query();

  events.clear();
  send_pipeline("SELECT id FROM t WHERE id = $1", {"1", "2"});
  receive('1');
  receive('2');
  receive('E', encoded_body(pp::make_error("57014", "canceled")));
  receive('Z', {'I'});
  ASSERT_EQ(events.size(), 1u);
  ASSERT_EQ(events[0].sqlstate, "57014");
  expect_blank_simple_query();

  events.clear();
  ledger.push('Q', RequestLedger::Handling::Pass, {},
              tracker.on_query(encoded_body(pp::Query{"SELECT 1; SELECT 2"}), now));
  receive_column("id");
  complete("SELECT 1");
  receive_column("id");
  receive_row("2");
  complete("SELECT 1");
  receive('Z', {'I'});
  ASSERT_EQ(events.size(), 2u);
  ASSERT_EQ(events[1].statement_index, 1u);
  expect_blank_simple_query();
}

TEST_F(TrackerTest, ASimpleQueryReportsEachOfItsStatements) {
  // Three statements in one Query: each its own event, numbered, with its own columns and rows;
  // the third fails.
  const std::string sql = "SELECT a FROM t; UPDATE t SET a = 1; SELECT 1/0";
  ledger.push('Q', RequestLedger::Handling::Pass, {},
              tracker.on_query(encoded_body(pp::Query{sql}), now));
  receive_column("a");
  receive_row("7");
  receive_row("7");
  complete("SELECT 2");
  complete("UPDATE 5");
  receive('E', encoded_body(pp::make_error("22012", "division by zero")));
  receive('Z', {'I'});
  ASSERT_EQ(events.size(), 3u);
  for (std::uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(*events[i].sql, sql);
    EXPECT_EQ(events[i].statement_index, i);
    EXPECT_FALSE(events[i].extended);
    EXPECT_EQ(events[i].transaction, 1u);
  }
  EXPECT_EQ(events[0].rows, 2u);
  EXPECT_EQ(events[0].columns, std::vector<std::string>{"a"});
  EXPECT_EQ(events[0].result_sample.size(), 2u);
  EXPECT_EQ(events[1].rows, 5u);
  EXPECT_TRUE(events[1].columns.empty());
  EXPECT_TRUE(events[1].result_sample.empty());
  EXPECT_TRUE(events[1].sqlstate.empty());
  EXPECT_EQ(events[2].sqlstate, "22012");
  EXPECT_EQ(tracker.in_flight(), 0u);
}

// asyncpg, pgJDBC and psycopg 3 describe a prepared statement once and then execute it without
// a RowDescription: the statement's columns name the rows of every later Execute.
TEST_F(TrackerTest, ADescribedStatementNamesTheColumnsOfLaterExecutes) {
  tracker.on_parse(encoded_body(pp::Parse{"s1", "SELECT id FROM customers", {}}));
  ledger.push('P');
  auto describe = encoded_body(pp::Describe{'S', "s1"});
  ledger.push('D', RequestLedger::Handling::Pass, {}, tracker.on_describe(describe));
  tracker.on_sync();
  ledger.push('S');
  receive('1');
  receive('t');
  receive_column("id");
  receive('Z', {'I'});
  for (int round = 0; round < 2; ++round) {
    pp::Bind bind;
    bind.statement = "s1";
    tracker.on_bind(encoded_body(bind));
    ledger.push('B');
    ledger.push('E', RequestLedger::Handling::Pass, {},
                tracker.on_execute(encoded_body(pp::Execute{"", 0}), now));
    tracker.on_sync();
    ledger.push('S');
    receive('2');
    receive_row("7");
    receive_row("8");
    complete("SELECT 2");
    receive('Z', {'I'});
  }
  ASSERT_EQ(events.size(), 2u);
  for (const auto& e : events) {
    EXPECT_EQ(e.columns, std::vector<std::string>{"id"});
    EXPECT_EQ(e.result_sample.size(), 2u);
  }
  // Requests are numbered: each Sync ends one.
  EXPECT_NE(events[0].request, events[1].request);
}

TEST_F(TrackerTest, ADescribedPortalNamesTheColumnsOfItsExecute) {
  // libpq's PQexecParams: Parse, Bind, Describe of the portal, Execute, Sync in one go; the
  // RowDescription answers the Describe.
  for (int round = 0; round < 2; ++round) {
    tracker.on_parse(encoded_body(pp::Parse{"", "SELECT id FROM customers WHERE id > $1", {}}));
    ledger.push('P');
    pp::Bind bind;
    bind.params.emplace_back(pp::Bytes{'0'});
    tracker.on_bind(encoded_body(bind));
    ledger.push('B');
    ledger.push('D', RequestLedger::Handling::Pass, {},
                tracker.on_describe(encoded_body(pp::Describe{'P', ""})));
    ledger.push('E', RequestLedger::Handling::Pass, {},
                tracker.on_execute(encoded_body(pp::Execute{"", 0}), now));
    tracker.on_sync();
    ledger.push('S');
    receive('1');
    receive('2');
    receive_column("id");
    receive_row("7");
    receive_row("8");
    complete("SELECT 2");
    receive('Z', {'I'});
  }
  ASSERT_EQ(events.size(), 2u);
  for (const auto& e : events) {
    EXPECT_EQ(e.columns, std::vector<std::string>{"id"});
    EXPECT_EQ(e.result_sample.size(), 2u);
  }
}

TEST_F(TrackerTest, APipelineIsOneRequestAndEachQueryIsItsOwn) {
  send_pipeline("INSERT INTO t VALUES ($1)", {"1", "2", "3"});
  receive('1');
  for (int i = 0; i < 3; ++i) {
    receive('2');
    complete("INSERT 0 1");
  }
  receive('Z', {'I'});
  ledger.push(
      'Q', RequestLedger::Handling::Pass, {},
      tracker.on_query(
          encoded_body(pp::Query{"INSERT INTO t VALUES (4); INSERT INTO t VALUES (5)"}), now));
  complete("INSERT 0 1");
  complete("INSERT 0 1");
  receive('Z', {'I'});
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].request, events[2].request);
  EXPECT_EQ(events[3].request, events[4].request);  // one Query, two statements
  EXPECT_NE(events[2].request, events[3].request);
}

TEST_F(TrackerTest, AStatementNeverAnsweredIsDroppedOnceNothingIsOutstanding) {
  // An Execute the ledger never hears back about (its answer was settled some other way) would
  // keep every later statement in memory behind it.
  tracker.on_parse(encoded_body(pp::Parse{"", "SELECT 1", {}}));
  tracker.on_bind(encoded_body(pp::Bind{}));
  tracker.on_execute(encoded_body(pp::Execute{"", 0}), now);
  send_batch("SELECT $1", {"a"});
  receive('1');
  receive('2');
  complete("SELECT 1");
  receive('Z', {'I'});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(tracker.in_flight(), 1u);
  tracker.on_all_answered();  // what the session does at a ReadyForQuery with its ledger empty
  EXPECT_EQ(tracker.in_flight(), 0u);
  expect_next_batch_tracked("b");
}

void TrackerTest::expect_parameters_on_both_executes(const std::string& portal) {
  tracker.on_parse(encoded_body(pp::Parse{"", "SELECT $1", {}}));
  ledger.push('P');
  pp::Bind bind;
  bind.portal = portal;
  bind.params.emplace_back(pp::Bytes{'x'});
  tracker.on_bind(encoded_body(bind));
  ledger.push('B');
  for (int i = 0; i < 2; ++i)
    ledger.push('E', RequestLedger::Handling::Pass, {},
                tracker.on_execute(encoded_body(pp::Execute{portal, 1}), now));
  tracker.on_sync();
  ledger.push('S');
  receive('1');
  receive('2');
  complete("SELECT 1");
  complete("SELECT 1");
  receive('Z', {'I'});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].parameters.at(0), "x");
  EXPECT_EQ(events[1].parameters.at(0), "x");
}

}  // namespace
}  // namespace pglens::session
