#include "rules/cache_opportunity.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace pglens::rules {

namespace {
using analyzer::hash_value;
using analyzer::StatementKind;

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  return (h ^ v) * 1099511628211ull + 0x9e3779b97f4a7c15ull;
}

double ms(std::chrono::nanoseconds d) {
  return static_cast<double>(d.count()) / 1e6;
}

double seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

// What a cache would be keyed by beyond the statement: its Bind values, or the literals a
// client inlined. NULL and "" differ.
std::uint64_t parameters_hash(const analyzer::ExecutionEvent& e,
                              const analyzer::StatementShape& s) {
  std::uint64_t h = mix(0, e.parameters.size());
  for (const auto& p : e.parameters) h = mix(h, p ? hash_value(*p) : 0x6e756c6cull);
  if (e.parameters.empty())
    for (const auto& l : s.literals) h = mix(h, hash_value(l));
  return h;
}

// The rows as far as the event shows them: count, column names, the sample's value hashes.
std::uint64_t result_hash(const analyzer::ExecutionEvent& e) {
  std::uint64_t h = mix(0, e.rows);
  for (const auto& c : e.columns) h = mix(h, hash_value(c));
  h = mix(h, e.result_sample.size());
  for (auto v : e.result_sample) h = mix(h, v);
  return h;
}

bool plain_read(const analyzer::StatementShape& s) {
  return s.kind == StatementKind::Select && !s.locking && !s.modifies && !s.volatile_functions;
}

std::string duration_text(double s) {
  if (s < 10) return fmt::format("{:.1f} s", s);
  if (s < 120) return fmt::format("{:.0f} s", s);
  if (s < 7200) return fmt::format("{:.0f} min", s / 60);
  return fmt::format("{:.1f} h", s / 3600);
}
}  // namespace

void CacheOpportunityRule::consume(const analyzer::ExecutionEvent& event,
                                   const analyzer::StatementShape& shape) {
  if (!plain_read(shape) || !event.sqlstate.empty() || !event.session) return;
  // Rows but no columns named: nothing of the result was seen, nothing to compare.
  if (event.rows > 0 && event.columns.empty()) return;
  auto now = event.finished_at;
  auto group_id = mix(shape.fingerprint, analyzer::identity_of(event).all);
  auto key_id = mix(group_id, parameters_hash(event, shape));
  auto result = result_hash(event);

  auto g = groups_.find(group_id);
  if (g == groups_.end()) {
    if (groups_.size() >= settings_.cache_max_keys) forget_least_recent_group();
    g = groups_.emplace(group_id, Group{}).first;
    auto& group = g->second;
    group.fingerprint_hex = shape.fingerprint_hex;
    group.normalized = shape.normalized;
    group.database = event.session->database;
    group.user = event.session->user;
    group.application_name = event.session->application_name;
    group.extended = event.extended;
  }
  auto& group = g->second;
  ++group.calls;
  group.last_call = now;

  auto k = keys_.find(key_id);
  if (k == keys_.end()) {
    if (keys_.size() >= settings_.cache_max_keys) forget_least_recent_key();
    recency_.push_front(key_id);
    keys_.emplace(key_id, Key{group_id, result, now, now, recency_.begin()});
    ++group.distinct_keys;
    return;  // a first call: a cache would have missed
  }
  auto& key = k->second;
  recency_.splice(recency_.begin(), recency_, key.recency);
  bool within_window = now - key.last_call <= settings_.cache_window;
  if (key.result == result) {
    if (within_window) {
      ++group.hits;
      group.saved += event.latency;
    }
    group.longest_unchanged =
        std::max(group.longest_unchanged,
                 std::chrono::duration_cast<std::chrono::nanoseconds>(now - key.result_since));
  } else {
    // Seen within the window, the old result lived from its first sighting to this call (give or
    // take the time between calls); past the window, when it changed is not known.
    if (within_window) {
      ++group.result_changes;
      group.change_intervals +=
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - key.result_since);
    }
    key.result = result;
    key.result_since = now;
  }
  key.last_call = now;
}

void CacheOpportunityRule::forget_least_recent_key() {
  if (recency_.empty()) return;
  keys_.erase(recency_.back());
  recency_.pop_back();
}

void CacheOpportunityRule::forget_least_recent_group() {
  auto oldest = std::min_element(groups_.begin(), groups_.end(), [](const auto& a, const auto& b) {
    return a.second.last_call < b.second.last_call;
  });
  if (oldest != groups_.end()) groups_.erase(oldest);  // its keys go as they age out
}

void CacheOpportunityRule::tick(FindingStore& findings) {
  for (auto& [id, g] : groups_) {
    if (g.calls == g.reported_calls ||
        g.calls < static_cast<std::uint64_t>(settings_.cache_min_calls))
      continue;
    double hit_rate = static_cast<double>(g.hits) / static_cast<double>(g.calls);
    Finding f;
    f.rule = "cache_opportunity";
    f.fingerprint = g.fingerprint_hex;
    f.parent = g.database + "/" + g.user + "/" + g.application_name;
    if (g.hits == 0 || 100 * hit_rate < settings_.cache_min_hit_percent) {
      if (g.reported) findings.resolve(f.rule, f.fingerprint, f.parent);
      g.reported = false;
      g.reported_calls = g.calls;
      continue;
    }
    double window_s = seconds(settings_.cache_window);
    // Results changed: half their mean lifetime (a cached copy is then stale for about a quarter
    // of its time at most). Never changed: as long as they were seen unchanged, up to the window.
    double ttl = g.result_changes > 0
                     ? seconds(g.change_intervals) / static_cast<double>(g.result_changes) / 2
                     : seconds(g.longest_unchanged);
    ttl = std::max(1.0, std::floor(std::min(ttl, window_s)));
    double saved_ms = ms(g.saved);
    f.query = g.normalized;
    f.database = g.database;
    f.user = g.user;
    f.application_name = g.application_name;
    f.count = g.calls - g.reported_calls;
    f.estimated_savings_ms = saved_ms;
    f.severity = saved_ms >= 10'000  ? Severity::High
                 : saved_ms >= 1'000 ? Severity::Medium
                                     : Severity::Low;
    std::string changes =
        g.result_changes > 0
            ? fmt::format("its results changed {} time(s), every {} on average", g.result_changes,
                          duration_text(seconds(g.change_intervals) /
                                        static_cast<double>(g.result_changes)))
            : fmt::format(
                  "its results did not change in the {} observed (a longer TTL is a matter of "
                  "how stale the application may read)",
                  duration_text(seconds(g.longest_unchanged)));
    f.advice = fmt::format(
        "`{}` ran {} times with {} distinct parameter set(s); {:.0f}% of the calls returned the "
        "same rows as the previous call with the same parameters within {}. A cache-aside "
        "layer keyed by the statement and its parameters would have answered {} calls and saved "
        "{:.1f} ms of database time; {}, so a TTL of about {:.0f} s.",
        g.normalized, g.calls, g.distinct_keys, 100 * hit_rate, duration_text(window_s), g.hits,
        saved_ms, changes, ttl);
    f.fix = fmt::format(
        "-- cache-aside, keyed by the statement and its parameters, TTL {:.0f} s:\n"
        "key = \"{}:\" + serialize(params)\n"
        "rows = cache.get(key)\n"
        "if rows is None:\n"
        "    rows = db.execute(\"{}\", params)\n"
        "    cache.set(key, rows, ttl={:.0f})\n"
        "-- and delete the key where the application writes what it reads",
        ttl, g.fingerprint_hex, g.normalized, ttl);
    f.details = {{"hit_rate", hit_rate},
                 {"calls", g.calls},
                 {"hits", g.hits},
                 {"distinct_keys", g.distinct_keys},
                 {"result_changes", g.result_changes},
                 {"suggested_ttl_s", ttl},
                 {"saved_ms", saved_ms},
                 {"window_s", window_s}};
    f.first_seen = f.last_seen = std::chrono::system_clock::now();
    findings.report(std::move(f));
    g.reported = true;
    g.reported_calls = g.calls;
  }
}

}  // namespace pglens::rules
