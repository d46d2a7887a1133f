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

// The last name of a qualified name list ([{"String":{"sval":"pg_catalog"}},{"String":...}]).
std::string last_name(const json& names) {
  if (!names.is_array() || names.empty()) return {};
  const json& last = names.back();
  if (auto it = last.find("String"); it != last.end()) return it->value("sval", std::string());
  return {};
}

bool is_aggregate_function(const std::string& name) {
  static const char* names[] = {"count",
                                "sum",
                                "avg",
                                "min",
                                "max",
                                "array_agg",
                                "string_agg",
                                "bool_and",
                                "bool_or",
                                "every",
                                "json_agg",
                                "jsonb_agg",
                                "json_object_agg",
                                "jsonb_object_agg",
                                "stddev",
                                "stddev_pop",
                                "stddev_samp",
                                "variance",
                                "var_pop",
                                "var_samp",
                                "bit_and",
                                "bit_or",
                                "xmlagg",
                                "percentile_cont",
                                "percentile_disc",
                                "mode",
                                "corr",
                                "covar_pop",
                                "covar_samp",
                                "regr_count"};
  for (auto n : names)
    if (name == n) return true;
  return false;
}

// Functions whose result differs from call to call (or transaction to transaction): a result
// that includes them is not the same read twice.
bool is_volatile_function(const std::string& name) {
  static const char* names[] = {"nextval",
                                "setval",
                                "currval",
                                "lastval",
                                "now",
                                "random",
                                "random_normal",
                                "setseed",
                                "clock_timestamp",
                                "statement_timestamp",
                                "transaction_timestamp",
                                "timeofday",
                                "gen_random_uuid",
                                "uuid_generate_v1",
                                "uuid_generate_v1mc",
                                "uuid_generate_v4",
                                "txid_current",
                                "pg_current_xact_id",
                                "pg_sleep",
                                "pg_notify",
                                "set_config",
                                "pg_advisory_lock",
                                "pg_try_advisory_lock",
                                "pg_advisory_xact_lock",
                                "pg_try_advisory_xact_lock",
                                "dblink",
                                "dblink_exec"};
  for (auto n : names)
    if (name == n) return true;
  return false;
}

// A constant or a parameter, possibly cast: what a key lookup compares a column to.
bool is_constant_or_param(const json& node) {
  if (!node.is_object()) return false;
  if (node.contains("A_Const") || node.contains("ParamRef")) return true;
  if (auto it = node.find("TypeCast"); it != node.end() && it->contains("arg"))
    return is_constant_or_param((*it)["arg"]);
  return false;
}

bool is_id_column(const json& node) {
  if (!node.is_object()) return false;
  auto it = node.find("ColumnRef");
  return it != node.end() && last_name(it->value("fields", json::array())) == "id";
}

// `id = $1` at the top of a WHERE, alone or among ANDed conditions.
bool has_id_equality(const json& where) {
  if (!where.is_object()) return false;
  if (auto it = where.find("BoolExpr"); it != where.end()) {
    if (it->value("boolop", std::string()) != "AND_EXPR") return false;
    for (const auto& arg : it->value("args", json::array()))
      if (has_id_equality(arg)) return true;
    return false;
  }
  auto it = where.find("A_Expr");
  if (it == where.end() || it->value("kind", std::string()) != "AEXPR_OP" ||
      last_name(it->value("name", json::array())) != "=")
    return false;
  const json& l = it->value("lexpr", json::object());
  const json& r = it->value("rexpr", json::object());
  return (is_id_column(l) && is_constant_or_param(r)) ||
         (is_id_column(r) && is_constant_or_param(l));
}

// One walk over a SELECT's tree for the facts the grading and the cache rule need.
void scan_read(const json& node, StatementShape& shape) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (key == "RangeVar") {
        ++shape.read.relations;
      } else if (key == "JoinExpr") {
        shape.read.join = true;
      } else if (key == "FuncCall") {
        auto name = last_name(value.value("funcname", json::array()));
        if (!value.contains("over") &&
            (value.value("agg_star", false) || is_aggregate_function(name)))
          shape.read.aggregate = true;
        if (is_volatile_function(name)) shape.volatile_functions = true;
      } else if (key == "SQLValueFunction") {
        // CURRENT_DATE, CURRENT_TIMESTAMP, LOCALTIME...: not CURRENT_USER and its kind
        auto op = value.value("op", std::string());
        if (op.find("DATE") != std::string::npos || op.find("TIME") != std::string::npos)
          shape.volatile_functions = true;
      } else if (key == "groupClause") {
        shape.read.aggregate = true;
      } else if (key == "lockingClause") {
        shape.locking = true;
      } else if (key == "intoClause" || key == "InsertStmt" || key == "UpdateStmt" ||
                 key == "DeleteStmt" || key == "MergeStmt") {
        shape.modifies = true;
      }
      scan_read(value, shape);
    }
  } else if (node.is_array()) {
    for (const auto& value : node) scan_read(value, shape);
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
  return analyze_query(sql, nullptr);
}

QueryShape analyze_query(std::string_view sql, std::vector<Constant>* constants_out) {
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
      if (s.kind == StatementKind::Select) {
        scan_read(body, s);
        s.read.join = s.read.join || s.read.relations > 1;
        s.read.where = body.contains("whereClause");
        s.read.limit = body.contains("limitCount");
        s.read.id_equality = s.read.where && has_id_equality(body["whereClause"]);
      }
      std::vector<std::pair<int, std::string>> constants;
      collect_constants(body, constants);
      std::sort(constants.begin(), constants.end());  // the tree's keys are not in text order
      for (const auto& [location, text] : constants) {
        if (s.literals.size() == kMaxLiterals) break;
        s.literals.push_back(text);
      }
      if (constants_out && shape.statements.empty())
        for (auto& [location, text] : constants)
          constants_out->push_back({location, std::move(text)});
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
