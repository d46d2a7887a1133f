// Hash and equality for the analyzer's tuple keys: integers (a fingerprint, an Identity hash)
// followed by the strings they stand for. The hash reads the integers only, since equal keys have
// equal integers and the Identity hashes already spread keys whose strings differ; equality
// compares everything, strings included. Both are transparent: a key of std::strings is found
// with the same tuple of string_views, so a lookup builds no string and hashes none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <tuple>
#include <type_traits>

namespace pglens::analyzer {

struct KeyHash {
  using is_transparent = void;

  template <typename... T>
  std::size_t operator()(const std::tuple<T...>& key) const noexcept {
    static_assert(((std::is_integral_v<T> || std::is_enum_v<T>) || ...),
                  "a key needs an integer part to hash");
    std::size_t h = 0;
    // Each integer as u64 whatever its type, so a key and a lookup tuple that spell the same
    // number differently hash alike; the strings are skipped.
    auto mix = [&h](std::uint64_t v) { h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2); };
    std::apply(
        [&mix](const auto&... part) {
          (
              [&mix](const auto& p) {
                using P = std::decay_t<decltype(p)>;
                if constexpr (std::is_enum_v<P>)
                  mix(static_cast<std::uint64_t>(static_cast<std::underlying_type_t<P>>(p)));
                else if constexpr (std::is_integral_v<P>)
                  mix(static_cast<std::uint64_t>(p));
              }(part),
              ...);
        },
        key);
    return h;
  }
};

struct KeyEqual {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return a == b;
  }
};

}  // namespace pglens::analyzer
