#include "analyzer/fingerprint_cache.hpp"

namespace pglens::analyzer {

const std::shared_ptr<const QueryShape>& FingerprintCache::get(std::string_view sql) {
  missed_.reset();  // a shape evicted at once lives until the next get, no longer
  if (auto it = index_.find(sql); it != index_.end()) {
    ++hits_;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->shape;
  }
  ++misses_;
  missed_ = std::make_shared<const QueryShape>(analyze_query(sql));
  order_.push_front(Entry{std::string(sql), missed_});
  index_.emplace(order_.front().sql, order_.begin());
  bytes_ += sql.size();
  while (!order_.empty() && (index_.size() > max_entries_ || bytes_ > max_bytes_)) {
    auto& last = order_.back();
    bytes_ -= last.sql.size();
    index_.erase(last.sql);
    order_.pop_back();
    ++evictions_;
  }
  return missed_;
}

}  // namespace pglens::analyzer
