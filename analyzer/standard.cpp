#include "analyzer/standard.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace pglens::analyzer {

std::string_view to_string(StandardClass c) {
  switch (c) {
    case StandardClass::PrimaryKeyLookup:
      return "primary_key_lookup";
    case StandardClass::Indexed:
      return "indexed";
    case StandardClass::Join:
      return "join";
    case StandardClass::Aggregate:
      return "aggregate";
    case StandardClass::FullScan:
      return "full_scan";
    case StandardClass::Write:
      return "write";
    case StandardClass::Other:
      break;
  }
  return "other";
}

std::optional<double> standard_limit_ms(StandardClass c) {
  switch (c) {
    case StandardClass::PrimaryKeyLookup:
      return 1.0;
    case StandardClass::Indexed:
      return 10.0;
    case StandardClass::Join:
      return 50.0;
    case StandardClass::Aggregate:
      return 100.0;
    default:
      return std::nullopt;
  }
}

StandardClass classify_shape(const StatementShape& shape) {
  switch (shape.kind) {
    case StatementKind::Insert:
    case StatementKind::Update:
    case StatementKind::Delete:
    case StatementKind::Merge:
    case StatementKind::Copy:
      return StandardClass::Write;
    case StatementKind::Select:
      break;
    default:
      return StandardClass::Other;
  }
  if (shape.modifies) return StandardClass::Write;
  const auto& r = shape.read;
  if (r.relations == 0) return StandardClass::Other;
  if (r.aggregate) return StandardClass::Aggregate;
  if (r.join) return StandardClass::Join;
  if (r.id_equality) return StandardClass::PrimaryKeyLookup;
  if (r.where || r.limit) return StandardClass::Indexed;
  return StandardClass::FullScan;
}

namespace {
using nlohmann::json;

std::string qualified(const json& node, const char* name_key) {
  auto name = node.value(name_key, std::string());
  auto schema = node.value("Schema", std::string());
  return schema.empty() ? name : schema + "." + name;
}

void walk_plan(const json& node, PlanFacts& facts) {
  if (!node.is_object()) return;
  auto type = node.value("Node Type", std::string());
  if (type == "Seq Scan") {
    facts.seq_scanned.push_back(qualified(node, "Relation Name"));
  } else if (type == "Index Scan" || type == "Index Only Scan" || type == "Bitmap Index Scan") {
    facts.indexes.push_back(qualified(node, "Index Name"));
  } else if (type == "Nested Loop" || type == "Hash Join" || type == "Merge Join") {
    facts.join = true;
  } else if (type == "Aggregate" || type == "Group") {
    facts.aggregate = true;
  }
  if (auto it = node.find("Plans"); it != node.end() && it->is_array())
    for (const auto& child : *it) walk_plan(child, facts);
}

// A Bitmap Index Scan names no schema (its Bitmap Heap Scan parent does): take the parent's.
void fill_bitmap_schemas(const json& node, const std::string& schema, PlanFacts& facts,
                         std::size_t& index) {
  if (!node.is_object()) return;
  auto type = node.value("Node Type", std::string());
  std::string here = node.value("Schema", schema);
  if (type == "Index Scan" || type == "Index Only Scan" || type == "Bitmap Index Scan") {
    if (index < facts.indexes.size() && !node.contains("Schema") && !here.empty())
      facts.indexes[index] = here + "." + facts.indexes[index];
    ++index;
  }
  if (auto it = node.find("Plans"); it != node.end() && it->is_array())
    for (const auto& child : *it) fill_bitmap_schemas(child, here, facts, index);
}
}  // namespace

PlanFacts plan_facts(const nlohmann::json& plan) {
  PlanFacts facts;
  walk_plan(plan, facts);
  std::size_t index = 0;
  fill_bitmap_schemas(plan, "", facts, index);
  if (plan.is_object()) facts.rows = plan.value("Plan Rows", 0.0);
  return facts;
}

std::optional<StandardClass> classify_plan(const PlanFacts& facts,
                                           const std::map<std::string, double>& table_rows,
                                           const std::set<std::string>& primary_key_indexes,
                                           double large_rows) {
  for (const auto& table : facts.seq_scanned) {
    auto it = table_rows.find(table);
    if (it != table_rows.end() && it->second >= large_rows) return StandardClass::FullScan;
  }
  if (facts.aggregate) return StandardClass::Aggregate;
  if (facts.join) return StandardClass::Join;
  if (facts.indexes.empty()) return std::nullopt;
  bool all_primary = facts.seq_scanned.empty() &&
                     std::all_of(facts.indexes.begin(), facts.indexes.end(),
                                 [&](const auto& i) { return primary_key_indexes.count(i) != 0; });
  return all_primary && facts.rows <= 1 ? StandardClass::PrimaryKeyLookup : StandardClass::Indexed;
}

std::string_view to_string(Grade g) {
  switch (g) {
    case Grade::Ok:
      return "ok";
    case Grade::Over:
      return "over";
    case Grade::Avoid:
      return "avoid";
    case Grade::NotApplicable:
      break;
  }
  return "n/a";
}

std::string StandardGrade::summary() const {
  if (grade == Grade::Over && over_by) return fmt::format("over {:.1f}x", *over_by);
  return std::string(to_string(grade));
}

StandardGrade grade_against_standard(StandardClass cls, bool from_plan, double p95_ms) {
  StandardGrade g;
  g.cls = cls;
  g.from_plan = from_plan;
  g.limit_ms = standard_limit_ms(cls);
  if (g.limit_ms) {
    g.over_by = p95_ms / *g.limit_ms;
    g.grade = p95_ms > *g.limit_ms ? Grade::Over : Grade::Ok;
  } else {
    g.grade = cls == StandardClass::FullScan ? Grade::Avoid : Grade::NotApplicable;
  }
  return g;
}

void PlanClasses::set(std::uint64_t fingerprint, std::optional<StandardClass> cls) {
  std::lock_guard lock(mutex_);
  if (!cls) {
    entries_.erase(fingerprint);
    return;
  }
  auto it = entries_.find(fingerprint);
  if (it == entries_.end() && entries_.size() >= max_entries_) {
    auto oldest = std::min_element(
        entries_.begin(), entries_.end(),
        [](const auto& a, const auto& b) { return a.second.order < b.second.order; });
    entries_.erase(oldest);
  }
  entries_[fingerprint] = Entry{cls, next_order_++};
}

std::optional<StandardClass> PlanClasses::get(std::uint64_t fingerprint) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(fingerprint);
  return it == entries_.end() ? std::nullopt : it->second.cls;
}

}  // namespace pglens::analyzer
