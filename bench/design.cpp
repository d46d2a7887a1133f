#include "bench/design.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>
#include <random>
#include <stdexcept>

#include <boost/math/distributions/students_t.hpp>

namespace pglens::bench {

namespace {

double median_of(std::vector<double>& v) {
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  if (v.size() % 2 == 1) return *mid;
  double upper = *mid;
  double lower = *std::max_element(v.begin(), mid);
  return (lower + upper) / 2;
}

}  // namespace

std::vector<std::vector<std::size_t>> carryover_balanced_orders(std::size_t targets) {
  // Found by a depth-first search and checked by the unit tests (every ordered pair of distinct
  // targets once per cycle, round boundaries and the wrap-around included).
  static const std::vector<std::vector<std::size_t>> kOrders[] = {
      {},
      {{0}},
      {{0, 1}},
      {{0, 1, 2}, {0, 2, 1}},
      {{0, 1, 2, 3}, {0, 2, 1, 3}, {1, 0, 3, 2}},
      {{0, 1, 2, 3, 4}, {0, 2, 1, 4, 3}, {0, 3, 2, 4, 1}, {3, 1, 0, 4, 2}},
  };
  if (targets >= std::size(kOrders))
    throw std::invalid_argument("carryover_balanced_orders: at most 5 targets");
  return kOrders[targets];
}

std::size_t order_for(int round, std::size_t group, std::size_t groups, std::size_t orders) {
  if (orders == 0) return 0;
  auto r = static_cast<std::size_t>(std::max(round, 1) - 1);
  if (std::gcd(groups, orders) == 1) return (r * groups + group) % orders;
  return (r + group) % orders;
}

Interval median_interval(std::span<const double> values, double confidence, int resamples,
                         std::uint64_t seed) {
  if (values.empty()) return {};
  std::mt19937_64 random(seed);
  std::vector<double> medians, draw(values.size());
  medians.reserve(static_cast<std::size_t>(std::max(resamples, 1)));
  for (int i = 0; i < std::max(resamples, 1); ++i) {
    for (auto& d : draw) d = values[random() % values.size()];
    medians.push_back(median_of(draw));
  }
  std::sort(medians.begin(), medians.end());
  double tail = (1 - std::clamp(confidence, 0.0, 1.0)) / 2;
  auto at = [&](double q) {
    auto i = static_cast<std::size_t>(std::llround(q * static_cast<double>(medians.size() - 1)));
    return medians[std::min(i, medians.size() - 1)];
  };
  return {at(tail), at(1 - tail)};
}

double geometric_mean(std::span<const double> ratios) {
  if (ratios.empty()) return 0;
  double sum = 0;
  for (double r : ratios) sum += std::log(r);
  return std::exp(sum / static_cast<double>(ratios.size()));
}

Interval geometric_mean_interval(std::span<const double> ratios, double confidence) {
  double center = geometric_mean(ratios);
  if (ratios.size() < 2) return {center, center};
  double n = static_cast<double>(ratios.size());
  double mean = std::log(center), squares = 0;
  for (double r : ratios) squares += (std::log(r) - mean) * (std::log(r) - mean);
  double s = std::sqrt(squares / (n - 1));
  boost::math::students_t t(n - 1);
  double half = boost::math::quantile(t, 1 - (1 - std::clamp(confidence, 0.0, 0.999999)) / 2) * s /
                std::sqrt(n);
  return {std::exp(mean - half), std::exp(mean + half)};
}

std::string judge_at_least(std::span<const double> ratios, double bound) {
  // An interval needs some rounds to mean anything.
  if (ratios.size() < 10) return "too few rounds to settle it, 10 or more";
  auto ci = geometric_mean_interval(ratios);
  if (ci.low >= bound) return "met, the geometric mean's 90% interval is at or above it";
  if (ci.high < bound) return "missed, the geometric mean's 90% interval is below it";
  return std::string("not settled by this run: the geometric mean is ") +
         (geometric_mean(ratios) >= bound ? "at or above it" : "below it") +
         ", and its 90% interval spans it";
}

}  // namespace pglens::bench
