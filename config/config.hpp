// pglens' configuration: a TOML file (--config FILE) with command-line flags over it.
// Keys are named as SQLAlchemy names them where it has the knob, else as PgBouncer does. Every
// [pglens] key is one row of the table in config_keys.cpp; this struct holds their values.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/auth_type.hpp"
#include "auth/userlist.hpp"
#include "config/tls_settings.hpp"
#include "config/upstream.hpp"
#include "pool/pool_core.hpp"
#include "pool/pool_mode.hpp"
#include "rules/rule_settings.hpp"

namespace pglens::config {

using auth::AuthType;
using pool::PoolMode;

// A [databases] entry: where a client database name goes, with per-database pool overrides.
struct DatabaseRoute {
  Upstream upstream;                  // its dbname, when set, is the server-side database
  std::optional<PoolMode> pool_mode;  // overrides
  std::optional<int> pool_size, min_pool_size, max_overflow;
};

struct Config {
  // [pglens]: defaults here are the table's defaults (SHOW CONFIG, --help, the example file).
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 6432;
  Upstream upstream;     // default route for databases not in [databases]
  unsigned threads = 1;  // see pglens.example.toml
  // "auto", "io_uring" or "epoll" as configured; once running, the backend in use.
  std::string io_backend = "epoll";
  PoolMode pool_mode = PoolMode::Transaction;
  pool::PoolSettings pool;  // pool_size, min_pool_size, max_overflow, pool_timeout, pool_recycle,
                            // pool_pre_ping, server_check_delay, overflow_idle_timeout,
                            // server_idle_timeout
  std::chrono::milliseconds server_connect_timeout{15'000};
  std::chrono::milliseconds client_login_timeout{60'000};
  // SIGTERM: no new clients, each closed between transactions, the rest at this limit.
  pool::Duration shutdown_timeout{std::chrono::seconds(30)};
  // Zero: off (PgBouncer's meanings and defaults).
  pool::Duration query_timeout{0};                   // a request without its answer that long
  pool::Duration idle_transaction_timeout{0};        // a client idle inside a transaction
  pool::Duration client_idle_timeout{0};             // a client idle outside one
  bool tcp_keepalive = true;                         // on client and server sockets
  pool::Duration tcp_keepidle{0}, tcp_keepintvl{0};  // zero: the system's
  int tcp_keepcnt = 0;                               // zero: the system's
  std::string server_reset_query = "DISCARD ALL";    // session mode only
  int max_client_conn = 1000;
  int max_prepared_statements = 200;  // per server connection; LRU beyond
  AuthType auth_type = AuthType::Trust;
  std::string auth_file;                           // PgBouncer userlist format
  std::shared_ptr<const auth::Userlist> userlist;  // auth_file as read at (re)load
  std::vector<std::string> admin_users;  // may use the admin console (database pglens/pgbouncer)
  std::string http_listen;               // "HOST:PORT" for /metrics and the API; empty: off
  // TLS, PgBouncer's defaults: clients in the clear unless configured; servers asked for TLS and
  // used in the clear when they have none.
  TlsSettings client_tls = tls_default(TlsMode::Disable);
  TlsSettings server_tls = tls_default(TlsMode::Prefer);
  // Query analysis (fingerprints, statistics, advice); off: the proxy only forwards and pools.
  bool analysis = true;
  int analysis_queue_size = 65'536;  // events waiting for the analyzer; beyond, dropped and counted
  int max_fingerprints = 5'000;      // statistics entries (fingerprint × database × user × app)
  int fingerprint_top_k = 50;        // fingerprints with a latency histogram of their own
  rules::RuleSettings rules;         // n_plus_one_min, row_by_row_min, index_* thresholds
  std::string log_level = "info";
  // [databases]
  std::map<std::string, DatabaseRoute> databases;

  // The route for a client's database: its [databases] entry, else the default upstream.
  DatabaseRoute route_for(const std::string& database) const;
  // Pool settings for a route: the defaults with the route's overrides.
  pool::PoolSettings pool_settings_for(const DatabaseRoute& route) const;
  PoolMode pool_mode_for(const DatabaseRoute& route) const;
};

struct ConfigError {
  std::string key;     // "pool_size", "databases.app.upstream", "--pool-size", or "" for the file
  std::string reason;  // "must be a positive integer, got -3"
  std::string message() const;
};

// Reads and validates a TOML file. On failure: the first offending key and why.
struct ConfigLoad {
  std::optional<Config> config;
  ConfigError error;
};
ConfigLoad load_config_file(const std::string& path, Config defaults = {});
ConfigLoad load_config_text(const std::string& toml_text, Config defaults = {});

// Checks across keys (min_pool_size against pool_size, auth_type against auth_file) and reads
// auth_file, once every key is set: after a file is read, and again after flags are applied.
std::optional<ConfigError> finish_config(Config& c);

// "HOST:PORT" → host and port, or nullopt.
std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(const std::string& text);
// The other way: "[::1]:6432" for an IPv6 host.
std::string format_host_port(const std::string& host, std::uint16_t port);

}  // namespace pglens::config
