#include "analyzer/fingerprint_cache.hpp"

#include <algorithm>
#include <iterator>
#include <optional>

namespace pglens::analyzer {
namespace {

bool same_but_literals(const StatementShape& a, const StatementShape& b) {
  return a.fingerprint == b.fingerprint && a.normalized == b.normalized && a.kind == b.kind &&
         a.values_rows == b.values_rows && a.in_list_size == b.in_list_size &&
         a.any_array_param == b.any_array_param && a.target_table == b.target_table &&
         a.read.relations == b.read.relations && a.read.join == b.read.join &&
         a.read.aggregate == b.read.aggregate && a.read.where == b.read.where &&
         a.read.limit == b.read.limit && a.read.id_equality == b.read.id_equality &&
         a.locking == b.locking && a.modifies == b.modifies &&
         a.volatile_functions == b.volatile_functions;
}

bool blank_between(std::string_view s, std::size_t from, std::size_t to) {
  for (auto i = from; i < to; ++i)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
  return true;
}

}  // namespace

const std::shared_ptr<const QueryShape>& FingerprintCache::get(std::string_view sql) {
  missed_.reset();  // a shape evicted at once lives until the next get, no longer
  // By text first: a prepared statement's (or any text cached by itself) costs no scan.
  // (A skeleton is never taken for a text: one made of the mark bytes could otherwise be.)
  if (auto it = index_.find(sql); it != index_.end() && !it->second->is_template) {
    ++hits_;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->shape;
  }
  skeletonize(sql, skeleton_);
  if (skeleton_.literals.empty()) return parse_text(sql);
  if (auto it = index_.find(skeleton_.text); it != index_.end()) {
    order_.splice(order_.begin(), order_, it->second);
    if (!it->second->usable) return parse_text(sql);
    ++hits_;
    ++template_hits_;
    return from_template(sql, *it->second);
  }
  make_template(sql);
  return missed_;
}

// Called once get() found no entry for the text itself.
const std::shared_ptr<const QueryShape>& FingerprintCache::parse_text(std::string_view sql) {
  ++misses_;
  missed_ = std::make_shared<const QueryShape>(analyze_query(sql));
  insert(Entry{std::string(sql), missed_, false, false, {}});
  return missed_;
}

// Where each constant of `constants` comes from in `sql` (blanked as `skeleton`), when every
// blanked token is exactly one of them and gives its value; nullopt otherwise. Per constant: the
// token's index, and in `kinds` 0 (the token), 1 (the token after a folded minus) or 2 (no token:
// part of the skeleton).
static std::optional<std::vector<std::uint32_t>> match_constants(
    std::string_view sql, const Skeleton& skeleton, const std::vector<Constant>& constants,
    std::vector<std::uint8_t>& kinds) {
  std::vector<std::uint32_t> out;
  std::vector<bool> used(skeleton.literals.size(), false);
  std::string value;
  kinds.clear();
  for (const auto& c : constants) {
    auto at = static_cast<std::uint32_t>(c.location);
    auto it = std::lower_bound(
        skeleton.literals.begin(), skeleton.literals.end(), at,
        [](const LiteralToken& t, std::uint32_t position) { return t.begin < position; });
    std::uint8_t kind;
    std::size_t token = static_cast<std::size_t>(it - skeleton.literals.begin());
    if (it != skeleton.literals.end() && it->begin == at) {
      kind = 0;
    } else if (at < sql.size() && sql[at] == '-' && it != skeleton.literals.end() &&
               it->kind == LiteralToken::Kind::Number && blank_between(sql, at + 1, it->begin)) {
      kind = 1;
    } else {
      if (it != skeleton.literals.begin() && std::prev(it)->end > at) return std::nullopt;
      kind = 2;  // outside every blanked token: the same in every text of this skeleton
    }
    if (kind != 2) {
      if (used[token]) return std::nullopt;
      used[token] = true;
      literal_value(sql, skeleton.literals[token], kind == 1, value);
      if (value != c.text) return std::nullopt;
    }
    kinds.push_back(kind);
    out.push_back(static_cast<std::uint32_t>(token));
  }
  if (std::find(used.begin(), used.end(), false) != used.end()) return std::nullopt;
  return out;
}

void FingerprintCache::make_template(std::string_view sql) {
  ++misses_;
  std::vector<Constant> constants;
  missed_ = std::make_shared<const QueryShape>(analyze_query(sql, &constants));
  Entry entry{skeleton_.text, nullptr, true, false, {}};
  const QueryShape& shape = *missed_;
  std::vector<std::uint8_t> kinds;
  auto matched = shape.parsed && shape.statements.size() == 1 && skeleton_.literals.size() < 65536
                     ? match_constants(sql, skeleton_, constants, kinds)
                     : std::nullopt;
  if (matched) {
    // A second text of the same skeleton with other values: its parse must agree.
    std::string other;
    std::size_t from = 0;
    for (const auto& t : skeleton_.literals) {
      other.append(sql.substr(from, t.begin - from));
      auto original = sql.substr(t.begin, t.end - t.begin);
      if (t.kind == LiteralToken::Kind::Number)
        other.append(original == "7" ? "8" : "7");
      else
        other.append(original == "'pglens'" ? "'pglens2'" : "'pglens'");
      from = t.end;
    }
    other.append(sql.substr(from));
    Skeleton other_skeleton;
    skeletonize(other, other_skeleton);
    std::vector<Constant> other_constants;
    QueryShape other_shape = analyze_query(other, &other_constants);
    std::vector<std::uint8_t> other_kinds;
    auto other_matched = other_skeleton.text == skeleton_.text && other_shape.parsed &&
                                 other_shape.statements.size() == 1 &&
                                 same_but_literals(shape.statements[0], other_shape.statements[0])
                             ? match_constants(other, other_skeleton, other_constants, other_kinds)
                             : std::nullopt;
    if (other_matched && *other_matched == *matched && other_kinds == kinds) {
      entry.usable = true;
      auto template_shape = std::make_shared<QueryShape>(shape);
      template_shape->statements[0].literals.clear();
      entry.shape = std::move(template_shape);
      for (std::size_t i = 0; i < matched->size() && i < kMaxLiterals; ++i) {
        LiteralSource source;
        source.kind = kinds[i] == 0   ? LiteralSource::Kind::Token
                      : kinds[i] == 1 ? LiteralSource::Kind::NegatedToken
                                      : LiteralSource::Kind::Fixed;
        source.token = static_cast<std::uint16_t>((*matched)[i]);
        if (source.kind == LiteralSource::Kind::Fixed) source.fixed = constants[i].text;
        entry.sources.push_back(std::move(source));
      }
    }
  }
  bool usable = entry.usable;
  insert(std::move(entry));
  // Without a template this text is cached by itself, as any other.
  if (!usable) insert(Entry{std::string(sql), missed_, false, false, {}});
}

const std::shared_ptr<const QueryShape>& FingerprintCache::from_template(std::string_view sql,
                                                                         const Entry& e) {
  // Rewritten in place (its strings keep their buffers) unless someone still holds it.
  if (!filled_ || filled_.use_count() > 1) filled_ = std::make_shared<QueryShape>();
  auto& shape = const_cast<QueryShape&>(*filled_);  // made non-const above; only we write it
  shape.parsed = true;
  shape.statements.resize(1);
  auto& s = shape.statements[0];
  auto literals = std::move(s.literals);
  s = e.shape->statements[0];  // its literals are empty
  s.literals = std::move(literals);
  s.literals.resize(e.sources.size());
  for (std::size_t i = 0; i < e.sources.size(); ++i) {
    const auto& source = e.sources[i];
    if (source.kind == LiteralSource::Kind::Fixed)
      s.literals[i] = source.fixed;
    else
      literal_value(sql, skeleton_.literals[source.token],
                    source.kind == LiteralSource::Kind::NegatedToken, s.literals[i]);
  }
  return filled_;
}

void FingerprintCache::insert(Entry entry) {
  if (index_.count(entry.key) != 0) return;
  bytes_ += entry.key.size();
  order_.push_front(std::move(entry));
  index_.emplace(order_.front().key, order_.begin());
  while (!order_.empty() && (index_.size() > max_entries_ || bytes_ > max_bytes_)) {
    auto& last = order_.back();
    bytes_ -= last.key.size();
    index_.erase(last.key);
    order_.pop_back();
    ++evictions_;
  }
}

}  // namespace pglens::analyzer
