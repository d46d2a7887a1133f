// pglens-bench nplus1: loading N parents and their children three ways: N+1 (one query for the
// parents, then one per parent), a JOIN, and `WHERE parent_id = ANY($1)`. Every run's children
// are checked (count + md5) against Postgres' own digest of the child table.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <sstream>

#include "bench/bench_util.hpp"
#include "bench/report.hpp"
#include "bench/subcommands.hpp"

namespace pglens::bench {
namespace {

struct Tables {
  std::string parents, children;
};

struct Fetched {
  std::vector<std::pair<long, std::string>> children;  // child id, "id|parent_id|payload|amount"
  std::uint64_t queries = 0;
};

void collect(const Result& r, int first_col, Fetched& out) {
  int n = PQntuples(r.get());
  for (int i = 0; i < n; ++i) {
    std::string line = PQgetvalue(r.get(), i, first_col);
    for (int c = 1; c < 4; ++c) {
      line += '|';
      line += PQgetvalue(r.get(), i, first_col + c);
    }
    out.children.emplace_back(std::atol(PQgetvalue(r.get(), i, first_col)), std::move(line));
  }
}

std::vector<std::string> parent_ids(Connection& c, const Tables& t, Fetched& f) {
  Result r = c.query("SELECT id, name FROM " + t.parents + " ORDER BY id");
  ++f.queries;
  std::vector<std::string> ids;
  for (int i = 0; i < PQntuples(r.get()); ++i) ids.emplace_back(PQgetvalue(r.get(), i, 0));
  return ids;
}

// One query for the parents, then one per parent: what a lazy-loading ORM does.
Fetched fetch_nplus1(Connection& c, const Tables& t, Progress& p) {
  Fetched f;
  auto ids = parent_ids(c, t, f);
  std::string sql =
      "SELECT id, parent_id, payload, amount FROM " + t.children + " WHERE parent_id = $1";
  for (const auto& id : ids) {
    Result r = c.exec_params(sql, {id.c_str()}, PGRES_TUPLES_OK);
    ++f.queries;
    collect(r, 0, f);
    p.advance();
  }
  return f;
}

// One JOIN returning every parent with its children.
Fetched fetch_join(Connection& c, const Tables& t, Progress& p) {
  Fetched f;
  Result r =
      c.query("SELECT p.id, p.name, c.id, c.parent_id, c.payload, c.amount FROM " + t.parents +
              " p JOIN " + t.children + " c ON c.parent_id = p.id ORDER BY p.id, c.id");
  ++f.queries;
  collect(r, 2, f);
  (void)p;
  return f;
}

// The parents, then all their children in one query with the ids as an array parameter.
Fetched fetch_any(Connection& c, const Tables& t, Progress& p) {
  Fetched f;
  auto ids = parent_ids(c, t, f);
  std::string array = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) array += (i ? "," : "") + ids[i];
  array += "}";
  Result r = c.exec_params("SELECT id, parent_id, payload, amount FROM " + t.children +
                               " WHERE parent_id = ANY($1::integer[])",
                           {array.c_str()}, PGRES_TUPLES_OK);
  ++f.queries;
  collect(r, 0, f);
  (void)p;
  return f;
}

struct Method {
  std::string key, label;
  Fetched (*run)(Connection&, const Tables&, Progress&);
  bool per_parent_progress;
};

const std::vector<Method>& methods() {
  static const std::vector<Method> m = {
      {"nplus1", "N+1 (a query per parent)", fetch_nplus1, true},
      {"join", "JOIN (one query)", fetch_join, false},
      {"any", "= ANY($1) (two queries)", fetch_any, false},
  };
  return m;
}

}  // namespace

std::vector<std::string> nplus1_method_keys() {
  std::vector<std::string> out;
  for (const auto& m : methods()) out.push_back(m.key);
  return out;
}

int run_nplus1(const NPlus1Options& o) {
  if (o.parents < 1) throw BenchError("--parents must be at least 1");
  if (o.children < 1) throw BenchError("--children must be at least 1");
  if (o.repeat < 1) throw BenchError("--repeat must be at least 1");
  if (static_cast<long long>(o.parents) * o.children > 50'000'000)
    throw BenchError("--parents × --children must be at most 50,000,000");
  std::vector<const Method*> selected;
  auto keys = split_list(o.methods);
  if (keys.empty()) throw BenchError("--methods: empty list");
  for (const auto& k : keys) {
    if (k == "all") continue;
    if (std::none_of(methods().begin(), methods().end(),
                     [&](const Method& m) { return m.key == k; }))
      throw BenchError("--methods: unknown method '" + k +
                       "' (choose from: nplus1, join, any, all)");
  }
  for (const auto& m : methods())
    if (std::find(keys.begin(), keys.end(), "all") != keys.end() ||
        std::find(keys.begin(), keys.end(), m.key) != keys.end())
      selected.push_back(&m);

  Connection control = Connection::open(o.dsn, "--dsn");
  // One connection per target for the whole run (see inserts.cpp).
  std::map<std::string, Connection> conns;
  conns.emplace("direct", Connection::open(o.dsn, "--dsn"));
  if (!o.via.empty()) conns.emplace("via", Connection::open(o.via, "--via"));
  std::string server_version = PQparameterStatus(control.get(), "server_version");

  Tables t{"pglens_bench_parents_" + std::to_string(getpid()),
           "pglens_bench_children_" + std::to_string(getpid())};
  const long long nchildren = static_cast<long long>(o.parents) * o.children;
  std::vector<std::pair<std::string, std::string>> targets = {{"direct", o.dsn}};
  if (!o.via.empty()) targets.emplace_back("via", o.via);

  Report report;
  report.benchmark = "nplus1";
  report.per_label = "per parent";
  report.per_divisor = o.parents;
  report.has_via = !o.via.empty();
  report.baseline = selected.front()->key;
  std::map<std::pair<std::string, std::string>, MethodResult> results;
  std::uint64_t expected_count = 0;
  std::string expected_md5;

  std::uint64_t steps = 0;
  for (const auto* m : selected) steps += m->per_parent_progress ? o.parents : 0;
  Progress progress(steps * targets.size() * static_cast<std::uint64_t>(o.repeat));
  auto drop = [&] {
    PQclear(
        PQexec(control.get(), ("DROP TABLE IF EXISTS " + t.children + ", " + t.parents).c_str()));
  };
  try {
    progress.label("creating " + fmt_count(o.parents) + " parents and " + fmt_count(nchildren) +
                   " children");
    drop();
    const std::string n = std::to_string(o.parents);
    control.exec("CREATE TABLE " + t.parents + " (id integer PRIMARY KEY, name text NOT NULL)");
    control.exec("CREATE TABLE " + t.children +
                 " (id integer PRIMARY KEY, parent_id integer NOT NULL REFERENCES " + t.parents +
                 " (id), payload text NOT NULL, amount integer NOT NULL)");
    control.exec("INSERT INTO " + t.parents + " SELECT g, 'parent-' || g FROM generate_series(1, " +
                 n + ") g");
    // Children of one parent are spread over the table, as when they were added over time.
    control.exec("INSERT INTO " + t.children + " SELECT g, ((g - 1) % " + n +
                 ") + 1, md5(g::text), (g * 7919) % 10000 FROM generate_series(1, " +
                 std::to_string(nchildren) + ") g");
    control.exec("CREATE INDEX ON " + t.children + " (parent_id)");
    control.exec("ANALYZE " + t.parents + "; ANALYZE " + t.children);
    if (!o.via.empty()) require_same_database(o.via, t.children);
    Result ref = control.query(
        "SELECT count(*), md5(string_agg(concat_ws('|', id, parent_id, payload, amount), E'\\n' "
        "ORDER BY id)) FROM " +
        t.children);
    expected_count = std::stoull(PQgetvalue(ref.get(), 0, 0));
    expected_md5 = PQgetvalue(ref.get(), 0, 1);

    for (int rep = 0; rep < o.repeat; ++rep) {
      for (const Method* m : selected) {
        for (const auto& [target, dsn] : targets) {
          std::string what = target == "direct" ? "direct" : "via proxy";
          Connection& conn = conns.at(target);
          progress.label(m->label + ", " + what + " (" + std::to_string(rep + 1) + "/" +
                         std::to_string(o.repeat) + ")");
          auto t0 = Clock::now();
          Fetched f = m->run(conn, t, progress);
          double elapsed = seconds_since(t0);

          std::sort(f.children.begin(), f.children.end());
          Md5 md5;
          for (std::size_t i = 0; i < f.children.size(); ++i) {
            if (i) md5.update("\n");
            md5.update(f.children[i].second);
          }
          std::string digest = md5.hex();
          if (f.children.size() != expected_count || digest != expected_md5) {
            throw BenchError("verification failed for " + m->key + " (" + what + "): expected " +
                             std::to_string(expected_count) + " children with md5 " + expected_md5 +
                             ", fetched " + std::to_string(f.children.size()) + " with md5 " +
                             digest);
          }
          auto& r = results[{m->key, target}];
          r.method = m->key;
          r.label = m->label;
          r.target = target;
          r.rows = f.children.size();
          r.checksum = digest;
          r.queries = f.queries;
          r.seconds.values.push_back(elapsed);
        }
      }
    }
    drop();
  } catch (...) {
    progress.finish();
    drop();
    throw;
  }
  progress.finish();
  for (const Method* m : selected)
    for (const auto& tg : targets) report.results.push_back(results.at({m->key, tg.first}));

  MachineInfo machine = machine_info();
  // Printed only after the JSON and SVG files are written: nothing on stdout if anything fails.
  std::ostringstream out;
  out << "pglens-bench nplus1: " << fmt_count(o.parents) << " parents × " << o.children
      << " children = " << fmt_count(static_cast<double>(nchildren))
      << " child rows fetched per run, median of " << o.repeat << (o.repeat == 1 ? " run" : " runs")
      << ", every run verified (count + md5)\n";
  out << "direct: " << redact_dsn(o.dsn);
  if (!o.via.empty()) out << "   via proxy: " << redact_dsn(o.via);
  out << "\nPostgreSQL " << server_version << "; " << describe(machine) << "\n\n";
  out << render_table(report);
  out << "\nrows/s: child rows fetched per second; speed-up: against "
      << report.find(report.baseline, "direct")->label << " on the same target"
      << (o.via.empty() ? "" : "; proxy overhead: time via proxy / time direct - 1") << "\n";

  if (!o.json_path.empty()) {
    nlohmann::json j = {
        {"benchmark", "nplus1"},
        {"schema_version", 1},
        {"parents", o.parents},
        {"children_per_parent", o.children},
        {"rows", nchildren},
        {"repeat", o.repeat},
        {"baseline", report.baseline},
        {"machine", to_json(machine)},
        {"server_version", server_version},
        {"dsn", redact_dsn(o.dsn)},
        {"via", o.via.empty() ? nlohmann::json() : nlohmann::json(redact_dsn(o.via))},
        {"expected_checksum", expected_md5},
        {"results", results_json(report)},
    };
    write_file(o.json_path, j.dump(2) + "\n");
  }
  if (!o.svg_path.empty()) {
    write_file(o.svg_path, render_chart(report,
                                        "Loading " + fmt_count(o.parents) + " parents with " +
                                            fmt_count(static_cast<double>(nchildren)) +
                                            " children: child rows per second",
                                        "PostgreSQL " + server_version + ", " + describe(machine) +
                                            ", median of " + std::to_string(o.repeat)));
  }
  std::cout << out.str();
  return 0;
}

}  // namespace pglens::bench
