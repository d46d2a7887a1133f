// The analyzer: takes execution events off the proxy's hands, fingerprints them (cached), keeps
// per-fingerprint statistics and query metrics, and passes each event on to the rules.
// Runs on a thread of its own; the proxy only ever pushes to its queue().
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "analyzer/event_queue.hpp"
#include "analyzer/fingerprint_cache.hpp"
#include "analyzer/key_hash.hpp"
#include "analyzer/standard.hpp"
#include "analyzer/stats_table.hpp"

namespace pglens::analyzer {

// A consumer of analyzed events: the rules. Called on the analyzer thread.
class EventConsumer {
 public:
  virtual ~EventConsumer() = default;
  virtual void consume(const ExecutionEvent& event, const StatementShape& shape) = 0;
  // Called about once a second, for work that is not tied to one event.
  virtual void tick() {}
};

struct AnalyzerSettings {
  std::size_t queue_capacity = 65'536;
  std::size_t max_fingerprints = 5'000;  // statistics entries
  std::size_t cache_entries = 10'000;    // fingerprint cache
  std::size_t top_k = 50;  // fingerprints with their own latency, pool wait and grade series
};

// Called on a thread that does analysis work: on a busy machine it gives way to the threads that
// forward traffic. SCHED_BATCH: its wake-ups (a batch every 20 ms) do not preempt a running
// thread; nice +5: under saturation its share is about a third of a forwarding thread's, still
// far above the 1% of a core it needs. If it cannot keep up, the queue drops and counts.
void yield_to_forwarding();

// Prometheus buckets for every latency histogram: 100 µs to 10 s.
const prometheus::Histogram::BucketBoundaries& latency_buckets();

struct AnalyzerCounters {
  std::uint64_t events = 0, dropped = 0, parse_failures = 0, cache_hits = 0, cache_misses = 0,
                stats_evictions = 0;
};

class Analyzer {
 public:
  // The consumers are fixed here: the analyzer thread starts with the constructor and reads them.
  // plans: the classes captured plans gave fingerprints (the missing-index rule fills it).
  Analyzer(AnalyzerSettings settings, std::shared_ptr<prometheus::Registry> registry,
           std::vector<std::shared_ptr<EventConsumer>> consumers = {},
           std::shared_ptr<const PlanClasses> plans = nullptr);
  ~Analyzer();
  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;

  // From any thread; never blocks. False when the event was dropped (queue full). One statement
  // at a time, with its session in event.session, started and ended around it: for tools and
  // tests, whose session ids must not be those of the proxy's live sessions. The proxy's sessions
  // push whole batches to queue().
  bool submit(const ExecutionEvent& event);
  EventQueue& queue() { return queue_; }

  std::vector<FingerprintRow> fingerprints(SortBy sort, std::size_t limit) const {
    return stats_.rows(sort, limit, plans_.get());
  }
  AnalyzerCounters counters() const;

 private:
  // The observations of one histogram series since the last batch: prometheus-cpp's Observe
  // takes a lock and updates counters that /metrics reads, so a batch's go in at once.
  struct PendingHistogram {
    prometheus::Histogram* series = nullptr;
    std::vector<double> increments;  // per bucket, then +Inf
    double sum = 0;
    bool pending = false;
    static std::size_t bucket_of(double seconds);  // in latency_buckets(), +Inf last
    void observe(std::size_t bucket, double seconds);
    void apply();
  };

  void run();
  void process(const ExecutionEvent& event);
  void apply_metrics();
  void refresh_top_k();
  void refresh_grades();

  AnalyzerSettings settings_;
  std::shared_ptr<prometheus::Registry> registry_;
  // Cache lines apart: proxy threads push to the queue while the analyzer writes to its reader.
  alignas(64) EventQueue queue_;
  alignas(64) EventReader reader_;  // analyzer thread only
  StatsTable stats_;
  FingerprintCache cache_;  // analyzer thread only
  const std::vector<std::shared_ptr<EventConsumer>> consumers_;
  const std::shared_ptr<const PlanClasses> plans_;

  prometheus::Family<prometheus::Histogram>& query_duration_;
  prometheus::Family<prometheus::Histogram>& fingerprint_duration_;
  prometheus::Family<prometheus::Histogram>& fingerprint_pool_wait_;
  prometheus::Family<prometheus::Gauge>& over_standard_;
  prometheus::Family<prometheus::Counter>& queries_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Counter& parse_failures_metric_;
  prometheus::Counter& dropped_metric_;
  // By (Identity::database_user, command, database, user): one per series.
  std::unordered_map<std::tuple<std::uint64_t, StatementKind, std::string, std::string>,
                     PendingHistogram, KeyHash, KeyEqual>
      query_histograms_;
  // The top K fingerprints' series; the rest go into the "other" ones.
  struct TopSeries {
    PendingHistogram duration, pool_wait;
    prometheus::Gauge* over_standard = nullptr;  // where its class has a limit
    StandardClass graded_as = StandardClass::Other;
  };
  std::unordered_map<std::uint64_t, TopSeries> top_series_;  // by fingerprint
  PendingHistogram other_histogram_, other_pool_wait_;
  std::map<std::string, prometheus::Counter*> error_counters_;  // by SQLSTATE class
  prometheus::Counter* queries_total_ = nullptr;
  std::uint64_t queries_pending_ = 0;
  std::uint64_t reported_drops_ = 0;

  // Written by the analyzer thread only (see bump), read by any.
  std::atomic<std::uint64_t> events_{0}, parse_failures_{0};
  std::atomic<std::uint64_t> cache_hits_{0}, cache_misses_{0};
  std::thread thread_;
};

}  // namespace pglens::analyzer
