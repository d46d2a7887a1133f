#include "rules/session_rules.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <regex>

namespace pglens::rules {

namespace {
using analyzer::hash_value;
using analyzer::StatementKind;

double ms(std::chrono::nanoseconds d) {
  return static_cast<double>(d.count()) / 1e6;
}

// The values a statement was run with: Bind parameters, or the literals of a simple query.
std::vector<std::uint64_t> parameter_hashes(const ExecutionEvent& e, const StatementShape& s) {
  std::vector<std::uint64_t> out;
  if (!e.parameters.empty()) {
    for (const auto& p : e.parameters)
      if (p) out.push_back(hash_value(*p));
  } else {
    for (const auto& l : s.literals) out.push_back(hash_value(l));
  }
  return out;
}

Finding base_finding(const std::shared_ptr<const analyzer::SessionInfo>& who, std::string rule) {
  Finding f;
  f.rule = std::move(rule);
  if (who) {
    f.database = who->database;
    f.user = who->user;
    f.application_name = who->application_name;
  }
  f.first_seen = f.last_seen = std::chrono::system_clock::now();
  return f;
}

template <typename Session, typename Close>
void close_idle(std::unordered_map<std::uint64_t, Session>& sessions, SteadyClock::time_point now,
                std::chrono::milliseconds idle, std::size_t max_sessions, Close close) {
  for (auto it = sessions.begin(); it != sessions.end();) {
    auto quiet = now - it->second.last_seen;
    if (it->second.run && quiet >= idle) close(it->second);
    // Sessions quiet for a minute (or too many) are forgotten; their runs were judged above.
    if (quiet >= std::chrono::minutes(1) || (sessions.size() > max_sessions && !it->second.run))
      it = sessions.erase(it);
    else
      ++it;
  }
}
}  // namespace

// ---------------------------------------------------------------- N+1

NPlusOneRule::Session& NPlusOneRule::session(const ExecutionEvent& event,
                                             SteadyClock::time_point now) {
  auto& s = sessions_[event.session->session_id];
  if (s.who != event.session) s.who = event.session;  // not two atomic updates per statement
  s.last_seen = now;
  return s;
}

void NPlusOneRule::consume(const ExecutionEvent& event, const StatementShape& shape,
                           SteadyClock::time_point now, FindingStore& findings) {
  if (analyzer::is_transaction_control(shape.kind)) return;  // BEGIN/COMMIT do not break a loop
  auto& s = session(event, now);
  // A batched lookup (IN-list, = ANY) is the fix, never the problem.
  bool batched = shape.in_list_size > 1 || shape.any_array_param;
  bool repeats = s.run && s.run->fingerprint == shape.fingerprint;
  if (!repeats) {
    if (s.run) close_run(s, findings);
    if (!batched && s.parent) {
      s.run.emplace();
      s.run->fingerprint = shape.fingerprint;
      s.run->fingerprint_hex = shape.fingerprint_hex;
      s.run->normalized = shape.normalized;
      s.run->parent = s.parent;
    }
  }
  if (s.run && s.run->fingerprint == shape.fingerprint) {
    auto& run = *s.run;
    ++run.executions;
    run.total += event.latency;
    bool linked = false;
    for (auto h : parameter_hashes(event, shape)) {
      run.values.insert(h);
      if (auto hit = run.parent->value_column.find(h); hit != run.parent->value_column.end()) {
        linked = true;
        ++run.column_hits[hit->second];
      }
    }
    if (linked) ++run.linked;
  }
  // A multi-row result becomes the parent of what follows (not the repeated query's own rows).
  std::size_t columns = event.columns.size();
  if (!repeats && shape.kind == StatementKind::Select && columns > 0 &&
      event.result_sample.size() >= 2 * columns) {
    auto parent = std::make_shared<Parent>();
    parent->fingerprint = shape.fingerprint_hex;
    parent->normalized = shape.normalized;
    parent->columns = event.columns;
    parent->rows = event.rows;
    for (std::size_t i = 0; i < event.result_sample.size(); ++i)
      parent->value_column.emplace(event.result_sample[i], i % columns);
    s.parent = std::move(parent);
  }
}

void NPlusOneRule::tick(SteadyClock::time_point now, FindingStore& findings) {
  close_idle(sessions_, now, settings_.run_idle, settings_.max_sessions,
             [&](Session& s) { close_run(s, findings); });
}

void NPlusOneRule::close_run(Session& s, FindingStore& findings) {
  Run run = std::move(*s.run);
  s.run.reset();
  int min = settings_.n_plus_one_min;
  if (run.executions < min || static_cast<int>(run.values.size()) < min) return;
  // Most executions must take their parameter from the parent's rows.
  if (run.linked < min || run.linked * 10 < run.executions * 8) return;
  auto column = std::max_element(run.column_hits.begin(), run.column_hits.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
  std::string parent_column =
      column != run.column_hits.end() && column->first < run.parent->columns.size()
          ? run.parent->columns[column->first]
          : "?";

  double total_ms = ms(run.total);
  double mean_ms = total_ms / run.executions;
  // One batched query costs about two of the single lookups it replaces.
  double savings = std::max(0.0, total_ms - 2 * mean_ms);

  static const std::regex param_filter(R"(([A-Za-z_][A-Za-z0-9_."]*)\s*=\s*\$1\b)");
  static const std::regex from_table(R"(\bFROM\s+([A-Za-z_][A-Za-z0-9_."]*))", std::regex::icase);
  std::smatch m;
  std::string filter_column =
      std::regex_search(run.normalized, m, param_filter) ? m[1].str() : "<column>";
  std::string child_table =
      std::regex_search(run.normalized, m, from_table) ? m[1].str() : "<child table>";
  std::string batched = std::regex_replace(run.normalized, std::regex(R"(=\s*\$1\b)"), "= ANY($$1)",
                                           std::regex_constants::format_first_only);

  Finding f = base_finding(s.who, "n_plus_one");
  f.severity = run.executions >= 50 || savings >= 100 ? Severity::High
               : run.executions >= 10                 ? Severity::Medium
                                                      : Severity::Low;
  f.fingerprint = run.fingerprint_hex;
  f.parent = run.parent->fingerprint;
  f.query = run.normalized;
  f.estimated_savings_ms = savings;
  f.advice = fmt::format(
      "After `{}` returned {} rows, the application ran `{}` once per row ({} times, {:.1f} ms in "
      "all), each time "
      "with the `{}` value of one row: load them in one query instead (SQLAlchemy "
      "selectinload()/joinedload(), "
      "Django prefetch_related()/select_related(), Rails includes()), saving about {:.1f} ms each "
      "time.",
      run.parent->normalized, run.parent->rows, run.normalized, run.executions, total_ms,
      parent_column, savings);
  f.fix = fmt::format(
      "-- one round trip for all rows: pass the {} values as an array\n{}\n-- or join it to the "
      "parent query:\n"
      "-- ... FROM ({}) AS parent JOIN {} ON {}.{} = parent.{}",
      parent_column, batched, run.parent->normalized, child_table, child_table,
      filter_column.substr(
          filter_column.find('.') == std::string::npos ? 0 : filter_column.find('.') + 1),
      parent_column);
  f.details = {{"parent_query", run.parent->normalized},
               {"parent_fingerprint", run.parent->fingerprint},
               {"parent_column", parent_column},
               {"parent_rows", run.parent->rows},
               {"executions_per_occurrence", run.executions},
               {"occurrences", 1},
               {"time_in_query_ms", total_ms},
               {"mean_query_ms", mean_ms}};
  findings.report(std::move(f));
}

// ---------------------------------------------------------------- row by row

void RowByRowRule::consume(const ExecutionEvent& event, const StatementShape& shape,
                           SteadyClock::time_point now, FindingStore& findings) {
  auto& s = sessions_[event.session->session_id];
  if (s.who != event.session) s.who = event.session;
  s.last_seen = now;
  if (analyzer::is_transaction_control(shape.kind)) return;  // between the inserts is allowed
  bool single_row = shape.kind == StatementKind::Insert && shape.values_rows == 1;
  if (s.run && (!single_row || s.run->fingerprint != shape.fingerprint)) close_run(s, findings);
  if (!single_row) return;
  if (!s.run) {
    s.run.emplace();
    s.run->fingerprint = shape.fingerprint;
    s.run->fingerprint_hex = shape.fingerprint_hex;
    s.run->normalized = shape.normalized;
    s.run->table = shape.target_table;
  }
  auto& run = *s.run;
  ++run.statements;
  if (event.pipelined) ++run.pipelined;
  run.transactions.insert(event.transaction);
  run.total += event.latency;
  run.columns = std::max(
      run.columns, event.parameters.empty() ? shape.literals.size() : event.parameters.size());
}

void RowByRowRule::tick(SteadyClock::time_point now, FindingStore& findings) {
  close_idle(sessions_, now, settings_.run_idle, settings_.max_sessions,
             [&](Session& s) { close_run(s, findings); });
}

void RowByRowRule::close_run(Session& s, FindingStore& findings) {
  Run run = std::move(*s.run);
  s.run.reset();
  if (run.statements < settings_.row_by_row_min) return;

  auto rows = run.statements;
  auto transactions = static_cast<int>(run.transactions.size());
  bool per_row_commit = transactions * 10 >= rows * 9;
  bool pipelined = run.pipelined * 2 >= rows;
  int round_trips = pipelined ? std::max(1, transactions) : rows;
  std::size_t columns = std::max<std::size_t>(1, run.columns);
  // Chunks that keep every statement under the protocol's 65,535 parameters.
  int chunk = static_cast<int>(std::min<std::size_t>(1000, 65535 / columns));
  double total_ms = ms(run.total);
  double per_statement_ms = total_ms / rows;
  // Multi-row VALUES: one round trip per chunk plus a few microseconds of work per row.
  double fix_ms = std::ceil(static_cast<double>(rows) / chunk) * per_statement_ms + rows * 0.005;
  double savings = std::max(0.0, total_ms - fix_ms);

  Finding f = base_finding(s.who, "row_by_row_insert");
  f.severity = pipelined ? Severity::Low : per_row_commit ? Severity::High : Severity::Medium;
  f.fingerprint = run.fingerprint_hex;
  f.parent = run.table;
  f.query = run.normalized;
  f.estimated_savings_ms = savings;
  std::string how = pipelined        ? "pipelined, one row per statement"
                    : per_row_commit ? "each row in a transaction of its own"
                                     : "one row per statement in " + std::to_string(transactions) +
                                           " transaction(s)";
  f.advice = fmt::format(
      "{} rows went into {} one INSERT at a time ({}; {} round trips, {:.1f} ms): insert them in "
      "batches of up to {} "
      "rows per statement, with COPY, or with the driver's batch call; that would take about "
      "{:.1f} ms.",
      rows, run.table, how, round_trips, total_ms, chunk, fix_ms);
  std::string values = run.normalized;
  if (auto pos = values.find("VALUES"); pos != std::string::npos) values = values.substr(0, pos);
  f.fix = fmt::format(
      "-- multi-row VALUES, {} rows per statement ({} columns x {} rows <= 65,535 "
      "parameters):\n{}VALUES (...), (...), ...;\n"
      "-- or stream the rows: COPY {} FROM STDIN;\n"
      "-- or the driver's batch call: psycopg2 execute_values(), asyncpg copy_records_to_table(), "
      "JDBC addBatch()/executeBatch(), Rails insert_all, Django bulk_create()",
      chunk, columns, chunk, values, run.table);
  f.details = {{"table", run.table},         {"rows", rows},
               {"statements", rows},         {"transactions", transactions},
               {"round_trips", round_trips}, {"pipelined", pipelined},
               {"time_spent_ms", total_ms},  {"estimated_fix_ms", fix_ms},
               {"chunk_rows", chunk}};
  findings.report(std::move(f));
}

}  // namespace pglens::rules
