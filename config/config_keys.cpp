#include "config/config_keys.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <climits>
#include <deque>

#include "config/key_table.hpp"

namespace pglens::config {

namespace {

std::string flag_for(std::string_view name) {
  std::string flag = "--";
  for (char c : name) flag += c == '_' ? '-' : c;
  return flag;
}

std::string seconds_text(pool::Duration d) {
  return fmt::format("{:g}", std::chrono::duration<double>(d).count());
}

// A field of Config, reached through a lambda `[](Config& c) -> T& { return c.x; }`; shown from a
// const Config through the same lambda.
template <class F>
auto& field_of(F field, const Config& c) {
  return field(const_cast<Config&>(c));
}

KeyRow row(std::string_view name, ValueKind kind, bool reloadable, std::string_view doc,
           ReadValue read, std::function<std::string(const Config&)> show) {
  return {{name, doc, reloadable, kind, flag_for(name), std::move(show)}, std::move(read)};
}

template <class F>
KeyRow integer(std::string_view name, F field, std::int64_t min, std::int64_t max, bool reloadable,
               std::string_view doc) {
  return row(
      name, ValueKind::Number, reloadable, doc,
      [field, min, max](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        return r.integer(n, key, min, max, field(c));
      },
      [field](const Config& c) { return fmt::format("{}", field_of(field, c)); });
}

// Seconds; zero_ok: 0 is allowed and means off.
template <class F>
KeyRow seconds(std::string_view name, F field, bool zero_ok, bool reloadable,
               std::string_view doc) {
  return row(
      name, ValueKind::Number, reloadable, doc,
      [field, zero_ok](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        return r.duration(n, key, zero_ok, field(c));
      },
      [field](const Config& c) { return seconds_text(field_of(field, c)); });
}

// Seconds kept as milliseconds, at least one.
template <class F>
KeyRow millis(std::string_view name, F field, bool reloadable, std::string_view doc) {
  return row(
      name, ValueKind::Number, reloadable, doc,
      [field](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        return r.millis(n, key, field(c));
      },
      [field](const Config& c) { return seconds_text(field_of(field, c)); });
}

template <class F>
KeyRow boolean(std::string_view name, F field, bool reloadable, std::string_view doc) {
  return row(
      name, ValueKind::Switch, reloadable, doc,
      [field](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        return r.boolean(n, key, field(c));
      },
      [field](const Config& c) { return std::string(field_of(field, c) ? "true" : "false"); });
}

template <class F>
KeyRow text(std::string_view name, F field, bool reloadable, std::string_view doc) {
  return row(
      name, ValueKind::Text, reloadable, doc,
      [field](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        return r.string(n, key, field(c));
      },
      [field](const Config& c) { return std::string(field_of(field, c)); });
}

std::vector<KeyRow> build_table() {
  constexpr std::int64_t kIntMax = INT32_MAX;
  std::vector<KeyRow> t;
  t.push_back(row(
      "listen", ValueKind::Text, false, "HOST:PORT to accept clients on",
      [](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        std::string text;
        if (!r.host_port(n, key, false, text)) return false;
        auto hp = parse_host_port(text);
        c.listen_host = hp->first;
        c.listen_port = hp->second;
        return true;
      },
      [](const Config& c) { return format_host_port(c.listen_host, c.listen_port); }));
  // A changed upstream reaches only the pools created after the reload.
  t.push_back(row(
      "upstream", ValueKind::Text, false,
      "default server, postgresql://[user[:password]@]host[:port][/dbname]",
      [](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        return r.upstream(n, key, c.upstream);
      },
      [](const Config& c) { return c.upstream.display(); }));
  t.push_back(integer(
      "threads", [](Config& c) -> unsigned& { return c.threads; }, 1, 256, false, "I/O threads"));
  // Read at start-up only: Asio's backend is chosen when it is compiled (proxy/io_backend.hpp).
  t.push_back(row(
      "io_backend", ValueKind::Text, false, "auto, io_uring or epoll",
      [](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        return r.choice(n, key, {"auto", "io_uring", "epoll"}, c.io_backend);
      },
      [](const Config& c) { return c.io_backend; }));
  t.push_back(row(
      "pool_mode", ValueKind::Text, true, "session, transaction or statement",
      [](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        return r.pool_mode(n, key, c.pool_mode);
      },
      [](const Config& c) { return std::string(to_string(c.pool_mode)); }));
  t.push_back(integer(
      "pool_size", [](Config& c) -> int& { return c.pool.pool_size; }, 1, kIntMax, true,
      "steady server connections per database and user"));
  t.push_back(integer(
      "min_pool_size", [](Config& c) -> int& { return c.pool.min_pool_size; }, 0, kIntMax, true,
      "server connections opened ahead of demand"));
  t.push_back(integer(
      "max_overflow", [](Config& c) -> int& { return c.pool.max_overflow; }, 0, kIntMax, true,
      "extra server connections while all are busy"));
  t.push_back(seconds(
      "pool_timeout", [](Config& c) -> pool::Duration& { return c.pool.pool_timeout; }, false, true,
      "seconds a client waits for a server connection"));
  t.push_back(row(
      "pool_recycle", ValueKind::Number, true, "seconds a server connection lives; -1 or 0: off",
      [](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        // SQLAlchemy's -1 means off; so does 0.
        if (auto i = n.as_integer(); i && i->get() == -1) {
          c.pool.pool_recycle = pool::Duration::zero();
          return true;
        }
        if (r.duration(n, key, true, c.pool.pool_recycle)) return true;
        return r.fail(key, "must be a number of seconds, or -1 or 0 for off, got " + shown(n));
      },
      [](const Config& c) {
        return c.pool.pool_recycle == pool::Duration::zero() ? std::string("-1")
                                                             : seconds_text(c.pool.pool_recycle);
      }));
  // PgBouncer's name for it, so a PgBouncer config carries over; the later one in a file wins.
  t.push_back(seconds(
      "query_wait_timeout", [](Config& c) -> pool::Duration& { return c.pool.pool_timeout; }, false,
      true, "the same as pool_timeout (PgBouncer's name)"));
  t.push_back(boolean(
      "pool_pre_ping", [](Config& c) -> bool& { return c.pool.pool_pre_ping; }, true,
      "a check of each idle server connection before it is handed out"));
  t.push_back(seconds(
      "server_check_delay", [](Config& c) -> pool::Duration& { return c.pool.server_check_delay; },
      true, true, "idle seconds before a connection gets the pre-ping"));
  t.push_back(seconds(
      "overflow_idle_timeout",
      [](Config& c) -> pool::Duration& { return c.pool.overflow_idle_timeout; }, true, true,
      "idle seconds before an overflow connection closes"));
  t.push_back(seconds(
      "server_idle_timeout",
      [](Config& c) -> pool::Duration& { return c.pool.server_idle_timeout; }, true, true,
      "idle seconds before a server connection closes; 0: never"));
  t.push_back(millis(
      "server_connect_timeout",
      [](Config& c) -> std::chrono::milliseconds& { return c.server_connect_timeout; }, true,
      "seconds to connect and log in to the server"));
  t.push_back(millis(
      "client_login_timeout",
      [](Config& c) -> std::chrono::milliseconds& { return c.client_login_timeout; }, true,
      "seconds a client has to finish its startup and authentication"));
  t.push_back(seconds(
      "query_timeout", [](Config& c) -> pool::Duration& { return c.query_timeout; }, true, true,
      "seconds a request waits for its answer before it is cancelled and its client closed; 0: "
      "off"));
  t.push_back(seconds(
      "idle_transaction_timeout",
      [](Config& c) -> pool::Duration& { return c.idle_transaction_timeout; }, true, true,
      "seconds a client may sit idle inside a transaction before it is closed; 0: off"));
  t.push_back(seconds(
      "client_idle_timeout", [](Config& c) -> pool::Duration& { return c.client_idle_timeout; },
      true, true,
      "seconds a client may sit idle outside a transaction before it is closed; 0: off"));
  t.push_back(seconds(
      "shutdown_timeout", [](Config& c) -> pool::Duration& { return c.shutdown_timeout; }, true,
      true,
      "seconds a shutdown (SIGTERM, SIGINT, SHUTDOWN) lets transactions in flight finish; 0: "
      "exit at once"));
  t.push_back(boolean(
      "tcp_keepalive", [](Config& c) -> bool& { return c.tcp_keepalive; }, true,
      "TCP keepalive on client and server connections"));
  t.push_back(seconds(
      "tcp_keepidle", [](Config& c) -> pool::Duration& { return c.tcp_keepidle; }, true, true,
      "idle seconds before the first keepalive probe; 0: the system's"));
  t.push_back(seconds(
      "tcp_keepintvl", [](Config& c) -> pool::Duration& { return c.tcp_keepintvl; }, true, true,
      "seconds between keepalive probes; 0: the system's"));
  t.push_back(integer(
      "tcp_keepcnt", [](Config& c) -> int& { return c.tcp_keepcnt; }, 0, 1000, true,
      "unanswered keepalive probes before a connection is dropped; 0: the system's"));
  t.push_back(text(
      "server_reset_query", [](Config& c) -> std::string& { return c.server_reset_query; }, true,
      "run when a session-mode client leaves; \"\" for none"));
  t.push_back(integer(
      "max_client_conn", [](Config& c) -> int& { return c.max_client_conn; }, 1, kIntMax, true,
      "client connections accepted at once"));
  // Each server connection's statement cache is sized when the connection opens.
  t.push_back(integer(
      "max_prepared_statements", [](Config& c) -> int& { return c.max_prepared_statements; }, 0,
      kIntMax, false, "named prepared statements kept per server connection; 0: not tracked"));
  t.push_back(row(
      "auth_type", ValueKind::Text, true,
      "client authentication: trust, md5, scram-sha-256 or cert (the TLS certificate's common "
      "name)",
      [](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        return r.auth_type(n, key, c.auth_type);
      },
      [](const Config& c) { return std::string(to_string(c.auth_type)); }));
  t.push_back(text(
      "auth_file", [](Config& c) -> std::string& { return c.auth_file; }, true,
      "userlist in PgBouncer's format"));
  t.push_back(row(
      "admin_users", ValueKind::Text, true, "users allowed on the admin console, comma-separated",
      [](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        return r.name_list(n, key, c.admin_users);
      },
      [](const Config& c) {
        std::string out;
        for (const auto& name : c.admin_users) out += (out.empty() ? "" : ", ") + name;
        return out;
      }));
  // TLS: PgBouncer's keys. New handshakes use what a reload read; established ones keep theirs.
  for (auto side : {"client", "server"}) {
    bool client = std::string_view(side) == "client";
    auto tls = [client](Config& c) -> TlsSettings& { return client ? c.client_tls : c.server_tls; };
    // The names live as long as the table: keep them in static storage.
    static std::deque<std::string> names;  // stable: the table keeps views of them
    auto name = [&](std::string_view key) -> std::string_view {
      return names.emplace_back(std::string(side) + "_tls_" + std::string(key));
    };
    t.push_back(row(
        name("sslmode"), ValueKind::Text, true,
        client ? "TLS from clients: disable, allow, prefer, require (plaintext refused), verify-ca "
                 "(and a client certificate from client_tls_ca_file), verify-full (whose common "
                 "name is the user)"
               : "TLS to servers: disable, allow, prefer (TLS when the server has it), require, "
                 "verify-ca (its certificate from server_tls_ca_file), verify-full (and for the "
                 "host name)",
        [tls](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
          return r.tls_mode(n, key, tls(c).mode);
        },
        [tls](const Config& c) { return std::string(to_string(field_of(tls, c).mode)); }));
    t.push_back(text(
        name("key_file"), [tls](Config& c) -> std::string& { return tls(c).key_file; }, true,
        client ? "pglens' private key (PEM) for client TLS"
               : "private key (PEM) of the certificate pglens shows servers; "
                 "\"\": none"));
    t.push_back(text(
        name("cert_file"), [tls](Config& c) -> std::string& { return tls(c).cert_file; }, true,
        client ? "pglens' certificate chain (PEM) for client TLS"
               : "certificate (PEM) pglens shows servers (cert auth); "
                 "\"\": none"));
    t.push_back(text(
        name("ca_file"), [tls](Config& c) -> std::string& { return tls(c).ca_file; }, true,
        client ? "CA certificates (PEM) client certificates must chain to"
               : "CA certificates (PEM) server certificates must chain to; "
                 "\"\": the system's"));
    t.push_back(text(
        name("protocols"), [tls](Config& c) -> std::string& { return tls(c).protocols; }, true,
        "TLS versions, comma-separated: tlsv1.0 ... tlsv1.3, secure (tlsv1.2,tlsv1.3), all"));
    t.push_back(text(
        name("ciphers"), [tls](Config& c) -> std::string& { return tls(c).ciphers; }, true,
        "TLS 1.2 cipher list in OpenSSL's syntax; default: OpenSSL's"));
  }
  t.push_back(row(
      "http", ValueKind::Text, false, "HOST:PORT for /metrics and the HTTP API; \"\": off",
      [](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        return r.host_port(n, key, true, c.http_listen);
      },
      [](const Config& c) { return c.http_listen; }));
  t.push_back(boolean(
      "analysis", [](Config& c) -> bool& { return c.analysis; }, false,
      "query analysis (fingerprints, statistics, advice); without it pglens only pools and "
      "forwards"));
  t.push_back(integer(
      "analysis_queue_size", [](Config& c) -> int& { return c.analysis_queue_size; }, 1, kIntMax,
      false, "statements waiting for the analyzer; beyond, dropped and counted"));
  t.push_back(integer(
      "max_fingerprints", [](Config& c) -> int& { return c.max_fingerprints; }, 1, kIntMax, false,
      "statistics entries kept (fingerprint, database, user, application)"));
  t.push_back(integer(
      "fingerprint_top_k", [](Config& c) -> int& { return c.fingerprint_top_k; }, 0, 10000, false,
      "fingerprints with their own latency histogram"));
  t.push_back(integer(
      "n_plus_one_min", [](Config& c) -> int& { return c.rules.n_plus_one_min; }, 2, 100000, false,
      "N+1: executions of one query fed by the rows of the query before it"));
  t.push_back(integer(
      "row_by_row_min", [](Config& c) -> int& { return c.rules.row_by_row_min; }, 2, 100000, false,
      "row by row: single-row INSERTs of one statement in a run"));
  t.push_back(integer(
      "index_min_calls", [](Config& c) -> int& { return c.rules.index_min_calls; }, 1, kIntMax,
      false, "missing index: runs of a statement before it is looked at"));
  t.push_back(integer(
      "index_min_total_ms", [](Config& c) -> double& { return c.rules.index_min_total_ms; }, 0,
      kIntMax, false, "missing index: total milliseconds before it is looked at"));
  t.push_back(integer(
      "index_min_rows", [](Config& c) -> double& { return c.rules.index_min_rows; }, 0, INT64_MAX,
      false, "missing index: rows a table needs to be considered"));
  t.push_back(boolean(
      "index_use_hypopg", [](Config& c) -> bool& { return c.rules.index_use_hypopg; }, false,
      "hypopg's check of a suggested index, where the extension is installed"));
  t.push_back(seconds(
      "cache_window", [](Config& c) -> pool::Duration& { return c.rules.cache_window; }, false,
      false, "cache opportunity: seconds within which a repeated read counts as a cache hit"));
  t.push_back(integer(
      "cache_min_calls", [](Config& c) -> int& { return c.rules.cache_min_calls; }, 2, kIntMax,
      false, "cache opportunity: runs of a read before it is judged"));
  t.push_back(integer(
      "cache_min_hit_percent", [](Config& c) -> int& { return c.rules.cache_min_hit_percent; }, 1,
      100, false, "cache opportunity: share of calls a cache would have answered, in percent"));
  t.push_back(integer(
      "cache_max_keys", [](Config& c) -> std::size_t& { return c.rules.cache_max_keys; }, 1,
      kIntMax, false, "cache opportunity: (statement, parameters) keys remembered"));
  t.push_back(row(
      "log_level", ValueKind::Text, true, "trace, debug, info, warn, error, critical or off",
      [](ValueReader& r, const toml::node& n, const std::string& key, Config& c) {
        return r.choice(n, key, {"trace", "debug", "info", "warn", "error", "critical", "off"},
                        c.log_level);
      },
      [](const Config& c) { return c.log_level; }));

  // A switch whose default is true is turned off on the command line: --no-analysis.
  const Config defaults;
  for (auto& r : t)
    if (r.key.kind == ValueKind::Switch && r.key.show(defaults) == "true")
      r.key.flag = "--no-" + r.key.flag.substr(2);
  return t;
}

}  // namespace

const std::vector<KeyRow>& key_table() {
  static const std::vector<KeyRow> table = build_table();
  return table;
}

std::span<const ConfigKey> config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    for (const auto& r : key_table()) out.push_back(r.key);
    return out;
  }();
  return keys;
}

const ConfigKey* find_config_key(std::string_view name) {
  auto keys = config_keys();
  auto it = std::find_if(keys.begin(), keys.end(), [&](const auto& k) { return k.name == name; });
  return it == keys.end() ? nullptr : &*it;
}

}  // namespace pglens::config
