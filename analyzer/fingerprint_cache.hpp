// QueryShapes by exact statement text, least recently used evicted first. A hit costs a hash and
// a string compare; a miss a full libpg_query pass (~15 µs and more). One thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "analyzer/query_shape.hpp"

namespace pglens::analyzer {

class FingerprintCache {
 public:
  explicit FingerprintCache(std::size_t max_entries = 10'000, std::size_t max_bytes = 64 << 20)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // The reference stays valid until the next get: the analyzer holds no count on the shape
  // while it processes one statement (a pair of atomic updates per statement less).
  const std::shared_ptr<const QueryShape>& get(std::string_view sql);

  std::uint64_t hits() const { return hits_; }
  std::uint64_t misses() const { return misses_; }
  std::uint64_t evictions() const { return evictions_; }
  std::size_t size() const { return index_.size(); }

 private:
  struct Entry {
    std::string sql;
    std::shared_ptr<const QueryShape> shape;
  };
  std::size_t max_entries_, max_bytes_, bytes_ = 0;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views into order_
  std::shared_ptr<const QueryShape> missed_;  // the last miss's, until the next get
  std::uint64_t hits_ = 0, misses_ = 0, evictions_ = 0;
};

}  // namespace pglens::analyzer
