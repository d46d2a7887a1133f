// pglens report --from A --from B: several replicas' answers merged into one report.
#include <gtest/gtest.h>

#include "proxy/report.hpp"

namespace pglens::proxy {
namespace {

using nlohmann::json;

json statement(const std::string& fp, const std::string& db, int calls, double total, double p95,
               const std::string& first, const std::string& last) {
  return {{"fingerprint", fp},   {"query", "SELECT " + fp}, {"database", db},
          {"user", "u"},         {"application_name", ""},  {"calls", calls},
          {"errors", 1},         {"rows", calls * 2},       {"total_ms", total},
          {"min_ms", 0.5},       {"max_ms", p95 * 2},       {"mean_ms", total / calls},
          {"p50_ms", p95 / 2},   {"p95_ms", p95},           {"p99_ms", p95 * 1.5},
          {"first_seen", first}, {"last_seen", last}};
}

json finding(const std::string& rule, const std::string& fp, const std::string& parent, int count,
             double savings, bool resolved) {
  return {{"rule", rule},
          {"fingerprint", fp},
          {"parent", parent},
          {"count", count},
          {"estimated_savings_ms", savings},
          {"resolved", resolved},
          {"severity", "warning"},
          {"query", "q"},
          {"first_seen", "2024-01-01T00:00:0" + std::to_string(count % 10) + "Z"},
          {"last_seen", "2024-01-01T00:01:00Z"}};
}

TEST(ReportMerge, StatementsSumAndTakeTheGreatestPercentile) {
  ReplicaAnswers a, b;
  a.fingerprints = {
      {"fingerprints",
       {statement("f1", "app", 10, 100.0, 8.0, "2024-01-01T00:00:05Z", "2024-01-01T00:10:00Z"),
        statement("f2", "app", 1, 5.0, 5.0, "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z")}}};
  b.fingerprints = {
      {"fingerprints",
       {statement("f1", "app", 30, 150.0, 4.0, "2024-01-01T00:00:01Z", "2024-01-01T00:09:00Z"),
        // another database: another row
        statement("f1", "other", 2, 400.0, 300.0, "2024-01-01T00:00:00Z",
                  "2024-01-01T00:00:00Z")}}};
  auto merged = merge_replicas({a, b});
  const auto& rows = merged.fingerprints["fingerprints"];
  ASSERT_EQ(rows.size(), 3u);
  // Sorted by total time again.
  EXPECT_EQ(rows[0]["database"], "other");
  const auto& f1 = rows[1];
  EXPECT_EQ(f1["fingerprint"], "f1");
  EXPECT_EQ(f1["calls"], 40);
  EXPECT_EQ(f1["errors"], 2);
  EXPECT_EQ(f1["rows"], 80);
  EXPECT_DOUBLE_EQ(f1["total_ms"].get<double>(), 250.0);
  EXPECT_DOUBLE_EQ(f1["mean_ms"].get<double>(), 6.25);
  EXPECT_DOUBLE_EQ(f1["p95_ms"].get<double>(), 8.0);  // the greater
  EXPECT_DOUBLE_EQ(f1["max_ms"].get<double>(), 16.0);
  EXPECT_EQ(f1["first_seen"], "2024-01-01T00:00:01Z");
  EXPECT_EQ(f1["last_seen"], "2024-01-01T00:10:00Z");
  EXPECT_EQ(rows[2]["fingerprint"], "f2");
  EXPECT_EQ(merge_replicas({a, b}, 1).fingerprints["fingerprints"].size(), 1u);
}

TEST(ReportMerge, FindingsMergeByRuleFingerprintAndParent) {
  ReplicaAnswers a, b;
  a.advice = {{"analysis", true},
              {"findings",
               {finding("n_plus_one", "f1", "p1", 3, 10.0, true),
                finding("n_plus_one", "f1", "p2", 1, 1.0, false)}}};
  b.advice = {{"analysis", true},
              {"findings", {finding("n_plus_one", "f1", "p1", 4, 30.0, false)}}};
  auto merged = merge_replicas({a, b});
  const auto& findings = merged.advice["findings"];
  ASSERT_EQ(findings.size(), 2u);
  EXPECT_EQ(findings[0]["parent"], "p1");
  EXPECT_EQ(findings[0]["count"], 7);
  EXPECT_DOUBLE_EQ(findings[0]["estimated_savings_ms"].get<double>(), 40.0);
  EXPECT_FALSE(findings[0]["resolved"].get<bool>());  // open on one replica: open
  EXPECT_EQ(findings[0]["first_seen"], "2024-01-01T00:00:03Z");
  EXPECT_EQ(findings[1]["parent"], "p2");
  EXPECT_TRUE(merged.advice["analysis"].get<bool>());
}

TEST(ReportMerge, PoolsSumTheirCounters) {
  ReplicaAnswers a, b;
  a.pools = {{"pools",
              {{{"database", "app"},
                {"user", "u"},
                {"pool_size", 20},
                {"state_resets", 2},
                {"transactions", 10},
                {"waits", 1},
                {"avg_wait_ms", 4.0},
                {"max_wait_ms", 4.0}}}}};
  b.pools = {{"pools",
              {{{"database", "app"},
                {"user", "u"},
                {"pool_size", 20},
                {"state_resets", 1},
                {"transactions", 5},
                {"waits", 3},
                {"avg_wait_ms", 8.0},
                {"max_wait_ms", 9.0}}}}};
  auto p = merge_replicas({a, b}).pools["pools"][0];
  EXPECT_EQ(p["pool_size"], 20);
  EXPECT_EQ(p["state_resets"], 3);
  EXPECT_EQ(p["transactions"], 15);
  EXPECT_DOUBLE_EQ(p["avg_wait_ms"].get<double>(), 7.0);
  EXPECT_DOUBLE_EQ(p["max_wait_ms"].get<double>(), 9.0);
}

TEST(ReportMerge, TheReportSaysWhichReplicasAndHowPercentilesWereMerged) {
  ReplicaAnswers a;
  a.fingerprints = {{"fingerprints", {statement("f1", "app", 1, 1.0, 1.0, "x", "y")}}};
  auto merged = merge_replicas({a, a});
  merged.advice["replicas"] = {"http://a:1", "http://b:2"};
  auto text = render_report(merged.advice, merged.fingerprints, ReportFormat::Text, merged.pools);
  EXPECT_NE(text.find("2 replicas merged: http://a:1, http://b:2"), std::string::npos) << text;
  EXPECT_NE(text.find("upper bound"), std::string::npos);
  auto j = json::parse(
      render_report(merged.advice, merged.fingerprints, ReportFormat::Json, merged.pools));
  EXPECT_EQ(j["replicas"].size(), 2u);
  EXPECT_EQ(j["fingerprints"][0]["calls"], 2);
}

}  // namespace
}  // namespace pglens::proxy
