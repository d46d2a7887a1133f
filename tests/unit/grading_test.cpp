// The grading against the guide's database standards: classes from the shape and from plans
// (EXPLAIN JSON written out by hand), the grade, and what the statistics table and the metrics
// make of them; the pool wait per fingerprint.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "analyzer/analyzer.hpp"
#include "analyzer/query_shape.hpp"
#include "analyzer/standard.hpp"
#include "analyzer/stats_table.hpp"

namespace pglens::analyzer {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

StandardClass shape_class(const std::string& sql) {
  return classify_shape(analyze_query(sql).statements.at(0));
}

TEST(StandardShape, ClassesFromTheQueryShape) {
  struct Case {
    const char* sql;
    StandardClass expected;
  };
  const Case cases[] = {
      {"SELECT name FROM users WHERE id = $1", StandardClass::PrimaryKeyLookup},
      {"SELECT name FROM users WHERE id = 42 AND deleted = false", StandardClass::PrimaryKeyLookup},
      {"SELECT u.name FROM users u WHERE u.id = $1::bigint", StandardClass::PrimaryKeyLookup},
      {"SELECT row_number() OVER () FROM users WHERE id = $1", StandardClass::PrimaryKeyLookup},
      {"SELECT * FROM users WHERE id > $1", StandardClass::Indexed},
      {"SELECT * FROM users WHERE id = $1 OR id = $2", StandardClass::Indexed},
      {"SELECT * FROM users WHERE email = $1", StandardClass::Indexed},
      {"SELECT * FROM users ORDER BY created_at DESC LIMIT 10", StandardClass::Indexed},
      {"SELECT u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = $1",
       StandardClass::Join},
      {"SELECT * FROM users, orders WHERE orders.user_id = users.id", StandardClass::Join},
      {"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)", StandardClass::Join},
      {"SELECT count(*) FROM orders WHERE user_id = $1", StandardClass::Aggregate},
      {"SELECT status, sum(total) FROM orders GROUP BY status", StandardClass::Aggregate},
      {"SELECT count(*) FROM users u JOIN orders o ON o.user_id = u.id", StandardClass::Aggregate},
      {"SELECT * FROM events", StandardClass::FullScan},
      {"SELECT DISTINCT kind FROM events", StandardClass::FullScan},
      {"INSERT INTO t (a) VALUES (1)", StandardClass::Write},
      {"UPDATE t SET a = 1 WHERE id = 1", StandardClass::Write},
      {"DELETE FROM t WHERE id = $1", StandardClass::Write},
      {"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", StandardClass::Write},
      {"SELECT * INTO copy_of_t FROM t", StandardClass::Write},
      {"SELECT 1", StandardClass::Other},
      {"SELECT nextval('s')", StandardClass::Other},
      {"BEGIN", StandardClass::Other},
      {"SET search_path = app", StandardClass::Other},
  };
  for (const auto& c : cases) EXPECT_EQ(shape_class(c.sql), c.expected) << c.sql;
}

TEST(StandardShape, WhatMakesASelectNoPlainRead) {
  auto s = [](const char* sql) { return analyze_query(sql).statements.at(0); };
  EXPECT_TRUE(s("SELECT * FROM jobs WHERE id = $1 FOR UPDATE SKIP LOCKED").locking);
  EXPECT_TRUE(s("SELECT * FROM jobs WHERE id = $1 FOR SHARE").locking);
  EXPECT_TRUE(s("WITH n AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM n").modifies);
  EXPECT_TRUE(s("SELECT nextval('orders_id_seq')").volatile_functions);
  EXPECT_TRUE(s("SELECT * FROM t WHERE created_at > now() - interval '1 hour'").volatile_functions);
  EXPECT_TRUE(s("SELECT * FROM t ORDER BY random() LIMIT 1").volatile_functions);
  EXPECT_TRUE(s("SELECT CURRENT_TIMESTAMP").volatile_functions);
  auto plain = s("SELECT id, lower(name) FROM t WHERE id = $1 AND owner = CURRENT_USER");
  EXPECT_FALSE(plain.locking || plain.modifies || plain.volatile_functions);
}

json plan(const std::string& text) {
  return json::parse(text);
}

TEST(StandardPlan, ASeqScanOfALargeTableIsAFullScanOfASmallOneSaysNothing) {
  auto p = plan(R"j({"Node Type": "Seq Scan", "Relation Name": "events", "Schema": "public",
                    "Alias": "events", "Plan Rows": 12, "Filter": "(account_id = 7)"})j");
  auto facts = plan_facts(p);
  EXPECT_EQ(facts.seq_scanned, std::vector<std::string>{"public.events"});
  EXPECT_EQ(classify_plan(facts, {{"public.events", 60'000}}, {}, 10'000), StandardClass::FullScan);
  EXPECT_EQ(classify_plan(facts, {{"public.events", 100}}, {}, 10'000), std::nullopt);
  // A table whose size is not known is not taken for a large one.
  EXPECT_EQ(classify_plan(facts, {}, {}, 10'000), std::nullopt);
}

TEST(StandardPlan, AnIndexScanOnThePrimaryKeyForOneRowIsAPrimaryKeyLookup) {
  auto p =
      plan(R"j({"Node Type": "Index Scan", "Index Name": "users_pkey", "Relation Name": "users",
                    "Schema": "public", "Plan Rows": 1})j");
  auto facts = plan_facts(p);
  EXPECT_EQ(facts.indexes, std::vector<std::string>{"public.users_pkey"});
  EXPECT_EQ(classify_plan(facts, {}, {"public.users_pkey"}, 10'000),
            StandardClass::PrimaryKeyLookup);
  // Another index, or the primary key for a range of rows: an indexed query.
  EXPECT_EQ(classify_plan(facts, {}, {}, 10'000), StandardClass::Indexed);
  facts.rows = 20;
  EXPECT_EQ(classify_plan(facts, {}, {"public.users_pkey"}, 10'000), StandardClass::Indexed);
}

TEST(StandardPlan, JoinsAggregatesAndBitmapScans) {
  auto join = plan(R"j({"Node Type": "Hash Join", "Plan Rows": 50, "Plans": [
      {"Node Type": "Seq Scan", "Relation Name": "orders", "Schema": "public", "Plan Rows": 2000},
      {"Node Type": "Hash", "Plans": [{"Node Type": "Index Scan", "Index Name": "customers_pkey",
        "Relation Name": "customers", "Schema": "public", "Plan Rows": 20}]}]})j");
  EXPECT_EQ(classify_plan(plan_facts(join), {{"public.orders", 2000}}, {}, 10'000),
            StandardClass::Join);
  // The same join over a large table scanned whole: a full scan first.
  EXPECT_EQ(classify_plan(plan_facts(join), {{"public.orders", 200'000}}, {}, 10'000),
            StandardClass::FullScan);
  auto aggregate = plan(R"j({"Node Type": "Aggregate", "Strategy": "Plain", "Plan Rows": 1,
      "Plans": [{"Node Type": "Bitmap Heap Scan", "Relation Name": "orders", "Schema": "shop",
        "Plan Rows": 10, "Plans": [{"Node Type": "Bitmap Index Scan",
          "Index Name": "orders_customer_id_idx", "Plan Rows": 10}]}]})j");
  auto facts = plan_facts(aggregate);
  EXPECT_EQ(facts.indexes, std::vector<std::string>{"shop.orders_customer_id_idx"});
  EXPECT_EQ(classify_plan(facts, {}, {}, 10'000), StandardClass::Aggregate);
  auto result = plan(R"j({"Node Type": "Result", "Plan Rows": 1})j");
  EXPECT_EQ(classify_plan(plan_facts(result), {}, {}, 10'000), std::nullopt);
}

TEST(StandardGrade, OkOverAvoidAndNotApplicable) {
  auto ok = grade_against_standard(StandardClass::PrimaryKeyLookup, false, 0.5);
  EXPECT_EQ(ok.grade, Grade::Ok);
  EXPECT_EQ(ok.limit_ms, 1.0);
  EXPECT_DOUBLE_EQ(*ok.over_by, 0.5);
  EXPECT_EQ(ok.summary(), "ok");
  auto over = grade_against_standard(StandardClass::Indexed, true, 32);
  EXPECT_EQ(over.grade, Grade::Over);
  EXPECT_DOUBLE_EQ(*over.over_by, 3.2);
  EXPECT_TRUE(over.from_plan);
  EXPECT_EQ(over.summary(), "over 3.2x");
  EXPECT_EQ(standard_limit_ms(StandardClass::Join), 50.0);
  EXPECT_EQ(standard_limit_ms(StandardClass::Aggregate), 100.0);
  auto scan = grade_against_standard(StandardClass::FullScan, true, 0.2);
  EXPECT_EQ(scan.grade, Grade::Avoid);
  EXPECT_FALSE(scan.limit_ms || scan.over_by);
  EXPECT_EQ(grade_against_standard(StandardClass::Write, false, 5).grade, Grade::NotApplicable);
  EXPECT_EQ(to_string(Grade::NotApplicable), "n/a");
}

TEST(PlanClasses, BoundedAndANoPlanAnswerLetsTheShapeStand) {
  PlanClasses plans(2);
  plans.set(1, StandardClass::FullScan);
  plans.set(2, StandardClass::Join);
  plans.set(3, StandardClass::Indexed);  // the oldest, 1, makes room
  EXPECT_EQ(plans.get(1), std::nullopt);
  EXPECT_EQ(plans.get(3), StandardClass::Indexed);
  plans.set(2, std::nullopt);
  EXPECT_EQ(plans.get(2), std::nullopt);
}

ExecutionEvent event(const std::string& sql, std::chrono::nanoseconds latency,
                     std::chrono::nanoseconds pool_wait = 0ns) {
  static auto who = std::make_shared<SessionInfo>(SessionInfo{1, "db", "alice", "app", "1.2.3.4"});
  ExecutionEvent e;
  e.session = who;
  e.sql = std::make_shared<const std::string>(sql);
  e.latency = latency;
  e.pool_wait = pool_wait;
  return e;
}

TEST(StatsTableGrading, RowsCarryTheGradeThePlanOverridesTheShape) {
  StatsTable t;
  const std::string sql = "SELECT * FROM events WHERE account_id = $1";
  auto shape = analyze_query(sql).statements.at(0);
  for (int i = 0; i < 20; ++i) t.record(shape, event(sql, 30ms));
  auto row = t.rows(SortBy::Calls, 10).at(0);
  EXPECT_EQ(row.fingerprint_id, shape.fingerprint);
  EXPECT_EQ(row.standard.cls, StandardClass::Indexed);
  EXPECT_FALSE(row.standard.from_plan);
  EXPECT_EQ(row.standard.grade, Grade::Over);
  EXPECT_NEAR(*row.standard.over_by, row.p95_ms / 10, 1e-9);
  PlanClasses plans;
  plans.set(shape.fingerprint, StandardClass::FullScan);
  row = t.rows(SortBy::Calls, 10, &plans).at(0);
  EXPECT_EQ(row.standard.cls, StandardClass::FullScan);
  EXPECT_TRUE(row.standard.from_plan);
  EXPECT_EQ(row.standard.grade, Grade::Avoid);
}

TEST(StatsTableGrading, HistogramBucketsAreTheLatencyHistogramsOwn) {
  StatsTable t;
  const std::string sql = "SELECT 1";
  auto shape = analyze_query(sql).statements.at(0);
  for (std::chrono::nanoseconds latency :
       std::initializer_list<std::chrono::nanoseconds>{100us, 100us, 105us, 2ms, 50ms})
    t.record(shape, event(sql, latency));
  auto row = t.rows(SortBy::Calls, 10).at(0);
  ASSERT_EQ(row.histogram_le_ms.size(), row.histogram_counts.size());
  std::uint64_t total = 0;
  for (auto c : row.histogram_counts) total += c;
  EXPECT_EQ(total, 5u);
  EXPECT_EQ(row.histogram_counts.front(), 0u);  // [0, 1 µs): empty
  EXPECT_GT(row.histogram_counts.back(), 0u);
  for (std::size_t i = 1; i < row.histogram_le_ms.size(); ++i)
    EXPECT_LT(row.histogram_le_ms[i - 1], row.histogram_le_ms[i]);
  EXPECT_GE(row.histogram_le_ms.back(), 50.0);
}

TEST(StatsTablePoolWait, TotalMeanP95AndMaxOverEveryCall) {
  StatsTable t;
  const std::string sql = "SELECT * FROM t WHERE id = $1";
  auto shape = analyze_query(sql).statements.at(0);
  // 90 calls on a connection already held, then 10 that waited 20 ms each, one 50 ms.
  for (int i = 0; i < 90; ++i) t.record(shape, event(sql, 1ms));
  for (int i = 0; i < 9; ++i) t.record(shape, event(sql, 1ms, 20ms));
  t.record(shape, event(sql, 1ms, 50ms));
  auto row = t.rows(SortBy::Calls, 10).at(0);
  EXPECT_DOUBLE_EQ(row.pool_wait_total_ms, 230);
  EXPECT_DOUBLE_EQ(row.pool_wait_mean_ms, 2.3);
  EXPECT_DOUBLE_EQ(row.pool_wait_max_ms, 50);
  // The 95th of 100 calls waited 20 ms (within the histogram's bucket of it).
  EXPECT_NEAR(row.pool_wait_p95_ms, 20, 20 * 0.13);
}

TEST(StatsTablePoolWait, NoWaitIsZeroEverywhere) {
  StatsTable t;
  auto shape = analyze_query("SELECT 1").statements.at(0);
  for (int i = 0; i < 10; ++i) t.record(shape, event("SELECT 1", 1ms));
  auto row = t.rows(SortBy::Calls, 10).at(0);
  EXPECT_EQ(row.pool_wait_total_ms, 0);
  EXPECT_EQ(row.pool_wait_p95_ms, 0);
  EXPECT_EQ(row.pool_wait_max_ms, 0);
}

// The series of one metric family, by its "fingerprint" label, once `ready` says they are all in.
template <typename Ready>
std::vector<prometheus::MetricFamily> collect_until(prometheus::Registry& registry, Ready ready) {
  std::vector<prometheus::MetricFamily> families;
  for (int i = 0; i < 1000; ++i) {  // the top K are refreshed once a second
    families = registry.Collect();
    if (ready(families)) break;
    std::this_thread::sleep_for(10ms);
  }
  return families;
}

const prometheus::MetricFamily* family(const std::vector<prometheus::MetricFamily>& all,
                                       const std::string& name) {
  for (const auto& f : all)
    if (f.name == name) return &f;
  return nullptr;
}

std::string label(const prometheus::ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label)
    if (l.name == name) return l.value;
  return "";
}

TEST(AnalyzerGrading, TopFingerprintsGetAnOverStandardGaugeAndAPoolWaitHistogram) {
  auto registry = std::make_shared<prometheus::Registry>();
  Analyzer analyzer(AnalyzerSettings{}, registry);
  const std::string lookup = "SELECT name FROM users WHERE id = $1";     // 1 ms standard
  const std::string write = "UPDATE users SET name = $1 WHERE id = $2";  // no standard
  for (int i = 0; i < 20; ++i) {
    analyzer.submit(event(lookup, 4ms));
    analyzer.submit(event(write, 1ms));
  }
  auto fp = fingerprint_hex(analyze_query(lookup).statements.at(0).fingerprint);
  auto families = collect_until(*registry, [&](const auto& all) {
    auto* g = family(all, "pglens_fingerprint_over_standard");
    return g && !g->metric.empty();
  });
  auto* gauge = family(families, "pglens_fingerprint_over_standard");
  ASSERT_NE(gauge, nullptr);
  ASSERT_EQ(gauge->metric.size(), 1u);  // the UPDATE has no limit: no series
  const auto& g = gauge->metric[0];
  EXPECT_EQ(label(g, "fingerprint"), fp);
  EXPECT_EQ(label(g, "standard"), "primary_key_lookup");
  EXPECT_NEAR(g.gauge.value, 4.0, 4 * 0.13);  // p95 4 ms over a 1 ms limit
  // Now in the top K: its statements' pool waits go into its own series (two of ten waited).
  for (int i = 0; i < 10; ++i) analyzer.submit(event(lookup, 4ms, i < 2 ? 10ms : 0ns));
  const prometheus::ClientMetric* series = nullptr;
  families = collect_until(*registry, [&](const auto& all) {
    auto* w = family(all, "pglens_fingerprint_pool_wait_seconds");
    if (w)
      for (const auto& m : w->metric)
        if (label(m, "fingerprint") == fp) return m.histogram.sample_count == 10;
    return false;
  });
  auto* waits = family(families, "pglens_fingerprint_pool_wait_seconds");
  ASSERT_NE(waits, nullptr);
  for (const auto& m : waits->metric)
    if (label(m, "fingerprint") == fp) series = &m;
  ASSERT_NE(series, nullptr);
  EXPECT_EQ(series->histogram.sample_count, 10u);
  EXPECT_NEAR(series->histogram.sample_sum, 0.020, 1e-9);
}

}  // namespace
}  // namespace pglens::analyzer
