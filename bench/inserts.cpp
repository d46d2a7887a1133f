// pglens-bench inserts: the same N deterministic rows inserted by seven methods, each into a fresh
// table, each verified (row count and an md5 over the rows computed by Postgres against the same
// digest computed here) before its time counts.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>

#include "bench/bench_util.hpp"
#include "bench/report.hpp"
#include "bench/subcommands.hpp"

namespace pglens::bench {
namespace {

constexpr int kMaxParams = 65535;  // a Bind message carries at most this many parameters

enum class ColType { Int, Bigint, Float, Text, Bool };

struct Column {
  ColType type;
  std::string spec;      // as named on the command line: int, bigint, float, text, bool
  std::string sql_type;  // integer, bigint, double precision, text, boolean
};

std::vector<Column> parse_columns(const std::string& spec) {
  static const std::vector<Column> kCycle = {{ColType::Int, "int", "integer"},
                                             {ColType::Text, "text", "text"},
                                             {ColType::Float, "float", "double precision"},
                                             {ColType::Bigint, "bigint", "bigint"},
                                             {ColType::Bool, "bool", "boolean"}};
  std::vector<Column> out;
  int count = 0;
  auto [ptr, ec] = std::from_chars(spec.data(), spec.data() + spec.size(), count);
  if (ec == std::errc() && ptr == spec.data() + spec.size()) {
    if (count < 1 || count > 100) throw BenchError("--columns: a count must be 1 to 100");
    for (int i = 0; i < count; ++i) out.push_back(kCycle[i % kCycle.size()]);
    return out;
  }
  for (const auto& name : split_list(spec)) {
    std::string n = name;
    std::transform(n.begin(), n.end(), n.begin(), ::tolower);
    if (n == "int" || n == "integer" || n == "int4") {
      out.push_back(kCycle[0]);
    } else if (n == "text") {
      out.push_back(kCycle[1]);
    } else if (n == "float" || n == "float8" || n == "double") {
      out.push_back(kCycle[2]);
    } else if (n == "bigint" || n == "int8") {
      out.push_back(kCycle[3]);
    } else if (n == "bool" || n == "boolean") {
      out.push_back(kCycle[4]);
    } else {
      throw BenchError("--columns: unknown column type '" + name +
                       "' (use a count, or a list of int, bigint, float, text, bool)");
    }
  }
  if (out.empty() || out.size() > 100) throw BenchError("--columns: give 1 to 100 columns");
  return out;
}

std::uint64_t mix(std::uint64_t x) {  // splitmix64
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// The rows, as the text Postgres prints for each value (so the local digest matches md5() on the
// server): id first, then the columns. Text is [a-z0-9] only, floats are multiples of 1/4.
struct Dataset {
  int rows = 0;
  std::vector<Column> cols;
  std::vector<std::string> cells;  // row-major, width() per row
  std::string checksum;

  int width() const { return 1 + static_cast<int>(cols.size()); }
  const std::string& cell(int row, int col) const {
    return cells[static_cast<std::size_t>(row) * width() + col];
  }
};

Dataset make_dataset(int rows, std::vector<Column> cols) {
  Dataset d;
  d.rows = rows;
  d.cols = std::move(cols);
  d.cells.reserve(static_cast<std::size_t>(rows) * d.width());
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  Md5 md5;
  for (int r = 0; r < rows; ++r) {
    std::uint64_t id = static_cast<std::uint64_t>(r) + 1;
    d.cells.push_back(std::to_string(id));
    for (std::size_t j = 0; j < d.cols.size(); ++j) {
      std::uint64_t h = mix(id * 1000003ULL + j);
      switch (d.cols[j].type) {
        case ColType::Int:
          d.cells.push_back(std::to_string(static_cast<long long>(h % 2000001) - 1000000));
          break;
        case ColType::Bigint:
          d.cells.push_back(std::to_string(static_cast<long long>(h >> 2) - (1LL << 61)));
          break;
        case ColType::Float: {
          double v = static_cast<double>(h % 4000000) / 4.0 - 500000.0;
          char buf[64];
          auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
          d.cells.emplace_back(buf, res.ptr);
          break;
        }
        case ColType::Text: {
          std::string s(6 + h % 19, 'a');
          for (auto& ch : s) {
            h = mix(h);
            ch = kAlphabet[h % 36];
          }
          d.cells.push_back(std::move(s));
          break;
        }
        case ColType::Bool:
          d.cells.push_back(h & 1 ? "t" : "f");
          break;
      }
    }
    if (r) md5.update("\n");
    for (int c = 0; c < d.width(); ++c) {
      if (c) md5.update("|");
      md5.update(d.cell(r, c));
    }
  }
  d.checksum = md5.hex();
  return d;
}

struct Sql {
  std::string table, column_list, insert_one;
};

Sql make_sql(const Dataset& d) {
  Sql s;
  s.table = "pglens_bench_inserts_" + std::to_string(getpid());
  s.column_list = "id";
  for (std::size_t j = 0; j < d.cols.size(); ++j) s.column_list += ", c" + std::to_string(j + 1);
  s.insert_one = "INSERT INTO " + s.table + " (" + s.column_list + ") VALUES (";
  for (int c = 0; c < d.width(); ++c) s.insert_one += (c ? ", $" : "$") + std::to_string(c + 1);
  s.insert_one += ")";
  return s;
}

std::vector<const char*> row_params(const Dataset& d, int first_row, int nrows) {
  std::vector<const char*> p;
  p.reserve(static_cast<std::size_t>(nrows) * d.width());
  for (int r = first_row; r < first_row + nrows; ++r)
    for (int c = 0; c < d.width(); ++c) p.push_back(d.cell(r, c).c_str());
  return p;
}

struct Context {
  Connection& conn;
  const Dataset& data;
  const Sql& sql;
  int values_chunk;    // rows per multi-row VALUES statement
  int pipeline_chunk;  // Executes per Sync
  Progress& progress;
};

// 1. One INSERT per row, each its own transaction (autocommit).
void insert_autocommit(Context& x) {
  for (int r = 0; r < x.data.rows; ++r) {
    x.conn.exec_params(x.sql.insert_one, row_params(x.data, r, 1), PGRES_COMMAND_OK);
    x.progress.advance();
  }
}

// 2. One INSERT per row inside one transaction.
void insert_transaction(Context& x) {
  x.conn.exec("BEGIN");
  insert_autocommit(x);
  x.conn.exec("COMMIT");
}

// 3. One named prepared statement, executed once per row, one round trip each.
// Statement names are unique per run: one connection per target serves every run.
std::string statement_name(const char* base) {
  static int counter = 0;
  return std::string(base) + "_" + std::to_string(++counter);
}

void insert_prepared(Context& x) {
  PGconn* c = x.conn.get();
  const std::string name = statement_name("pglens_bench_ins");
  x.conn.exec("BEGIN");
  Result prep(PQprepare(c, name.c_str(), x.sql.insert_one.c_str(), x.data.width(), nullptr));
  x.conn.check(prep, PGRES_COMMAND_OK, "PREPARE " + x.sql.insert_one);
  for (int r = 0; r < x.data.rows; ++r) {
    auto p = row_params(x.data, r, 1);
    Result res(PQexecPrepared(c, name.c_str(), x.data.width(), p.data(), nullptr, nullptr, 0));
    x.conn.check(res, PGRES_COMMAND_OK, "EXECUTE " + x.sql.insert_one);
    x.progress.advance();
  }
  x.conn.exec("COMMIT");
}

// 4. libpq pipeline mode: the prepared INSERT sent for every row without waiting, one Sync per
// pipeline_chunk rows, all in one transaction. Non-blocking, reading results while sending, so
// neither side can fill its socket buffer and stall the other.
class Pipeline {
 public:
  explicit Pipeline(Connection& conn) : conn_(conn), c_(conn.get()) {
    if (PQsetnonblocking(c_, 1) != 0) fail("cannot set non-blocking mode");
    if (PQenterPipelineMode(c_) != 1) fail("cannot enter pipeline mode");
  }
  ~Pipeline() {
    if (ok_) {
      PQexitPipelineMode(c_);
      PQsetnonblocking(c_, 0);
    }
  }
  void sent(int ok, const char* what) {
    if (!ok) fail(what);
    ++queries_;
  }
  void sync() {
    if (PQpipelineSync(c_) != 1) fail("PQpipelineSync");
    ++syncs_;
  }
  // Sends what is buffered and reads what has arrived; with wait_all, until every result is in.
  void pump(bool wait_all) {
    for (;;) {
      int f = PQflush(c_);
      if (f < 0) fail("sending");
      if (PQconsumeInput(c_) != 1) fail("receiving");
      drain();
      if (f == 0 && (!wait_all || done())) return;
      pollfd p{PQsocket(c_), static_cast<short>(POLLIN | (f == 1 ? POLLOUT : 0)), 0};
      int n = poll(&p, 1, 60000);
      if (n == 0) fail("no progress for 60 s");
      if (n < 0 && errno != EINTR) fail("poll");
    }
  }

 private:
  bool done() const { return ended_ == queries_ && synced_ == syncs_; }
  void drain() {
    while (!done() && PQisBusy(c_) == 0) {
      PGresult* raw = PQgetResult(c_);
      if (!raw) {
        ++ended_;  // the end of one query's results
        continue;
      }
      Result r(raw);
      auto st = PQresultStatus(raw);
      if (st == PGRES_PIPELINE_SYNC) {
        ++synced_;
      } else if (st != PGRES_COMMAND_OK) {
        ok_ = false;
        std::string m = PQresultErrorMessage(raw);
        while (!m.empty() && m.back() == '\n') m.pop_back();
        throw BenchError(conn_.what() +
                         ": pipelined INSERT failed: " + (m.empty() ? PQresStatus(st) : m));
      }
    }
  }
  [[noreturn]] void fail(const std::string& what) {
    ok_ = false;
    throw BenchError(conn_.what() + ": pipeline " + what + ": " + conn_.error_message());
  }
  Connection& conn_;
  PGconn* c_;
  bool ok_ = true;
  std::uint64_t queries_ = 0, syncs_ = 0, ended_ = 0, synced_ = 0;
};

void insert_pipeline(Context& x) {
  PGconn* c = x.conn.get();
  const std::string name = statement_name("pglens_bench_pipe");
  Pipeline p(x.conn);
  p.sent(PQsendQueryParams(c, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0), "BEGIN");
  p.sent(PQsendPrepare(c, name.c_str(), x.sql.insert_one.c_str(), x.data.width(), nullptr),
         "Parse");
  for (int r = 0; r < x.data.rows; ++r) {
    auto params = row_params(x.data, r, 1);
    p.sent(PQsendQueryPrepared(c, name.c_str(), x.data.width(), params.data(), nullptr, nullptr, 0),
           "Execute");
    if ((r + 1) % x.pipeline_chunk == 0) {
      p.sync();
      p.pump(false);
    }
    x.progress.advance();
  }
  p.sent(PQsendQueryParams(c, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0), "COMMIT");
  p.sync();
  p.pump(true);
}

// 5. Multi-row INSERT ... VALUES ($1, ...), (...), values_chunk rows per statement, one
// transaction.
void insert_values(Context& x) {
  std::map<int, std::string> sql_by_rows;  // the last chunk may be shorter
  x.conn.exec("BEGIN");
  for (int first = 0; first < x.data.rows; first += x.values_chunk) {
    int n = std::min(x.values_chunk, x.data.rows - first);
    auto& sql = sql_by_rows[n];
    if (sql.empty()) {
      sql = "INSERT INTO " + x.sql.table + " (" + x.sql.column_list + ") VALUES ";
      int p = 1;
      for (int r = 0; r < n; ++r) {
        sql += r ? ", (" : "(";
        for (int c = 0; c < x.data.width(); ++c) sql += (c ? ", $" : "$") + std::to_string(p++);
        sql += ")";
      }
    }
    x.conn.exec_params(sql, row_params(x.data, first, n), PGRES_COMMAND_OK);
    x.progress.advance(static_cast<std::uint64_t>(n));
  }
  x.conn.exec("COMMIT");
}

// 6. COPY ... FROM STDIN, text format, sent in 64 KiB pieces.
void insert_copy(Context& x) {
  PGconn* c = x.conn.get();
  std::string sql = "COPY " + x.sql.table + " (" + x.sql.column_list + ") FROM STDIN";
  Result start(PQexec(c, sql.c_str()));
  x.conn.check(start, PGRES_COPY_IN, sql);
  std::string buf;
  buf.reserve(1 << 17);
  int pending = 0;
  auto send = [&] {
    if (PQputCopyData(c, buf.data(), static_cast<int>(buf.size())) != 1)
      throw BenchError(x.conn.what() + ": COPY data: " + x.conn.error_message());
    buf.clear();
    x.progress.advance(static_cast<std::uint64_t>(pending));
    pending = 0;
  };
  for (int r = 0; r < x.data.rows; ++r) {
    for (int col = 0; col < x.data.width(); ++col) {
      if (col) buf += '\t';
      buf += x.data.cell(r, col);
    }
    buf += '\n';
    ++pending;
    if (buf.size() >= (1 << 16)) send();
  }
  if (!buf.empty()) send();
  if (PQputCopyEnd(c, nullptr) != 1)
    throw BenchError(x.conn.what() + ": COPY end: " + x.conn.error_message());
  Result done(PQgetResult(c));
  x.conn.check(done, PGRES_COMMAND_OK, sql);
  while (Result more{PQgetResult(c)}) {
  }
}

// 7. INSERT ... SELECT * FROM unnest($1::integer[], $2::text[], ...): one array per column, one
// statement for all rows.
void insert_unnest(Context& x) {
  const auto& d = x.data;
  std::vector<std::string> arrays(static_cast<std::size_t>(d.width()));
  std::string sql =
      "INSERT INTO " + x.sql.table + " (" + x.sql.column_list + ") SELECT * FROM unnest(";
  for (int c = 0; c < d.width(); ++c) {
    bool quote = c > 0 && d.cols[c - 1].type == ColType::Text;  // "null" unquoted would be NULL
    auto& a = arrays[c];
    a.reserve(static_cast<std::size_t>(d.rows) * (quote ? 20 : 10));
    a += '{';
    for (int r = 0; r < d.rows; ++r) {
      if (r) a += ',';
      if (quote) a += '"';
      a += d.cell(r, c);
      if (quote) a += '"';
    }
    a += '}';
    sql += (c ? ", $" : "$") + std::to_string(c + 1) +
           "::" + (c == 0 ? std::string("integer") : d.cols[c - 1].sql_type) + "[]";
  }
  sql += ")";
  std::vector<const char*> params;
  for (const auto& a : arrays) params.push_back(a.c_str());
  x.conn.exec_params(sql, params, PGRES_COMMAND_OK);
  x.progress.advance(static_cast<std::uint64_t>(d.rows));
}

struct Method {
  std::string key;
  std::function<std::string(const Context&)> label;
  void (*run)(Context&);
};

const std::vector<Method>& methods() {
  static const std::vector<Method> m = {
      {"autocommit", [](const Context&) { return "row-by-row, autocommit"; }, insert_autocommit},
      {"transaction", [](const Context&) { return "row-by-row, one transaction"; },
       insert_transaction},
      {"prepared", [](const Context&) { return "prepared statement per row"; }, insert_prepared},
      {"pipeline",
       [](const Context& x) {
         return "pipeline mode (Sync every " + fmt_count(x.pipeline_chunk) + ")";
       },
       insert_pipeline},
      {"values",
       [](const Context& x) { return "multi-row VALUES (" + fmt_count(x.values_chunk) + " rows)"; },
       insert_values},
      {"copy", [](const Context&) { return "COPY FROM STDIN"; }, insert_copy},
      {"unnest", [](const Context&) { return "INSERT … SELECT unnest(arrays)"; }, insert_unnest},
  };
  return m;
}

std::vector<const Method*> select_methods(const std::string& list, const std::vector<Method>& all) {
  std::vector<std::string> keys = split_list(list);
  if (keys.empty()) throw BenchError("--methods: empty list");
  std::vector<const Method*> out;
  for (const auto& m : all) {
    bool wanted = false;
    for (const auto& k : keys) wanted |= (k == "all" || k == m.key);
    if (wanted) out.push_back(&m);
  }
  for (const auto& k : keys) {
    if (k == "all") continue;
    bool known = std::any_of(all.begin(), all.end(), [&](const Method& m) { return m.key == k; });
    if (!known) {
      std::string names;
      for (const auto& m : all) names += (names.empty() ? "" : ", ") + m.key;
      throw BenchError("--methods: unknown method '" + k + "' (choose from: " + names + ", all)");
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> insert_method_keys() {
  std::vector<std::string> out;
  for (const auto& m : methods()) out.push_back(m.key);
  return out;
}

int run_inserts(const InsertsOptions& o) {
  if (o.rows < 1) throw BenchError("--rows must be at least 1");
  if (o.repeat < 1) throw BenchError("--repeat must be at least 1");
  if (o.chunk_rows < 1) throw BenchError("--chunk-rows must be at least 1");
  auto cols = parse_columns(o.columns);
  auto selected = select_methods(o.methods, methods());
  const int width = 1 + static_cast<int>(cols.size());
  const int values_chunk = std::min({o.chunk_rows, kMaxParams / width, o.rows});
  const int pipeline_chunk = std::min(o.chunk_rows, o.rows);

  Connection control = Connection::open(o.dsn, "--dsn");
  // One connection per target for the whole run, opened now (so an unreachable --via fails
  // before anything is measured): every method then runs on a warm backend, direct and through
  // the pool alike, as an application's pooled connections do.
  std::map<std::string, Connection> conns;
  conns.emplace("direct", Connection::open(o.dsn, "--dsn"));
  if (!o.via.empty()) conns.emplace("via", Connection::open(o.via, "--via"));
  std::string server_version = PQparameterStatus(control.get(), "server_version");

  Dataset data = make_dataset(o.rows, std::move(cols));
  Sql sql = make_sql(data);
  std::string create = "DROP TABLE IF EXISTS " + sql.table + "; CREATE TABLE " + sql.table +
                       " (id integer PRIMARY KEY";
  for (std::size_t j = 0; j < data.cols.size(); ++j)
    create += ", c" + std::to_string(j + 1) + " " + data.cols[j].sql_type + " NOT NULL";
  create += ")";
  if (!o.via.empty()) {
    control.exec(create);
    try {
      require_same_database(o.via, sql.table);
    } catch (...) {
      PQclear(PQexec(control.get(), ("DROP TABLE IF EXISTS " + sql.table).c_str()));
      throw;
    }
  }
  std::vector<std::pair<std::string, std::string>> targets = {{"direct", o.dsn}};
  if (!o.via.empty()) targets.emplace_back("via", o.via);

  Report report;
  report.benchmark = "inserts";
  report.per_label = "per row";
  report.per_divisor = o.rows;
  report.has_via = !o.via.empty();
  report.baseline = selected.front()->key;
  for (const auto* m : selected)
    if (m->key == "autocommit") report.baseline = m->key;

  Progress progress(static_cast<std::uint64_t>(o.rows) * selected.size() * targets.size() *
                    static_cast<std::uint64_t>(o.repeat));
  std::map<std::pair<std::string, std::string>, MethodResult> results;
  const std::string verify_sql = "SELECT count(*), coalesce(md5(string_agg(concat_ws('|', " +
                                 sql.column_list + "), E'\\n' ORDER BY id)), '') FROM " + sql.table;

  try {
    for (int rep = 0; rep < o.repeat; ++rep) {
      for (const Method* m : selected) {
        for (const auto& [target, dsn] : targets) {
          control.exec(create);
          std::string what = target == "direct" ? "direct" : "via proxy";
          Connection& conn = conns.at(target);
          Context x{conn, data, sql, values_chunk, pipeline_chunk, progress};
          std::string label = m->label(x);
          progress.label(label + ", " + what + " (" + std::to_string(rep + 1) + "/" +
                         std::to_string(o.repeat) + ")");
          auto t0 = Clock::now();
          m->run(x);
          double elapsed = seconds_since(t0);

          Result v = control.query(verify_sql);
          std::uint64_t count = std::stoull(PQgetvalue(v.get(), 0, 0));
          std::string digest = PQgetvalue(v.get(), 0, 1);
          if (count != static_cast<std::uint64_t>(o.rows) || digest != data.checksum) {
            std::string hint = count == 0 && target == "via"
                                   ? " (does --via reach the same database as --dsn?)"
                                   : "";
            throw BenchError("verification failed for " + m->key + " (" + what + "): expected " +
                             std::to_string(o.rows) + " rows with md5 " + data.checksum +
                             ", found " + std::to_string(count) + " rows with md5 " +
                             (digest.empty() ? "(none)" : digest) + hint);
          }
          auto& r = results[{m->key, target}];
          r.method = m->key;
          r.label = label;
          r.target = target;
          r.rows = count;
          r.checksum = digest;
          r.seconds.values.push_back(elapsed);
        }
      }
    }
    control.exec("DROP TABLE IF EXISTS " + sql.table);
  } catch (...) {
    progress.finish();
    PQclear(PQexec(control.get(), "ROLLBACK"));
    PQclear(PQexec(control.get(), ("DROP TABLE IF EXISTS " + sql.table).c_str()));
    throw;
  }
  progress.finish();
  for (const Method* m : selected)
    for (const auto& t : targets) report.results.push_back(results.at({m->key, t.first}));

  MachineInfo machine = machine_info();
  std::string cols_desc;
  for (const auto& c : data.cols) cols_desc += (cols_desc.empty() ? "" : ", ") + c.spec;

  // Everything verified: only now is anything presented.
  // Printed only after the JSON and SVG files are written: nothing on stdout if anything fails.
  std::ostringstream out;
  out << "pglens-bench inserts: " << fmt_count(o.rows) << " rows of (id, " << cols_desc
      << "), median of " << o.repeat << (o.repeat == 1 ? " run" : " runs")
      << ", each method into a fresh table, every run verified (count + md5)\n";
  out << "direct: " << redact_dsn(o.dsn);
  if (!o.via.empty()) out << "   via proxy: " << redact_dsn(o.via);
  out << "\nPostgreSQL " << server_version << "; " << describe(machine) << "\n\n";
  out << render_table(report);
  out << "\nspeed-up: against " << report.find(report.baseline, "direct")->label
      << " on the same target"
      << (o.via.empty() ? "" : "; proxy overhead: time via proxy / time direct - 1") << "\n";

  if (!o.json_path.empty()) {
    nlohmann::json cols_json = nlohmann::json::array();
    for (const auto& c : data.cols) cols_json.push_back(c.spec);
    nlohmann::json j = {
        {"benchmark", "inserts"},
        {"schema_version", 1},
        {"rows", o.rows},
        {"columns", cols_json},
        {"repeat", o.repeat},
        {"values_chunk_rows", values_chunk},
        {"pipeline_sync_rows", pipeline_chunk},
        {"baseline", report.baseline},
        {"machine", to_json(machine)},
        {"server_version", server_version},
        {"dsn", redact_dsn(o.dsn)},
        {"via", o.via.empty() ? nlohmann::json() : nlohmann::json(redact_dsn(o.via))},
        {"expected_checksum", data.checksum},
        {"results", results_json(report)},
    };
    write_file(o.json_path, j.dump(2) + "\n");
  }
  if (!o.svg_path.empty()) {
    write_file(o.svg_path,
               render_chart(report, "Inserting " + fmt_count(o.rows) + " rows: rows per second",
                            "PostgreSQL " + server_version + ", " + describe(machine) +
                                ", median of " + std::to_string(o.repeat)));
  }
  std::cout << out.str();
  return 0;
}

}  // namespace pglens::bench
