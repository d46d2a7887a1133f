// pglens: a PostgreSQL wire-protocol proxy.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <functional>

#include "proxy/proxy_server.hpp"
#include "proxy/report.hpp"

namespace {
using namespace pglens::proxy;
using Seconds = std::chrono::duration<double>;

template <typename D>
D from_seconds(double s) {
  return std::chrono::duration_cast<D>(Seconds(s));
}

// Command-line flags: each one given overrides the config file, at start and at every reload.
struct Flags {
  std::string config_path, listen, upstream, pool_mode, server_reset_query, auth_type, auth_file,
      admin_users, http, log_level;
  unsigned threads = 0;
  int pool_size = 0, min_pool_size = 0, max_overflow = 0, max_client_conn = 0,
      max_prepared_statements = 0;
  double pool_timeout = 0, pool_recycle = 0, server_check_delay = 0, overflow_idle_timeout = 0,
         server_idle_timeout = 0, server_connect_timeout = 0, client_login_timeout = 0;
  bool pool_pre_ping = false;
  bool no_analysis = false;
  int top_k = 0;
};

// Applies the flags that were given; returns an error naming the flag, or "".
std::string apply(const Flags& f, const CLI::App& app, Config& c) {
  auto given = [&](const char* name) { return app.count(name) > 0; };
  if (given("--listen")) {
    auto hp = parse_host_port(f.listen);
    if (!hp) return "--listen: expected HOST:PORT, got \"" + f.listen + "\"";
    c.listen_host = hp->first;
    c.listen_port = hp->second;
  }
  if (given("--upstream")) {
    std::string error;
    auto u = Upstream::parse(f.upstream, &error);
    if (!u) return "--upstream: " + error;
    c.upstream = *u;
  }
  if (given("--pool-mode")) {
    c.pool_mode = f.pool_mode == "session"     ? PoolMode::Session
                  : f.pool_mode == "statement" ? PoolMode::Statement
                                               : PoolMode::Transaction;
  }
  if (given("--threads")) c.threads = f.threads;
  if (given("--pool-size")) c.pool.pool_size = f.pool_size;
  if (given("--min-pool-size")) c.pool.min_pool_size = f.min_pool_size;
  if (given("--max-overflow")) c.pool.max_overflow = f.max_overflow;
  if (given("--pool-timeout"))
    c.pool.pool_timeout = from_seconds<pglens::pool::Duration>(f.pool_timeout);
  if (given("--pool-recycle"))
    c.pool.pool_recycle = f.pool_recycle <= 0
                              ? pglens::pool::Duration::zero()
                              : from_seconds<pglens::pool::Duration>(f.pool_recycle);
  if (given("--pool-pre-ping")) c.pool.pool_pre_ping = f.pool_pre_ping;
  if (given("--server-check-delay"))
    c.pool.server_check_delay = from_seconds<pglens::pool::Duration>(f.server_check_delay);
  if (given("--overflow-idle-timeout"))
    c.pool.overflow_idle_timeout = from_seconds<pglens::pool::Duration>(f.overflow_idle_timeout);
  if (given("--server-idle-timeout"))
    c.pool.server_idle_timeout = from_seconds<pglens::pool::Duration>(f.server_idle_timeout);
  if (given("--server-connect-timeout"))
    c.server_connect_timeout = from_seconds<std::chrono::milliseconds>(f.server_connect_timeout);
  if (given("--client-login-timeout"))
    c.client_login_timeout = from_seconds<std::chrono::milliseconds>(f.client_login_timeout);
  if (given("--server-reset-query")) c.server_reset_query = f.server_reset_query;
  if (given("--max-client-conn")) c.max_client_conn = f.max_client_conn;
  if (given("--max-prepared-statements")) c.max_prepared_statements = f.max_prepared_statements;
  if (given("--admin-users")) {
    c.admin_users.clear();
    std::stringstream ss(f.admin_users);
    for (std::string u; std::getline(ss, u, ',');)
      if (!u.empty()) c.admin_users.push_back(u);
  }
  if (given("--http")) {
    if (!f.http.empty() && !parse_host_port(f.http))
      return "--http: expected HOST:PORT, got \"" + f.http + "\"";
    c.http_listen = f.http;
  }
  if (given("--log-level")) c.log_level = f.log_level;
  if (given("--no-analysis")) c.analysis = !f.no_analysis;
  if (given("--fingerprint-top-k")) c.fingerprint_top_k = f.top_k;
  if (given("--auth-file")) {
    c.auth_file = f.auth_file;
    auto users = pglens::auth::load_userlist(f.auth_file);
    if (!users.userlist) return "--auth-file: " + users.error.message();
    c.userlist = std::make_shared<const pglens::auth::Userlist>(std::move(*users.userlist));
  }
  if (given("--auth-type")) {
    c.auth_type = f.auth_type == "md5"     ? AuthType::Md5
                  : f.auth_type == "trust" ? AuthType::Trust
                                           : AuthType::ScramSha256;
  }
  if (c.auth_type != AuthType::Trust && !c.userlist)
    return "--auth-type " + std::string(to_string(c.auth_type)) + " needs --auth-file";
  return {};
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pglens: a PostgreSQL proxy that pools connections and explains slow access patterns"};
  Flags f;
  app.add_option("--config", f.config_path, "TOML config file (see pglens.example.toml)")
      ->check(CLI::ExistingFile);
  app.add_option("--listen", f.listen, "HOST:PORT to accept clients on [127.0.0.1:6432]");
  app.add_option("--upstream", f.upstream, "postgresql://[user[:password]@]host[:port][/dbname]");
  app.add_option("--pool-mode", f.pool_mode, "session, transaction or statement [transaction]")
      ->check(CLI::IsMember({"session", "transaction", "statement"}));
  app.add_option("--threads", f.threads, "I/O threads [1]")->check(CLI::Range(1u, 256u));
  app.add_option("--pool-size", f.pool_size, "steady server connections per database and user [20]")
      ->check(CLI::Range(1, 100000));
  app.add_option("--min-pool-size", f.min_pool_size, "connections opened ahead of demand [0]")
      ->check(CLI::Range(0, 100000));
  app.add_option("--max-overflow", f.max_overflow, "extra connections when all are busy [10]")
      ->check(CLI::Range(0, 100000));
  app.add_option("--pool-timeout", f.pool_timeout, "seconds a client waits for a connection [30]")
      ->check(CLI::PositiveNumber);
  app.add_option("--pool-recycle", f.pool_recycle,
                 "seconds a server connection lives; -1 off [-1]");
  app.add_flag("--pool-pre-ping", f.pool_pre_ping,
               "check idle connections before handing them out");
  app.add_option("--server-check-delay", f.server_check_delay,
                 "idle seconds before a pre-ping [30]")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--overflow-idle-timeout", f.overflow_idle_timeout,
                 "idle seconds before an overflow closes [10]")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--server-idle-timeout", f.server_idle_timeout,
                 "idle seconds before a connection closes; 0 off [600]")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--server-connect-timeout", f.server_connect_timeout,
                 "seconds to connect and log in upstream [15]")
      ->check(CLI::PositiveNumber);
  app.add_option("--client-login-timeout", f.client_login_timeout,
                 "seconds a client has to log in [60]")
      ->check(CLI::PositiveNumber);
  app.add_option("--server-reset-query", f.server_reset_query,
                 "run when a session-mode client leaves [DISCARD ALL]");
  app.add_option("--max-client-conn", f.max_client_conn, "client connections accepted [1000]")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--max-prepared-statements", f.max_prepared_statements,
                 "named statements per server connection [200]")
      ->check(CLI::Range(1, 100000));
  app.add_option("--auth-type", f.auth_type, "trust, md5 or scram-sha-256 [trust]")
      ->check(CLI::IsMember({"trust", "md5", "scram-sha-256"}));
  app.add_option("--auth-file", f.auth_file, "userlist in PgBouncer's format")
      ->check(CLI::ExistingFile);
  app.add_option("--admin-users", f.admin_users,
                 "comma-separated users allowed on the admin console");
  app.add_option("--http", f.http, "HOST:PORT for /metrics and the HTTP API");
  app.add_flag("--no-analysis", f.no_analysis,
               "only pool and forward: no fingerprints, statistics or advice");
  app.add_option("--fingerprint-top-k", f.top_k,
                 "fingerprints with their own latency histogram [50]")
      ->check(CLI::Range(0, 10000));
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error [info]")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  std::string report_from, report_format = "text";
  auto* report =
      app.add_subcommand("report", "print the advice and top statements of a running pglens");
  report->add_option("--from", report_from, "its --http address, http://HOST:PORT")->required();
  report->add_option("--format", report_format, "text, markdown or json [text]")
      ->check(CLI::IsMember({"text", "markdown", "json"}));
  CLI11_PARSE(app, argc, argv);
  if (*report) {
    auto format = report_format == "json"       ? ReportFormat::Json
                  : report_format == "markdown" ? ReportFormat::Markdown
                                                : ReportFormat::Text;
    return run_report(report_from, format);
  }

  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  Config config;
  if (!f.config_path.empty()) {
    auto loaded = load_config_file(f.config_path, config);
    if (!loaded.config) {
      spdlog::critical("{}: {}", f.config_path, loaded.error.message());
      return 2;
    }
    config = std::move(*loaded.config);
  }
  if (auto error = apply(f, app, config); !error.empty()) {
    spdlog::critical("{}", error);
    return 2;
  }
  if (config.upstream.host.empty() || (app.count("--upstream") == 0 && f.config_path.empty())) {
    spdlog::critical(
        "no upstream: give --upstream postgresql://... or a --config file that names one");
    return 2;
  }
  if (config.pool.min_pool_size > config.pool.pool_size) {
    spdlog::critical("--min-pool-size ({}) is larger than --pool-size ({})",
                     config.pool.min_pool_size, config.pool.pool_size);
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(config.log_level));

  ProxyServer server(config, f.config_path);
  server.set_reload_overrides([f, &app](Config& c) {
    if (auto error = apply(f, app, c); !error.empty()) spdlog::error("reload: {}", error);
  });
  try {
    server.bind();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  server.run();
  return 0;
}
