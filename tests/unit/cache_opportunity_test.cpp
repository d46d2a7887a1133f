// The cache-opportunity rule on events built by hand: repeated reads with the same rows, their
// hit rate, saving and TTL; and the reads it must leave alone.
#include <gtest/gtest.h>

#include "analyzer/query_shape.hpp"
#include "rules/cache_opportunity.hpp"

namespace pglens::rules {
namespace {

using analyzer::ExecutionEvent;
using analyzer::hash_value;
using namespace std::chrono_literals;
using Time = std::chrono::system_clock::time_point;

const Time kStart = Time{} + std::chrono::hours(24 * 365 * 50);

class Calls {
 public:
  explicit Calls(RuleSettings settings = {})
      : settings_(settings), rule_(settings_), store_(nullptr) {
    who_ = std::make_shared<analyzer::SessionInfo>(
        analyzer::SessionInfo{3, "shop", "web", "catalog", "127.0.0.1"});
  }

  // One call at `at` seconds, with Bind parameters, answered by `rows` (values per row).
  void run(double at, const std::string& sql, std::vector<std::optional<std::string>> params,
           const std::vector<std::vector<std::string>>& rows,
           std::chrono::nanoseconds latency = 2ms, std::uint64_t row_count = 0) {
    ExecutionEvent e;
    e.session = who_;
    e.sql = std::make_shared<const std::string>(sql);
    e.extended = !params.empty();
    e.parameters = std::move(params);
    e.columns = {"id", "name"};
    e.rows = row_count ? row_count : rows.size();
    for (const auto& row : rows)
      for (const auto& v : row) e.result_sample.push_back(hash_value(v));
    e.latency = latency;
    e.finished_at = kStart + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                 std::chrono::duration<double>(at));
    rule_.consume(e, analyzer::analyze_query(sql).statements.at(0));
  }
  std::vector<Finding> judge() {
    rule_.tick(store_);
    return store_.snapshot();
  }
  CacheOpportunityRule& rule() { return rule_; }

 private:
  RuleSettings settings_;
  CacheOpportunityRule rule_;
  FindingStore store_;
  std::shared_ptr<analyzer::SessionInfo> who_;
};

const std::string kProduct = "SELECT id, name FROM products WHERE id = $1";

std::vector<std::vector<std::string>> product(int id, int version = 0) {
  return {{std::to_string(id), "product " + std::to_string(id) + " v" + std::to_string(version)}};
}

TEST(CacheOpportunity, TheSameReadWithTheSameRowsIsFoundWithItsHitRateSavingAndTtl) {
  Calls c;
  // Five products, each read ten times, a call a second, never changing.
  for (int round = 0; round < 10; ++round)
    for (int id = 1; id <= 5; ++id)
      c.run(round * 5 + id, kProduct, {std::to_string(id)}, product(id));
  auto findings = c.judge();
  ASSERT_EQ(findings.size(), 1u);
  const auto& f = findings[0];
  EXPECT_EQ(f.rule, "cache_opportunity");
  EXPECT_EQ(f.query, kProduct);
  EXPECT_EQ(f.database, "shop");
  EXPECT_EQ(f.application_name, "catalog");
  EXPECT_EQ(f.count, 50u);
  EXPECT_DOUBLE_EQ(f.details["hit_rate"].get<double>(), 0.9);
  EXPECT_EQ(f.details["calls"], 50);
  EXPECT_EQ(f.details["hits"], 45);
  EXPECT_EQ(f.details["distinct_keys"], 5);
  EXPECT_EQ(f.details["result_changes"], 0);
  EXPECT_DOUBLE_EQ(f.details["saved_ms"].get<double>(), 90);
  EXPECT_DOUBLE_EQ(f.estimated_savings_ms, 90);
  // Unchanged for the 45 s each product was watched: a TTL that long is what was observed.
  EXPECT_DOUBLE_EQ(f.details["suggested_ttl_s"].get<double>(), 45);
  EXPECT_NE(f.advice.find("90%"), std::string::npos) << f.advice;
  EXPECT_NE(f.fix.find("ttl=45"), std::string::npos) << f.fix;
}

TEST(CacheOpportunity, TheTtlIsHalfTheTimeBetweenResultChanges) {
  Calls c;
  // One key read every second for a minute; its row changes every 10 s.
  for (int s = 0; s < 60; ++s) c.run(s, kProduct, {"1"}, product(1, s / 10));
  auto findings = c.judge();
  ASSERT_EQ(findings.size(), 1u);
  const auto& d = findings[0].details;
  EXPECT_EQ(d["result_changes"], 5);
  EXPECT_EQ(d["hits"], 54);  // the first call and the five after a change miss
  EXPECT_DOUBLE_EQ(d["suggested_ttl_s"].get<double>(), 5);
}

TEST(CacheOpportunity, ResultsThatChangeOnEveryCallAreNoFinding) {
  Calls c;
  for (int s = 0; s < 50; ++s)
    c.run(s, "SELECT count(*) AS id, 'x' AS name FROM audit", {},
          {{std::to_string(1000 + s), "x"}});
  EXPECT_TRUE(c.judge().empty());
}

TEST(CacheOpportunity, WritesLockingReadsAndVolatileFunctionsAreLeftAlone) {
  Calls c;
  for (int s = 0; s < 50; ++s) {
    c.run(s, "UPDATE products SET name = $1 WHERE id = $2", {"x", "1"}, {});
    c.run(s, "INSERT INTO audit (id, name) VALUES ($1, $2) RETURNING id, name", {"1", "x"},
          {{"1", "x"}});
    c.run(s, "SELECT id, name FROM jobs WHERE id = $1 FOR UPDATE", {"1"}, {{"1", "x"}});
    c.run(s, "SELECT nextval('s') AS id, 'x' AS name", {}, {{"1", "x"}});
    c.run(s, "SELECT id, name FROM events WHERE at > now() - interval '1 day' AND id = $1", {"1"},
          {{"1", "x"}});
    c.run(s, "WITH d AS (DELETE FROM q WHERE id = $1 RETURNING *) SELECT id, name FROM d", {"1"},
          {});
  }
  EXPECT_TRUE(c.judge().empty());
  EXPECT_EQ(c.rule().keys(), 0u);
}

TEST(CacheOpportunity, RepeatsFurtherApartThanTheWindowAreNoHits) {
  RuleSettings settings;
  settings.cache_window = 60s;
  Calls c(settings);
  for (int i = 0; i < 30; ++i) c.run(i * 61, kProduct, {"1"}, product(1));
  EXPECT_TRUE(c.judge().empty());
}

TEST(CacheOpportunity, ParametersAndLiteralsKeyTheReads) {
  Calls c;
  // Every call a different product: a cache would never hit.
  for (int i = 0; i < 40; ++i) c.run(i, kProduct, {std::to_string(i)}, product(i));
  // NULL and "" are two keys.
  c.run(40, kProduct, {std::nullopt}, {});
  c.run(41, kProduct, {""}, {});
  EXPECT_TRUE(c.judge().empty());
  // A client that inlines its values: the literals are the key.
  Calls inlined;
  for (int i = 0; i < 40; ++i)
    inlined.run(i, "SELECT id, name FROM products WHERE id = " + std::to_string(i % 2), {},
                product(i % 2));
  auto findings = inlined.judge();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].details["distinct_keys"], 2);
  EXPECT_EQ(findings[0].details["hits"], 38);
}

TEST(CacheOpportunity, LargerResultsAreComparedOnTheirSample) {
  Calls c;
  // 500 rows of which the event samples the first 64: the same sample and count is the same
  // result (what changed past the sample is not seen); another count is a change.
  std::vector<std::vector<std::string>> sample;
  for (int i = 0; i < 64; ++i) sample.push_back({std::to_string(i), "row"});
  for (int s = 0; s < 30; ++s)
    c.run(s, "SELECT id, name FROM products ORDER BY id", {}, sample, 2ms, 500);
  c.run(30, "SELECT id, name FROM products ORDER BY id", {}, sample, 2ms, 501);
  auto findings = c.judge();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].details["hits"], 29);
  EXPECT_EQ(findings[0].details["result_changes"], 1);
}

TEST(CacheOpportunity, AFindingIsResolvedWhenTheResultsStartChanging) {
  Calls c;
  for (int s = 0; s < 30; ++s) c.run(s, kProduct, {"1"}, product(1));
  ASSERT_EQ(c.judge().size(), 1u);
  for (int s = 30; s < 120; ++s) c.run(s, kProduct, {"1"}, product(1, s));
  auto findings = c.judge();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_TRUE(findings[0].resolved);
}

TEST(CacheOpportunity, BelowTheMinimumCallsNothingIsJudged) {
  Calls c;
  for (int s = 0; s < 19; ++s) c.run(s, kProduct, {"1"}, product(1));
  EXPECT_TRUE(c.judge().empty());
  c.run(19, kProduct, {"1"}, product(1));
  EXPECT_EQ(c.judge().size(), 1u);
}

TEST(CacheOpportunity, MemoryIsBoundedByTheKeysKept) {
  RuleSettings settings;
  settings.cache_max_keys = 100;
  Calls c(settings);
  for (int i = 0; i < 1000; ++i) c.run(i, kProduct, {std::to_string(i)}, product(i));
  for (int i = 0; i < 300; ++i)
    c.run(1000 + i, "SELECT id, name FROM t" + std::to_string(i) + " WHERE id = $1", {"1"},
          product(1));
  EXPECT_LE(c.rule().keys(), 100u);
  EXPECT_LE(c.rule().fingerprints(), 100u);
}

}  // namespace
}  // namespace pglens::rules
