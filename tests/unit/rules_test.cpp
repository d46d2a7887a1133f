// The rules on scripted event streams: each test plays a session's statements and checks the
// exact finding (or that there is none).
#include <gtest/gtest.h>

#include "analyzer/query_shape.hpp"
#include "rules/findings.hpp"
#include "rules/query_columns.hpp"
#include "rules/session_rules.hpp"

namespace pglens::rules {
namespace {

using analyzer::ExecutionEvent;
using analyzer::hash_value;
using namespace std::chrono_literals;

// Plays statements of one session through both session rules.
class Script {
 public:
  Script() : findings_(nullptr), n_plus_one_(settings_), row_by_row_(settings_) {
    who_ = std::make_shared<analyzer::SessionInfo>(
        analyzer::SessionInfo{7, "shop", "app", "web", "127.0.0.1"});
  }

  // A statement with Bind parameters and, optionally, a result (column names, row values).
  Script& run(const std::string& sql, std::vector<std::string> params = {},
              std::vector<std::string> columns = {},
              std::vector<std::vector<std::string>> rows = {}, bool pipelined = false) {
    ExecutionEvent e;
    e.session = who_;
    e.transaction = transaction_;
    e.sql = std::make_shared<const std::string>(sql);
    e.extended = !params.empty();
    e.pipelined = pipelined;
    if (!pipelined) ++request_;  // a pipeline goes in one round trip
    e.request = request_;
    for (auto& p : params) e.parameters.emplace_back(p);
    e.columns = columns;
    e.rows = rows.size();
    for (const auto& row : rows)
      for (const auto& v : row) e.result_sample.push_back(hash_value(v));
    e.latency = 1ms;
    auto shape = analyzer::analyze_query(sql).statements.at(0);
    n_plus_one_.consume(e, shape, now_, findings_);
    row_by_row_.consume(e, shape, now_, findings_);
    if (shape.kind == analyzer::StatementKind::Commit ||
        (!in_transaction_ && !analyzer::is_transaction_control(shape.kind)))
      ++transaction_;
    if (shape.kind == analyzer::StatementKind::Begin) in_transaction_ = true;
    if (shape.kind == analyzer::StatementKind::Commit) in_transaction_ = false;
    now_ += 1ms;
    return *this;
  }
  // Time passes: runs that went quiet are judged.
  std::vector<Finding> finish() {
    now_ += 5s;
    n_plus_one_.tick(now_, findings_);
    row_by_row_.tick(now_, findings_);
    return findings_.snapshot();
  }

 private:
  RuleSettings settings_;
  FindingStore findings_;
  NPlusOneRule n_plus_one_;
  RowByRowRule row_by_row_;
  std::shared_ptr<analyzer::SessionInfo> who_;
  std::uint64_t transaction_ = 1, request_ = 1;
  bool in_transaction_ = false;
  SteadyClock::time_point now_ = SteadyClock::now();
};

std::vector<std::vector<std::string>> customer_rows(int n) {
  std::vector<std::vector<std::string>> rows;
  for (int i = 1; i <= n; ++i)
    rows.push_back({std::to_string(100 + i), "customer " + std::to_string(i)});
  return rows;
}

TEST(NPlusOne, LazyLoadingLoopIsFoundWithItsParentColumn) {
  Script s;
  s.run("SELECT id, name FROM customers ORDER BY id LIMIT 20", {}, {"id", "name"},
        customer_rows(8));
  for (int i = 1; i <= 8; ++i)
    s.run("SELECT id, total FROM orders WHERE customer_id = $1", {std::to_string(100 + i)});
  auto findings = s.finish();
  ASSERT_EQ(findings.size(), 1u);
  const auto& f = findings[0];
  EXPECT_EQ(f.rule, "n_plus_one");
  EXPECT_EQ(f.query, "SELECT id, total FROM orders WHERE customer_id = $1");
  EXPECT_EQ(f.details["parent_query"], "SELECT id, name FROM customers ORDER BY id LIMIT $1");
  EXPECT_EQ(f.details["parent_column"], "id");
  EXPECT_EQ(f.details["executions_per_occurrence"], 8);
  EXPECT_NE(f.fix.find("customer_id = ANY($1)"), std::string::npos) << f.fix;
  EXPECT_NE(f.advice.find("selectinload"), std::string::npos);
  EXPECT_NE(f.advice.find("prefetch_related"), std::string::npos);
  EXPECT_NE(f.advice.find("includes"), std::string::npos);
}

TEST(NPlusOne, SimpleProtocolLiteralsLinkToo) {
  Script s;
  s.run("SELECT id, name FROM customers", {}, {"id", "name"}, customer_rows(6));
  for (int i = 1; i <= 6; ++i)
    s.run("SELECT * FROM orders WHERE customer_id = " + std::to_string(100 + i));
  auto findings = s.finish();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].details["parent_column"], "id");
}

TEST(NPlusOne, BinaryParametersLinkToBinaryResults) {
  // asyncpg binds and reads int4 in binary: the event shows the parameter as \x and hex, the
  // result sample hashed the four bytes.
  auto int4 = [](int v) {
    return std::string{'\0', '\0', static_cast<char>(v >> 8), static_cast<char>(v & 255)};
  };
  char hex[16];
  std::vector<std::vector<std::string>> rows;
  for (int i = 1; i <= 6; ++i) rows.push_back({int4(300 + i), "name"});
  Script s;
  s.run("SELECT id, name FROM customers", {}, {"id", "name"}, rows);
  for (int i = 1; i <= 6; ++i) {
    std::snprintf(hex, sizeof hex, "\\x0000%04x", 300 + i);
    s.run("SELECT id, total FROM orders WHERE customer_id = $1", {hex});
  }
  auto findings = s.finish();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].details["parent_column"], "id");
  EXPECT_EQ(findings[0].details["direction"], "one-to-many");
}

TEST(NPlusOne, AValueInTwoColumnsIsTakenFromTheOneNamingTheChild) {
  // Small serial keys: orders.id and orders.customer_id both hold 1..6. The loop looks customers
  // up by key (order.customer), so the value came from customer_id.
  std::vector<std::vector<std::string>> rows;
  for (int i = 1; i <= 6; ++i) rows.push_back({std::to_string(i), std::to_string(i)});
  Script s;
  s.run("SELECT \"orders\".\"id\", \"orders\".\"customer_id\" FROM \"orders\"", {},
        {"id", "customer_id"}, rows);
  for (int i = 1; i <= 6; ++i)
    s.run(
        "SELECT \"customers\".\"id\", \"customers\".\"name\" FROM \"customers\" WHERE "
        "\"customers\".\"id\" = " +
        std::to_string(i) + " LIMIT 21");
  auto findings = s.finish();
  ASSERT_EQ(findings.size(), 1u);
  const auto& f = findings[0];
  EXPECT_EQ(f.details["parent_column"], "customer_id");
  EXPECT_EQ(f.details["direction"], "many-to-one");
  EXPECT_EQ(f.details["client"], "django");
  EXPECT_NE(f.advice.find("select_related(\"customer\")"), std::string::npos) << f.advice;
}

TEST(NPlusOne, SqlAlchemyLazyLoadGetsSqlAlchemyWords) {
  Script s;
  s.run("SELECT customers.id AS customers_id, customers.name AS customers_name FROM customers", {},
        {"customers_id", "customers_name"}, customer_rows(6));
  for (int i = 1; i <= 6; ++i)
    s.run(
        "SELECT orders.id AS orders_id, orders.total AS orders_total FROM orders WHERE $1 = "
        "orders.customer_id",
        {std::to_string(100 + i)});
  auto findings = s.finish();
  ASSERT_EQ(findings.size(), 1u);
  const auto& f = findings[0];
  EXPECT_EQ(f.details["client"], "sqlalchemy");
  EXPECT_NE(f.advice.find("selectinload(<Parent>.orders)"), std::string::npos) << f.advice;
  EXPECT_NE(f.fix.find("orders.customer_id = ANY($1)"), std::string::npos) << f.fix;
}

TEST(NPlusOne, BelowTheMinimumIsNotAFinding) {
  Script s;
  s.run("SELECT id, name FROM customers", {}, {"id", "name"}, customer_rows(4));
  for (int i = 1; i <= 4; ++i)
    s.run("SELECT id FROM orders WHERE customer_id = $1", {std::to_string(100 + i)});
  EXPECT_TRUE(s.finish().empty());
}

TEST(NPlusOne, IndependentPointLookupsAreNot) {
  // pgbench-like: lookups with values that no previous result contained.
  Script s;
  s.run("SELECT id, name FROM customers", {}, {"id", "name"}, customer_rows(10));
  for (int i = 1; i <= 20; ++i)
    s.run("SELECT abalance FROM accounts WHERE aid = $1", {std::to_string(5000 + i * 13)});
  EXPECT_TRUE(s.finish().empty());
}

TEST(NPlusOne, OneJoinOrOneAnyQueryIsNot) {
  Script s;
  s.run("SELECT c.id, o.total FROM customers c JOIN orders o ON o.customer_id = c.id", {},
        {"id", "total"}, customer_rows(10));
  s.run("SELECT id, name FROM customers", {}, {"id", "name"}, customer_rows(10));
  s.run("SELECT id, total FROM orders WHERE customer_id = ANY($1)",
        {"{101,102,103,104,105,106,107,108,109,110}"});
  EXPECT_TRUE(s.finish().empty());
}

TEST(NPlusOne, RepeatedBatchedLookupsAreNot) {
  Script s;
  s.run("SELECT id, name FROM customers", {}, {"id", "name"}, customer_rows(10));
  for (int i = 1; i <= 6; ++i) s.run("SELECT * FROM orders WHERE customer_id IN (101, 102, 103)");
  EXPECT_TRUE(s.finish().empty());
}

TEST(RowByRow, AutocommitLoopIsHighSeverity) {
  Script s;
  for (int i = 0; i < 12; ++i)
    s.run("INSERT INTO audit (customer_id, action) VALUES ($1, $2)", {std::to_string(i), "x"});
  auto findings = s.finish();
  ASSERT_EQ(findings.size(), 1u);
  const auto& f = findings[0];
  EXPECT_EQ(f.rule, "row_by_row_insert");
  EXPECT_EQ(f.severity, Severity::High);
  EXPECT_EQ(f.details["table"], "audit");
  EXPECT_EQ(f.details["rows"], 12);
  EXPECT_EQ(f.details["transactions"], 12);
  EXPECT_EQ(f.details["round_trips"], 12);
  EXPECT_NE(f.fix.find("COPY audit FROM STDIN"), std::string::npos) << f.fix;
  EXPECT_NE(f.fix.find("65,535"), std::string::npos);
}

TEST(RowByRow, OneTransactionIsMediumSeverity) {
  Script s;
  s.run("BEGIN");
  for (int i = 0; i < 12; ++i)
    s.run("INSERT INTO audit (customer_id, action) VALUES ($1, $2)", {std::to_string(i), "x"});
  s.run("COMMIT");
  auto findings = s.finish();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].severity, Severity::Medium);
  EXPECT_EQ(findings[0].details["transactions"], 1);
}

TEST(RowByRow, APipelinedBatchIsTheFixNotTheProblem) {
  // psycopg 3's executemany(), asyncpg's, pgJDBC's executeBatch(): one round trip for all rows.
  Script s;
  for (int i = 0; i < 12; ++i)
    s.run("INSERT INTO audit (customer_id, action) VALUES ($1, $2)", {std::to_string(i), "x"}, {},
          {}, true);
  EXPECT_TRUE(s.finish().empty());
}

TEST(RowByRow, DjangoSavePerRowIsToldToBulkCreate) {
  Script s;
  for (int i = 0; i < 12; ++i)
    s.run("INSERT INTO \"events\" (\"kind\") VALUES ('x" + std::to_string(i) +
          "') RETURNING \"events\".\"id\"");
  auto findings = s.finish();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].details["client"], "django");
  EXPECT_NE(findings[0].advice.find("bulk_create"), std::string::npos) << findings[0].advice;
}

TEST(RowByRow, ReadingBackEachNewRowKeepsTheLoopALoop) {
  // SQLAlchemy: add, commit, then the expired object is read again by its key.
  Script s;
  for (int i = 0; i < 12; ++i) {
    s.run("BEGIN");
    s.run("INSERT INTO events (kind) VALUES ($1) RETURNING events.id", {"x"});
    s.run("COMMIT");
    s.run("SELECT events.id AS events_id FROM events WHERE events.id = $1", {std::to_string(i)});
  }
  auto findings = s.finish();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].details["rows"], 12);
  EXPECT_EQ(findings[0].details["client"], "sqlalchemy");
}

TEST(RowByRow, MultiRowCopyAndMixedTransactionsAreNot) {
  Script s;
  for (int i = 0; i < 12; ++i)
    s.run("INSERT INTO audit (customer_id, action) VALUES (1, 'a'), (2, 'b')");
  for (int i = 0; i < 12; ++i) s.run("COPY audit (customer_id, action) FROM STDIN");
  // pgbench's tpcb-like transaction: the history insert sits among other work.
  for (int i = 0; i < 12; ++i) {
    s.run("BEGIN");
    s.run("UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", {"5", std::to_string(i)});
    s.run("INSERT INTO history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, now())",
          {"1", "1", std::to_string(i), "5"});
    s.run("COMMIT");
  }
  EXPECT_TRUE(s.finish().empty());
}

TEST(RowByRow, BelowTheMinimumIsNot) {
  Script s;
  for (int i = 0; i < 9; ++i)
    s.run("INSERT INTO audit (customer_id) VALUES ($1)", {std::to_string(i)});
  EXPECT_TRUE(s.finish().empty());
}

TEST(QueryColumns, EqualityThenRangeThenOrderBy) {
  auto c = index_candidates(
      "SELECT * FROM orders o WHERE o.created_at > $1 AND o.customer_id = $2 AND o.status IN ('a', "
      "'b') "
      "ORDER BY o.total");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].table, "orders");
  EXPECT_EQ(c[0].index_columns,
            (std::vector<std::string>{"customer_id", "status", "created_at", "total"}));
}

TEST(QueryColumns, AliasesAndJoinsResolveToTables) {
  auto c = index_candidates(
      "SELECT c.name, o.total FROM shop.customers c JOIN orders o ON o.customer_id = c.id WHERE "
      "c.region = $1");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0], (TableColumns{"orders", {"customer_id"}}));
  EXPECT_EQ(c[1], (TableColumns{"shop.customers", {"id", "region"}}));
}

TEST(QueryColumns, AnyAndUnqualifiedColumnsOfOneTable) {
  auto c = index_candidates(
      "SELECT id FROM demo_events WHERE account_id = ANY($1) AND kind BETWEEN 1 AND 3");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].index_columns, (std::vector<std::string>{"account_id", "kind"}));
  EXPECT_EQ(index_candidates("DELETE FROM sessions WHERE expires_at < now()")[0].index_columns,
            std::vector<std::string>{"expires_at"});
}

TEST(FindingStore, DeduplicatesAndCounts) {
  FindingStore store(nullptr);
  Finding f;
  f.rule = "n_plus_one";
  f.fingerprint = "a";
  f.parent = "p";
  store.report(f);
  store.report(f);
  f.parent = "q";
  store.report(f);
  auto all = store.snapshot();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].count + all[1].count, 3u);
  store.resolve("n_plus_one", "a", "p");
  EXPECT_TRUE(store.snapshot().back().resolved);
}

}  // namespace
}  // namespace pglens::rules
