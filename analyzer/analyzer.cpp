#include "analyzer/analyzer.hpp"

#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pglens::analyzer {

void yield_to_forwarding() {
  sched_param param{};
  if (int err = pthread_setschedparam(pthread_self(), SCHED_BATCH, &param); err != 0)
    spdlog::debug("analyzer: SCHED_BATCH refused: {}", std::strerror(err));
  // Five steps below the thread that started it (a thread inherits its creator's nice value);
  // on Linux a thread id names one thread for getpriority/setpriority.
  auto tid = static_cast<id_t>(gettid());
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, tid);
  if (errno == 0 && setpriority(PRIO_PROCESS, tid, std::min(nice + 5, 19)) != 0)
    spdlog::debug("analyzer: nice +5 refused: {}", std::strerror(errno));
}

namespace {
// One writer: a plain load and store, not a locked read-modify-write per statement.
void bump(std::atomic<std::uint64_t>& counter) {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}
}  // namespace

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return buckets;
}

Analyzer::Analyzer(AnalyzerSettings settings, std::shared_ptr<prometheus::Registry> registry,
                   std::vector<std::shared_ptr<EventConsumer>> consumers,
                   std::shared_ptr<const PlanClasses> plans)
    : settings_(settings),
      registry_(std::move(registry)),
      queue_(settings.queue_capacity),
      stats_(settings.max_fingerprints),
      cache_(settings.cache_entries),
      consumers_(std::move(consumers)),
      plans_(std::move(plans)),
      query_duration_(
          prometheus::BuildHistogram()
              .Name("pglens_query_duration_seconds")
              .Help("Statement latency seen by the proxy, request forwarded to completion")
              .Register(*registry_)),
      fingerprint_duration_(prometheus::BuildHistogram()
                                .Name("pglens_fingerprint_duration_seconds")
                                .Help("Statement latency for the top fingerprints by total time; "
                                      "the rest are \"other\"")
                                .Register(*registry_)),
      fingerprint_pool_wait_(
          prometheus::BuildHistogram()
              .Name("pglens_fingerprint_pool_wait_seconds")
              .Help("Time a statement waited for a server connection, for the top fingerprints by "
                    "total time (the rest are \"other\"); only a transaction's first statement "
                    "waits, the others observe zero")
              .Register(*registry_)),
      over_standard_(prometheus::BuildGauge()
                         .Name("pglens_fingerprint_over_standard")
                         .Help("p95 latency divided by the guide's limit for the statement's class "
                               "(primary_key_lookup 1 ms, indexed 10 ms, join 50 ms, aggregate "
                               "100 ms), for the top fingerprints by total time; above 1 is over")
                         .Register(*registry_)),
      queries_(prometheus::BuildCounter()
                   .Name("pglens_queries_total")
                   .Help("Statements executed")
                   .Register(*registry_)),
      errors_(prometheus::BuildCounter()
                  .Name("pglens_query_errors_total")
                  .Help("Statements that failed, by SQLSTATE class")
                  .Register(*registry_)),
      parse_failures_metric_(
          prometheus::BuildCounter()
              .Name("pglens_query_parse_failures_total")
              .Help("Statements libpg_query could not parse (kept under a fallback key)")
              .Register(*registry_)
              .Add({})),
      dropped_metric_(prometheus::BuildCounter()
                          .Name("pglens_analyzer_events_dropped_total")
                          .Help("Events dropped because the analyzer queue was full")
                          .Register(*registry_)
                          .Add({})) {
  queries_total_ = &queries_.Add({});
  other_histogram_.series =
      &fingerprint_duration_.Add({{"fingerprint", "other"}}, latency_buckets());
  other_pool_wait_.series =
      &fingerprint_pool_wait_.Add({{"fingerprint", "other"}}, latency_buckets());
  thread_ = std::thread([this] { run(); });
}

Analyzer::~Analyzer() {
  queue_.close();
  if (thread_.joinable()) thread_.join();
}

bool Analyzer::submit(const ExecutionEvent& event) {
  // A batch of its own, its session started and ended around it: the proxy's sessions instead
  // keep theirs open for as long as they live (see ExecutionTracker).
  EventBatch batch;
  std::uint64_t id = event.session ? event.session->session_id : 0;
  if (event.session) batch.start_session(event.session);
  auto finished = EventBatch::SteadyClock::now() +
                  std::chrono::duration_cast<EventBatch::SteadyClock::duration>(
                      event.finished_at - std::chrono::system_clock::now());
  batch.add(id, event, finished);
  if (event.session) batch.end_session(id);
  return queue_.push(batch);
}

AnalyzerCounters Analyzer::counters() const {
  AnalyzerCounters c;
  c.events = events_;
  c.dropped = queue_.dropped();
  c.parse_failures = parse_failures_;
  c.cache_hits = cache_hits_;
  c.cache_misses = cache_misses_;
  c.stats_evictions = stats_.evictions();
  return c;
}

void Analyzer::run() {
  yield_to_forwarding();
  auto last_tick = std::chrono::steady_clock::now();
  // Batches every 20 ms: analysis lags the traffic by that much at most, at no cost to it.
  EventBatch batch;
  while (queue_.pop_all(batch, std::chrono::milliseconds(20))) {
    try {
      reader_.read(batch, [this](const ExecutionEvent& event) {
        try {
          process(event);
        } catch (const std::exception& e) {
          // Analysis must never take the proxy down: a bad event is logged and skipped.
          spdlog::debug("analyzer: event skipped: {}", e.what());
        }
      });
    } catch (const std::exception& e) {
      spdlog::error("analyzer: rest of a batch lost: {}", e.what());
    }
    apply_metrics();
    auto dropped = queue_.dropped();
    if (dropped > reported_drops_) {
      dropped_metric_.Increment(static_cast<double>(dropped - reported_drops_));
      reported_drops_ = dropped;
    }
    auto now = std::chrono::steady_clock::now();
    if (now - last_tick >= std::chrono::seconds(1)) {
      last_tick = now;
      refresh_top_k();
      for (auto& c : consumers_) c->tick();
    }
  }
}

void Analyzer::process(const ExecutionEvent& event) {
  if (!event.sql || !event.session) return;
  auto before = cache_.misses();
  const auto& shape = cache_.get(*event.sql);
  if (cache_.misses() != before) {
    bump(cache_misses_);
    if (!shape->parsed) {
      bump(parse_failures_);
      parse_failures_metric_.Increment();
      spdlog::debug("analyzer: cannot parse statement from session {}: {:.200}",
                    event.session->session_id, *event.sql);
    }
  } else {
    bump(cache_hits_);
  }
  bump(events_);
  const auto& statements = shape->statements;
  const StatementShape& s =
      statements[std::min<std::size_t>(event.statement_index, statements.size() - 1)];
  stats_.record(s, event);

  double seconds = std::chrono::duration<double>(event.latency).count();
  // Looked up by views: no key strings are built per event.
  auto who = identity_of(event).database_user;
  auto found =
      query_histograms_.find(std::make_tuple(who, s.kind, std::string_view(event.session->database),
                                             std::string_view(event.session->user)));
  if (found == query_histograms_.end())
    found = query_histograms_
                .emplace(std::make_tuple(who, s.kind, event.session->database, event.session->user),
                         PendingHistogram{})
                .first;
  auto& h = found->second;
  if (h.series == nullptr)
    h.series = &query_duration_.Add({{"database", event.session->database},
                                     {"user", event.session->user},
                                     {"command", std::string(to_string(s.kind))}},
                                    latency_buckets());
  // Both series have the same buckets: found once.
  auto bucket = PendingHistogram::bucket_of(seconds);
  h.observe(bucket, seconds);
  double waited = std::chrono::duration<double>(event.pool_wait).count();
  auto wait_bucket = PendingHistogram::bucket_of(waited);
  auto top = top_series_.find(s.fingerprint);
  if (top != top_series_.end()) {
    top->second.duration.observe(bucket, seconds);
    top->second.pool_wait.observe(wait_bucket, waited);
  } else {
    other_histogram_.observe(bucket, seconds);
    other_pool_wait_.observe(wait_bucket, waited);
  }
  ++queries_pending_;
  if (!event.sqlstate.empty()) {
    auto cls = event.sqlstate.substr(0, 2);
    auto& counter = error_counters_[cls];
    if (counter == nullptr) counter = &errors_.Add({{"class", cls}});
    counter->Increment();
  }
  for (auto& c : consumers_) c->consume(event, s);
}

std::size_t Analyzer::PendingHistogram::bucket_of(double seconds) {
  // The bucket prometheus-cpp's Observe would count it in: the first bound at or above it.
  const auto& bounds = latency_buckets();
  return static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) -
                                  bounds.begin());
}

void Analyzer::PendingHistogram::observe(std::size_t bucket, double seconds) {
  if (increments.empty()) increments.assign(latency_buckets().size() + 1, 0.0);
  increments[bucket] += 1;
  sum += seconds;
  pending = true;
}

void Analyzer::PendingHistogram::apply() {
  if (!pending || series == nullptr) return;
  series->ObserveMultiple(increments, sum);
  std::fill(increments.begin(), increments.end(), 0.0);
  sum = 0;
  pending = false;
}

void Analyzer::apply_metrics() {
  for (auto& [key, h] : query_histograms_) h.apply();
  for (auto& [fp, t] : top_series_) {
    t.duration.apply();
    t.pool_wait.apply();
  }
  other_histogram_.apply();
  other_pool_wait_.apply();
  if (queries_pending_ != 0) queries_total_->Increment(static_cast<double>(queries_pending_));
  queries_pending_ = 0;
}

void Analyzer::refresh_top_k() {
  auto totals = stats_.totals_by_fingerprint();
  std::sort(totals.begin(), totals.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  if (totals.size() > settings_.top_k) totals.resize(settings_.top_k);
  std::set<std::uint64_t> wanted;
  for (const auto& [fp, total] : totals) wanted.insert(fp);
  // A fingerprint leaving the top K loses its series; one entering starts new ones.
  for (auto it = top_series_.begin(); it != top_series_.end();) {
    if (wanted.count(it->first) == 0) {
      fingerprint_duration_.Remove(it->second.duration.series);
      fingerprint_pool_wait_.Remove(it->second.pool_wait.series);
      if (it->second.over_standard) over_standard_.Remove(it->second.over_standard);
      it = top_series_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto fp : wanted) {
    if (top_series_.count(fp) != 0) continue;
    auto& t = top_series_[fp];
    auto hex = fingerprint_hex(fp);
    t.duration.series = &fingerprint_duration_.Add({{"fingerprint", hex}}, latency_buckets());
    t.pool_wait.series = &fingerprint_pool_wait_.Add({{"fingerprint", hex}}, latency_buckets());
  }
  refresh_grades();
}

void Analyzer::refresh_grades() {
  std::set<std::uint64_t> top;
  for (const auto& [fp, t] : top_series_) top.insert(fp);
  for (const auto& s : stats_.summaries(top)) {
    auto& t = top_series_[s.fingerprint];
    auto planned = plans_ ? plans_->get(s.fingerprint) : std::nullopt;
    auto cls = planned.value_or(s.shape_class);
    auto p95_ms = static_cast<double>(s.latency.quantile(0.95).count()) / 1e6;
    auto grade = grade_against_standard(cls, planned.has_value(), p95_ms);
    // A class of another standard (a plan came in) is another series.
    if (t.over_standard && (!grade.over_by || t.graded_as != cls)) {
      over_standard_.Remove(t.over_standard);
      t.over_standard = nullptr;
    }
    if (!grade.over_by) continue;
    if (!t.over_standard)
      t.over_standard = &over_standard_.Add({{"fingerprint", fingerprint_hex(s.fingerprint)},
                                             {"standard", std::string(to_string(cls))}});
    t.graded_as = cls;
    t.over_standard->Set(*grade.over_by);
  }
}

}  // namespace pglens::analyzer
