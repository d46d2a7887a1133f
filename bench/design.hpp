// How pglens-bench compares targets on a noisy machine: the order the targets run in, round after
// round, and how sure one run's round-by-round ratio is. Pure logic, unit-tested without a server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace pglens::bench {

// Orders (permutations of 0..targets-1), one per round, to cycle through: run back to back, every
// target follows every other one equally often, at round boundaries too, and never itself. A run
// inherits what the one before it left behind (its processes exiting, caches holding its data); a
// plain rotation (ABC, BCA, CAB) puts A after C twice as often as after B, so that carry-over
// lands unevenly on the targets being compared. targets - 1 rounds make one cycle (a single order
// for one or two targets); up to 5 targets.
std::vector<std::vector<std::size_t>> carryover_balanced_orders(std::size_t targets);

// Which of `orders` orders (as above) group `group` of round `round` (from 1) runs in, when each
// round runs `groups` groups (pglens-bench: one per mode and client count) one after the other.
// The groups take the orders in turn across rounds, so the runs follow the cycle and stay balanced
// whenever groups and orders have no common factor (one group, the usual comparison, always);
// otherwise each group still goes through every order, round after round. Balanced exactly over
// a whole number of cycles: rounds a multiple of orders / gcd(groups, orders).
std::size_t order_for(int round, std::size_t group, std::size_t groups, std::size_t orders);

struct Interval {
  double low = 0, high = 0;
};

// A bootstrap percentile interval for the median of `values`: the middle `confidence` of the
// medians of `resamples` resamples drawn with replacement. Seeded (mt19937_64, its numbers taken
// modulo the count), so the same values give the same interval everywhere. Empty values give
// {0, 0}.
Interval median_interval(std::span<const double> values, double confidence = 0.90,
                         int resamples = 10000, std::uint64_t seed = 1);

// The geometric mean of ratios, all positive: the mean on the log scale, where a ratio and its
// inverse lie the same distance from 1. 0 for no values.
double geometric_mean(std::span<const double> ratios);

// A Student's t interval for the geometric mean: exp(mean ± t · s / √n) of the logs, s their
// sample standard deviation. When the rounds' log ratios are close to normal, as pglens-bench's
// are (README, "Benchmarks"), the mean uses them better than the median does; and t, unlike a
// bootstrap of the mean, keeps its coverage with a dozen rounds. Fewer than two ratios give the
// geometric mean for both ends.
Interval geometric_mean_interval(std::span<const double> ratios, double confidence = 0.90);

// What one run says of a target "ratio at least `bound`", judged on the geometric mean of its
// round ratios and that mean's 90% interval, in words for the summary: met or missed when the
// interval lies on one side of the bound; otherwise which side the geometric mean itself falls on,
// and that the run's noise spans the bound. Fewer than 10 rounds are too few to say.
std::string judge_at_least(std::span<const double> ratios, double bound);

}  // namespace pglens::bench
