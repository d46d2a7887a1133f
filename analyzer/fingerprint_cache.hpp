// QueryShapes by statement text, least recently used evicted first. One thread only.
//
// Two kinds of entry share the LRU:
// - by exact text: a hit costs a hash and a compare; a miss a full libpg_query pass (~15 µs and
//   more). Prepared statements and texts without constants only ever take this path.
// - by skeleton (literal_skeleton.hpp): texts that differ only in their numbers and '...'
//   strings, as a simple-protocol client sends them, share one template. A template is made
//   from the first text and kept only when the parse of a second, made-up text with other values
//   agrees with it in everything but the literals, and when each literal of the parse tree comes
//   from one blanked token (or is part of the skeleton). A hit then costs a scan of the text and
//   the literals' values, no parse. A skeleton that fails the check is remembered as such and
//   its texts go by exact text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "analyzer/literal_skeleton.hpp"
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
  std::uint64_t template_hits() const { return template_hits_; }  // part of hits()
  std::uint64_t evictions() const { return evictions_; }
  std::size_t size() const { return index_.size(); }

 private:
  // Where literal i of a templated statement comes from.
  struct LiteralSource {
    enum class Kind : std::uint8_t { Token, NegatedToken, Fixed } kind = Kind::Token;
    std::uint16_t token = 0;  // index into the skeleton's literals
    std::string fixed;        // Fixed: part of the skeleton (TRUE, a B'' string...)
  };
  struct Entry {
    std::string key;  // the exact text, or a skeleton
    std::shared_ptr<const QueryShape> shape;
    bool is_template = false;  // keyed by skeleton
    bool usable = false;       // a template that passed the check; else its texts go by text
    std::vector<LiteralSource> sources;
  };

  const std::shared_ptr<const QueryShape>& parse_text(std::string_view sql);  // by text, a miss
  void make_template(std::string_view sql);
  const std::shared_ptr<const QueryShape>& from_template(std::string_view sql, const Entry& e);
  void insert(Entry entry);

  std::size_t max_entries_, max_bytes_, bytes_ = 0;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views into order_
  std::shared_ptr<const QueryShape> missed_;  // the last miss's, until the next get
  std::shared_ptr<const QueryShape> filled_;  // a template hit's, rewritten in place
  Skeleton skeleton_;                         // the last text's, reused
  std::uint64_t hits_ = 0, misses_ = 0, template_hits_ = 0, evictions_ = 0;
};

}  // namespace pglens::analyzer
