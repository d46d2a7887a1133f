// pglens-bench: what batching buys, and what the proxy costs, measured on your own database.
//   pglens-bench inserts  seven ways to insert the same rows, each verified
//   pglens-bench nplus1   N+1 vs JOIN vs = ANY($1), each verified
//   pglens-bench proxy    pgbench -S direct, through PgBouncer and through pglens, interleaved
#include <CLI/CLI.hpp>

#include <iostream>

#include "bench/bench_util.hpp"
#include "bench/subcommands.hpp"

namespace {
std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace pglens::bench;
  CLI::App app{"pglens-bench: batch inserts, N+1 and proxy overhead, measured on your database"};
  app.require_subcommand(1);

  InsertsOptions ins;
  auto* inserts = app.add_subcommand(
      "inserts", "insert the same rows with each method into a fresh table; verify; compare");
  inserts->add_option("--dsn", ins.dsn, "the database, direct: postgresql://...")->required();
  inserts->add_option("--via", ins.via, "the same database through the proxy");
  inserts->add_option("--rows", ins.rows, "rows per method [10000]")
      ->check(CLI::Range(1, 100'000'000));
  inserts->add_option("--columns", ins.columns,
                      "column types after the integer id: a list of int, bigint, float, text, "
                      "bool, or a count [int,text,float]");
  inserts->add_option("--repeat", ins.repeat, "runs per method; the median is reported [3]")
      ->check(CLI::Range(1, 1000));
  inserts
      ->add_option("--chunk-rows", ins.chunk_rows,
                   "rows per multi-row VALUES statement (capped at 65,535 parameters) and per "
                   "pipeline Sync [1000]")
      ->check(CLI::Range(1, 10'000'000));
  inserts->add_option("--methods", ins.methods,
                      "comma-separated, from: " + join(insert_method_keys()) + ", all [all]");
  inserts->add_option("--json", ins.json_path, "write the results as JSON to FILE");
  inserts->add_option("--svg", ins.svg_path, "write a bar chart (log scale) to FILE");

  NPlus1Options np;
  auto* nplus1 = app.add_subcommand(
      "nplus1", "load parents and children by N+1 queries, a JOIN and = ANY($1); verify; compare");
  nplus1->add_option("--dsn", np.dsn, "the database, direct: postgresql://...")->required();
  nplus1->add_option("--via", np.via, "the same database through the proxy");
  nplus1->add_option("--parents", np.parents, "parent rows [1000]")
      ->check(CLI::Range(1, 10'000'000));
  nplus1->add_option("--children", np.children, "children per parent [10]")
      ->check(CLI::Range(1, 1'000'000));
  nplus1->add_option("--repeat", np.repeat, "runs per method; the median is reported [3]")
      ->check(CLI::Range(1, 1000));
  nplus1->add_option("--methods", np.methods,
                     "comma-separated, from: " + join(nplus1_method_keys()) + ", all [all]");
  nplus1->add_option("--json", np.json_path, "write the results as JSON to FILE");
  nplus1->add_option("--svg", np.svg_path, "write a bar chart (log scale) to FILE");

  ProxyOptions px;
  auto* proxy = app.add_subcommand(
      "proxy",
      "pgbench -S direct, through PgBouncer (if installed) and through pglens, interleaved");
  proxy->add_option("--dsn", px.dsn,
                    "the database (TCP); pgbench tables are created if absent [libpq defaults]");
  proxy->add_option("--pglens", px.pglens_path, "pglens binary [next to pglens-bench, then PATH]");
  proxy->add_option("--baseline", px.baseline_path,
                    "another pglens binary, run like the first (analysis on) and compared "
                    "round by round [none]");
  proxy->add_option("--pgbouncer", px.pgbouncer_path,
                    "pgbouncer binary, or none to skip [PATH, /usr/sbin]");
  proxy->add_option("--clients", px.clients, "client counts, comma-separated [8,64]");
  proxy->add_option("--modes", px.modes,
                    "pgbench -M modes: simple, extended, prepared "
                    "[extended,prepared]");
  proxy->add_option("--pool-size", px.pool_size, "server connections per proxy [8]")
      ->check(CLI::Range(1, 1000));
  proxy->add_option("--seconds", px.seconds, "seconds per pgbench run [10]")
      ->check(CLI::Range(1, 3600));
  proxy
      ->add_option("--rounds", px.rounds,
                   "interleaved rounds; medians and round-by-round ratios are reported [1]")
      ->check(CLI::Range(1, 1000));
  proxy->add_option("--scale", px.scale, "pgbench -i scale when the tables are absent [10]")
      ->check(CLI::Range(1, 10000));
  proxy
      ->add_option("--jobs", px.jobs,
                   "pgbench -j for -M simple and extended (prepared runs one thread per "
                   "client) [one per client]")
      ->check(CLI::Range(0, 1000));
  proxy->add_option("--pglens-threads", px.pglens_threads, "pglens --threads [pglens' default]")
      ->check(CLI::Range(0, 256));
  proxy->add_flag("--analysis-compare,!--no-analysis-compare", px.analysis_compare,
                  "also run a pglens with --no-analysis, side by side [on]");
  proxy->add_flag("--direct,!--no-direct", px.direct,
                  "also run pgbench straight against the database (the vs-direct column) [on]");
  proxy->add_flag("--tls", px.tls,
                  "TLS on both sides: pgbench with sslmode=require to every target, the proxies "
                  "to the server with TLS required (the server needs ssl = on) [off]");
  proxy->add_option("--json", px.json_path, "write the results as JSON to FILE");
  proxy->add_option("--svg", px.svg_path, "write a bar chart to FILE");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    if (*inserts) return run_inserts(ins);
    if (*nplus1) return run_nplus1(np);
    if (*proxy) return run_proxy(px);
  } catch (const BenchError& e) {
    std::cerr << "pglens-bench: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "pglens-bench: unexpected error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
