#include "rules/query_columns.hpp"

#include <pg_query.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

namespace pglens::rules {

namespace {
using nlohmann::json;

struct Scope {
  std::map<std::string, std::string> aliases;  // alias or bare name → table as written
  std::vector<std::string> tables;
};

void collect_tables(const json& node, Scope& scope) {
  if (node.is_object()) {
    if (auto it = node.find("RangeVar"); it != node.end()) {
      std::string name = it->value("relname", std::string());
      if (it->contains("schemaname")) name = (*it)["schemaname"].get<std::string>() + "." + name;
      scope.tables.push_back(name);
      scope.aliases[it->value("relname", std::string())] = name;
      scope.aliases[name] = name;
      if (it->contains("alias"))
        scope.aliases[(*it)["alias"].value("aliasname", std::string())] = name;
      return;
    }
    if (node.contains("SelectStmt") || node.contains("SubLink"))
      return;  // subqueries have their own scope
    for (const auto& [k, v] : node.items()) collect_tables(v, scope);
  } else if (node.is_array()) {
    for (const auto& v : node) collect_tables(v, scope);
  }
}

// A column reference resolved to (table, column), or empty when it cannot be.
std::pair<std::string, std::string> resolve(const json& column_ref, const Scope& scope) {
  std::vector<std::string> parts;
  for (const auto& f : column_ref.value("fields", json::array())) {
    if (!f.contains("String")) return {};
    parts.push_back(f["String"].value("sval", std::string()));
  }
  if (parts.size() == 1) {
    if (scope.tables.size() != 1) return {};  // unqualified with several tables: cannot tell
    return {scope.tables.front(), parts[0]};
  }
  if (parts.size() >= 2) {
    auto qualifier =
        parts.size() == 2 ? parts[0] : parts[parts.size() - 3] + "." + parts[parts.size() - 2];
    auto it = scope.aliases.find(qualifier);
    if (it == scope.aliases.end()) return {};
    return {it->second, parts.back()};
  }
  return {};
}

const json* column_ref_in(const json& node) {
  if (node.contains("ColumnRef")) return &node["ColumnRef"];
  // A cast of a column (col::text) still uses the column.
  if (node.contains("TypeCast") && node["TypeCast"].contains("arg"))
    return column_ref_in(node["TypeCast"]["arg"]);
  return nullptr;
}

void add(const json* ref, ColumnRole role, const Scope& scope, std::vector<ColumnUse>& out) {
  if (ref == nullptr) return;
  auto [table, column] = resolve(*ref, scope);
  if (!table.empty()) out.push_back({table, column, role});
}

void walk_quals(const json& node, const Scope& scope, std::vector<ColumnUse>& out) {
  if (node.is_array()) {
    for (const auto& v : node) walk_quals(v, scope, out);
    return;
  }
  if (!node.is_object()) return;
  if (auto it = node.find("BoolExpr"); it != node.end()) {
    if (it->value("boolop", std::string()) != "NOT_EXPR")
      walk_quals(it->value("args", json::array()), scope, out);
    return;
  }
  if (auto it = node.find("A_Expr"); it != node.end()) {
    const json& e = *it;
    auto kind = e.value("kind", std::string());
    std::string op;
    if (e.contains("name") && !e["name"].empty() && e["name"][0].contains("String"))
      op = e["name"][0]["String"].value("sval", std::string());
    const json* l = e.contains("lexpr") ? column_ref_in(e["lexpr"]) : nullptr;
    const json* r = e.contains("rexpr") ? column_ref_in(e["rexpr"]) : nullptr;
    if ((kind == "AEXPR_OP" && op == "=") || kind == "AEXPR_IN" ||
        (kind == "AEXPR_OP_ANY" && op == "=")) {
      add(l, ColumnRole::Equality, scope, out);
      if (kind == "AEXPR_OP")
        add(r, ColumnRole::Equality, scope, out);  // a join condition: both sides
    } else if ((kind == "AEXPR_OP" && (op == "<" || op == ">" || op == "<=" || op == ">=")) ||
               kind == "AEXPR_BETWEEN" || (kind == "AEXPR_LIKE" && op == "~~")) {
      add(l, ColumnRole::Range, scope, out);
      if (kind == "AEXPR_OP") add(r, ColumnRole::Range, scope, out);
    }
    return;
  }
  if (auto it = node.find("NullTest"); it != node.end() && it->contains("arg")) {
    add(column_ref_in((*it)["arg"]), ColumnRole::Equality, scope, out);
  }
}

void walk_joins(const json& node, const Scope& scope, std::vector<ColumnUse>& out) {
  if (node.is_object()) {
    if (auto it = node.find("JoinExpr"); it != node.end()) {
      if (it->contains("quals")) walk_quals((*it)["quals"], scope, out);
      if (it->contains("larg")) walk_joins((*it)["larg"], scope, out);
      if (it->contains("rarg")) walk_joins((*it)["rarg"], scope, out);
      return;
    }
  } else if (node.is_array()) {
    for (const auto& v : node) walk_joins(v, scope, out);
  }
}
}  // namespace

std::vector<ColumnUse> extract_column_uses(std::string_view statement_sql) {
  std::vector<ColumnUse> out;
  std::string text(statement_sql);
  PgQueryParseResult parsed = pg_query_parse(text.c_str());
  if (parsed.error != nullptr) {
    pg_query_free_parse_result(parsed);
    return out;
  }
  json tree = json::parse(parsed.parse_tree, nullptr, false);
  pg_query_free_parse_result(parsed);
  if (tree.is_discarded() || tree.value("stmts", json::array()).empty()) return out;
  const json& stmt = tree["stmts"][0]["stmt"];
  if (!stmt.is_object() || stmt.empty()) return out;
  // One key, the node type (read from an iterator, not through the temporary items() proxy).
  auto first = stmt.begin();
  const std::string& node = first.key();
  const json& body = first.value();
  Scope scope;
  if (node == "SelectStmt") {
    collect_tables(body.value("fromClause", json::array()), scope);
    walk_joins(body.value("fromClause", json::array()), scope, out);
    if (body.contains("whereClause")) walk_quals(body["whereClause"], scope, out);
    for (const auto& sort : body.value("sortClause", json::array()))
      if (sort.contains("SortBy") && sort["SortBy"].contains("node"))
        add(column_ref_in(sort["SortBy"]["node"]), ColumnRole::OrderBy, scope, out);
  } else if (node == "UpdateStmt" || node == "DeleteStmt") {
    if (body.contains("relation"))
      collect_tables(json::array({{{"RangeVar", body["relation"]}}}), scope);
    collect_tables(body.value(node == "UpdateStmt" ? "fromClause" : "usingClause", json::array()),
                   scope);
    if (body.contains("whereClause")) walk_quals(body["whereClause"], scope, out);
  }
  return out;
}

std::vector<TableColumns> index_candidates(std::string_view statement_sql) {
  std::vector<TableColumns> out;
  auto uses = extract_column_uses(statement_sql);
  for (auto role : {ColumnRole::Equality, ColumnRole::Range, ColumnRole::OrderBy}) {
    for (const auto& u : uses) {
      if (u.role != role) continue;
      auto t = std::find_if(out.begin(), out.end(),
                            [&](const TableColumns& c) { return c.table == u.table; });
      if (t == out.end()) t = out.insert(out.end(), TableColumns{u.table, {}});
      if (std::find(t->index_columns.begin(), t->index_columns.end(), u.column) ==
          t->index_columns.end())
        t->index_columns.push_back(u.column);
    }
  }
  return out;
}

}  // namespace pglens::rules
