#include "analyzer/query_shape.hpp"

#include <pg_query.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

namespace pglens::analyzer {

namespace {
using nlohmann::json;

StatementKind kind_of(const std::string& node, const json& body) {
  if (node == "SelectStmt") return StatementKind::Select;
  if (node == "InsertStmt") return StatementKind::Insert;
  if (node == "UpdateStmt") return StatementKind::Update;
  if (node == "DeleteStmt") return StatementKind::Delete;
  if (node == "MergeStmt") return StatementKind::Merge;
  if (node == "CopyStmt") return StatementKind::Copy;
  if (node == "VariableSetStmt") return StatementKind::Set;
  if (node == "VariableShowStmt") return StatementKind::Show;
  if (node == "PrepareStmt") return StatementKind::Prepare;
  if (node == "ExecuteStmt") return StatementKind::Execute;
  if (node == "DeallocateStmt") return StatementKind::Deallocate;
  if (node == "TransactionStmt") {
    auto k = body.value("kind", std::string());
    if (k == "TRANS_STMT_BEGIN" || k == "TRANS_STMT_START") return StatementKind::Begin;
    if (k == "TRANS_STMT_COMMIT" || k == "TRANS_STMT_COMMIT_PREPARED") return StatementKind::Commit;
    if (k == "TRANS_STMT_ROLLBACK" || k == "TRANS_STMT_ROLLBACK_PREPARED")
      return StatementKind::Rollback;
    return StatementKind::Savepoint;  // SAVEPOINT, RELEASE, ROLLBACK TO, PREPARE TRANSACTION
  }
  static const char* ddl[] = {
      "CreateStmt", "AlterTableStmt",     "DropStmt",         "IndexStmt",   "CreateTableAsStmt",
      "ViewStmt",   "TruncateStmt",       "CreateSchemaStmt", "RenameStmt",  "CommentStmt",
      "GrantStmt",  "CreateFunctionStmt", "CreateSeqStmt",    "AlterSeqStmt"};
  for (auto d : ddl)
    if (node == d) return StatementKind::Ddl;
  return StatementKind::Other;
}

std::string relation_name(const json& range_var) {
  std::string name = range_var.value("relname", std::string());
  if (range_var.contains("schemaname"))
    name = range_var["schemaname"].get<std::string>() + "." + name;
  return name;
}

// Walks the whole tree for IN-lists and ANY(...) arguments.
void scan_lists(const json& node, StatementShape& shape) {
  if (node.is_object()) {
    if (auto it = node.find("A_Expr"); it != node.end()) {
      const json& e = *it;
      auto kind = e.value("kind", std::string());
      const json* r = e.contains("rexpr") ? &e["rexpr"] : nullptr;
      if (r && kind == "AEXPR_IN" && r->contains("List")) {
        shape.in_list_size =
            std::max(shape.in_list_size,
                     static_cast<int>((*r)["List"].value("items", json::array()).size()));
      } else if (r && (kind == "AEXPR_OP_ANY" || kind == "AEXPR_OP_ALL")) {
        if (r->contains("A_ArrayExpr"))
          shape.in_list_size = std::max(
              shape.in_list_size,
              static_cast<int>((*r)["A_ArrayExpr"].value("elements", json::array()).size()));
        else
          shape.any_array_param = true;  // $n, or an array-typed expression
      }
    }
    for (const auto& [key, value] : node.items()) scan_lists(value, shape);
  } else if (node.is_array()) {
    for (const auto& value : node) scan_lists(value, shape);
  }
}

// A constant as text: what a driver that interpolates client-side would have bound.
std::optional<std::string> constant_text(const json& c) {
  if (c.contains("isnull")) return std::nullopt;
  if (auto it = c.find("ival"); it != c.end()) return std::to_string(it->value("ival", 0));
  if (auto it = c.find("sval"); it != c.end()) return it->value("sval", std::string());
  if (auto it = c.find("fval"); it != c.end()) return it->value("fval", std::string());
  if (auto it = c.find("boolval"); it != c.end()) return it->value("boolval", false) ? "t" : "f";
  if (auto it = c.find("bsval"); it != c.end()) return it->value("bsval", std::string());
  return std::nullopt;
}

void collect_constants(const json& node, std::vector<std::pair<int, std::string>>& out) {
  if (node.is_object()) {
    if (auto it = node.find("A_Const"); it != node.end()) {
      if (auto text = constant_text(*it))
        out.emplace_back(it->value("location", 0), std::move(*text));
      return;
    }
    for (const auto& [key, value] : node.items()) collect_constants(value, out);
  } else if (node.is_array()) {
    for (const auto& value : node) collect_constants(value, out);
  }
}

StatementShape unparsed(std::string_view text) {
  StatementShape s;
  s.kind = StatementKind::Unparsed;
  s.fingerprint = std::hash<std::string_view>{}(text);
  s.fingerprint_hex = fingerprint_hex(s.fingerprint);
  s.normalized = std::string(text.substr(0, 2000));
  return s;
}
}  // namespace

std::string fingerprint_hex(std::uint64_t fingerprint) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fingerprint));
  return buf;
}

std::string_view to_string(StatementKind kind) {
  switch (kind) {
    case StatementKind::Select:
      return "SELECT";
    case StatementKind::Insert:
      return "INSERT";
    case StatementKind::Update:
      return "UPDATE";
    case StatementKind::Delete:
      return "DELETE";
    case StatementKind::Merge:
      return "MERGE";
    case StatementKind::Copy:
      return "COPY";
    case StatementKind::Begin:
      return "BEGIN";
    case StatementKind::Commit:
      return "COMMIT";
    case StatementKind::Rollback:
      return "ROLLBACK";
    case StatementKind::Savepoint:
      return "SAVEPOINT";
    case StatementKind::Set:
      return "SET";
    case StatementKind::Show:
      return "SHOW";
    case StatementKind::Prepare:
      return "PREPARE";
    case StatementKind::Execute:
      return "EXECUTE";
    case StatementKind::Deallocate:
      return "DEALLOCATE";
    case StatementKind::Ddl:
      return "DDL";
    case StatementKind::Other:
      return "OTHER";
    case StatementKind::Unparsed:
      return "UNPARSED";
  }
  return "OTHER";
}

bool is_transaction_control(StatementKind kind) {
  return kind == StatementKind::Begin || kind == StatementKind::Commit ||
         kind == StatementKind::Rollback || kind == StatementKind::Savepoint;
}

QueryShape analyze_query(std::string_view sql) {
  QueryShape shape;
  std::string text(sql);  // libpg_query wants a NUL-terminated string
  PgQueryParseResult parsed = pg_query_parse(text.c_str());
  if (parsed.error != nullptr) {
    pg_query_free_parse_result(parsed);
    shape.parsed = false;
    shape.statements.push_back(unparsed(sql));
    return shape;
  }
  json tree = json::parse(parsed.parse_tree, nullptr, false);
  pg_query_free_parse_result(parsed);
  if (tree.is_discarded() || !tree.contains("stmts")) {
    shape.parsed = false;
    shape.statements.push_back(unparsed(sql));
    return shape;
  }
  for (const auto& raw : tree["stmts"]) {
    auto location = static_cast<std::size_t>(raw.value("stmt_location", 0));
    auto length = static_cast<std::size_t>(raw.value("stmt_len", 0));
    if (location > text.size()) location = text.size();
    std::string piece = length == 0 ? text.substr(location) : text.substr(location, length);
    StatementShape s;
    const json& stmt = raw["stmt"];
    if (stmt.is_object() && !stmt.empty()) {
      // The statement is an object of one key, its node type. (Not a structured binding over
      // items(): that proxy is a temporary, and the key would be read after it is gone.)
      auto first = stmt.begin();
      const std::string& node = first.key();
      const json& body = first.value();
      s.kind = kind_of(node, body);
      if (s.kind == StatementKind::Insert) {
        if (body.contains("relation")) s.target_table = relation_name(body["relation"]);
        const json* select = body.contains("selectStmt") ? &body["selectStmt"] : nullptr;
        if (select && select->contains("SelectStmt") &&
            (*select)["SelectStmt"].contains("valuesLists"))
          s.values_rows = static_cast<int>((*select)["SelectStmt"]["valuesLists"].size());
      } else if ((s.kind == StatementKind::Update || s.kind == StatementKind::Delete) &&
                 body.contains("relation")) {
        s.target_table = relation_name(body["relation"]);
      } else if (s.kind == StatementKind::Copy && body.contains("relation")) {
        s.target_table = relation_name(body["relation"]);
      }
      scan_lists(body, s);
      std::vector<std::pair<int, std::string>> constants;
      collect_constants(body, constants);
      std::sort(constants.begin(), constants.end());  // the tree's keys are not in text order
      for (auto& [location, text] : constants) {
        if (s.literals.size() == 32) break;
        s.literals.push_back(std::move(text));
      }
    }
    PgQueryFingerprintResult fp = pg_query_fingerprint(piece.c_str());
    if (fp.error == nullptr) {
      s.fingerprint = fp.fingerprint;
      s.fingerprint_hex = fingerprint_hex(fp.fingerprint);
    } else {
      s.fingerprint = std::hash<std::string>{}(piece);
      s.fingerprint_hex = fingerprint_hex(s.fingerprint);
    }
    pg_query_free_fingerprint_result(fp);
    PgQueryNormalizeResult norm = pg_query_normalize(piece.c_str());
    s.normalized = norm.error == nullptr ? norm.normalized_query : piece;
    pg_query_free_normalize_result(norm);
    // Trim the whitespace and terminator a multi-statement string leaves around each piece.
    auto first = s.normalized.find_first_not_of(" \t\r\n");
    auto last = s.normalized.find_last_not_of(" \t\r\n;");
    s.normalized =
        first == std::string::npos ? std::string() : s.normalized.substr(first, last - first + 1);
    shape.statements.push_back(std::move(s));
  }
  if (shape.statements.empty()) shape.statements.push_back(StatementShape{});  // an empty query
  return shape;
}

}  // namespace pglens::analyzer
