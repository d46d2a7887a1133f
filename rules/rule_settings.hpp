// Thresholds of the rules, with the defaults the issue sets. All configurable.
#pragma once

#include <chrono>
#include <cstddef>

namespace pglens::rules {

struct RuleSettings {
  int n_plus_one_min = 5;   // executions of the child query after one parent
  int row_by_row_min = 10;  // single-row INSERTs in a run
  // Missing indexes: which fingerprints are worth a look, and which tables.
  int index_min_calls = 10;
  double index_min_total_ms = 50;
  double index_min_rows = 10'000;
  bool index_use_hypopg = true;  // confirm with a hypothetical index when the extension is there
  double index_min_cost_reduction = 0.5;
  std::chrono::seconds index_recheck{10};
  // Cache opportunity: a repeat of the same read further apart than the window is no hit (a
  // cache would have let it expire); judged once a fingerprint ran cache_min_calls times, found
  // when at least cache_min_hit_percent of its calls returned what the previous same call did.
  std::chrono::steady_clock::duration cache_window = std::chrono::minutes(5);
  int cache_min_calls = 20;
  int cache_min_hit_percent = 50;
  std::size_t cache_max_keys = 10'000;  // (fingerprint, identity, parameters) keys remembered
  // A run of statements that saw nothing for this long is judged as it stands.
  std::chrono::milliseconds run_idle{1000};
  std::size_t max_sessions = 10'000;  // sessions whose recent statements are remembered
};

}  // namespace pglens::rules
