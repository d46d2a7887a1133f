// The skeleton scan and FingerprintCache's templates: a text served from a template must get
// exactly what a parse of that text gives, literals included.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "analyzer/fingerprint_cache.hpp"
#include "analyzer/literal_skeleton.hpp"
#include "analyzer/query_shape.hpp"

namespace {
using namespace pglens::analyzer;

std::string marks(std::string_view sql) {
  Skeleton s;
  skeletonize(sql, s);
  std::string out;
  for (char c : s.text)
    out += c == kNumberMark ? std::string("#") : c == kStringMark ? "@" : std::string(1, c);
  return out;
}

TEST(LiteralSkeleton, BlanksNumbersAndStrings) {
  EXPECT_EQ(marks("SELECT * FROM t WHERE id = 42 AND name = 'it''s'"),
            "SELECT * FROM t WHERE id = # AND name = @");
  EXPECT_EQ(marks("SELECT 1.5, .5, 1e-3, 2.e5, -7"), "SELECT #, #, #, #, -#");
  EXPECT_EQ(marks("INSERT INTO t2 (c_1) VALUES (1),(2)"), "INSERT INTO t2 (c_1) VALUES (#),(#)");
}

TEST(LiteralSkeleton, KeepsWhatIsNoPlainConstant) {
  EXPECT_EQ(marks("SELECT $1, $2 FROM t"), "SELECT $1, $2 FROM t");
  EXPECT_EQ(marks("SELECT \"col 1\" FROM \"t2\""), "SELECT \"col 1\" FROM \"t2\"");
  EXPECT_EQ(marks("SELECT 1 -- 2 'x'\n, 3"), "SELECT # -- 2 'x'\n, #");
  EXPECT_EQ(marks("SELECT /* 1 /* 2 */ 3 */ 4"), "SELECT /* 1 /* 2 */ 3 */ #");
  EXPECT_EQ(marks("SELECT $$ 1 'a' $$, $f$ 2 $f$, 3"), "SELECT $$ 1 'a' $$, $f$ 2 $f$, #");
  EXPECT_EQ(marks("SELECT E'a\\'b', B'101', X'1F', N'n', U&'d', 'p'"),
            "SELECT E'a\\'b', B'101', X'1F', N'n', U&'d', @");
}

TEST(LiteralSkeleton, ValuesAsTheParseTreeGivesThem) {
  std::string sql = "SELECT 007, 2147483648, 1.50, 'a''b', 5";
  Skeleton s;
  skeletonize(sql, s);
  ASSERT_EQ(s.literals.size(), 5u);
  std::string v;
  literal_value(sql, s.literals[0], false, v);
  EXPECT_EQ(v, "7");
  literal_value(sql, s.literals[1], false, v);
  EXPECT_EQ(v, "2147483648");
  literal_value(sql, s.literals[2], true, v);
  EXPECT_EQ(v, "-1.50");
  literal_value(sql, s.literals[3], false, v);
  EXPECT_EQ(v, "a'b");
  literal_value(sql, s.literals[4], true, v);
  EXPECT_EQ(v, "-5");
}

void expect_same(const QueryShape& got, const QueryShape& want, const std::string& sql) {
  SCOPED_TRACE(sql);
  ASSERT_EQ(got.parsed, want.parsed);
  ASSERT_EQ(got.statements.size(), want.statements.size());
  for (std::size_t i = 0; i < want.statements.size(); ++i) {
    const auto &a = got.statements[i], &b = want.statements[i];
    EXPECT_EQ(a.fingerprint, b.fingerprint);
    EXPECT_EQ(a.fingerprint_hex, b.fingerprint_hex);
    EXPECT_EQ(a.normalized, b.normalized);
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.values_rows, b.values_rows);
    EXPECT_EQ(a.in_list_size, b.in_list_size);
    EXPECT_EQ(a.any_array_param, b.any_array_param);
    EXPECT_EQ(a.target_table, b.target_table);
    EXPECT_EQ(a.literals, b.literals);
    EXPECT_EQ(a.read.relations, b.read.relations);
    EXPECT_EQ(a.read.join, b.read.join);
    EXPECT_EQ(a.read.aggregate, b.read.aggregate);
    EXPECT_EQ(a.read.where, b.read.where);
    EXPECT_EQ(a.read.limit, b.read.limit);
    EXPECT_EQ(a.read.id_equality, b.read.id_equality);
    EXPECT_EQ(a.locking, b.locking);
    EXPECT_EQ(a.modifies, b.modifies);
    EXPECT_EQ(a.volatile_functions, b.volatile_functions);
  }
}

// Each family: texts of one skeleton (or meant to look like one), in order through one cache.
const std::vector<std::vector<std::string>> kFamilies = {
    {"SELECT abalance FROM pgbench_accounts WHERE aid = 40252;",
     "SELECT abalance FROM pgbench_accounts WHERE aid = 7;",
     "SELECT abalance FROM pgbench_accounts WHERE aid = 99999;",
     "SELECT abalance FROM pgbench_accounts WHERE aid = 0;"},
    {"UPDATE pgbench_accounts SET abalance = abalance + -4876 WHERE aid = 199135;",
     "UPDATE pgbench_accounts SET abalance = abalance + 1504 WHERE aid = 40252;",
     "UPDATE pgbench_accounts SET abalance = abalance + -0 WHERE aid = 1;",
     "UPDATE pgbench_accounts SET abalance = abalance + -  12 WHERE aid = 3;"},
    {"SELECT * FROM t WHERE a - 5 > 0", "SELECT * FROM t WHERE a - 6 > 0"},
    {"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (40, 4, 40252, 1504, "
     "CURRENT_TIMESTAMP);",
     "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 12, -3, "
     "CURRENT_TIMESTAMP);"},
    {"SELECT * FROM users WHERE name = 'ann' AND active = true LIMIT 10",
     "SELECT * FROM users WHERE name = 'o''brien' AND active = true LIMIT 20",
     "SELECT * FROM users WHERE name = '' AND active = true LIMIT 1"},
    {"SELECT * FROM orders WHERE id IN (1, 2, 3)", "SELECT * FROM orders WHERE id IN (4, 5, 6)",
     "SELECT * FROM orders WHERE id IN (4, 5)"},
    {"SELECT 1.5::numeric(10,2), 2147483648, 007", "SELECT 2.5::numeric(10,2), 3, 8",
     "SELECT 2.5::numeric(12,4), 3, 8"},
    {"SELECT * FROM t ORDER BY 1 LIMIT 5", "SELECT * FROM t ORDER BY 2 LIMIT 5"},
    {"SELECT now() - interval '1 day', '{1,2}'::int[]",
     "SELECT now() - interval '2 days', '{3}'::int[]"},
    {"SELECT B'101', 1", "SELECT B'101', 2", "SELECT B'111', 2"},
    {"SELECT 1; SELECT 2", "SELECT 3; SELECT 4"},
    {"SELEC 1 FROM", "SELEC 2 FROM"},
    {"SELECT $1 + 1 FROM t WHERE b = 'x'", "SELECT $1 + 2 FROM t WHERE b = 'y'"},
    {"SET statement_timeout = 1000", "SET statement_timeout = 2000"},
    {"SELECT * FROM t /* req 1 */ WHERE id = 1", "SELECT * FROM t /* req 1 */ WHERE id = 2"},
    {"SELECT 'a' 'b'", "SELECT 'c' 'd'"},
    {"SELECT 'a'\n'b'", "SELECT 'c'\n'd'"},
    {"SELECT -9223372036854775808, -2147483648", "SELECT -1, -2"},
};

TEST(FingerprintCacheTemplates, EveryTextGetsWhatItsOwnParseGives) {
  FingerprintCache cache;
  for (const auto& family : kFamilies)
    for (const auto& sql : family) expect_same(*cache.get(sql), analyze_query(sql), sql);
  // And again, now that the templates exist.
  for (const auto& family : kFamilies)
    for (const auto& sql : family) expect_same(*cache.get(sql), analyze_query(sql), sql);
  EXPECT_GT(cache.template_hits(), 0u);
}

TEST(FingerprintCacheTemplates, ASimpleProtocolClientIsParsedOnce) {
  FingerprintCache cache;
  for (int i = 0; i < 1000; ++i)
    cache.get("SELECT abalance FROM pgbench_accounts WHERE aid = " + std::to_string(i * 37) + ";");
  EXPECT_EQ(cache.misses(), 1u);  // the first; the check's second parse is not a text's miss
  EXPECT_EQ(cache.template_hits(), 999u);
  EXPECT_EQ(cache.size(), 1u);  // one template, no entry per text
}

TEST(FingerprintCacheTemplates, AFailedCheckFallsBackToExactText) {
  FingerprintCache cache;
  // Two strings written as one constant: the tokens do not map one to one, no template.
  cache.get("SELECT 'a'\n'b'");
  cache.get("SELECT 'c'\n'd'");
  EXPECT_EQ(cache.template_hits(), 0u);
  auto misses = cache.misses();
  cache.get("SELECT 'c'\n'd'");  // cached by its text
  EXPECT_EQ(cache.misses(), misses);
}

TEST(FingerprintCacheTemplates, AHeldShapeIsNotRewritten) {
  FingerprintCache cache;
  cache.get("SELECT * FROM t WHERE id = 1");
  auto held = cache.get("SELECT * FROM t WHERE id = 2");  // a template hit, kept
  cache.get("SELECT * FROM t WHERE id = 3");
  EXPECT_EQ(held->statements.at(0).literals, std::vector<std::string>{"2"});
}

}  // namespace

namespace {
TEST(FingerprintCacheTemplates, ATextThatLooksLikeASkeletonIsJustAText) {
  FingerprintCache cache;
  cache.get("SELECT * FROM t WHERE id = 1");
  cache.get("SELECT * FROM t WHERE id = 2");
  const std::string forged = "SELECT * FROM t WHERE id = \x01";  // the template's own key
  const auto& shape = cache.get(forged);
  ASSERT_TRUE(shape);
  ASSERT_FALSE(shape->statements.empty());
  EXPECT_EQ(cache.get("SELECT * FROM t WHERE id = 3")->statements.at(0).literals,
            std::vector<std::string>{"3"});
}
}  // namespace
