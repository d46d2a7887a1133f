// The three pglens-bench subcommands. Each validates its options, throws BenchError on any
// failure before printing a result, and returns the process exit code.
#pragma once

#include <string>
#include <vector>

namespace pglens::bench {

struct InsertsOptions {
  std::string dsn, via;
  int rows = 10000;
  std::string columns = "int,text,float";  // types, or a count of columns
  int repeat = 3;
  int chunk_rows = 1000;
  std::string methods = "all";
  std::string json_path, svg_path;
};
int run_inserts(const InsertsOptions& o);
// Method keys in their canonical order, for --help.
std::vector<std::string> insert_method_keys();

struct NPlus1Options {
  std::string dsn, via;
  int parents = 1000;
  int children = 10;
  int repeat = 3;
  std::string methods = "all";
  std::string json_path, svg_path;
};
int run_nplus1(const NPlus1Options& o);
std::vector<std::string> nplus1_method_keys();

struct ProxyOptions {
  std::string dsn;
  std::string pglens_path;     // "" = next to pglens-bench, then PATH
  std::string baseline_path;   // another pglens, run as the analyzing one is; "" = none
  std::string pgbouncer_path;  // "" = PATH and /usr/sbin; "none" skips PgBouncer
  std::string clients = "8,64";
  std::string modes = "extended,prepared";
  int pool_size = 8;
  int seconds = 10;
  int rounds = 1;
  int scale = 10;
  int pglens_threads = 0;  // 0: pglens' default
  int jobs = 0;            // pgbench -j; 0: one thread per client
  bool analysis_compare = true;
  bool direct = true;  // also run pgbench straight against the database
  // TLS on both sides: pgbench to each target with sslmode=require, the proxies to the server
  // with TLS required (the server must have ssl = on).
  bool tls = false;
  std::string json_path, svg_path;
};
int run_proxy(const ProxyOptions& o);

}  // namespace pglens::bench
