#include "bench/design.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

namespace pglens::bench {

namespace {

// Depth-first search for the flattened cycle: position `at` of `order` (rounds of `n` back to
// back) takes a target not yet in its round whose pair with the one before is still unused.
bool extend(std::vector<std::size_t>& order, std::size_t at, std::size_t n,
            std::vector<char>& pair_used, std::vector<char>& in_round) {
  if (at == order.size()) return !pair_used[order.back() * n + order.front()];  // wraps around
  if (at % n == 0) std::fill(in_round.begin(), in_round.end(), 0);
  for (std::size_t x = 0; x < n; ++x) {
    std::size_t pair = order[at - 1] * n + x;
    if (in_round[x] || x == order[at - 1] || pair_used[pair]) continue;
    order[at] = x;
    pair_used[pair] = in_round[x] = 1;
    std::vector<char> saved_round;
    if ((at + 1) % n == 0) saved_round = in_round;  // the next round clears it
    if (extend(order, at + 1, n, pair_used, in_round)) return true;
    if (!saved_round.empty()) in_round = saved_round;
    pair_used[pair] = in_round[x] = 0;
  }
  return false;
}

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
  if (targets == 0) return {};
  if (targets > 5) throw std::invalid_argument("carryover_balanced_orders: at most 5 targets");
  if (targets <= 2) {
    std::vector<std::size_t> one(targets);
    std::iota(one.begin(), one.end(), 0);
    return {one};
  }
  // Every ordered pair of distinct targets once: targets * (targets - 1) transitions, so
  // targets - 1 rounds. The first round may as well be 0, 1, 2, …: renaming keeps the property.
  const std::size_t n = targets, rounds = n - 1;
  std::vector<std::size_t> order(n * rounds);
  std::iota(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), 0);
  std::vector<char> pair_used(n * n, 0), in_round(n, 0);
  for (std::size_t i = 1; i < n; ++i) pair_used[(i - 1) * n + i] = 1;
  std::fill(in_round.begin(), in_round.end(), 1);
  if (!extend(order, n, n, pair_used, in_round))
    throw std::logic_error("carryover_balanced_orders: no order found");
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t r = 0; r < rounds; ++r)
    out.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(r * n),
                     order.begin() + static_cast<std::ptrdiff_t>((r + 1) * n));
  return out;
}

Interval median_interval(std::span<const double> values, double confidence, int resamples,
                         std::uint64_t seed) {
  if (values.empty()) return {};
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<std::size_t> pick(0, values.size() - 1);
  std::vector<double> medians, draw(values.size());
  medians.reserve(static_cast<std::size_t>(std::max(resamples, 1)));
  for (int i = 0; i < std::max(resamples, 1); ++i) {
    for (auto& d : draw) d = values[pick(random)];
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

}  // namespace pglens::bench
