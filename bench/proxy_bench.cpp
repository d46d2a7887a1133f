// pglens-bench proxy: the proxy-overhead benchmark. Starts pglens (analysis on, and optionally a
// second one with --no-analysis and a --baseline build) and PgBouncer (when installed) in
// transaction mode with the same pool size, then runs `pgbench -S` direct and through each,
// interleaved round by round, and reports tps, tps ratios and each proxy's CPU time per transaction
// from /proc/PID/stat.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "bench/bench_util.hpp"
#include "bench/design.hpp"
#include "bench/subcommands.hpp"
#include "bench/svg_chart.hpp"

namespace pglens::bench {
namespace {

struct Target {
  std::string key;    // direct, pgbouncer, pglens, pglens-noanalysis, pglens-baseline
  std::string label;  // shown in the table
  std::string host;
  int port = 0;
  Child* process = nullptr;  // the proxy whose CPU is measured; null for direct
  std::string log_path;
  std::string binary;  // the proxy's program; "" for direct
};

struct Run {
  int round = 0;
  std::string mode, target;
  int clients = 0;
  bool ok = false;
  double tps = 0, cpu_s = 0, wall_s = 0;
  std::uint64_t transactions = 0, failed = 0;
  std::string error;
  // Errors pgbench logged without failing the run (PgBouncer 1.18 with -M prepared: "prepared
  // statement ... already exists" from pgbench's PQprepare, which pgbench only logs).
  std::uint64_t errors_logged = 0;
  std::string first_logged_error;
  double cpu_us_per_txn() const {
    return transactions ? cpu_s * 1e6 / static_cast<double>(transactions) : 0;
  }
};

std::string percent_encode(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", ch);
      out += buf;
    }
  }
  return out;
}

std::string self_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "" : p.parent_path().string();
}

std::string command_output(const std::string& cmd) {
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    pclose(f);
  }
  return out;
}

std::string first_line(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// The most telling line of a failed pgbench run.
std::string pgbench_error(const std::string& out, int status) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.find("error") != std::string::npos || line.find("ERROR") != std::string::npos ||
        line.find("FATAL") != std::string::npos)
      return line.substr(0, 300);
  }
  if (status == -1) return "pgbench did not finish in time";
  return "pgbench exited with status " + std::to_string(status);
}

void wait_ready(const Target& t, const std::string& db, const std::string& user,
                const std::string& password) {
  std::string dsn = "host=" + t.host + " port=" + std::to_string(t.port) + " dbname='" + db +
                    "' user='" + user + "' connect_timeout=2";
  if (!password.empty()) dsn += " password='" + password + "'";
  std::string last;
  auto t0 = Clock::now();
  while (seconds_since(t0) < 20) {
    if (t.process && !t.process->running()) break;
    try {
      Connection c = Connection::open(dsn, t.label);
      c.query("SELECT 1");
      return;
    } catch (const BenchError& e) {
      last = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw BenchError(t.label + " did not become ready on 127.0.0.1:" + std::to_string(t.port) +
                   (last.empty() ? "" : " (" + last + ")") + "; its log ends:\n" +
                   read_file_tail(t.log_path, 2000));
}

// Statements pglens analyzed with the fingerprint of pgbench -S's SELECT, summed over the rows of
// SHOW FINGERPRINTS (one per database, user and application).
std::uint64_t analyzed_selects(const Target& t, const std::string& user,
                               const std::string& password) {
  std::string dsn = "host=" + t.host + " port=" + std::to_string(t.port) + " dbname=pglens user='" +
                    user + "' connect_timeout=5";
  if (!password.empty()) dsn += " password='" + password + "'";
  Connection admin = Connection::open(dsn, t.label + " admin console");
  Result r = admin.query("SHOW FINGERPRINTS");
  int query = PQfnumber(r.get(), "query"), calls = PQfnumber(r.get(), "calls");
  if (query < 0 || calls < 0) throw BenchError("SHOW FINGERPRINTS: no query or calls column");
  std::uint64_t total = 0;
  for (int i = 0; i < PQntuples(r.get()); ++i)
    if (std::string_view(PQgetvalue(r.get(), i, query))
            .starts_with("SELECT abalance FROM pgbench_accounts WHERE aid = $1"))
      total += std::stoull(PQgetvalue(r.get(), i, calls));
  return total;
}

// The checked options: what to run, and the programs that run it.
struct Plan {
  std::vector<int> clients;
  std::vector<std::string> modes;
  std::string pgbench, pglens;
  std::string baseline;                      // the --baseline pglens; "" = none
  std::string pgbouncer, skipped_pgbouncer;  // pgbouncer "" = not run, for that reason
  int max_clients() const { return *std::max_element(clients.begin(), clients.end()); }
};

// --clients as counts from 1 to 1000.
std::vector<int> parse_clients(const std::string& list) {
  std::vector<int> clients;
  for (const auto& c : split_list(list)) {
    int n = 0;
    try {
      std::size_t used = 0;
      n = std::stoi(c, &used);
      if (used != c.size()) n = 0;
    } catch (...) {
      n = 0;
    }
    if (n < 1 || n > 1000) throw BenchError("--clients: '" + c + "' is not a count from 1 to 1000");
    clients.push_back(n);
  }
  if (clients.empty()) throw BenchError("--clients: empty list");
  return clients;
}

// --modes as pgbench query modes.
std::vector<std::string> parse_modes(const std::string& list) {
  auto modes = split_list(list);
  if (modes.empty()) throw BenchError("--modes: empty list");
  for (const auto& m : modes)
    if (m != "simple" && m != "extended" && m != "prepared")
      throw BenchError("--modes: unknown pgbench query mode '" + m +
                       "' (choose from: simple, extended, prepared)");
  return modes;
}

// Validates the options and finds the programs: pgbench, pglens, the --baseline pglens and
// PgBouncer (skipped when absent unless --pgbouncer names it).
Plan make_plan(const ProxyOptions& o) {
  if (o.seconds < 1) throw BenchError("--seconds must be at least 1");
  if (o.rounds < 1) throw BenchError("--rounds must be at least 1");
  if (o.pool_size < 1) throw BenchError("--pool-size must be at least 1");
  if (o.scale < 1) throw BenchError("--scale must be at least 1");
  Plan plan;
  plan.clients = parse_clients(o.clients);
  plan.modes = parse_modes(o.modes);

  plan.pgbench = find_program("pgbench", {"/usr/lib/postgresql/15/bin"});
  if (plan.pgbench.empty())
    throw BenchError("pgbench not found (Debian package postgresql-client-15)");
  plan.pglens = o.pglens_path;
  if (plan.pglens.empty()) {
    std::string sibling = self_dir() + "/pglens";
    plan.pglens = access(sibling.c_str(), X_OK) == 0 ? sibling : find_program("pglens", {});
  }
  if (plan.pglens.empty() || access(plan.pglens.c_str(), X_OK) != 0)
    throw BenchError("pglens binary not found" +
                     (o.pglens_path.empty() ? "" : " at " + o.pglens_path) +
                     " (give --pglens PATH)");
  plan.baseline = o.baseline_path;
  if (!plan.baseline.empty() && access(plan.baseline.c_str(), X_OK) != 0)
    throw BenchError("--baseline: no executable pglens binary at " + plan.baseline);
  if (o.pgbouncer_path == "none") {
    plan.skipped_pgbouncer = "skipped (--pgbouncer none)";
  } else {
    plan.pgbouncer = find_program(o.pgbouncer_path.empty() ? "pgbouncer" : o.pgbouncer_path,
                                  {"/usr/sbin", "/usr/local/sbin"});
    if (plan.pgbouncer.empty()) {
      if (!o.pgbouncer_path.empty()) throw BenchError("pgbouncer not found at " + o.pgbouncer_path);
      plan.skipped_pgbouncer = "not installed (Debian package pgbouncer): skipped";
    }
  }
  return plan;
}

// The database behind --dsn, as pgbench and the proxies reach it. `control` stays open for the
// whole run.
struct Database {
  Connection control;
  std::string host, name, user, password;
  int port = 0;
  std::string server_version;
  std::vector<std::string> pg_env;  // for pgbench: PGPASSWORD when there is a password
  int scale = 0;                    // of the pgbench tables, once prepared
};

// Opens --dsn and checks that it is a TCP host whose max_connections leave room for the clients
// and every proxy's pool.
Database open_database(const ProxyOptions& o, const Plan& plan) {
  Database d;
  d.control = Connection::open(o.dsn, "--dsn");
  PGconn* c = d.control.get();
  d.host = PQhost(c);
  d.name = PQdb(c);
  d.user = PQuser(c);
  d.password = PQpass(c) ? PQpass(c) : "";
  d.port = std::atoi(PQport(c));
  if (d.host.empty() || d.host.front() == '/')
    throw BenchError("the proxy benchmark needs a TCP host in --dsn (got a Unix socket: " + d.host +
                     "); e.g. postgresql://127.0.0.1:5432/postgres");
  d.server_version = PQparameterStatus(c, "server_version");
  int max_conn = std::atoi(PQgetvalue(d.control.query("SHOW max_connections").get(), 0, 0));
  int max_clients = plan.max_clients();
  int pools = plan.baseline.empty() ? 3 : 4;
  int needed = max_clients + pools * o.pool_size + 5;
  if (max_conn < needed)
    throw BenchError("the server allows " + std::to_string(max_conn) +
                     " connections; this run needs about " + std::to_string(needed) +
                     " (--clients " + std::to_string(max_clients) + ", plus the pools)");
  if (!d.password.empty()) d.pg_env.push_back("PGPASSWORD=" + d.password);
  if (o.tls) {
    if (std::string(PQgetvalue(d.control.query("SHOW ssl").get(), 0, 0)) != "on")
      throw BenchError(
          "--tls: the server behind --dsn has ssl = off; TLS on the server side "
          "needs ssl = on and a certificate (postgresql.conf)");
    d.pg_env.push_back("PGSSLMODE=require");  // pgbench to every target
  }
  return d;
}

// A key and self-signed certificate for the proxies' client side (--tls): pgbench checks none
// (sslmode=require), the cost of the encryption is the same. Readable by PgBouncer's user.
struct ProxyCertificate {
  std::string key, cert;
};
ProxyCertificate make_proxy_certificate(const std::string& dir) {
  ProxyCertificate c{dir + "/proxy.key", dir + "/proxy.crt"};
  std::string log = dir + "/openssl.log";
  std::string program = find_program("openssl", {"/usr/bin"});
  if (program.empty()) throw BenchError("--tls: openssl not found (Debian package openssl)");
  Child openssl({program, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                 "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout",
                 c.key, "-out", c.cert},
                log);
  if (openssl.wait(60) != 0)
    throw BenchError("--tls: openssl could not make a certificate: " + read_file_tail(log, 1000));
  chmod(c.key.c_str(), 0644);
  chmod(c.cert.c_str(), 0644);
  return c;
}

// Scratch directory: logs, PgBouncer's ini and userlist (readable by the user it runs as);
// removed with its contents when destroyed.
class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/pglens-bench-XXXXXX";
    if (!mkdtemp(tmpl)) throw BenchError("cannot create a temporary directory");
    path_ = tmpl;
    chmod(path_.c_str(), 0755);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// pgbench tables, created once directly if absent (pgbench -i -s `scale`); sets db.scale to the
// scale of the tables the runs use.
void prepare_pgbench_tables(Database& db, const std::string& pgbench, int scale,
                            const std::string& dir) {
  bool have_tables =
      std::string(PQgetvalue(
          db.control.query("SELECT to_regclass('pgbench_accounts') IS NOT NULL").get(), 0, 0)) ==
      "t";
  if (!have_tables) {
    std::cerr << "pglens-bench proxy: initializing pgbench tables (pgbench -i -s " << scale
              << ") in database " << db.name << "\n";
    std::string log = dir + "/pgbench-init.log";
    Child init({pgbench, "-i", "-q", "-s", std::to_string(scale), "-h", db.host, "-p",
                std::to_string(db.port), "-U", db.user, db.name},
               log, db.pg_env);
    int st = init.wait(1200);
    if (st != 0)
      throw BenchError("pgbench -i failed: " + pgbench_error(read_file_tail(log, 4000), st));
    db.scale = scale;
  } else {
    Result r = db.control.query("SELECT count(*) FROM pgbench_branches");
    db.scale = std::atoi(PQgetvalue(r.get(), 0, 0));
  }
}

// The targets, in the order the table lists them, and the proxy processes behind them (stopped
// when destroyed).
struct Targets {
  std::vector<std::unique_ptr<Child>> processes;
  std::vector<Target> list;
  std::string pgbouncer_version;  // "" when PgBouncer is not run
};

// Starts PgBouncer on a free port in transaction mode, with the same pool size as pglens.
void start_pgbouncer(Targets& targets, const std::string& pgbouncer, const Database& db,
                     int pool_size, int max_clients, const std::string& dir,
                     const std::optional<ProxyCertificate>& tls) {
  targets.pgbouncer_version = first_line(command_output(pgbouncer + " --version 2>&1"));
  int port = free_port();
  std::string ini = dir + "/pgbouncer.ini", userlist = dir + "/userlist.txt";
  write_file(userlist, "\"" + db.user + "\" \"" + db.password + "\"\n");
  write_file(ini, "[databases]\n" + db.name + " = host=" + db.host +
                      " port=" + std::to_string(db.port) + " dbname=" + db.name +
                      "\n\n[pgbouncer]\n"
                      "listen_addr = 127.0.0.1\n"
                      "listen_port = " +
                      std::to_string(port) +
                      "\n"
                      "unix_socket_dir =\n"
                      "auth_type = trust\n"
                      "auth_file = " +
                      userlist +
                      "\n"
                      "pool_mode = transaction\n"
                      "default_pool_size = " +
                      std::to_string(pool_size) +
                      "\n"
                      "min_pool_size = 0\n"
                      "reserve_pool_size = 0\n"
                      "max_client_conn = " +
                      std::to_string(std::max(200, 2 * max_clients)) +
                      "\n"
                      "ignore_startup_parameters = extra_float_digits\n"
                      "log_connections = 0\n"
                      "log_disconnections = 0\n" +
                      (tls ? "client_tls_sslmode = require\nclient_tls_key_file = " + tls->key +
                                 "\nclient_tls_cert_file = " + tls->cert +
                                 "\nserver_tls_sslmode = require\n"
                           : std::string()));
  chmod(ini.c_str(), 0644);
  chmod(userlist.c_str(), 0644);
  // PgBouncer refuses to run as root: as root, the child switches to postgres (or nobody).
  std::string run_as;
  if (getuid() == 0) run_as = getpwnam("postgres") ? "postgres" : "nobody";
  std::string log = dir + "/pgbouncer.log";
  targets.processes.push_back(std::make_unique<Child>(std::vector<std::string>{pgbouncer, ini}, log,
                                                      std::vector<std::string>{}, run_as));
  targets.list.push_back({"pgbouncer", "PgBouncer", "127.0.0.1", port,
                          targets.processes.back().get(), log, pgbouncer});
}

// One pglens to start: its program, its target key and label, and whether it analyzes.
struct PglensInstance {
  std::string binary, key, label;
  bool analysis = true;
};

// Starts a pglens on a free port, pooling in transaction mode like PgBouncer.
void start_pglens(Targets& targets, const PglensInstance& p, const ProxyOptions& o,
                  const Database& db, const std::string& dir,
                  const std::optional<ProxyCertificate>& tls) {
  std::string upstream = "postgresql://" + percent_encode(db.user) +
                         (db.password.empty() ? "" : ":" + percent_encode(db.password)) + "@" +
                         db.host + ":" + std::to_string(db.port);
  int port = free_port();
  std::vector<std::string> args = {p.binary,
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--upstream",
                                   upstream,
                                   "--pool-mode",
                                   "transaction",
                                   "--pool-size",
                                   std::to_string(o.pool_size),
                                   "--max-overflow",
                                   "0",
                                   "--log-level",
                                   "warn"};
  if (o.pglens_threads > 0)
    args.insert(args.end(), {"--threads", std::to_string(o.pglens_threads)});
  if (!p.analysis) args.push_back("--no-analysis");
  if (tls)
    args.insert(args.end(),
                {"--client-tls-sslmode", "require", "--client-tls-key-file", tls->key,
                 "--client-tls-cert-file", tls->cert, "--server-tls-sslmode", "require"});
  // The analyzing one opens its admin console to the bench, which checks afterwards that
  // analysis kept up: every statement pgbench ran through it, counted by its fingerprint.
  // (The --baseline pglens is started the same way, so that it does the same work.)
  if (p.analysis) args.insert(args.end(), {"--admin-users", db.user});
  std::string log = dir + "/" + p.key + ".log";
  targets.processes.push_back(std::make_unique<Child>(args, log));
  targets.list.push_back(
      {p.key, p.label, "127.0.0.1", port, targets.processes.back().get(), log, p.binary});
}

// Starts the targets (direct needs nothing; PgBouncer; pglens with analysis, without it and the
// --baseline one) and waits until each proxy answers a query.
Targets start_targets(const ProxyOptions& o, const Plan& plan, const Database& db,
                      const std::string& dir) {
  Targets targets;
  std::optional<ProxyCertificate> tls;
  if (o.tls) tls = make_proxy_certificate(dir);
  if (o.direct) targets.list.push_back({"direct", "direct", db.host, db.port, nullptr, "", ""});
  if (!plan.pgbouncer.empty())
    start_pgbouncer(targets, plan.pgbouncer, db, o.pool_size, plan.max_clients(), dir, tls);
  start_pglens(targets, {plan.pglens, "pglens", "pglens", true}, o, db, dir, tls);
  if (o.analysis_compare)
    start_pglens(targets, {plan.pglens, "pglens-noanalysis", "pglens --no-analysis", false}, o, db,
                 dir, tls);
  if (!plan.baseline.empty())
    start_pglens(targets, {plan.baseline, "pglens-baseline", "pglens (baseline)", true}, o, db, dir,
                 tls);
  for (const auto& t : targets.list)
    if (t.process) wait_ready(t, db.name, db.user, db.password);
  return targets;
}

// What every pgbench run shares: the program, the database, where the logs go and --jobs.
struct Pgbench {
  std::string program;
  const Database& db;
  std::string log_dir;
  int jobs = 0;  // --jobs; 0: one thread per client
};

// Runs one pgbench -S against `t` and reads its results from pgbench's output, and the CPU time
// `t`'s proxy spent meanwhile from /proc; throws if the proxy exited.
Run run_pgbench(const Pgbench& pgbench, const Target& t, const std::string& mode, int nclients,
                int seconds, int round) {
  const Database& db = pgbench.db;
  Run r;
  r.round = round;
  r.mode = mode;
  r.clients = nclients;
  r.target = t.key;
  static int counter = 0;
  std::string log = pgbench.log_dir + "/pgbench-" + std::to_string(++counter) + ".log";
  double cpu0 = t.process ? process_cpu_seconds(t.process->pid()) : 0;
  auto t0 = Clock::now();
  // -M prepared keeps a thread per client: PgBouncer would stall on pgbench's blocking prepares
  // with fewer (README, "Benchmarks"); pglens answers them without a server connection.
  int jobs = pgbench.jobs > 0 && mode != "prepared" ? std::min(pgbench.jobs, nclients) : nclients;
  Child c({pgbench.program, "-n", "-S", "-M", mode, "-c", std::to_string(nclients), "-j",
           std::to_string(jobs), "-T", std::to_string(seconds), "-h", t.host, "-p",
           std::to_string(t.port), "-U", db.user, db.name},
          log, db.pg_env);
  int status = c.wait(seconds + 60.0);
  r.wall_s = seconds_since(t0);
  if (t.process) {
    if (!t.process->running())
      throw BenchError(t.label + " exited during the run; its log ends:\n" +
                       read_file_tail(t.log_path, 2000));
    r.cpu_s = process_cpu_seconds(t.process->pid()) - cpu0;
  }
  std::string out = read_file_tail(log, 1 << 20);
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(actually processed: (\d+))")))
    r.transactions = std::stoull(m[1]);
  if (std::regex_search(out, m, std::regex(R"(number of failed transactions: (\d+))")))
    r.failed = std::stoull(m[1]);
  if (std::regex_search(out, m, std::regex(R"(tps = ([0-9.]+))"))) r.tps = std::stod(m[1]);
  r.ok = status == 0 && r.failed == 0 && r.transactions > 0;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("error:") == std::string::npos) continue;
    if (r.errors_logged++ == 0) r.first_logged_error = line.substr(0, 300);
  }
  if (!r.ok) {
    r.error = status == 0 && r.failed ? std::to_string(r.failed) + " failed transactions"
                                      : pgbench_error(out, status);
  }
  return r;
}

// Warm-up: fill each pool once (not measured). Returns the transactions (one SELECT each) run
// through "pglens".
std::uint64_t warm_up(const Pgbench& pgbench, const std::vector<Target>& targets, int pool_size) {
  std::uint64_t through_pglens = 0;
  for (const auto& t : targets) {
    if (!t.process) continue;
    Run warm = run_pgbench(pgbench, t, "extended", pool_size, 1, 0);
    if (t.key == "pglens") through_pglens += warm.transactions;
  }
  return through_pglens;
}

// The measured runs: `rounds` rounds, each of every mode and client count through every target. A
// run direct or through pglens that fails or logs errors ends the benchmark; PgBouncer's are
// reported.
std::vector<Run> run_rounds(const Pgbench& pgbench, const std::vector<Target>& targets,
                            const Plan& plan, int rounds, int seconds) {
  const std::size_t nruns =
      static_cast<std::size_t>(rounds) * plan.modes.size() * plan.clients.size();
  Progress progress(nruns * targets.size());
  std::vector<Run> runs;
  // Interleaved: every target in turn, in orders that put each target after each other one
  // equally often (design.hpp). Each mode and client count goes through all the orders.
  const auto orders = carryover_balanced_orders(targets.size());
  const std::size_t groups = plan.modes.size() * plan.clients.size();
  for (int round = 1; round <= rounds; ++round) {
    std::size_t group = 0;
    for (const auto& mode : plan.modes) {
      for (int n : plan.clients) {
        const auto& order = orders[order_for(round, group++, groups, orders.size())];
        for (std::size_t i : order) {
          const Target& t = targets[i];
          progress.label("round " + std::to_string(round) + ": -M " + mode + ", " +
                         std::to_string(n) + " clients, " + t.label);
          Run r = run_pgbench(pgbench, t, mode, n, seconds, round);
          progress.advance();
          if ((!r.ok || r.errors_logged) && t.key != "pgbouncer") {
            progress.finish();
            throw BenchError(
                "pgbench -M " + mode + " with " + std::to_string(n) + " clients " +
                (t.key == "direct" ? "direct" : "through " + t.label) + " " +
                (r.ok ? "logged errors: " + r.first_logged_error : "failed: " + r.error));
          }
          runs.push_back(std::move(r));
        }
      }
    }
  }
  progress.finish();
  return runs;
}

// Transactions (one SELECT each) the runs ran through `target`.
std::uint64_t transactions_through(const std::vector<Run>& runs, const std::string& target) {
  std::uint64_t total = 0;
  for (const auto& r : runs)
    if (r.target == target) total += r.transactions;
  return total;
}

// One mode, client count and target over the rounds.
struct Cell {
  bool ok = true;
  std::string error;
  Samples tps, cpu;
  std::uint64_t transactions = 0, errors_logged = 0;
  std::string first_logged_error;
};
using Cells = std::map<std::tuple<std::string, int, std::string>, Cell>;  // mode, clients, target

// Aggregate per (mode, clients, target): median over the rounds.
Cells aggregate(const std::vector<Run>& runs) {
  Cells cells;
  for (const auto& r : runs) {
    auto& c = cells[{r.mode, r.clients, r.target}];
    if (!r.ok) {
      c.ok = false;
      if (c.error.empty()) c.error = r.error;
      continue;
    }
    c.tps.values.push_back(r.tps);
    c.cpu.values.push_back(r.cpu_us_per_txn());
    if (r.errors_logged && c.first_logged_error.empty())
      c.first_logged_error = r.first_logged_error;
    c.errors_logged += r.errors_logged;
    c.transactions += r.transactions;
  }
  return cells;
}

// The cell, if every run of it succeeded; null otherwise (or if the target did not run).
const Cell* cell(const Cells& cells, const std::string& mode, int n, const std::string& target) {
  auto it = cells.find({mode, n, target});
  return it == cells.end() || !it->second.ok ? nullptr : &it->second;
}

// a's median tps over b's, if both succeeded.
std::optional<double> ratio(const Cell* a, const Cell* b) {
  if (!a || !b || b->tps.median() <= 0) return std::nullopt;
  return a->tps.median() / b->tps.median();
}

// "1.23×", or "" for no ratio.
std::string fmt_ratio(std::optional<double> r) {
  return r ? fmt_fixed(*r, 2) + "×" : "";
}

// Two targets compared round by round: they ran minutes apart at most, so slow drift of the
// machine's load cancels out of each ratio. `cpu`: CPU per transaction instead of tps.
Samples paired(const std::vector<Run>& runs, const std::string& mode, int n, const std::string& a,
               const std::string& b, bool cpu) {
  std::map<int, std::pair<const Run*, const Run*>> by_round;
  for (const auto& r : runs) {
    if (r.mode != mode || r.clients != n || !r.ok) continue;
    if (r.target == a) by_round[r.round].first = &r;
    if (r.target == b) by_round[r.round].second = &r;
  }
  Samples ratios;
  for (const auto& [round, pair] : by_round) {
    if (!pair.first || !pair.second) continue;
    double num = cpu ? pair.first->cpu_us_per_txn() : pair.first->tps;
    double den = cpu ? pair.second->cpu_us_per_txn() : pair.second->tps;
    // Both measured: a zero (a run too short for one CPU tick) has no place on a log scale.
    if (num > 0 && den > 0) ratios.values.push_back(num / den);
  }
  return ratios;
}

// "; round by round: geometric mean ... (90% interval ...), median ..., rounds ...", or "" for
// fewer than two rounds.
std::string fmt_paired(const Samples& s, int digits) {
  if (s.values.size() < 2) return std::string();
  auto fmt_interval = [&](Interval ci) {
    return "(90% interval " + fmt_fixed(ci.low, digits) + "–" + fmt_fixed(ci.high, digits) + "×)";
  };
  return "; round by round: geometric mean " + fmt_fixed(geometric_mean(s.values), digits) + "× " +
         fmt_interval(geometric_mean_interval(s.values)) + ", median " +
         fmt_fixed(s.median(), digits) + "× " + fmt_interval(median_interval(s.values)) +
         ", rounds " + fmt_fixed(s.min(), digits) + "–" + fmt_fixed(s.max(), digits) + "×";
}

// The results table: a row per mode, client count and target, then footnotes on the runs that
// failed or during which pgbench logged errors.
std::string results_table(const Plan& plan, const std::vector<Target>& targets, const Cells& cells,
                          int rounds, bool direct_run) {
  bool have_bouncer = !plan.pgbouncer.empty();
  std::vector<std::string> headers = {"mode", "clients", "target", "tps"};
  if (rounds > 1) headers.push_back("spread (min–max)");
  if (direct_run) headers.push_back("vs direct");
  if (have_bouncer) headers.push_back("vs PgBouncer");
  headers.push_back("proxy CPU/txn");
  if (have_bouncer) headers.push_back("CPU vs PgBouncer");
  Table table(headers, {true, false, true});
  std::vector<std::string> footnotes;
  bool first_group = true;
  for (const auto& mode : plan.modes) {
    for (int n : plan.clients) {
      if (!first_group) table.separator();
      first_group = false;
      const Cell* direct = cell(cells, mode, n, "direct");
      const Cell* bouncer = cell(cells, mode, n, "pgbouncer");
      bool first = true;
      for (const auto& t : targets) {
        const Cell& c = cells.at({mode, n, t.key});
        const Cell* me = c.ok ? &c : nullptr;
        std::vector<std::string> row = {first ? mode : "", first ? std::to_string(n) : "", t.label};
        first = false;
        if (!me) {
          footnotes.push_back("(" + std::to_string(footnotes.size() + 1) + ") " + t.label +
                              ", -M " + mode + ", " + std::to_string(n) + " clients: " + c.error);
          row.push_back("failed (" + std::to_string(footnotes.size()) + ")");
          table.add(std::move(row));
          continue;
        }
        std::optional<double> cpu_ratio;
        if (bouncer && t.process && bouncer->cpu.median() > 0)
          cpu_ratio = me->cpu.median() / bouncer->cpu.median();
        std::string tps = fmt_count(me->tps.median());
        if (me->errors_logged) {
          footnotes.push_back(
              "(" + std::to_string(footnotes.size() + 1) + ") " + t.label + ", -M " + mode + ", " +
              std::to_string(n) + " clients: completed, but pgbench logged " +
              std::to_string(me->errors_logged) + " errors, e.g.: " + me->first_logged_error);
          tps += " (" + std::to_string(footnotes.size()) + ")";
        }
        row.push_back(tps);
        if (rounds > 1) row.push_back(fmt_count(me->tps.min()) + " – " + fmt_count(me->tps.max()));
        if (direct_run) row.push_back(t.key == "direct" ? "" : fmt_ratio(ratio(me, direct)));
        if (have_bouncer)
          row.push_back(t.key == "direct" || t.key == "pgbouncer" ? ""
                                                                  : fmt_ratio(ratio(me, bouncer)));
        row.push_back(t.process ? fmt_fixed(me->cpu.median(), 1) + " µs" : "");
        if (have_bouncer)
          row.push_back(cpu_ratio && t.key != "pgbouncer" ? fmt_ratio(cpu_ratio) : "");
        table.add(std::move(row));
      }
    }
  }
  std::string text = table.render();
  if (!footnotes.empty()) text += "\n";
  for (const auto& f : footnotes) text += f + "\n";
  return text;
}

// The JSON "results": one entry per mode, client count and target, as in the table.
nlohmann::json results_json(const Plan& plan, const std::vector<Target>& targets,
                            const Cells& cells, bool direct_run) {
  auto opt = [](std::optional<double> v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  nlohmann::json results = nlohmann::json::array();
  for (const auto& mode : plan.modes) {
    for (int n : plan.clients) {
      const Cell* direct = cell(cells, mode, n, "direct");
      const Cell* bouncer = cell(cells, mode, n, "pgbouncer");
      for (const auto& t : targets) {
        const Cell& c = cells.at({mode, n, t.key});
        const Cell* me = c.ok ? &c : nullptr;
        std::optional<double> cpu_ratio;
        if (me && bouncer && t.process && bouncer->cpu.median() > 0)
          cpu_ratio = me->cpu.median() / bouncer->cpu.median();
        results.push_back({
            {"mode", mode},
            {"clients", n},
            {"target", t.key},
            {"ok", me != nullptr},
            {"error", me ? nlohmann::json() : nlohmann::json(c.error)},
            {"tps_median", me ? nlohmann::json(me->tps.median()) : nlohmann::json()},
            {"tps_min", me ? nlohmann::json(me->tps.min()) : nlohmann::json()},
            {"tps_max", me ? nlohmann::json(me->tps.max()) : nlohmann::json()},
            {"transactions", me ? me->transactions : 0},
            {"errors_logged", c.errors_logged},
            {"cpu_us_per_txn",
             me && t.process ? nlohmann::json(me->cpu.median()) : nlohmann::json()},
            {"tps_vs_direct", t.key == "direct" ? nlohmann::json() : opt(ratio(me, direct))},
            {"tps_vs_pgbouncer",
             t.process && t.key != "pgbouncer" ? opt(ratio(me, bouncer)) : nlohmann::json()},
            {"cpu_vs_pgbouncer", t.key != "pgbouncer" ? opt(cpu_ratio) : nlohmann::json()},
        });
        if (!direct_run) results.back().erase("tps_vs_direct");
      }
    }
  }
  return results;
}

// The JSON "comparisons": pglens against PgBouncer (tps and CPU per transaction), without
// analysis (tps) and against --baseline (tps and CPU), round by round, where both ran.
nlohmann::json comparisons_json(const Plan& plan, const std::vector<Run>& runs) {
  nlohmann::json comparisons = nlohmann::json::array();
  for (const auto& mode : plan.modes) {
    for (int n : plan.clients) {
      for (const auto& [a, b, cpu] :
           {std::tuple{"pglens", "pgbouncer", false}, std::tuple{"pglens", "pgbouncer", true},
            std::tuple{"pglens", "pglens-noanalysis", false},
            std::tuple{"pglens", "pglens-baseline", false},
            std::tuple{"pglens", "pglens-baseline", true}}) {
        auto per_round = paired(runs, mode, n, a, b, cpu);
        if (per_round.values.empty()) continue;
        auto median_ci = median_interval(per_round.values);
        auto mean_ci = geometric_mean_interval(per_round.values);
        comparisons.push_back({{"mode", mode},
                               {"clients", n},
                               {"target", a},
                               {"against", b},
                               {"measure", cpu ? "cpu_us_per_txn" : "tps"},
                               {"per_round_ratios", per_round.values},
                               {"per_round_geometric_mean", geometric_mean(per_round.values)},
                               {"per_round_geometric_mean_interval90", {mean_ci.low, mean_ci.high}},
                               {"per_round_median", per_round.median()},
                               {"per_round_median_interval90", {median_ci.low, median_ci.high}}});
      }
    }
  }
  return comparisons;
}

// The summary line for pglens against `against` (called `name`) in one mode and client count:
// "-M MODE, N clients: pglens/NAME tps R×", round by round, and CPU per transaction the same way
// when `against` used any CPU. None unless both ran and succeeded.
std::optional<std::string> versus_line(const std::vector<Run>& runs, const Cells& cells,
                                       const std::string& mode, int n, const std::string& against,
                                       const std::string& name) {
  const Cell* pl = cell(cells, mode, n, "pglens");
  const Cell* b = cell(cells, mode, n, against);
  auto r = ratio(pl, b);
  if (!r) return std::nullopt;
  std::string s = "-M " + mode + ", " + std::to_string(n) + " clients: pglens/" + name + " tps " +
                  fmt_fixed(*r, 2) + "×" +
                  fmt_paired(paired(runs, mode, n, "pglens", against, false), 2);
  if (b->cpu.median() > 0)
    s += "\n    CPU per transaction " + fmt_fixed(pl->cpu.median() / b->cpu.median(), 2) + "×" +
         fmt_paired(paired(runs, mode, n, "pglens", against, true), 2);
  return s;
}

// The targets the issues set, stated against what was measured: per mode and client count,
// pglens against PgBouncer and analysis on against off, then pglens against --baseline.
std::vector<std::string> summary_lines(const std::vector<Run>& runs, const Cells& cells,
                                       const Plan& plan) {
  std::vector<std::string> summary;
  for (const auto& mode : plan.modes) {
    for (int n : plan.clients) {
      bool issue_cell = mode == "extended" && n == 64;
      if (auto s = versus_line(runs, cells, mode, n, "pgbouncer", "PgBouncer")) {
        if (issue_cell) *s += "\n    (issue 3 target: tps ≥ 1.10×, CPU ≤ 0.80×)";
        summary.push_back(*s);
      }
      if (auto r =
              ratio(cell(cells, mode, n, "pglens"), cell(cells, mode, n, "pglens-noanalysis"))) {
        auto per_round = paired(runs, mode, n, "pglens", "pglens-noanalysis", false);
        std::string s = "-M " + mode + ", " + std::to_string(n) +
                        " clients: pglens analysis on/off tps " + fmt_fixed(*r, 3) + "×" +
                        fmt_paired(per_round, 3);
        if (issue_cell) {
          // Judged on the geometric mean: the rounds' log ratios are close to normal (README,
          // "Benchmarks").
          s += "\n    (issue 4 target: ≥ 0.97×: " + judge_at_least(per_round.values, 0.97) + ")";
        }
        summary.push_back(s);
      }
      if (auto s = versus_line(runs, cells, mode, n, "pglens-baseline", "baseline"))
        summary.push_back(*s);
    }
  }
  return summary;
}

// What SHOW FINGERPRINTS said of the analyzing pglens.
struct AnalysisCheck {
  std::uint64_t run = 0;  // transactions (one SELECT each) run through it, warm-up included
  std::uint64_t analyzed = 0;
  bool checked = false;
  std::string error;  // why it could not be checked
};

// Did analysis keep up? Its queue drops statements rather than slow forwarding down; a ratio
// measured while it dropped would flatter it. The analyzer lags by a batch (20 ms): wait for it.
// Only the "pglens" target is checked.
AnalysisCheck check_analysis(const std::vector<Target>& targets, const Database& db,
                             std::uint64_t through_analysis) {
  AnalysisCheck check;
  check.run = through_analysis;
  for (const auto& t : targets) {
    if (t.key != "pglens") continue;
    auto t0 = Clock::now();
    try {
      do {
        check.analyzed = analyzed_selects(t, db.user, db.password);
        check.checked = true;
        if (check.analyzed >= through_analysis) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      } while (seconds_since(t0) < 10);
    } catch (const std::exception& e) {
      check.checked = false;
      check.error = e.what();
    }
  }
  return check;
}

// The summary's "analysis (pglens): ..." line; "" when there is nothing to say.
std::string analysis_line(const AnalysisCheck& check) {
  std::string line;
  if (check.checked) {
    line = "analysis (pglens): " + fmt_count(static_cast<double>(check.analyzed)) + " of " +
           fmt_count(static_cast<double>(check.run)) + " pgbench statements analyzed";
    if (check.analyzed < check.run)
      line += "; " + fmt_count(static_cast<double>(check.run - check.analyzed)) +
              " not analyzed (dropped by its queue, as pglens_analyzer_events_dropped_total"
              " counts, or still waiting after 10 s)";
    else if (check.analyzed > check.run)
      line += "; more than were run: the check is wrong";
  } else if (!check.error.empty()) {
    line = "analysis (pglens): not checked: " + check.error;
  }
  return line;
}

// What stdout shows: what was run, on what, the results table and the summary.
std::string report_text(const ProxyOptions& o, const Plan& plan, const Database& db,
                        const Targets& targets, const MachineInfo& machine,
                        const std::string& table, const std::vector<std::string>& summary) {
  std::ostringstream out;
  out << "pglens-bench proxy: pgbench -S (select-only, scale " << db.scale << "), pool of "
      << o.pool_size << " in transaction mode, " << o.seconds << " s per run, " << o.rounds
      << (o.rounds == 1 ? " round" : " rounds") << ", pgbench -j "
      << (o.jobs > 0 ? std::to_string(o.jobs) + " (prepared: one per client)" : "one per client")
      << ", targets interleaved; tps = median over rounds"
      << (o.tls
              ? "; TLS on both sides (pgbench sslmode=require, proxies to the server TLS required)"
              : "")
      << "\n";
  out << (o.direct ? "direct: " : "database (not run direct): ") << redact_dsn(o.dsn)
      << "   pglens: " << plan.pglens;
  out << "   PgBouncer: "
      << (plan.pgbouncer.empty() ? plan.skipped_pgbouncer : targets.pgbouncer_version) << "\n";
  out << "PostgreSQL " << db.server_version << "; " << describe(machine) << "\n\n";
  out << table;
  if (!summary.empty()) {
    out << "\n";
    for (const auto& s : summary) out << s << "\n";
  }
  out << "\nproxy CPU/txn: the proxy process' utime+stime (/proc/PID/stat) over the run ÷ "
         "transactions; figures from one run on a shared machine are noisy\n";
  return out.str();
}

// The --json document: the setup, every run, the results, comparisons and summary.
void write_json(const std::string& path, const ProxyOptions& o, const Plan& plan,
                const Database& db, const Targets& targets, const MachineInfo& machine,
                const std::vector<Run>& runs, const Cells& cells, const AnalysisCheck& analysis,
                const std::vector<std::string>& summary) {
  nlohmann::json tj = nlohmann::json::array();
  for (const auto& t : targets.list) {
    nlohmann::json j = {{"target", t.key}, {"label", t.label}};
    if (t.key == "pgbouncer") j["version"] = targets.pgbouncer_version;
    if (t.key.rfind("pglens", 0) == 0) {
      j["analysis"] = t.key != "pglens-noanalysis";
      j["path"] = t.binary;
    }
    tj.push_back(j);
  }
  nlohmann::json rj = nlohmann::json::array();
  for (const auto& r : runs) {
    rj.push_back({{"round", r.round},
                  {"mode", r.mode},
                  {"clients", r.clients},
                  {"target", r.target},
                  {"ok", r.ok},
                  {"error", r.ok ? nlohmann::json() : nlohmann::json(r.error)},
                  {"tps", r.tps},
                  {"transactions", r.transactions},
                  {"failed_transactions", r.failed},
                  {"errors_logged", r.errors_logged},
                  {"first_logged_error",
                   r.errors_logged ? nlohmann::json(r.first_logged_error) : nlohmann::json()},
                  {"cpu_s", r.cpu_s},
                  {"cpu_us_per_txn", r.cpu_us_per_txn()},
                  {"wall_s", r.wall_s}});
  }
  nlohmann::json j = {
      {"benchmark", "proxy"},
      {"schema_version", 1},
      {"pool_mode", "transaction"},
      {"pool_size", o.pool_size},
      {"seconds", o.seconds},
      {"rounds", o.rounds},
      {"direct", o.direct},
      {"tls", o.tls},
      {"jobs", o.jobs},  // 0: one per client
      {"scale", db.scale},
      {"modes", plan.modes},
      {"clients", plan.clients},
      {"machine", to_json(machine)},
      {"server_version", db.server_version},
      {"dsn", redact_dsn(o.dsn)},
      {"pgbouncer", plan.pgbouncer.empty() ? nlohmann::json(plan.skipped_pgbouncer)
                                           : nlohmann::json(targets.pgbouncer_version)},
      {"targets", tj},
      {"runs", rj},
      {"results", results_json(plan, targets.list, cells, o.direct)},
      {"comparisons", comparisons_json(plan, runs)},
      {"analysis_check",
       {{"statements_run", analysis.run},
        {"statements_analyzed",
         analysis.checked ? nlohmann::json(analysis.analyzed) : nlohmann::json()},
        {"error", analysis.error.empty() ? nlohmann::json() : nlohmann::json(analysis.error)}}},
      {"summary", summary},
  };
  write_file(path, j.dump(2) + "\n");
}

// The --svg bar chart: median tps per mode, client count and target, min–max whiskers.
void write_svg(const std::string& path, const ProxyOptions& o, const Plan& plan, const Database& db,
               const std::vector<Target>& targets, const MachineInfo& machine, const Cells& cells) {
  ChartSpec c;
  c.title =
      "pgbench -S through a pool of " + std::to_string(o.pool_size) + ": transactions per second";
  c.subtitle = "PostgreSQL " + db.server_version + ", " + describe(machine) + ", " +
               std::to_string(o.seconds) + " s per run";
  c.axis_label = "transactions per second (whiskers: min–max over rounds)";
  for (const auto& t : targets) c.series.emplace_back(t.key, t.label);
  for (const auto& mode : plan.modes) {
    for (int n : plan.clients) {
      std::string g = mode + "-" + std::to_string(n);
      c.groups.emplace_back(g, "-M " + mode + ", " + std::to_string(n) + " clients");
      for (const auto& t : targets) {
        const auto& cl = cells.at({mode, n, t.key});
        ChartBar b;
        b.group = g;
        b.series = t.key;
        if (cl.ok) {
          b.value = cl.tps.median();
          if (o.rounds > 1) b.lo = cl.tps.min(), b.hi = cl.tps.max();
          b.label = fmt_count(b.value) + " tps";
        } else {
          b.label = "failed: " + cl.error.substr(0, 60);
        }
        b.tooltip = t.label + ", " + b.label;
        c.bars.push_back(std::move(b));
      }
    }
  }
  write_file(path, render_bar_chart(c));
}

}  // namespace

int run_proxy(const ProxyOptions& o) {
  const Plan plan = make_plan(o);
  Database db = open_database(o, plan);
  const ScratchDir dir;
  prepare_pgbench_tables(db, plan.pgbench, o.scale, dir.path());
  const Targets targets = start_targets(o, plan, db, dir.path());

  const Pgbench pgbench{plan.pgbench, db, dir.path(), o.jobs};
  const std::uint64_t warm_through_pglens = warm_up(pgbench, targets.list, o.pool_size);
  const std::vector<Run> runs = run_rounds(pgbench, targets.list, plan, o.rounds, o.seconds);
  const Cells cells = aggregate(runs);

  const AnalysisCheck analysis =
      check_analysis(targets.list, db, warm_through_pglens + transactions_through(runs, "pglens"));
  const MachineInfo machine = machine_info();
  std::vector<std::string> summary = summary_lines(runs, cells, plan);
  if (std::string line = analysis_line(analysis); !line.empty()) summary.push_back(line);
  const std::string table = results_table(plan, targets.list, cells, o.rounds, o.direct);

  // Printed only after the JSON and SVG files are written: nothing on stdout if anything fails.
  const std::string report = report_text(o, plan, db, targets, machine, table, summary);
  if (!o.json_path.empty())
    write_json(o.json_path, o, plan, db, targets, machine, runs, cells, analysis, summary);
  if (!o.svg_path.empty()) write_svg(o.svg_path, o, plan, db, targets.list, machine, cells);
  std::cout << report;
  return 0;
}

}  // namespace pglens::bench
