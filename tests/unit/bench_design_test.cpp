#include <gtest/gtest.h>

#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <utility>
#include <vector>

#include "bench/design.hpp"

namespace pglens::bench {
namespace {

// The runs of `cycles` cycles back to back, as pglens-bench makes them.
std::vector<std::size_t> flatten(const std::vector<std::vector<std::size_t>>& orders, int cycles) {
  std::vector<std::size_t> runs;
  for (int c = 0; c < cycles; ++c)
    for (const auto& round : orders) runs.insert(runs.end(), round.begin(), round.end());
  return runs;
}

TEST(CarryoverBalancedOrders, EveryTargetFollowsEveryOtherEquallyOftenAndNeverItself) {
  for (std::size_t n = 2; n <= 5; ++n) {
    SCOPED_TRACE(n);
    auto orders = carryover_balanced_orders(n);
    ASSERT_EQ(orders.size(), n == 2 ? 1u : n - 1);
    for (const auto& round : orders) {  // each round runs every target once
      auto sorted = round;
      std::sort(sorted.begin(), sorted.end());
      std::vector<std::size_t> all(n);
      std::iota(all.begin(), all.end(), 0);
      EXPECT_EQ(sorted, all);
    }
    // Three cycles back to back: the round boundaries count, the wrap-around too.
    auto runs = flatten(orders, 3);
    std::map<std::pair<std::size_t, std::size_t>, int> follows;
    for (std::size_t i = 1; i < runs.size(); ++i) ++follows[{runs[i - 1], runs[i]}];
    int expected = 3 * static_cast<int>(orders.size() * n) / static_cast<int>(n * (n - 1));
    for (std::size_t a = 0; a < n; ++a) {
      EXPECT_EQ(follows.count({a, a}), 0u) << a << " follows itself";
      for (std::size_t b = 0; b < n; ++b) {
        if (a == b) continue;
        // The first run has no predecessor: that one pair is one short.
        int got = follows[{a, b}] + (a == runs.back() && b == runs.front() ? 1 : 0);
        EXPECT_EQ(got, expected) << b << " after " << a;
      }
    }
  }
}

TEST(CarryoverBalancedOrders, ThreeTargetsAsTheProxyBenchRunsThem) {
  // direct, pglens, pglens --no-analysis: each of the two pglens runs right after the other
  // as often as right after direct (a rotation put pglens after direct twice as often).
  auto orders = carryover_balanced_orders(3);
  auto runs = flatten(orders, 8);
  std::map<std::size_t, std::map<std::size_t, int>> before;
  for (std::size_t i = 1; i < runs.size(); ++i) ++before[runs[i]][runs[i - 1]];
  EXPECT_NEAR(before[1][0], before[1][2], 1);
  EXPECT_NEAR(before[2][0], before[2][1], 1);
}

// Several groups per round (pglens-bench: one per mode and client count), as the bench runs them.
TEST(OrderFor, EveryGroupGetsEveryOrderAndTheRunsStayBalancedWhenTheyCan) {
  for (std::size_t n = 2; n <= 5; ++n) {
    auto orders = carryover_balanced_orders(n);
    const std::size_t k = orders.size();
    for (std::size_t groups = 1; groups <= 4; ++groups) {
      SCOPED_TRACE(testing::Message() << n << " targets, " << groups << " groups");
      const int rounds = static_cast<int>(4 * k * k);  // whole cycles however they line up
      std::vector<std::map<std::size_t, int>> per_group(groups);
      std::vector<std::size_t> runs;
      for (int round = 1; round <= rounds; ++round)
        for (std::size_t g = 0; g < groups; ++g) {
          auto o = order_for(round, g, groups, k);
          ASSERT_LT(o, k);
          ++per_group[g][o];
          runs.insert(runs.end(), orders[o].begin(), orders[o].end());
        }
      for (const auto& got : per_group) {
        ASSERT_EQ(got.size(), k);  // every order
        for (const auto& [order, times] : got) EXPECT_EQ(times, rounds / static_cast<int>(k));
      }
      if (std::gcd(groups, k) != 1) continue;
      // The runs in time: every target after every other one equally often.
      std::map<std::pair<std::size_t, std::size_t>, int> follows;
      for (std::size_t i = 0; i < runs.size(); ++i)
        ++follows[{runs[(i + runs.size() - 1) % runs.size()], runs[i]}];
      int expected = static_cast<int>(runs.size() / (n * (n - 1)));
      for (std::size_t a = 0; a < n; ++a)
        for (std::size_t b = 0; b < n; ++b)
          EXPECT_EQ((follows[{a, b}]), a == b ? 0 : expected) << b << " after " << a;
    }
  }
}

TEST(OrderFor, OneGroupCyclesThroughTheOrdersRoundByRound) {
  EXPECT_EQ(order_for(1, 0, 1, 2), 0u);
  EXPECT_EQ(order_for(2, 0, 1, 2), 1u);
  EXPECT_EQ(order_for(3, 0, 1, 2), 0u);
  EXPECT_EQ(order_for(5, 0, 1, 1), 0u);
}

TEST(CarryoverBalancedOrders, OneTargetAndNone) {
  EXPECT_EQ(carryover_balanced_orders(1), (std::vector<std::vector<std::size_t>>{{0}}));
  EXPECT_TRUE(carryover_balanced_orders(0).empty());
  EXPECT_THROW(carryover_balanced_orders(6), std::invalid_argument);
}

TEST(MedianInterval, BracketsTheMedianAndIsReproducible) {
  std::vector<double> v = {0.91, 0.95, 0.97, 0.98, 0.99, 1.00, 1.01, 1.02, 1.04, 1.10, 0.96};
  auto a = median_interval(v);
  auto b = median_interval(v);
  EXPECT_EQ(a.low, b.low);
  EXPECT_EQ(a.high, b.high);
  EXPECT_LE(a.low, 0.99);  // the median
  EXPECT_GE(a.high, 0.99);
  EXPECT_GE(a.low, 0.91);
  EXPECT_LE(a.high, 1.10);
  EXPECT_LT(a.low, a.high);
}

TEST(MedianInterval, NarrowsWithMoreRoundsOfTheSameSpread) {
  std::vector<double> few = {0.90, 0.95, 1.00, 1.05, 1.10};
  std::vector<double> many;
  for (int i = 0; i < 8; ++i) many.insert(many.end(), few.begin(), few.end());
  auto f = median_interval(few), m = median_interval(many);
  EXPECT_LT(m.high - m.low, f.high - f.low);
  EXPECT_LE(m.low, 1.00);
  EXPECT_GE(m.high, 1.00);
}

TEST(MedianInterval, DegenerateInputs) {
  std::vector<double> none;
  auto e = median_interval(none);
  EXPECT_EQ(e.low, 0);
  EXPECT_EQ(e.high, 0);
  std::vector<double> one = {0.97};
  auto o = median_interval(one);
  EXPECT_EQ(o.low, 0.97);
  EXPECT_EQ(o.high, 0.97);
  std::vector<double> same(10, 1.5);
  auto s = median_interval(same);
  EXPECT_EQ(s.low, 1.5);
  EXPECT_EQ(s.high, 1.5);
}

TEST(GeometricMean, IsTheMeanOnTheLogScale) {
  std::vector<double> v = {0.5, 2.0};  // a ratio and its inverse: no change
  EXPECT_DOUBLE_EQ(geometric_mean(v), 1.0);
  std::vector<double> w = {1.0, 4.0};
  EXPECT_DOUBLE_EQ(geometric_mean(w), 2.0);
  std::vector<double> none;
  EXPECT_EQ(geometric_mean(none), 0);
}

TEST(GeometricMeanInterval, IsStudentsTOnTheLogs) {
  // Logs -1, 0, 1: mean 0, sample standard deviation 1, t(0.95; 2 degrees) = 2.919986.
  std::vector<double> v = {std::exp(-1.0), 1.0, std::exp(1.0)};
  auto ci = geometric_mean_interval(v);
  double half = 2.919986 / std::sqrt(3.0);
  EXPECT_NEAR(std::log(ci.low), -half, 1e-5);
  EXPECT_NEAR(std::log(ci.high), half, 1e-5);
  std::vector<double> one = {0.97};
  auto o = geometric_mean_interval(one);
  EXPECT_DOUBLE_EQ(o.low, 0.97);
  EXPECT_DOUBLE_EQ(o.high, 0.97);
  std::vector<double> none;
  EXPECT_EQ(geometric_mean_interval(none).high, 0);
}

TEST(GeometricMeanInterval, NarrowerThanTheMediansOnNormalLogRatios) {
  // 40 rounds whose log ratios are spread as a normal sample is (its quantiles), as the proxy
  // bench's are: 7% standard deviation around 0.98.
  boost::math::normal normal(std::log(0.98), 0.07);
  std::vector<double> v;
  for (int i = 0; i < 40; ++i) v.push_back(std::exp(boost::math::quantile(normal, (i + 0.5) / 40)));
  // Interleaved, as rounds come: the bootstrap's draws do not depend on the order anyway.
  std::rotate(v.begin(), v.begin() + 13, v.end());
  auto mean = geometric_mean_interval(v), median = median_interval(v);
  double g = geometric_mean(v);
  EXPECT_NEAR(g, 0.98, 1e-3);
  EXPECT_LT(mean.low, g);
  EXPECT_GT(mean.high, g);
  EXPECT_LT(mean.high - mean.low, median.high - median.low);
  // More rounds of the same spread: narrower.
  std::vector<double> more;
  for (int k = 0; k < 4; ++k) more.insert(more.end(), v.begin(), v.end());
  auto m4 = geometric_mean_interval(more);
  EXPECT_LT(m4.high - m4.low, (mean.high - mean.low) * 0.6);
}

TEST(JudgeAtLeast, SaysWhichSideTheIntervalAndTheMeanFallOn) {
  auto rounds = [](double center, double spread) {
    std::vector<double> v;
    for (int i = 0; i < 20; ++i) v.push_back(center * (i % 2 == 0 ? 1 + spread : 1 / (1 + spread)));
    return v;
  };
  // Geometric mean 0.99, 1% either way, 20 rounds: the interval is about ±0.4%.
  EXPECT_EQ(judge_at_least(rounds(0.99, 0.01), 0.97),
            "met, the geometric mean's 90% interval is at or above it");
  EXPECT_EQ(judge_at_least(rounds(0.95, 0.01), 0.97),
            "missed, the geometric mean's 90% interval is below it");
  // 8% either way: the interval is about ±3%, so it spans the bound from either side.
  EXPECT_EQ(judge_at_least(rounds(0.975, 0.08), 0.97),
            "not settled by this run: the geometric mean is at or above it, and its 90% interval "
            "spans it");
  EXPECT_EQ(judge_at_least(rounds(0.965, 0.08), 0.97),
            "not settled by this run: the geometric mean is below it, and its 90% interval spans "
            "it");
  EXPECT_EQ(judge_at_least(std::vector<double>(9, 1.5), 0.97),
            "too few rounds to settle it, 10 or more");
}

}  // namespace
}  // namespace pglens::bench
