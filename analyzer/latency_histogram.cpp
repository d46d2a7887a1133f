#include "analyzer/latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace pglens::analyzer {

std::chrono::nanoseconds LatencyHistogram::bucket_floor(int i) {
  if (i <= 0) return std::chrono::nanoseconds(0);
  double us = std::pow(10.0, static_cast<double>(i - 1) / kPerDecade);
  return std::chrono::nanoseconds(static_cast<std::int64_t>(us * 1000.0));
}

int LatencyHistogram::bucket_of(std::chrono::nanoseconds latency) {
  // The last bucket whose floor is at or below the latency: a search in a table of the floors,
  // not a logarithm per observation (the analyzer thread observes every statement).
  static const auto floors = [] {
    std::array<std::int64_t, kBuckets> f{};
    for (int i = 0; i < kBuckets; ++i) f[static_cast<std::size_t>(i)] = bucket_floor(i).count();
    return f;
  }();
  auto above = std::upper_bound(floors.begin() + 1, floors.end(), latency.count());
  return static_cast<int>(above - floors.begin()) - 1;
}

void LatencyHistogram::observe(std::chrono::nanoseconds latency, std::uint64_t times) {
  if (times == 0) return;
  buckets_[static_cast<std::size_t>(bucket_of(latency))] += times;
  count_ += times;
  min_ = std::min(min_, latency);
  max_ = std::max(max_, latency);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

std::chrono::nanoseconds LatencyHistogram::quantile(double q) const {
  if (count_ == 0) return std::chrono::nanoseconds(0);
  auto rank =
      static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_)));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[static_cast<std::size_t>(i)];
    if (seen >= rank) {
      double lo = static_cast<double>(bucket_floor(i).count());
      double hi = static_cast<double>(bucket_floor(i + 1).count());
      auto middle =
          std::chrono::nanoseconds(static_cast<std::int64_t>(i == 0 ? hi / 2 : std::sqrt(lo * hi)));
      return std::clamp(middle, min_, max_);
    }
  }
  return max_;
}

LatencyHistogram::Buckets LatencyHistogram::merged(int per) const {
  Buckets out;
  if (count_ == 0 || per <= 0 || kPerDecade % per != 0) return out;
  auto add = [&out](std::chrono::nanoseconds upper, std::uint64_t n) {
    out.upper.push_back(upper);
    out.counts.push_back(n);
  };
  add(bucket_floor(1), buckets_[0]);
  for (int first = 1; first < kBuckets - 1; first += per) {
    std::uint64_t n = 0;
    for (int i = first; i < first + per; ++i) n += buckets_[static_cast<std::size_t>(i)];
    add(bucket_floor(first + per), n);
  }
  add(std::max(max_, bucket_floor(kBuckets - 1)), buckets_[kBuckets - 1]);
  while (!out.counts.empty() && out.counts.back() == 0) {
    out.counts.pop_back();
    out.upper.pop_back();
  }
  return out;
}

}  // namespace pglens::analyzer
