// Google Benchmark: what fingerprinting costs the analyzer thread, on a cache hit and a miss.
#include <benchmark/benchmark.h>

#include <string>

#include "analyzer/fingerprint_cache.hpp"
#include "analyzer/query_shape.hpp"

namespace {
using pglens::analyzer::FingerprintCache;

// A modest SELECT with a JOIN, three predicates, ORDER BY and LIMIT.
const std::string kQuery =
    "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id "
    "WHERE o.status = 'open' AND o.total > 100 AND c.region = $1 ORDER BY o.created_at DESC LIMIT "
    "20";

void BM_FingerprintCacheHit(benchmark::State& state) {
  FingerprintCache cache;
  cache.get(kQuery);
  for (auto _ : state) benchmark::DoNotOptimize(cache.get(kQuery));
}
BENCHMARK(BM_FingerprintCacheHit);

void BM_FingerprintCacheMiss(benchmark::State& state) {
  FingerprintCache cache(1);  // every distinct text misses
  std::uint64_t i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string sql = kQuery + " -- " + std::to_string(i++);
    state.ResumeTiming();
    benchmark::DoNotOptimize(cache.get(sql));
  }
}
BENCHMARK(BM_FingerprintCacheMiss);

void BM_AnalyzeQueryWithoutCache(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(pglens::analyzer::analyze_query(kQuery));
}
BENCHMARK(BM_AnalyzeQueryWithoutCache);
}  // namespace

BENCHMARK_MAIN();
