#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "analyzer/analyzer.hpp"
#include "analyzer/event_queue.hpp"
#include "analyzer/fingerprint_cache.hpp"
#include "analyzer/latency_histogram.hpp"
#include "analyzer/query_shape.hpp"
#include "analyzer/stats_table.hpp"

namespace pglens::analyzer {
namespace {

using namespace std::chrono_literals;

const StatementShape& only(const QueryShape& q) {
  EXPECT_EQ(q.statements.size(), 1u);
  return q.statements.front();
}

// ---- golden corpus: SQL → fingerprint, normalized text, kind, VALUES rows, IN-list size ----

nlohmann::json shape_json(const QueryShape& q) {
  nlohmann::json statements = nlohmann::json::array();
  for (const auto& s : q.statements) {
    statements.push_back({{"fingerprint", s.fingerprint_hex},
                          {"normalized", s.normalized},
                          {"kind", std::string(to_string(s.kind))},
                          {"values_rows", s.values_rows},
                          {"in_list_size", s.in_list_size},
                          {"any_array_param", s.any_array_param},
                          {"target_table", s.target_table}});
  }
  return {{"parsed", q.parsed}, {"statements", statements}};
}

TEST(QueryShapeGolden, MatchesTheCorpus) {
  std::string dir = std::string(PGLENS_SOURCE_DIR) + "/tests/golden/";
  std::ifstream corpus(dir + "query_shapes.sql");
  ASSERT_TRUE(corpus) << "missing " << dir << "query_shapes.sql";
  nlohmann::json actual = nlohmann::json::array();
  for (std::string line; std::getline(corpus, line);) {
    if (line.empty() || line.rfind("--", 0) == 0) continue;
    actual.push_back({{"sql", line}, {"shape", shape_json(analyze_query(line))}});
  }
  std::string golden_path = dir + "query_shapes.json";
  if (std::getenv("PGLENS_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden_path) << actual.dump(2) << "\n";
    GTEST_SKIP() << "golden file rewritten: review the diff";
  }
  std::ifstream golden_file(golden_path);
  ASSERT_TRUE(golden_file) << "missing " << golden_path;
  auto golden = nlohmann::json::parse(golden_file);
  ASSERT_EQ(golden.size(), actual.size()) << "corpus and golden file differ in length";
  for (std::size_t i = 0; i < golden.size(); ++i)
    EXPECT_EQ(golden[i], actual[i]) << "for: " << actual[i]["sql"];
}

// The fingerprint's blind spots, stated outright (the golden file records the same facts).
TEST(QueryShape, EqualityInListAndAnyShareAFingerprintButNotTheirSizes) {
  auto eq = only(analyze_query("SELECT * FROM users WHERE id = $1"));
  auto in = only(analyze_query("SELECT * FROM users WHERE id IN (1, 2, 3)"));
  auto any = only(analyze_query("SELECT * FROM users WHERE id = ANY($1)"));
  EXPECT_EQ(eq.fingerprint, in.fingerprint);
  EXPECT_EQ(eq.fingerprint, any.fingerprint);
  EXPECT_EQ(eq.in_list_size, 0);
  EXPECT_EQ(in.in_list_size, 3);
  EXPECT_TRUE(any.any_array_param);
}

TEST(QueryShape, SingleAndMultiRowInsertShareAFingerprintButNotTheirRowCounts) {
  auto one = only(analyze_query("INSERT INTO t (a, b) VALUES (1, 'x')"));
  auto three = only(analyze_query("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')"));
  EXPECT_EQ(one.fingerprint, three.fingerprint);
  EXPECT_EQ(one.values_rows, 1);
  EXPECT_EQ(three.values_rows, 3);
  EXPECT_EQ(one.kind, StatementKind::Insert);
  EXPECT_EQ(one.target_table, "t");
}

TEST(QueryShape, CommentsAndConstantsDoNotChangeTheFingerprint) {
  EXPECT_EQ(only(analyze_query("SELECT /* x */ 1")).fingerprint,
            only(analyze_query("SELECT 2")).fingerprint);
  EXPECT_EQ(only(analyze_query("SELECT * FROM t WHERE a = 1")).normalized,
            "SELECT * FROM t WHERE a = $1");
}

TEST(QueryShape, MultiStatementStringsAreSplit) {
  auto q = analyze_query("BEGIN; UPDATE t SET a = 1 WHERE b = 2; COMMIT");
  ASSERT_EQ(q.statements.size(), 3u);
  EXPECT_EQ(q.statements[0].kind, StatementKind::Begin);
  EXPECT_EQ(q.statements[1].kind, StatementKind::Update);
  EXPECT_EQ(q.statements[1].normalized, "UPDATE t SET a = $1 WHERE b = $2");
  EXPECT_EQ(q.statements[2].kind, StatementKind::Commit);
}

TEST(QueryShape, UnparseableTextGetsAFallbackKey) {
  auto q = analyze_query("SELEC broken FROM");
  EXPECT_FALSE(q.parsed);
  auto s = only(q);
  EXPECT_EQ(s.kind, StatementKind::Unparsed);
  EXPECT_EQ(s.fingerprint_hex.size(), 16u);
  EXPECT_EQ(s.fingerprint, only(analyze_query("SELEC broken FROM")).fingerprint);
  EXPECT_NE(s.fingerprint, only(analyze_query("SELEC other FROM")).fingerprint);
}

// ---- fingerprint cache ----

TEST(FingerprintCache, RepeatedTextIsAHit) {
  FingerprintCache cache(10);
  auto a = cache.get("SELECT a FROM t");
  auto b = cache.get("SELECT a FROM t");
  EXPECT_EQ(a.get(), b.get());  // the same analysis, not a new one
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 1u);
}

TEST(FingerprintCache, EvictsLeastRecentlyUsed) {
  FingerprintCache cache(2);
  cache.get("SELECT a FROM t");
  cache.get("SELECT b FROM t");
  cache.get("SELECT a FROM t");  // a is now the most recent
  cache.get("SELECT c FROM t");  // evicts b
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_EQ(cache.size(), 2u);
  auto misses = cache.misses();
  cache.get("SELECT a FROM t");
  EXPECT_EQ(cache.misses(), misses);
  cache.get("SELECT b FROM t");
  EXPECT_EQ(cache.misses(), misses + 1);
}

TEST(FingerprintCache, BoundedByBytesToo) {
  FingerprintCache cache(1000, 100);
  for (int i = 0; i < 10; ++i)
    cache.get("SELECT " + std::string(30, static_cast<char>('a' + i)) + " FROM t");
  EXPECT_LE(cache.size(), 3u);
}

TEST(FingerprintCache, AShapeEvictedByItsOwnMissIsStillReturnedWhole) {
  // A text longer than the byte bound is evicted as soon as it is added; the reference get()
  // returns must still hold its shape until the next get.
  FingerprintCache cache(1000, 10);
  const auto& shape = cache.get("SELECT * FROM orders WHERE id = 1");
  EXPECT_EQ(cache.size(), 0u);
  ASSERT_TRUE(shape);
  EXPECT_EQ(shape->statements.at(0).normalized, "SELECT * FROM orders WHERE id = $1");
}

// ---- latency histogram ----

TEST(LatencyHistogram, PercentilesWithinOneBucketOfExact) {
  std::mt19937 rng(11);
  std::lognormal_distribution<double> dist(std::log(2000.0), 1.0);  // µs, median ~2 ms
  std::vector<std::chrono::nanoseconds> values;
  LatencyHistogram h;
  for (int i = 0; i < 20000; ++i) {
    auto v = std::chrono::nanoseconds(static_cast<std::int64_t>(dist(rng) * 1000));
    values.push_back(v);
    h.observe(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.95, 0.99, 0.999}) {
    auto exact = values[static_cast<std::size_t>(std::ceil(q * values.size())) - 1];
    auto estimate = h.quantile(q);
    // Within one bucket: the estimate lies in the exact value's bucket or a neighbour.
    EXPECT_LE(std::abs(LatencyHistogram::bucket_of(estimate) - LatencyHistogram::bucket_of(exact)),
              1)
        << "q=" << q << " exact " << exact.count() << " ns, estimate " << estimate.count() << " ns";
  }
}

TEST(LatencyHistogram, EachBucketStartsAtItsFloor) {
  EXPECT_EQ(LatencyHistogram::bucket_of(0ns), 0);
  EXPECT_EQ(LatencyHistogram::bucket_of(-5ns), 0);
  for (int i = 1; i < LatencyHistogram::kBuckets; ++i) {
    auto floor = LatencyHistogram::bucket_floor(i);
    EXPECT_EQ(LatencyHistogram::bucket_of(floor), i) << floor.count() << " ns";
    EXPECT_EQ(LatencyHistogram::bucket_of(floor - 1ns), i - 1) << floor.count() << " ns";
  }
  EXPECT_EQ(LatencyHistogram::bucket_of(std::chrono::hours(1)), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogram, MergedBucketsForDisplay) {
  LatencyHistogram h;
  EXPECT_TRUE(h.merged(5).upper.empty());
  h.observe(500ns);   // below 1 µs: the first bucket
  h.observe(1500us);  // in [1 ms, 1.78 ms)
  h.observe(1700us);
  h.observe(9ms);  // in [5.62 ms, 10 ms): the last bucket kept
  auto b = h.merged(5);
  ASSERT_EQ(b.upper.size(), b.counts.size());
  // [0, 1 µs), then four per decade from 1 µs to 10 ms: 1 + 4 × 4 buckets.
  ASSERT_EQ(b.upper.size(), 17u);
  EXPECT_EQ(b.upper[0], 1us);
  EXPECT_EQ(b.counts[0], 1u);
  EXPECT_EQ(b.upper[4], 10us);
  EXPECT_EQ(b.upper[13], 1778279ns);
  EXPECT_EQ(b.counts[13], 2u);
  EXPECT_EQ(b.upper[16], 10ms);
  EXPECT_EQ(b.counts[16], 1u);
  std::uint64_t total = 0;
  for (auto n : b.counts) total += n;
  EXPECT_EQ(total, 4u);
  for (std::size_t i = 1; i < b.upper.size(); ++i) EXPECT_LT(b.upper[i - 1], b.upper[i]);

  h.observe(std::chrono::minutes(3));  // above 100 s: a last bucket ending at the maximum
  b = h.merged(5);
  EXPECT_EQ(b.upper.back(), std::chrono::minutes(3));
  EXPECT_EQ(b.counts.back(), 1u);
  EXPECT_EQ(b.upper[b.upper.size() - 2], 100s);
}

TEST(LatencyHistogram, ClampsToWhatWasSeen) {
  LatencyHistogram h;
  h.observe(5ms);
  EXPECT_EQ(h.quantile(0.5), 5ms);
  EXPECT_EQ(h.quantile(0.99), 5ms);
  EXPECT_EQ(LatencyHistogram().quantile(0.5), 0ns);
}

// ---- event queue ----

ExecutionEvent event_for(std::string sql) {
  ExecutionEvent e;
  static auto who =
      std::make_shared<SessionInfo>(SessionInfo{1, "db", "alice", "app", "127.0.0.1"});
  e.session = who;
  e.sql = std::make_shared<const std::string>(std::move(sql));
  e.latency = 1ms;
  return e;
}

// One statement of session 1, started and ended around it, as Analyzer::submit does.
bool push_one(EventQueue& q, const ExecutionEvent& e) {
  EventBatch b;
  b.start_session(e.session);
  b.add(e.session->session_id, e, EventBatch::SteadyClock::now());
  b.end_session(e.session->session_id);
  return q.push(b);
}

std::vector<ExecutionEvent> read_all(EventReader& reader, const EventBatch& batch) {
  std::vector<ExecutionEvent> out;
  reader.read(batch, [&](const ExecutionEvent& e) { out.push_back(e); });
  return out;
}

TEST(EventQueue, DropsAndCountsWhenFull) {
  EventQueue q(3);
  for (int i = 0; i < 5; ++i) push_one(q, event_for("SELECT 1"));
  EXPECT_EQ(q.dropped(), 2u);
  EventBatch batch;
  ASSERT_TRUE(q.pop_all(batch, 0ms));
  EXPECT_EQ(batch.events(), 3u);
  EventReader reader;
  EXPECT_EQ(read_all(reader, batch).size(), 3u);
  EXPECT_EQ(reader.sessions(), 0u);  // every start had its end, dropped statements or not
  EXPECT_TRUE(push_one(q, event_for("SELECT 1")));  // room again
  q.close();
  EXPECT_TRUE(q.pop_all(batch, 0ms));  // what was queued still comes out
  EXPECT_EQ(batch.events(), 1u);
  EXPECT_FALSE(q.pop_all(batch, 0ms));  // then nothing: closed
}

TEST(EventQueue, EveryFieldArrivesAsItWasSent) {
  auto e = event_for("SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $3");
  e.transaction = 12;
  e.statement_index = 2;
  e.extended = true;
  e.pipelined = true;
  e.parameters = {std::string("42"), std::nullopt, std::string(), std::string("\\x00ff")};
  e.rows = 1'000'000'000'000ull;
  e.columns = {"a", "a longer column name than fits in place"};
  e.result_sample = {1, 2, 0xffffffffffffffffull, 4};
  e.pool_wait = 1234567ns;
  e.latency = 7654321ns;
  e.sqlstate = "23505";
  auto sent_at = std::chrono::system_clock::now();
  EventQueue q(10);
  EventBatch b;
  b.start_session(e.session);
  b.add(e.session->session_id, e, EventBatch::SteadyClock::now());
  ASSERT_TRUE(q.push(b));
  EXPECT_TRUE(b.empty());  // handed over, its buffer kept for the next

  EventBatch popped;
  ASSERT_TRUE(q.pop_all(popped, 0ms));
  EventReader reader;
  auto got = read_all(reader, popped);
  ASSERT_EQ(got.size(), 1u);
  const auto& r = got[0];
  EXPECT_EQ(r.session, e.session);  // the very SessionInfo the session started with
  EXPECT_EQ(*r.sql, *e.sql);
  EXPECT_EQ(r.transaction, 12u);
  EXPECT_EQ(r.statement_index, 2u);
  EXPECT_TRUE(r.extended);
  EXPECT_TRUE(r.pipelined);
  EXPECT_EQ(r.parameters, e.parameters);
  EXPECT_EQ(r.rows, e.rows);
  EXPECT_EQ(r.columns, e.columns);
  EXPECT_EQ(r.result_sample, e.result_sample);
  EXPECT_EQ(r.pool_wait, e.pool_wait);
  EXPECT_EQ(r.latency, e.latency);
  EXPECT_EQ(r.sqlstate, "23505");
  // Sent as a steady time, read as a wall-clock one.
  EXPECT_LT(std::chrono::abs(r.finished_at - sent_at), 1s);
  EXPECT_EQ(reader.sessions(), 1u);  // not ended yet
}

TEST(EventQueue, ALongTextTravelsByReferenceAShortOneByCopy) {
  auto long_sql = std::make_shared<const std::string>(
      "SELECT 1 /* " + std::string(EventBatch::kMaxCopiedText, 'x') + " */");
  auto e = event_for("SELECT 1");
  EventBatch b;
  b.start_session(e.session);
  b.add(1, e, EventBatch::SteadyClock::now());
  e.sql = long_sql;
  b.add(1, e, EventBatch::SteadyClock::now());
  e.sql = nullptr;
  b.add(1, e, EventBatch::SteadyClock::now());
  EXPECT_LT(b.size_bytes(), 2 * EventBatch::kMaxCopiedText);
  EventReader reader;
  auto got = read_all(reader, b);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(*got[0].sql, "SELECT 1");
  EXPECT_EQ(got[1].sql, long_sql);  // the same string, not a copy
  EXPECT_EQ(got[2].sql, nullptr);
}

TEST(EventQueue, TheReaderCarriesNothingOverFromOneStatementToTheNext) {
  auto full = event_for("SELECT $1");
  full.extended = full.pipelined = true;
  full.parameters = {std::string("a value longer than the small string buffer"), std::nullopt};
  full.columns = {"id", "name"};
  full.result_sample = {7, 8};
  full.rows = 3;
  full.sqlstate = "57014";
  full.statement_index = 4;
  full.transaction = 9;
  full.pool_wait = 5ms;
  auto bare = event_for("SET x = 1");
  bare.latency = 0ns;
  EventBatch b;
  b.start_session(full.session);
  b.add(1, full, EventBatch::SteadyClock::now());
  b.add(1, bare, EventBatch::SteadyClock::now());
  full.parameters = {std::nullopt, std::string("b")};  // a NULL where a value was, and back
  b.add(1, full, EventBatch::SteadyClock::now());
  EventReader reader;
  auto got = read_all(reader, b);
  ASSERT_EQ(got.size(), 3u);
  const auto& r = got[1];
  EXPECT_EQ(*r.sql, "SET x = 1");
  EXPECT_FALSE(r.extended || r.pipelined);
  EXPECT_TRUE(r.parameters.empty());
  EXPECT_TRUE(r.columns.empty());
  EXPECT_TRUE(r.result_sample.empty());
  EXPECT_EQ(r.rows, 0u);
  EXPECT_TRUE(r.sqlstate.empty());
  EXPECT_EQ(r.statement_index, 0u);
  EXPECT_EQ(r.transaction, 0u);
  EXPECT_EQ(r.pool_wait, 0ns);
  EXPECT_EQ(r.latency, 0ns);
  EXPECT_EQ(got[2].parameters, full.parameters);
}

TEST(EventQueue, AStatementTextAConsumerKeptStaysAsItWas) {
  EventBatch b;
  auto e = event_for("SELECT 1");
  b.start_session(e.session);
  b.add(1, e, EventBatch::SteadyClock::now());
  e.sql = std::make_shared<const std::string>("SELECT 2");
  b.add(1, e, EventBatch::SteadyClock::now());
  EventReader reader;
  std::shared_ptr<const std::string> kept;
  std::vector<std::string> seen;
  reader.read(b, [&](const ExecutionEvent& r) {
    if (!kept) kept = r.sql;
    seen.push_back(*r.sql);
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"SELECT 1", "SELECT 2"}));
  EXPECT_EQ(*kept, "SELECT 1");
}

TEST(EventQueue, SessionStartsAndEndsGetThroughAFullQueue) {
  // Statements are dropped when they do not fit; who started and ended never is, or the reader
  // would not know the session of a later statement, or keep it for good.
  EventQueue q(1);
  auto e = event_for("SELECT 1");
  EventBatch b;
  b.start_session(e.session);
  b.add(1, e, EventBatch::SteadyClock::now());
  b.add(1, e, EventBatch::SteadyClock::now());
  EXPECT_FALSE(q.push(b));
  EXPECT_EQ(q.dropped(), 2u);
  EventBatch popped;
  EventReader reader;
  ASSERT_TRUE(q.pop_all(popped, 0ms));
  EXPECT_TRUE(read_all(reader, popped).empty());
  EXPECT_EQ(reader.sessions(), 1u);

  b.add(1, e, EventBatch::SteadyClock::now());
  ASSERT_TRUE(q.push(b));
  ASSERT_TRUE(q.pop_all(popped, 0ms));
  auto got = read_all(reader, popped);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].session, e.session);

  b.add(1, e, EventBatch::SteadyClock::now());
  b.add(1, e, EventBatch::SteadyClock::now());
  b.end_session(1);
  EXPECT_FALSE(q.push(b));
  ASSERT_TRUE(q.pop_all(popped, 0ms));
  EXPECT_TRUE(read_all(reader, popped).empty());
  EXPECT_EQ(reader.sessions(), 0u);
}

TEST(EventQueue, LongTextsOfDroppedStatementsDoNotShiftTheOthers) {
  EventQueue q(1);
  auto text = [](char c) {
    return std::make_shared<const std::string>(std::string(EventBatch::kMaxCopiedText + 1, c));
  };
  auto e = event_for("SELECT 1");
  EventBatch b;
  b.start_session(e.session);
  e.sql = text('a');
  b.add(1, e, EventBatch::SteadyClock::now());
  e.sql = text('b');
  b.add(1, e, EventBatch::SteadyClock::now());
  EXPECT_FALSE(q.push(b));  // two do not fit in one
  auto c = text('c');
  e.sql = c;
  b.add(1, e, EventBatch::SteadyClock::now());
  EXPECT_TRUE(q.push(b));
  EventBatch popped;
  ASSERT_TRUE(q.pop_all(popped, 0ms));
  EventReader reader;
  auto got = read_all(reader, popped);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sql, c);
  EXPECT_EQ(got[0].session, e.session);
}

TEST(EventQueue, AnIdStartedAgainIsTheNewSession) {
  // Analyzer::submit starts and ends a session around each statement; two SessionInfo under one
  // id, one after the other, must each be the session of their own statement.
  auto first = event_for("SELECT 1");
  auto second = event_for("SELECT 2");
  second.session = std::make_shared<SessionInfo>(SessionInfo{1, "other", "bob", "", ""});
  EventBatch b;
  for (const auto* e : {&first, &second}) {
    b.start_session(e->session);
    b.add(1, *e, EventBatch::SteadyClock::now());
    b.end_session(1);
  }
  b.add(1, first, EventBatch::SteadyClock::now());  // after its end: no session
  EventReader reader;
  auto got = read_all(reader, b);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].session, first.session);
  EXPECT_EQ(got[1].session, second.session);
  EXPECT_EQ(got[2].session, nullptr);
}

TEST(EventQueue, ABatchLetsGoOfTheMemoryABurstGaveIt) {
  EventBatch b;
  auto e = event_for("SELECT 1");
  e.parameters.assign(32, std::string(100, 'v'));
  while (b.size_bytes() < (16u << 20)) b.add(1, e, EventBatch::SteadyClock::now());
  auto burst = b.capacity_bytes();
  b.clear();
  EXPECT_EQ(b.capacity_bytes(), burst);  // it was full: a steady flow that large keeps it
  b.add(1, e, EventBatch::SteadyClock::now());
  b.clear();
  EXPECT_LT(b.capacity_bytes(), burst);
}

TEST(EventQueue, PushNeverWaitsForTheConsumer) {
  EventQueue q(1000);
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 100000; ++i) push_one(q, event_for("SELECT 1"));
  EXPECT_EQ(q.dropped(), 99000u);
  // No consumer at all, and yet every push returned.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

// The scheduling policy of each of this process' threads (field 41 of /proc/self/task/N/stat).
std::vector<int> thread_policies() {
  std::vector<int> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));  // after "pid (comm) "
    std::string field;
    for (int i = 3; i <= 41 && fields >> field; ++i)
      if (i == 41) out.push_back(std::stoi(field));
  }
  return out;
}

TEST(Analyzer, YieldToForwardingChangesOnlyTheCallingThread) {
  auto nice_of_this_thread = [] { return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())); };
  sched_param param{};
  int own_policy = -1;
  pthread_getschedparam(pthread_self(), &own_policy, &param);
  int own_nice = nice_of_this_thread();
  int policy = -1, nice = -100;
  std::thread analysis([&] {
    yield_to_forwarding();
    sched_param p{};
    pthread_getschedparam(pthread_self(), &policy, &p);
    nice = nice_of_this_thread();
  });
  analysis.join();
  EXPECT_EQ(policy, SCHED_BATCH);
  EXPECT_EQ(nice, std::min(own_nice + 5, 19));
  int after = -1;
  pthread_getschedparam(pthread_self(), &after, &param);
  EXPECT_EQ(after, own_policy);
  EXPECT_EQ(nice_of_this_thread(), own_nice);
}

TEST(Analyzer, ItsThreadRunsAsABatchThread) {
  auto before = thread_policies();
  auto batch_threads = [](const std::vector<int>& policies) {
    return std::count(policies.begin(), policies.end(), SCHED_BATCH);
  };
  Analyzer analyzer(AnalyzerSettings{}, std::make_shared<prometheus::Registry>());
  // The thread sets its policy as it starts: give it a moment.
  for (int i = 0; i < 100 && batch_threads(thread_policies()) == batch_threads(before); ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(batch_threads(thread_policies()), batch_threads(before) + 1);
}

// ---- stats table and analyzer ----

TEST(StatsTable, KeepsOneRowPerFingerprintDatabaseUserAndApplication) {
  StatsTable t(100);
  auto shape = only(analyze_query("SELECT * FROM t WHERE a = 1"));
  auto e = event_for("SELECT * FROM t WHERE a = 1");
  e.rows = 2;
  t.record(shape, e);
  t.record(shape, e);
  auto other_app = event_for("x");
  other_app.session = std::make_shared<SessionInfo>(SessionInfo{2, "db", "alice", "other", ""});
  t.record(shape, other_app);
  auto rows = t.rows(SortBy::Calls, 10);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].calls, 2u);
  EXPECT_EQ(rows[0].rows, 4u);
  EXPECT_EQ(rows[0].application_name, "app");
  EXPECT_EQ(rows[0].query, "SELECT * FROM t WHERE a = $1");
  EXPECT_DOUBLE_EQ(rows[0].total_ms, 2.0);
}

TEST(StatsTable, AnEventBuiltByHandAndADecodedOneShareTheirRow) {
  // The reader sets each event's Identity; an event built by hand (tests, tools) has none, and
  // the table computes it: both must find the same row.
  StatsTable t(100);
  auto shape = only(analyze_query("SELECT 1"));
  auto by_hand = event_for("SELECT 1");
  auto decoded = by_hand;
  decoded.identity = Identity::of(*decoded.session);
  ASSERT_FALSE(by_hand.identity.known());
  t.record(shape, by_hand);
  t.record(shape, decoded);
  auto rows = t.rows(SortBy::Calls, 10);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].calls, 2u);
}

TEST(StatsTable, EqualIdentityHashesStillNeedEqualNames) {
  // The maps hash only the Identity; a collision must not merge two users' statistics.
  StatsTable t(100);
  auto shape = only(analyze_query("SELECT 1"));
  auto alice = event_for("SELECT 1");
  auto bob = alice;
  bob.session = std::make_shared<SessionInfo>(SessionInfo{2, "db", "bob", "app", ""});
  alice.identity = bob.identity = Identity{42, 43};  // forced to collide
  t.record(shape, alice);
  t.record(shape, bob);
  auto rows = t.rows(SortBy::Calls, 10);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_NE(rows[0].user, rows[1].user);
}

TEST(Identity, DependsOnEveryNameAndTellsDatabaseUserApart) {
  SessionInfo a{1, "db", "alice", "app", "10.0.0.1"};
  auto same_but_address = a;
  same_but_address.session_id = 7;
  same_but_address.client_address = "10.0.0.2";
  EXPECT_EQ(Identity::of(a).all, Identity::of(same_but_address).all);
  auto other_app = a;
  other_app.application_name = "cron";
  EXPECT_NE(Identity::of(a).all, Identity::of(other_app).all);
  EXPECT_EQ(Identity::of(a).database_user, Identity::of(other_app).database_user);
  // The boundary between names counts: ("ab", "c") is not ("a", "bc").
  SessionInfo split1{1, "ab", "c", "", ""}, split2{1, "a", "bc", "", ""};
  EXPECT_NE(Identity::of(split1).database_user, Identity::of(split2).database_user);
  EXPECT_TRUE(Identity::of(SessionInfo{}).known());
}

TEST(StatsTable, TiesComeInTheSameOrderWhateverTheOrderRecorded) {
  // Equal calls: which rows a limit keeps must not depend on the hash map's order.
  std::vector<std::string> texts = {"SELECT 1", "SELECT * FROM a", "SELECT * FROM b",
                                    "SELECT * FROM c", "SELECT * FROM d"};
  auto fingerprints_of = [&](const std::vector<std::string>& order) {
    StatsTable t(100);
    for (const auto& sql : order) t.record(only(analyze_query(sql)), event_for(sql));
    std::vector<std::string> out;
    for (const auto& r : t.rows(SortBy::Calls, 3)) out.push_back(r.fingerprint);
    return out;
  };
  auto reversed = texts;
  std::reverse(reversed.begin(), reversed.end());
  auto forward = fingerprints_of(texts);
  EXPECT_EQ(forward.size(), 3u);
  EXPECT_EQ(forward, fingerprints_of(reversed));
  EXPECT_TRUE(std::is_sorted(forward.begin(), forward.end()));
}

TEST(StatsTable, BoundedWithEvictionsCounted) {
  StatsTable t(3);
  for (int i = 0; i < 5; ++i) {
    auto sql = "SELECT * FROM t" + std::to_string(i);
    t.record(only(analyze_query(sql)), event_for(sql));
  }
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.evictions(), 2u);
}

TEST(Analyzer, CountsEveryStatementOfAMultiStatementString) {
  auto registry = std::make_shared<prometheus::Registry>();
  Analyzer analyzer(AnalyzerSettings{}, registry);
  for (std::uint32_t i = 0; i < 3; ++i) {
    auto e = event_for("BEGIN; SELECT 1; COMMIT");
    e.statement_index = i;
    analyzer.submit(e);
  }
  for (int i = 0; i < 200 && analyzer.counters().events < 3; ++i) std::this_thread::sleep_for(10ms);
  auto rows = analyzer.fingerprints(SortBy::Calls, 10);
  ASSERT_EQ(rows.size(), 3u);
  std::set<std::string> commands;
  for (const auto& r : rows) commands.insert(r.command);
  EXPECT_EQ(commands, (std::set<std::string>{"BEGIN", "SELECT", "COMMIT"}));
}

TEST(Analyzer, LatencyHistogramsCountEachStatementInItsBucket) {
  // The analyzer adds a batch's observations at once (ObserveMultiple): the series must read as
  // if each had been observed alone.
  auto registry = std::make_shared<prometheus::Registry>();
  Analyzer analyzer(AnalyzerSettings{}, registry);
  // 1 ms is a bound: it counts in its own bucket (le="0.001"), as with Observe.
  for (std::chrono::nanoseconds latency : {50us, 700us, 700us, 1000us, 20'000'000us}) {
    auto e = event_for("SELECT 1");
    e.latency = latency;
    analyzer.submit(e);
  }
  // The batch's metrics go in after its last statement: wait for them.
  std::vector<prometheus::MetricFamily> families;
  const prometheus::ClientMetric* series = nullptr;
  for (int i = 0; i < 500 && (series == nullptr || series->histogram.sample_count < 5); ++i) {
    std::this_thread::sleep_for(10ms);
    families = registry->Collect();
    series = nullptr;
    for (const auto& f : families)
      if (f.name == "pglens_query_duration_seconds" && f.metric.size() == 1) series = &f.metric[0];
  }
  ASSERT_NE(series, nullptr);
  const auto& h = series->histogram;
  EXPECT_EQ(h.sample_count, 5u);
  EXPECT_NEAR(h.sample_sum, 20.00245, 1e-9);
  auto cumulative = [&](double bound) {
    for (const auto& b : h.bucket)
      if (b.upper_bound == bound) return b.cumulative_count;
    return std::uint64_t{999};
  };
  EXPECT_EQ(cumulative(0.0001), 1u);
  EXPECT_EQ(cumulative(0.0005), 1u);
  EXPECT_EQ(cumulative(0.001), 4u);
  EXPECT_EQ(cumulative(10), 4u);
  EXPECT_EQ(cumulative(std::numeric_limits<double>::infinity()), 5u);
  for (const auto& f : families) {
    if (f.name == "pglens_queries_total") {
      EXPECT_EQ(f.metric.at(0).counter.value, 5);
    }
  }
}

}  // namespace
}  // namespace pglens::analyzer

namespace pglens::analyzer {
namespace {
TEST(QueryShape, LiteralsComeOutInTextOrder) {
  auto s = analyze_query("SELECT * FROM t WHERE b = 'x' AND a = 42 AND c IN (7, 0) AND d = 1.5")
               .statements[0];
  EXPECT_EQ(s.literals, (std::vector<std::string>{"x", "42", "7", "0", "1.5"}));
}
}  // namespace
}  // namespace pglens::analyzer
