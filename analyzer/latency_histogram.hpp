// Latencies in log-spaced buckets (20 per decade, 1 µs to 100 s): percentiles within one bucket
// (about 12%) at a fixed 1.3 KiB, whatever the number of observations.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

namespace pglens::analyzer {

class LatencyHistogram {
 public:
  static constexpr int kPerDecade = 20;
  static constexpr int kBuckets = 8 * kPerDecade + 2;  // below 1 µs, 1 µs..100 s, above

  void observe(std::chrono::nanoseconds latency, std::uint64_t times = 1);
  // Adds another histogram's observations (the rows of one fingerprint, over identities).
  void merge(const LatencyHistogram& other);
  // The q-quantile (0..1), as the geometric middle of its bucket, clamped to what was seen.
  std::chrono::nanoseconds quantile(double q) const;
  std::uint64_t count() const { return count_; }
  std::uint64_t bucket_count(int i) const { return buckets_[static_cast<std::size_t>(i)]; }
  // Lower bound of bucket i (the first bucket starts at zero).
  static std::chrono::nanoseconds bucket_floor(int i);
  static int bucket_of(std::chrono::nanoseconds latency);

  // Coarser buckets for display: `per` fine buckets merged into one (`per` divides kPerDecade),
  // from zero up to the last one holding any observation. Counts are not cumulative; bucket j
  // covers [upper[j-1], upper[j]), the first from zero; the one above 100 s ends at the maximum.
  struct Buckets {
    std::vector<std::chrono::nanoseconds> upper;
    std::vector<std::uint64_t> counts;
  };
  Buckets merged(int per) const;

 private:
  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
  std::chrono::nanoseconds min_{std::chrono::nanoseconds::max()}, max_{0};
};

}  // namespace pglens::analyzer
