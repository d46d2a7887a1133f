#include "rules/session_rules.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include "rules/client_style.hpp"

namespace pglens::rules {

namespace {
using analyzer::hash_value;
using analyzer::StatementKind;

double ms(std::chrono::nanoseconds d) {
  return static_cast<double>(d.count()) / 1e6;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A value's hash as a result column would carry it. A binary Bind value (the event shows it as
// \x and hex) is hashed as its bytes: a client that binds binary (asyncpg, pgJDBC for some types)
// reads binary results too, and the result sample hashes the bytes as they came.
std::uint64_t link_hash(std::string_view value) {
  if (value.size() >= 4 && value.size() % 2 == 0 && value.substr(0, 2) == "\\x") {
    std::string bytes;
    for (std::size_t i = 2; i < value.size(); i += 2) {
      int hi = hex_digit(value[i]), lo = hex_digit(value[i + 1]);
      if (hi < 0 || lo < 0) return hash_value(value);
      bytes.push_back(static_cast<char>(hi * 16 + lo));
    }
    return hash_value(bytes);
  }
  return hash_value(value);
}

// The values a statement was run with: Bind parameters, or the literals of a simple query (an
// ORM on psycopg2 inlines them).
std::vector<std::uint64_t> parameter_hashes(const ExecutionEvent& e, const StatementShape& s) {
  std::vector<std::uint64_t> out;
  if (!e.parameters.empty()) {
    for (const auto& p : e.parameters)
      if (p) out.push_back(link_hash(*p));
  } else {
    for (const auto& l : s.literals) out.push_back(hash_value(l));
  }
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string unquoted(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '"'), s.end());
  return s;
}

// "orders" → "order", "categories" → "category": enough to match a foreign key's name.
std::string singular(std::string table) {
  table = lower(unquoted(table));
  if (auto dot = table.rfind('.'); dot != std::string::npos) table = table.substr(dot + 1);
  if (table.size() > 3 && table.ends_with("ies")) return table.substr(0, table.size() - 3) + "y";
  if (table.size() > 1 && table.ends_with('s')) return table.substr(0, table.size() - 1);
  return table;
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

bool NPlusOneRule::consume(const ExecutionEvent& event, const StatementShape& shape,
                           SteadyClock::time_point now, FindingStore& findings) {
  if (analyzer::is_transaction_control(shape.kind)) return false;  // BEGIN/COMMIT: no break
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
      s.run->extended = event.extended;
      s.run->parent = s.parent;
    }
  }
  bool linked = false;
  if (s.run && s.run->fingerprint == shape.fingerprint) {
    auto& run = *s.run;
    ++run.executions;
    run.total += event.latency;
    std::uint32_t columns_hit = 0;
    for (auto h : parameter_hashes(event, shape)) {
      run.values.insert(h);
      if (auto hit = run.parent->value_columns.find(h); hit != run.parent->value_columns.end()) {
        linked = true;
        columns_hit |= hit->second;
      }
    }
    for (std::size_t c = 0; c < 32; ++c)
      if (columns_hit & (1u << c)) ++run.column_hits[c];
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
    parent->sampled_rows = event.result_sample.size() / columns;
    for (std::size_t i = 0; i < event.result_sample.size(); ++i)
      parent->value_columns[event.result_sample[i]] |= 1u << (i % columns);
    s.parent = std::move(parent);
  }
  return linked;
}

void NPlusOneRule::tick(SteadyClock::time_point now, FindingStore& findings) {
  close_idle(sessions_, now, settings_.run_idle, settings_.max_sessions,
             [&](Session& s) { close_run(s, findings); });
}

namespace {
// The N+1's fix in the words of the library that sent it. many_to_one: the child query looks rows
// up by their key with a value the parent rows carry (order.customer); otherwise it fetches the
// rows that point back at each parent (customer.orders).
std::string n_plus_one_fix_words(ClientStyle style, bool many_to_one, const std::string& relation) {
  switch (style) {
    case ClientStyle::SqlAlchemy:
      return many_to_one ? fmt::format(
                               "in SQLAlchemy, load the relationship with the parents: "
                               ".options(joinedload(<Parent>.{0})) (or selectinload(<Parent>.{0}), "
                               "or lazy=\"joined\" on the relationship)",
                               relation)
                         : fmt::format(
                               "in SQLAlchemy, load the collection with the parents: "
                               ".options(selectinload(<Parent>.{0})) (or joinedload(), "
                               "or lazy=\"selectin\" on the relationship)",
                               relation);
    case ClientStyle::Django:
      return many_to_one ? fmt::format(
                               "in Django, .select_related(\"{0}\") on the queryset "
                               "(one JOIN), or .prefetch_related(\"{0}\")",
                               relation)
                         : fmt::format(
                               "in Django, .prefetch_related(\"{0}\") on the queryset "
                               "(one more query for all of them)",
                               relation);
    default:
      return "load them in one query instead (SQLAlchemy selectinload()/joinedload(), Django "
             "prefetch_related()/select_related(), Rails includes())";
  }
}
}  // namespace

void NPlusOneRule::close_run(Session& s, FindingStore& findings) {
  Run run = std::move(*s.run);
  s.run.reset();
  int min = settings_.n_plus_one_min;
  if (run.executions < min || static_cast<int>(run.values.size()) < min) return;
  // Most executions must take their parameter from the parent's rows: of the rows sampled, so a
  // parent longer than the sample needs proportionally fewer links.
  const Parent& parent = *run.parent;
  double coverage =
      parent.rows > parent.sampled_rows && parent.rows > 0
          ? static_cast<double>(parent.sampled_rows) / static_cast<double>(parent.rows)
          : 1.0;
  if (run.linked < min || run.linked * 10 < run.executions * 8 * coverage) return;

  static const std::regex param_filter(
      R"rx(([A-Za-z_"][A-Za-z0-9_."]*)\s*=\s*\$\d+\b|\$\d+\s*=\s*([A-Za-z_"][A-Za-z0-9_."]*))rx");
  static const std::regex from_table(R"(\bFROM\s+([A-Za-z_"][A-Za-z0-9_."]*))", std::regex::icase);
  std::smatch m;
  std::string filter_column = "<column>";
  if (std::regex_search(run.normalized, m, param_filter))
    filter_column = unquoted(m[1].matched ? m[1].str() : m[2].str());
  std::string child_table =
      std::regex_search(run.normalized, m, from_table) ? unquoted(m[1].str()) : "<child table>";
  std::string filter_name = lower(filter_column.substr(
      filter_column.find('.') == std::string::npos ? 0 : filter_column.find('.') + 1));
  bool many_to_one = filter_name == "id";

  // The parent column the values came from: the one most executions matched. Small integer keys
  // are in several columns at once (orders.id and orders.customer_id both hold 1..20), so on a
  // tie the name decides: for a lookup by key (order.customer), the column that names the child
  // ("customer_id"); otherwise the parent's own key.
  std::string child = singular(child_table);
  auto name_score = [&](const std::string& column) {
    std::string c = lower(column);
    if (many_to_one) return c.find(child) != std::string::npos && c.ends_with("id") ? 1 : 0;
    return c == "id" || (c.ends_with("_id") && c.find(child) == std::string::npos) ? 1 : 0;
  };
  std::size_t best = parent.columns.size();
  int best_hits = -1, best_score = -1;
  for (const auto& [column, hits] : run.column_hits) {
    if (column >= parent.columns.size()) continue;
    int score = name_score(parent.columns[column]);
    if (hits > best_hits || (hits == best_hits && score > best_score)) {
      best = column;
      best_hits = hits;
      best_score = score;
    }
  }
  std::string parent_column = best < parent.columns.size() ? parent.columns[best] : "?";

  double total_ms = ms(run.total);
  double mean_ms = total_ms / run.executions;
  // One batched query costs about two of the single lookups it replaces.
  double savings = std::max(0.0, total_ms - 2 * mean_ms);
  std::string batched = std::regex_replace(run.normalized, std::regex(R"(=\s*\$1\b)"), "= ANY($$1)",
                                           std::regex_constants::format_first_only);
  if (batched == run.normalized)  // SQLAlchemy writes the parameter first: $1 = orders.customer_id
    batched = std::regex_replace(run.normalized,
                                 std::regex(R"rx(\$1\s*=\s*([A-Za-z_"][A-Za-z0-9_."]*))rx"),
                                 "$1 = ANY($$1)", std::regex_constants::format_first_only);

  ClientStyle style = client_style(run.normalized, s.who.get(), run.extended);
  // The relationship's likely name: the foreign key without "_id" (order.customer), or the child
  // table (customer.orders).
  std::string relation = lower(unquoted(child_table));
  if (auto dot = relation.rfind('.'); dot != std::string::npos) relation = relation.substr(dot + 1);
  if (many_to_one) relation = child;

  Finding f = base_finding(s.who, "n_plus_one");
  f.severity = run.executions >= 50 || savings >= 100 ? Severity::High
               : run.executions >= 10                 ? Severity::Medium
                                                      : Severity::Low;
  f.fingerprint = run.fingerprint_hex;
  f.parent = parent.fingerprint;
  f.query = run.normalized;
  f.estimated_savings_ms = savings;
  f.advice = fmt::format(
      "After `{}` returned {} rows, the application ran `{}` once per row ({} times, {:.1f} ms in "
      "all), each time with the `{}` value of one row: {}; that saves about {:.1f} ms each time.",
      parent.normalized, parent.rows, run.normalized, run.executions, total_ms, parent_column,
      n_plus_one_fix_words(style, many_to_one, relation), savings);
  f.fix = fmt::format(
      "-- one round trip for all rows: pass the {} values as an array\n{}\n-- or join it to the "
      "parent query:\n"
      "-- ... FROM ({}) AS parent JOIN {} ON {}.{} = parent.{}",
      parent_column, batched, parent.normalized, child_table, child_table, filter_name,
      parent_column);
  f.details = {{"parent_query", parent.normalized},
               {"parent_fingerprint", parent.fingerprint},
               {"parent_column", parent_column},
               {"parent_rows", parent.rows},
               {"executions_per_occurrence", run.executions},
               {"distinct_values", run.values.size()},
               {"linked_executions", run.linked},
               {"direction", many_to_one ? "many-to-one" : "one-to-many"},
               {"client", to_string(style)},
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
  // An ORM reads back what it inserted (SQLAlchemy refreshes an expired object after each commit):
  // a read or two per row keeps the loop a loop. Writes of anything else end it, so a
  // transaction that does other work around its insert (pgbench's TPC-B) is no run.
  if (s.run && shape.kind == StatementKind::Select &&
      s.run->reads_between < 2 * s.run->statements) {
    ++s.run->reads_between;
    return;
  }
  if (s.run && (!single_row || s.run->fingerprint != shape.fingerprint)) close_run(s, findings);
  if (!single_row) return;
  if (!s.run) {
    s.run.emplace();
    s.run->fingerprint = shape.fingerprint;
    s.run->fingerprint_hex = shape.fingerprint_hex;
    s.run->normalized = shape.normalized;
    s.run->table = shape.target_table;
    s.run->extended = event.extended;
  }
  auto& run = *s.run;
  ++run.statements;
  if (event.pipelined) ++run.pipelined;
  run.transactions.insert(event.transaction);
  // An event without a request number (built by hand) is a round trip of its own.
  run.requests.insert(event.request != 0 ? event.request
                                         : ~static_cast<std::uint64_t>(run.statements));
  run.total += event.latency;
  run.columns = std::max(
      run.columns, event.parameters.empty() ? shape.literals.size() : event.parameters.size());
}

void RowByRowRule::tick(SteadyClock::time_point now, FindingStore& findings) {
  close_idle(sessions_, now, settings_.run_idle, settings_.max_sessions,
             [&](Session& s) { close_run(s, findings); });
}

namespace {
// The batch call of the library that sent the rows, in its own words.
std::string row_by_row_fix_words(ClientStyle style) {
  switch (style) {
    case ClientStyle::SqlAlchemy:
      return "in SQLAlchemy, add the objects with session.add_all() and commit once (1.4 on "
             "psycopg2 sends them as multi-row INSERTs), or session.bulk_insert_mappings(), or "
             "Core connection.execute(insert(table), [rows])";
    case ClientStyle::Django:
      return "in Django, Model.objects.bulk_create(objects, batch_size=1000) instead of save() "
             "per object";
    case ClientStyle::Jdbc:
      return "in JDBC, PreparedStatement.addBatch() per row and executeBatch() once, with "
             "reWriteBatchedInserts=true on the connection URL (multi-row INSERTs)";
    case ClientStyle::SimpleProtocolDriver:
      return "with psycopg2, psycopg2.extras.execute_values(cursor, \"INSERT ... VALUES %s\", "
             "rows) (executemany() sends one INSERT per row), or cursor.copy_expert() with COPY";
    case ClientStyle::ExtendedProtocolDriver:
      return "with the driver's batch call: asyncpg executemany() or copy_records_to_table(), "
             "psycopg 3 executemany() or cursor.copy(), pgJDBC addBatch()/executeBatch(), "
             "node-postgres one multi-row INSERT or pg-copy-streams";
    case ClientStyle::Unknown:
      break;
  }
  return "with the driver's batch call";
}
}  // namespace

void RowByRowRule::close_run(Session& s, FindingStore& findings) {
  Run run = std::move(*s.run);
  s.run.reset();
  if (run.statements < settings_.row_by_row_min) return;

  auto rows = run.statements;
  auto transactions = static_cast<int>(run.transactions.size());
  auto round_trips = static_cast<int>(run.requests.size());
  // Sent in batches of ten rows or more per round trip (a pipeline, psycopg2's execute_batch,
  // asyncpg's or pgJDBC's executemany): the driver's batch call, which is the advice itself.
  if (round_trips * 10 <= rows) return;
  bool per_row_commit = transactions * 10 >= rows * 9;
  std::size_t columns = std::max<std::size_t>(1, run.columns);
  // Chunks that keep every statement under the protocol's 65,535 parameters.
  int chunk = static_cast<int>(std::min<std::size_t>(1000, 65535 / columns));
  double total_ms = ms(run.total);
  double per_statement_ms = total_ms / rows;
  // Multi-row VALUES: one round trip per chunk plus a few microseconds of work per row.
  double fix_ms = std::ceil(static_cast<double>(rows) / chunk) * per_statement_ms + rows * 0.005;
  double savings = std::max(0.0, total_ms - fix_ms);
  ClientStyle style = client_style(run.normalized, s.who.get(), run.extended);

  Finding f = base_finding(s.who, "row_by_row_insert");
  f.severity = per_row_commit ? Severity::High : Severity::Medium;
  f.fingerprint = run.fingerprint_hex;
  f.parent = run.table;
  f.query = run.normalized;
  f.estimated_savings_ms = savings;
  std::string how = per_row_commit ? "each row in a transaction of its own"
                                   : "one row per statement in " + std::to_string(transactions) +
                                         " transaction(s)";
  f.advice = fmt::format(
      "{} rows went into {} one INSERT at a time ({}; {} round trips, {:.1f} ms): insert them in "
      "batches of up to {} rows per statement, {}; that would take about {:.1f} ms.",
      rows, run.table, how, round_trips, total_ms, chunk, row_by_row_fix_words(style), fix_ms);
  std::string values = run.normalized;
  if (auto pos = values.find("VALUES"); pos != std::string::npos) values = values.substr(0, pos);
  f.fix = fmt::format(
      "-- multi-row VALUES, {} rows per statement ({} columns x {} rows <= 65,535 "
      "parameters):\n{}VALUES (...), (...), ...;\n"
      "-- or stream the rows: COPY {} FROM STDIN;\n"
      "-- or the driver's batch call: psycopg2 execute_values(), asyncpg copy_records_to_table(), "
      "JDBC addBatch()/executeBatch() with reWriteBatchedInserts=true, Rails insert_all, Django "
      "bulk_create(), SQLAlchemy add_all() + one commit",
      chunk, columns, chunk, values, run.table);
  f.details = {{"table", run.table},         {"rows", rows},
               {"statements", rows},         {"transactions", transactions},
               {"round_trips", round_trips}, {"pipelined", run.pipelined * 2 >= rows},
               {"client", to_string(style)}, {"time_spent_ms", total_ms},
               {"estimated_fix_ms", fix_ms}, {"chunk_rows", chunk}};
  findings.report(std::move(f));
}

}  // namespace pglens::rules
