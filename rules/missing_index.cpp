#include "rules/missing_index.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>
#include <pqxx/pqxx>
#include <set>

#include "analyzer/analyzer.hpp"
#include "rules/query_columns.hpp"

namespace pglens::rules {

namespace {
using nlohmann::json;

// The plan's total cost, and whether some node scans `relname` sequentially.
struct PlanFacts {
  double cost = 0;
  bool seq_scan = false;
};

void find_seq_scan(const json& plan, const std::string& relname, bool& found) {
  if (plan.value("Node Type", std::string()) == "Seq Scan" &&
      plan.value("Relation Name", std::string()) == relname)
    found = true;
  for (const auto& child : plan.value("Plans", json::array())) find_seq_scan(child, relname, found);
}

PlanFacts explain(pqxx::connection& conn, const MissingIndexRule::Candidate& c,
                  const std::string& relname) {
  pqxx::nontransaction tx(conn);
  std::vector<const char*> params;
  for (const auto& p : c.parameters) params.push_back(p ? p->c_str() : nullptr);
  auto result =
      tx.exec_params("EXPLAIN (FORMAT JSON) " + c.sql, pqxx::prepare::make_dynamic_params(params));
  auto plan = json::parse(result[0][0].c_str());
  PlanFacts facts;
  facts.cost = plan[0]["Plan"].value("Total Cost", 0.0);
  find_seq_scan(plan[0]["Plan"], relname, facts.seq_scan);
  return facts;
}

// "schema.name" as a regclass, whatever the case or characters of either part.
const char* const kRegclass =
    "to_regclass(CASE WHEN strpos($1, '.') > 0 THEN format('%I.%I', split_part($1, '.', 1), "
    "substr($1, strpos($1, '.') + 1)) ELSE format('%I', $1) END)";

// The class the captured instance's plan gives, for the grading (analyzer/standard.hpp).
std::optional<analyzer::StandardClass> plan_class(pqxx::connection& conn,
                                                  const MissingIndexRule::Candidate& c,
                                                  double large_rows) {
  pqxx::nontransaction tx(conn);
  std::vector<const char*> params;
  for (const auto& p : c.parameters) params.push_back(p ? p->c_str() : nullptr);
  auto result = tx.exec_params("EXPLAIN (FORMAT JSON, VERBOSE) " + c.sql,
                               pqxx::prepare::make_dynamic_params(params));
  auto facts = analyzer::plan_facts(json::parse(result[0][0].c_str())[0]["Plan"]);
  std::map<std::string, double> table_rows;
  for (const auto& table : facts.seq_scanned) {
    auto r = tx.exec_params(std::string("SELECT GREATEST(c.reltuples, 0)::float8, "
                                        "COALESCE(s.n_live_tup, 0)::float8 FROM pg_class c "
                                        "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
                                        "WHERE c.oid = ") +
                                kRegclass,
                            table);
    if (!r.empty()) table_rows[table] = std::max(r[0][0].as<double>(), r[0][1].as<double>());
  }
  std::set<std::string> primary;
  for (const auto& index : facts.indexes) {
    auto r = tx.exec_params(
        std::string("SELECT indisprimary FROM pg_index WHERE indexrelid = ") + kRegclass, index);
    if (!r.empty() && r[0][0].as<bool>()) primary.insert(index);
  }
  return analyzer::classify_plan(facts, table_rows, primary, large_rows);
}

bool hypopg_available(pqxx::connection& conn) {
  try {
    pqxx::nontransaction tx(conn);
    if (!tx.exec("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'").empty()) return true;
    tx.exec("CREATE EXTENSION IF NOT EXISTS hypopg");
    return true;
  } catch (const std::exception& e) {
    spdlog::debug("missing_index: hypopg unavailable: {}", e.what());
    return false;
  }
}
}  // namespace

MissingIndexRule::MissingIndexRule(const RuleSettings& settings, Connector connector,
                                   FindingStore& findings,
                                   std::shared_ptr<analyzer::PlanClasses> plans)
    : settings_(settings),
      connector_(std::move(connector)),
      findings_(findings),
      plans_(std::move(plans)),
      worker_([this] { run(); }) {}

MissingIndexRule::~MissingIndexRule() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  worker_.join();
}

void MissingIndexRule::consume(const analyzer::ExecutionEvent& event,
                               const analyzer::StatementShape& shape) {
  using analyzer::StatementKind;
  if (shape.kind != StatementKind::Select && shape.kind != StatementKind::Update &&
      shape.kind != StatementKind::Delete)
    return;
  if (!event.sqlstate.empty() || !event.sql) return;
  auto who = analyzer::identity_of(event).database_user;
  auto found = candidates_.find(std::make_tuple(shape.fingerprint, who,
                                                std::string_view(event.session->database),
                                                std::string_view(event.session->user)));
  if (found == candidates_.end())
    found = candidates_
                .emplace(std::make_tuple(shape.fingerprint, who, event.session->database,
                                         event.session->user),
                         Candidate{})
                .first;
  auto& c = found->second;
  if (c.calls == 0) {
    c.fingerprint_id = shape.fingerprint;
    c.select = shape.kind == StatementKind::Select;
    c.fingerprint = shape.fingerprint_hex;
    c.normalized = shape.normalized;
    c.database = event.session->database;
    c.user = event.session->user;
    c.application_name = event.session->application_name;
  }
  ++c.calls;
  c.total_ms += static_cast<double>(event.latency.count()) / 1e6;
  // A real instance to EXPLAIN, taken once (and again at each look); only a single-statement
  // text can be explained as it is.
  if (event.statement_index == 0 &&
      (c.sql.empty() || c.calls == static_cast<std::uint64_t>(settings_.index_min_calls))) {
    c.sql = *event.sql;
    c.parameters = event.parameters;
  }
}

void MissingIndexRule::tick(std::chrono::steady_clock::time_point now) {
  std::vector<Candidate> due;
  for (auto& [key, c] : candidates_) {
    if (c.calls < static_cast<std::uint64_t>(settings_.index_min_calls) ||
        c.total_ms < settings_.index_min_total_ms || c.sql.empty())
      continue;
    if (c.last_check != std::chrono::steady_clock::time_point{} &&
        now - c.last_check < settings_.index_recheck)
      continue;
    c.last_check = now;
    due.push_back(c);
  }
  if (due.empty()) return;
  {
    std::lock_guard lock(mutex_);
    for (auto& c : due) queue_.push_back(std::move(c));
  }
  ready_.notify_one();
}

void MissingIndexRule::run() {
  analyzer::yield_to_forwarding();
  while (true) {
    Candidate c;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      c = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      check(c);
    } catch (const std::exception& e) {
      // The catalog may be unreachable or the statement gone; advice waits for the next look.
      spdlog::debug("missing_index: cannot check {}: {}", c.fingerprint, e.what());
    }
  }
}

void MissingIndexRule::check(const Candidate& c) {
  auto tables = index_candidates(c.sql);
  bool grade = c.select && plans_ != nullptr;
  if (tables.empty() && !grade) return;
  auto conninfo = connector_(c.database, c.user);
  if (conninfo.empty()) return;
  pqxx::connection conn(conninfo);
  if (grade) {
    try {
      plans_->set(c.fingerprint_id, plan_class(conn, c, settings_.index_min_rows));
    } catch (const std::exception& e) {
      // Graded on its shape until a plan can be had; the index check goes on.
      spdlog::debug("missing_index: no plan for the grading of {}: {}", c.fingerprint, e.what());
    }
  }
  for (const auto& t : tables) {
    if (t.index_columns.empty()) continue;
    pqxx::nontransaction tx(conn);
    auto rel = tx.exec_params(
        "SELECT c.oid::bigint, n.nspname, c.relname, GREATEST(c.reltuples, 0)::float8, "
        "COALESCE(s.n_live_tup, 0)::float8 FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace "
        "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = to_regclass($1)",
        t.table);
    if (rel.empty()) continue;
    auto oid = rel[0][0].as<long long>();
    std::string schema = rel[0][1].as<std::string>(), relname = rel[0][2].as<std::string>();
    double rows = std::max(rel[0][3].as<double>(), rel[0][4].as<double>());
    std::string qualified = conn.quote_name(schema) + "." + conn.quote_name(relname);
    std::string parent = schema + "." + relname;

    // An index that leads with the first column already serves the lookup: nothing to say.
    auto leading = tx.exec_params(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
        "a.attnum = i.indkey[0] "
        "WHERE i.indrelid = $1::oid",
        oid);
    tx.commit();
    bool covered = false;
    for (const auto& row : leading)
      covered = covered || row[0].as<std::string>() == t.index_columns.front();
    if (covered) {
      findings_.resolve("missing_index", c.fingerprint, parent);
      continue;
    }
    if (rows < settings_.index_min_rows) continue;

    auto before = explain(conn, c, relname);
    if (!before.seq_scan) continue;

    std::string columns;
    for (const auto& col : t.index_columns)
      columns += (columns.empty() ? "" : ", ") + conn.quote_name(col);
    std::optional<double> after;
    if (settings_.index_use_hypopg && hypopg_available(conn)) {
      pqxx::nontransaction htx(conn);
      htx.exec_params("SELECT * FROM hypopg_create_index($1)",
                      "CREATE INDEX ON " + qualified + " (" + columns + ")");
      htx.commit();
      after = explain(conn, c, relname).cost;
      pqxx::nontransaction reset(conn);
      reset.exec("SELECT hypopg_reset()");
      // Not worth an index unless it at least halves the cost.
      if (*after > before.cost * (1.0 - settings_.index_min_cost_reduction)) continue;
    }

    Finding f;
    f.rule = "missing_index";
    f.fingerprint = c.fingerprint;
    f.parent = parent;
    f.query = c.normalized;
    f.database = c.database;
    f.user = c.user;
    f.application_name = c.application_name;
    f.count = c.calls;
    f.first_seen = f.last_seen = std::chrono::system_clock::now();
    double ratio = after && before.cost > 0 ? *after / before.cost : 1.0;
    f.estimated_savings_ms = after ? c.total_ms * (1.0 - ratio) : 0;
    f.severity = c.total_ms >= 1000 || ratio < 0.1 ? Severity::High : Severity::Medium;
    f.fix = "CREATE INDEX CONCURRENTLY ON " + qualified + " (" + columns + ");";
    f.advice =
        after ? fmt::format(
                    "`{}` ran {} times ({:.1f} ms in all) scanning all ~{:.0f} rows of {}; an "
                    "index on ({}) "
                    "cuts its planned cost from {:.1f} to {:.1f} (hypothetical index, hypopg).",
                    c.normalized, c.calls, c.total_ms, rows, parent, columns, before.cost, *after)
              : fmt::format(
                    "`{}` ran {} times ({:.1f} ms in all) scanning all ~{:.0f} rows of {} "
                    "sequentially "
                    "(EXPLAIN); no index leads with ({}).",
                    c.normalized, c.calls, c.total_ms, rows, parent, columns);
    json cols = json::array();
    for (const auto& col : t.index_columns) cols.push_back(col);
    f.details = {{"table", parent},
                 {"columns", cols},
                 {"table_rows", rows},
                 {"cost_before", before.cost},
                 {"calls", c.calls},
                 {"total_ms", c.total_ms},
                 {"hypopg", after.has_value()}};
    if (after) f.details["cost_after"] = *after;
    findings_.report(std::move(f));
  }
}

}  // namespace pglens::rules
