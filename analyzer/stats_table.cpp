#include "analyzer/stats_table.hpp"

#include <algorithm>
#include <map>
#include <tuple>

namespace pglens::analyzer {

namespace {
double ms(std::chrono::nanoseconds d) {
  return static_cast<double>(d.count()) / 1e6;
}

}  // namespace

void StatsTable::record(const StatementShape& shape, const ExecutionEvent& event) {
  const auto& s = *event.session;
  auto who = identity_of(event).all;
  // Per statement, not per batch: /metrics and SHOW FINGERPRINTS read this table from the
  // forwarding threads, which must never wait for a batch (its parses) to be analyzed.
  std::lock_guard lock(mutex_);
  auto it = entries_.find(std::make_tuple(shape.fingerprint, who, std::string_view(s.database),
                                          std::string_view(s.user),
                                          std::string_view(s.application_name)));
  if (it == entries_.end()) {
    Key key{shape.fingerprint, who, s.database, s.user, s.application_name};
    if (entries_.size() >= max_entries_) {
      entries_.erase(recency_.back());
      recency_.pop_back();
      ++evictions_;
    }
    recency_.push_front(key);
    it = entries_.emplace(key, Entry{}).first;
    auto& e = it->second;
    e.fingerprint_hex = shape.fingerprint_hex;
    e.normalized = shape.normalized;
    e.kind = shape.kind;
    e.shape_class = classify_shape(shape);
    e.first_seen = event.finished_at;
    e.recency = recency_.begin();
  } else {
    recency_.splice(recency_.begin(), recency_, it->second.recency);
  }
  auto& e = it->second;
  ++e.calls;
  if (!event.sqlstate.empty()) ++e.errors;
  e.rows += event.rows;
  e.total += event.latency;
  e.min = std::min(e.min, event.latency);
  e.max = std::max(e.max, event.latency);
  e.histogram.observe(event.latency);
  if (event.pool_wait.count() > 0 && !e.pool_wait) {
    e.pool_wait = std::make_unique<LatencyHistogram>();
    e.pool_wait->observe(std::chrono::nanoseconds(0), e.calls - 1);
  }
  if (e.pool_wait) e.pool_wait->observe(event.pool_wait);
  e.pool_wait_total += event.pool_wait;
  e.pool_wait_max = std::max(e.pool_wait_max, event.pool_wait);
  e.last_seen = event.finished_at;
}

std::vector<FingerprintRow> StatsTable::rows(SortBy sort, std::size_t limit,
                                             const PlanClasses* plans) const {
  std::vector<FingerprintRow> out;
  {
    std::lock_guard lock(mutex_);
    out.reserve(entries_.size());
    for (const auto& [key, e] : entries_) {
      FingerprintRow r;
      r.fingerprint_id = std::get<0>(key);
      r.fingerprint = e.fingerprint_hex;
      r.query = e.normalized;
      r.command = std::string(to_string(e.kind));
      r.standard.cls = e.shape_class;
      r.database = std::get<2>(key);
      r.user = std::get<3>(key);
      r.application_name = std::get<4>(key);
      r.calls = e.calls;
      r.errors = e.errors;
      r.rows = e.rows;
      r.total_ms = ms(e.total);
      r.min_ms = e.calls ? ms(e.min) : 0;
      r.max_ms = ms(e.max);
      r.mean_ms = e.calls ? r.total_ms / static_cast<double>(e.calls) : 0;
      r.p50_ms = ms(e.histogram.quantile(0.50));
      r.p95_ms = ms(e.histogram.quantile(0.95));
      r.p99_ms = ms(e.histogram.quantile(0.99));
      auto buckets = e.histogram.merged(LatencyHistogram::kPerDecade / 4);
      r.histogram_le_ms.reserve(buckets.upper.size());
      for (auto upper : buckets.upper) r.histogram_le_ms.push_back(ms(upper));
      r.histogram_counts = std::move(buckets.counts);
      r.first_seen = e.first_seen;
      r.last_seen = e.last_seen;
      r.pool_wait_total_ms = ms(e.pool_wait_total);
      r.pool_wait_mean_ms = e.calls ? r.pool_wait_total_ms / static_cast<double>(e.calls) : 0;
      r.pool_wait_p95_ms = e.pool_wait ? ms(e.pool_wait->quantile(0.95)) : 0;
      r.pool_wait_max_ms = ms(e.pool_wait_max);
      out.push_back(std::move(r));
    }
  }
  auto primary = [sort](const FingerprintRow& r) {
    switch (sort) {
      case SortBy::Calls:
        return static_cast<double>(r.calls);
      case SortBy::P99:
        return r.p99_ms;
      case SortBy::TotalTime:
        break;
    }
    return r.total_ms;
  };
  std::sort(out.begin(), out.end(), [&](const FingerprintRow& a, const FingerprintRow& b) {
    if (primary(a) != primary(b)) return primary(a) > primary(b);
    // Ties in a fixed order (the table is a hash map): the same rows fall under a limit each time.
    return std::tie(a.fingerprint, a.database, a.user, a.application_name) <
           std::tie(b.fingerprint, b.database, b.user, b.application_name);
  });
  if (out.size() > limit) out.resize(limit);
  for (auto& r : out) {
    auto planned = plans ? plans->get(r.fingerprint_id) : std::nullopt;
    r.standard =
        grade_against_standard(planned.value_or(r.standard.cls), planned.has_value(), r.p95_ms);
  }
  return out;
}

std::vector<std::pair<std::uint64_t, std::chrono::nanoseconds>> StatsTable::totals_by_fingerprint()
    const {
  std::map<std::uint64_t, std::chrono::nanoseconds> totals;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, e] : entries_) totals[std::get<0>(key)] += e.total;
  }
  return {totals.begin(), totals.end()};
}

std::vector<FingerprintSummary> StatsTable::summaries(
    const std::set<std::uint64_t>& fingerprints) const {
  std::map<std::uint64_t, FingerprintSummary> by_fingerprint;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, e] : entries_) {
      auto fp = std::get<0>(key);
      if (fingerprints.count(fp) == 0) continue;
      auto& s = by_fingerprint[fp];
      s.fingerprint = fp;
      s.total += e.total;
      s.latency.merge(e.histogram);
      s.shape_class = e.shape_class;
    }
  }
  std::vector<FingerprintSummary> out;
  out.reserve(by_fingerprint.size());
  for (auto& [fp, s] : by_fingerprint) out.push_back(std::move(s));
  return out;
}

std::uint64_t StatsTable::evictions() const {
  std::lock_guard lock(mutex_);
  return evictions_;
}

std::size_t StatsTable::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace pglens::analyzer
