#include "config/pgbouncer_ini.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

namespace pglens::config {

namespace {

constexpr int kMaxIncludeDepth = 10;  // libusual's MAX_INCLUDE

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
         c == '*';
}

// A quoted name: 'x' as libusual reads it, or "x" with "" for a quote, as PgBouncer's docs write
// database names. Returns the position after the closing quote, or npos.
std::size_t read_quoted(std::string_view p, std::string& out) {
  char q = p[0];
  for (std::size_t i = 1; i < p.size(); ++i) {
    if (p[i] != q) {
      out += p[i];
      continue;
    }
    if (q == '"' && i + 1 < p.size() && p[i + 1] == '"') {
      out += '"';
      ++i;
      continue;
    }
    return i + 1;
  }
  return std::string_view::npos;
}

bool read_into(const std::string& path, const ReadTextFile& read, int depth, std::string& section,
               IniRead& out) {
  std::string why;
  auto text = read(path, &why);
  if (!text) {
    out.error = "cannot read " + path + ": " + why;
    return false;
  }
  std::istringstream in(*text);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    std::string where = path + ":" + std::to_string(line_no);
    auto fail = [&](std::string reason) {
      out.error = where + ": " + reason;
      return false;
    };
    std::string_view p = trim(line);
    if (p.empty() || p[0] == '#' || p[0] == ';') continue;
    if (p.substr(0, 8) == "%include" && p.size() > 8 && (p[8] == ' ' || p[8] == '\t')) {
      if (depth + 1 > kMaxIncludeDepth) return fail("%include nested too deep");
      if (!read_into(std::string(trim(p.substr(8))), read, depth + 1, section, out)) {
        if (out.error->rfind("cannot read", 0) == 0) out.error = where + ": " + *out.error;
        return false;
      }
      continue;
    }
    if (p[0] == '[') {
      auto close = p.find(']');
      if (close == std::string_view::npos) return fail("syntax error: no ] after [");
      if (!trim(p.substr(close + 1)).empty()) return fail("syntax error: text after ]");
      section = std::string(p.substr(1, close - 1));
      continue;
    }
    std::string key;
    std::size_t i = 0;
    if (p[0] == '\'' || p[0] == '"') {
      i = read_quoted(p, key);
      if (i == std::string_view::npos || key.empty()) return fail("syntax error: bad quoted key");
    } else {
      while (i < p.size() && is_key_char(p[i])) ++i;
      key = std::string(p.substr(0, i));
    }
    while (i < p.size() && (p[i] == ' ' || p[i] == '\t')) ++i;
    if (key.empty() || i >= p.size() || p[i] != '=')
      return fail("syntax error: expected key = value");
    if (section.empty()) return fail("a value before any [section]");
    out.settings.push_back({section, key, std::string(trim(p.substr(i + 1))), where});
  }
  return true;
}

// ---- values as PgBouncer reads them ----

std::optional<long long> int_value(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 0);  // base 0, like cf_set_int
  if (errno != 0 || *end != '\0') return std::nullopt;
  return v;
}

std::optional<double> seconds_value(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || *end != '\0' || v < 0) return std::nullopt;
  return v;
}

std::string number_text(double v) {
  return fmt::format("{:g}", v);
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
          out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        else
          out += c;
    }
  }
  return out + "\"";
}

std::string toml_key(std::string_view s) {
  bool bare = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  return bare ? std::string(s) : toml_string(s);
}

std::string percent_encode(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~')
      out += c;
    else
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
  }
  return out;
}

// A connection string with its password replaced, for comments and warnings.
std::string redacted(const std::string& connstring) {
  auto pairs = parse_connstring(connstring);
  if (!pairs) return connstring.find("password") == std::string::npos ? connstring : "(...)";
  std::string out;
  for (const auto& [k, v] : *pairs) {
    bool plain = !v.empty() && std::none_of(v.begin(), v.end(), [](char c) {
      return std::isspace(static_cast<unsigned char>(c)) || c == '\'';
    });
    out += (out.empty() ? "" : " ") + k + "=" +
           (k == "password" ? "***"
            : plain         ? v
                            : "'" + v + "'");
  }
  return out;
}

// PgBouncer settings pglens has nothing for, and why (a warning each when set).
const std::map<std::string, std::string, std::less<>>& not_carried() {
  static const std::map<std::string, std::string, std::less<>> reasons = {
      {"logfile", "pglens logs to stderr; the service manager (systemd, Docker) keeps the log"},
      {"syslog", "pglens logs to stderr; the service manager (systemd, Docker) keeps the log"},
      {"syslog_ident", "pglens logs to stderr; the service manager keeps the log"},
      {"syslog_facility", "pglens logs to stderr; the service manager keeps the log"},
      {"pidfile", "pglens writes no pid file; the service manager tracks the process"},
      {"user", "pglens does not switch users; start it as the user it should run as"},
      {"unix_socket_dir", "pglens listens on TCP only (listen)"},
      {"unix_socket_mode", "pglens listens on TCP only (listen)"},
      {"unix_socket_group", "pglens listens on TCP only (listen)"},
      {"auth_hba_file", "pglens has no HBA file: one auth_type for every client"},
      {"auth_user", "pglens reads users and passwords from auth_file only"},
      {"auth_query", "pglens reads users and passwords from auth_file only"},
      {"auth_dbname", "pglens reads users and passwords from auth_file only"},
      {"stats_users",
       "pglens' admin console has no read-only users (admin_users only); the same numbers are "
       "on its HTTP port (/metrics, /api/pools)"},
      {"reserve_pool_timeout",
       "pglens opens overflow connections (max_overflow) as soon as every connection is busy"},
      {"max_db_connections",
       "pglens has no per-database connection limit; pool_size + max_overflow bound each pool"},
      {"max_user_connections",
       "pglens has no per-user connection limit; pool_size + max_overflow bound each pool"},
      {"server_round_robin", "pglens has no choice of which idle server connection goes first"},
      {"ignore_startup_parameters",
       "not needed: pglens accepts any startup parameter (the ones it tracks follow the client)"},
      {"disable_pqexec", "pglens does not refuse multi-statement simple queries"},
      {"application_name_add_host",
       "pglens does not change application_name (SHOW CLIENTS shows the client's address)"},
      {"conffile", "not needed: pglens --config names the file"},
      {"service_name", "not needed (Windows service name)"},
      {"job_name", "not needed (Windows service name)"},
      {"stats_period",
       "not needed: pglens' statistics are counters; Prometheus' rate() averages over any period"},
      {"log_connections", "pglens always logs connections (log_level warn silences them)"},
      {"log_disconnections", "pglens always logs disconnections (log_level warn silences them)"},
      {"log_pooler_errors", "pglens always logs the errors it sends clients"},
      {"log_stats", "pglens logs no periodic statistics: read /metrics or SHOW STATS"},
      {"server_fast_close",
       "pglens has no fast close: a session-mode client keeps its connection to the end"},
      {"server_login_retry", "pglens has no pause between failed connects"},
      {"autodb_idle_timeout", "pglens keeps the pool of every database it has served"},
      {"dns_max_ttl", "pglens has no DNS cache settings (the system resolver at each connect)"},
      {"dns_nxdomain_ttl",
       "pglens has no DNS cache settings (the system resolver at each connect)"},
      {"dns_zone_check_period",
       "pglens has no DNS cache settings (the system resolver at each connect)"},
      {"resolv_conf", "pglens has no DNS cache settings (the system resolver at each connect)"},
      {"client_tls_ecdhcurve", "pglens uses OpenSSL's default key exchange groups"},
      {"client_tls_dheparams", "pglens uses OpenSSL's default key exchange groups"},
      {"suspend_timeout", "pglens has no online restart (SUSPEND, -R)"},
      {"so_reuseport", "pglens has no SO_REUSEPORT (one process per address)"},
      {"pkt_buf", "no such tuning in pglens (its buffers grow as needed)"},
      {"sbuf_loopcnt", "no such tuning in pglens"},
      {"max_packet_size", "no such limit in pglens (Postgres' own limits apply)"},
      {"listen_backlog", "no such tuning in pglens (it uses the system's maximum)"},
      {"tcp_defer_accept", "no such tuning in pglens"},
      {"tcp_socket_buffer", "no such tuning in pglens (the system's buffer sizes)"},
      {"tcp_user_timeout", "no such setting in pglens (query_timeout bounds a request)"},
      {"peer_id", "pglens has no peering (cancel requests reach the process that has the client)"},
      {"track_extra_parameters",
       "pglens tracks a fixed set of parameters (client_encoding, DateStyle, TimeZone, "
       "application_name, ...)"},
  };
  return reasons;
}

class Converter {
 public:
  Converter(const IniRead& ini, std::string working_dir) : working_dir_(std::move(working_dir)) {
    for (const auto& s : ini.settings) {
      if (s.section == "pgbouncer") {
        settings_[s.key] = &s;  // a later one overrides
      } else if (s.section == "databases") {
        if (!databases_.count(s.key)) database_order_.push_back(s.key);
        databases_[s.key] = &s;
      } else {
        others_.push_back(&s);
      }
    }
  }

  PgBouncerConversion run(const std::string& path) {
    convert_globals();
    convert_databases();
    for (const auto* s : others_) {
      if (s->section == "users")
        warn(*s, "pglens has no per-user settings");
      else if (s->section == "peers")
        warn(*s, "pglens has no peering");
      else
        warn(*s, "section [" + s->section + "] is unknown to pglens");
    }
    for (const auto& [key, s] : settings_) {
      if (taken_.count(key)) continue;
      auto reason = not_carried().find(key);
      warn(*s, reason != not_carried().end() ? reason->second : "unknown to pglens");
    }
    std::sort(warnings_.begin(), warnings_.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second < b.second;
    });

    PgBouncerConversion out;
    std::string& t = out.toml;
    t += "# pglens configuration converted from " + path + " by `pglens --from-pgbouncer`.\n";
    t += "# PgBouncer's defaults are written out (pool_mode, sizes, timeouts), so pglens behaves\n";
    t += "# as that PgBouncer did; each value says where it came from.\n";
    if (warnings_.empty()) {
      t += "# Every setting was carried over.\n";
    } else {
      t += fmt::format("#\n# Not carried over ({}):\n", warnings_.size());
      for (const auto& [order, w] : warnings_) {
        t += "#   " + w + "\n";
        out.warnings.push_back(w);
      }
    }
    t += "\n[pglens]\n";
    for (const auto& line : lines_) t += line + "\n";
    t += "\n[databases]\n";
    if (routes_.empty()) t += "# none\n";
    for (const auto& line : routes_) t += line + "\n";
    return out;
  }

 private:
  // ---- bookkeeping ----

  const IniSetting* take(const std::string& key) {
    taken_.insert(key);
    auto it = settings_.find(key);
    return it == settings_.end() ? nullptr : it->second;
  }

  void warn(const IniSetting& s, const std::string& why) {
    std::string value = s.section == "databases" ? redacted(s.value) : s.value;
    warn_text(s, s.key + " = " + value + ": " + why);
  }
  // Kept in file and line order (line numbers compared as numbers).
  void warn_text(const IniSetting& s, const std::string& what) {
    auto colon = s.where.rfind(':');
    std::string order = s.where;
    if (colon != std::string::npos)
      order =
          s.where.substr(0, colon) + fmt::format(":{:08d}", std::atoi(s.where.c_str() + colon + 1));
    warnings_.emplace_back(order, s.where + ": " + what);
  }

  static std::string origin(const IniSetting& s) {
    return s.where + ": " + s.key + " = " + s.value;
  }
  static std::string default_origin(std::string_view pg_key, std::string_view value) {
    return fmt::format("PgBouncer's default {} = {}", pg_key, value);
  }

  void set(std::string_view key, const std::string& value, const std::string& why) {
    lines_.push_back(fmt::format("{} = {}  # {}", key, value, why));
  }

  std::string absolute(const std::string& file) const {
    if (file.empty() || file[0] == '/' || file[0] == '~' || working_dir_.empty()) return file;
    return (std::filesystem::path(working_dir_) / file).lexically_normal().string();
  }

  // ---- [pgbouncer] ----

  // An integer setting carried as it is, or PgBouncer's default when unset.
  std::optional<long long> integer(const std::string& pg_key, std::string_view key,
                                   std::optional<long long> pg_default, long long min,
                                   const std::string& below_min_reason) {
    const auto* s = take(pg_key);
    if (!s) {
      if (pg_default)
        set(key, std::to_string(*pg_default), default_origin(pg_key, std::to_string(*pg_default)));
      return pg_default;
    }
    auto v = int_value(s->value);
    if (!v) {
      warn(*s, "not an integer");
      return std::nullopt;
    }
    if (*v < min) {
      warn(*s, below_min_reason);
      return std::nullopt;
    }
    set(key, std::to_string(*v), origin(*s));
    return v;
  }

  // Seconds carried as they are. zero_reason: why 0 cannot be carried, or "" when pglens takes
  // 0 with PgBouncer's meaning.
  void seconds(const std::string& pg_key, std::string_view key, std::optional<double> pg_default,
               const std::string& zero_reason) {
    const auto* s = take(pg_key);
    if (!s) {
      if (pg_default)
        set(key, number_text(*pg_default), default_origin(pg_key, number_text(*pg_default)));
      return;
    }
    auto v = seconds_value(s->value);
    if (!v) {
      warn(*s, "not a number of seconds");
      return;
    }
    if (*v == 0 && !zero_reason.empty()) {
      warn(*s, zero_reason);
      return;
    }
    set(key, number_text(*v), origin(*s));
  }

  void text(const std::string& pg_key, std::string_view key, std::optional<std::string> pg_default,
            bool is_file = false) {
    const auto* s = take(pg_key);
    if (!s) {
      if (pg_default) set(key, toml_string(*pg_default), default_origin(pg_key, *pg_default));
      return;
    }
    std::string v = is_file ? absolute(s->value) : s->value;
    set(key, toml_string(v), origin(*s) + (v != s->value ? " (made absolute)" : ""));
  }

  void convert_listen() {
    const auto* addr = take("listen_addr");
    const auto* port_setting = take("listen_port");
    long long port = 6432;
    std::string from = "PgBouncer's default listen_port = 6432";
    if (port_setting) {
      auto v = int_value(port_setting->value);
      if (v && *v >= 1 && *v <= 65535) {
        port = *v;
        from = origin(*port_setting);
      } else {
        warn(*port_setting, "not a port number; 6432 is used");
      }
    }
    std::string host = "127.0.0.1";
    if (!addr || trim(addr->value).empty()) {
      if (addr) from = origin(*addr) + "; " + from;
      if (addr)
        warn(*addr,
             "PgBouncer listened on its Unix socket only; pglens listens on TCP, here 127.0.0.1");
      else
        warn_text(IniSetting{"pgbouncer", "listen_addr", "", "(not set)"},
                  "listen_addr is not set: PgBouncer listened on its Unix socket only; pglens "
                  "listens on TCP, here 127.0.0.1");
    } else {
      from = origin(*addr) + "; " + from;
      std::string first(trim(addr->value.substr(0, addr->value.find(','))));
      if (addr->value.find(',') != std::string::npos)
        warn(*addr, "pglens listens on one address: " + first + " only");
      if (first == "*") {
        host = "0.0.0.0";
        warn(*addr,
             "* is every IPv4 and IPv6 address for PgBouncer; pglens listens on one: 0.0.0.0 "
             "(IPv4)");
      } else if (lower(first) == "localhost") {
        host = "127.0.0.1";
      } else {
        host = first;
        bool numeric = host.find(':') != std::string::npos ||
                       host.find_first_not_of("0123456789.") == std::string::npos;
        if (!numeric)
          warn(*addr, "pglens listens on an address, not a host name: put " + host + "'s address");
      }
    }
    bool v6 = host.find(':') != std::string::npos;
    set("listen", toml_string((v6 ? "[" + host + "]" : host) + ":" + std::to_string(port)), from);
  }

  void convert_auth() {
    const auto* s = take("auth_type");
    std::string type = s ? lower(trim(s->value)) : "md5";
    std::string from = s ? origin(*s) : default_origin("auth_type", "md5");
    std::string carried = type;
    if (type == "plain") {
      carried = "md5";
      warn(*s,
           "pglens does not ask for cleartext passwords; md5 checks the same auth_file "
           "(SCRAM for users with a SCRAM secret)");
    } else if (type == "any") {
      carried = "trust";
      warn(*s, "pglens has no \"any\"; trust lets every user in under the name it gives");
    } else if (type == "hba" || type == "pam") {
      carried = "md5";
      warn(*s, "pglens has no " + type + " authentication; md5 against auth_file instead");
    } else if (type == "trust") {
      warn(*s, "pglens' trust lets in any user name; PgBouncer's requires the user in auth_file");
    } else if (type != "md5" && type != "scram-sha-256" && type != "cert") {
      warn(*s, "unknown auth_type; md5 instead");
      carried = "md5";
    }
    set("auth_type", toml_string(carried), from);
    text("auth_file", "auth_file", std::nullopt, true);
    if (carried != "trust" && carried != "cert" && !settings_.count("auth_file"))
      warn_text(s ? *s : IniSetting{"pgbouncer", "auth_type", "", "(not set)"},
                "auth_type " + carried + " needs auth_file in pglens (no auth_query): set it");
  }

  void convert_tls() {
    static const std::set<std::string, std::less<>> modes = {"disable", "allow",     "prefer",
                                                             "require", "verify-ca", "verify-full"};
    static const std::set<std::string, std::less<>> cipher_aliases = {
        "default", "secure", "compat", "legacy", "insecure", "all", "normal", "fast"};
    for (std::string side : {"client", "server"}) {
      auto name = [&](std::string_view k) { return side + "_tls_" + std::string(k); };
      if (const auto* s = take(name("sslmode"))) {
        auto mode = lower(trim(s->value));
        if (modes.count(mode))
          set(name("sslmode"), toml_string(mode), origin(*s));
        else
          warn(*s, "unknown TLS mode");
      } else if (side == "server") {
        lines_.push_back(
            "# server_tls_sslmode: not set; pglens' default \"prefer\" asks servers for TLS and "
            "goes on in the clear without it (PgBouncer 1.18's default: disable)");
      }
      for (auto file : {"key_file", "cert_file", "ca_file"})
        text(name(file), name(file), std::nullopt, true);
      if (const auto* s = take(name("protocols"))) {
        auto v = lower(trim(s->value));
        if (v == "legacy") v = "all";
        set(name("protocols"), toml_string(v), origin(*s));
      }
      if (const auto* s = take(name("ciphers"))) {
        auto v = lower(trim(s->value));
        if (v == "fast")
          lines_.push_back("# " + name("ciphers") + " = fast (" + s->where +
                           "): OpenSSL's default list, pglens' default");
        else if (cipher_aliases.count(v))
          warn(*s,
               "PgBouncer's alias; pglens takes an OpenSSL cipher list and uses OpenSSL's "
               "default without one");
        else
          set(name("ciphers"), toml_string(s->value), origin(*s));
      }
    }
  }

  void convert_globals() {
    convert_listen();
    // upstream: the '*' fallback, written by convert_databases() (it goes here, in order)
    upstream_line_ = lines_.size();
    lines_.emplace_back();

    if (const auto* s = take("pool_mode")) {
      auto mode = lower(trim(s->value));
      if (mode == "session" || mode == "transaction" || mode == "statement")
        set("pool_mode", toml_string(mode), origin(*s));
      else {
        warn(*s, "unknown pool_mode; PgBouncer's default session instead");
        set("pool_mode", "\"session\"", default_origin("pool_mode", "session"));
      }
    } else {
      set("pool_mode", "\"session\"", default_origin("pool_mode", "session"));
    }
    auto size = integer("default_pool_size", "pool_size", 20, 1,
                        "pglens needs at least one connection per pool");
    pool_size_ = size.value_or(20);
    if (const auto* s = take("min_pool_size")) {
      auto v = int_value(s->value);
      if (!v || *v < 0) {
        warn(*s, "not a count of connections");
      } else if (*v > pool_size_) {
        set("min_pool_size", std::to_string(pool_size_),
            origin(*s) + ", capped at the pool size as PgBouncer does");
      } else {
        set("min_pool_size", std::to_string(*v), origin(*s));
      }
    } else {
      set("min_pool_size", "0", default_origin("min_pool_size", "0"));
    }
    integer("reserve_pool_size", "max_overflow", 0, 0, "not a count of connections");
    seconds("query_wait_timeout", "pool_timeout", 120,
            "PgBouncer waits for ever; pglens needs a limit (pool_timeout), its default 30 s "
            "applies");
    seconds("server_lifetime", "pool_recycle", 3600,
            "PgBouncer uses each server connection once; pglens has no such mode (0 means never "
            "in pglens)");
    {
      const auto* s = take("server_check_query");
      std::string query = s ? std::string(trim(s->value)) : "select 1";
      bool on = !query.empty();
      set("pool_pre_ping", on ? "true" : "false",
          s ? origin(*s) : default_origin("server_check_query", "select 1"));
      if (s && on && lower(query) != "select 1")
        warn(*s, "pglens checks a connection with its own empty query, not this text");
    }
    seconds("server_check_delay", "server_check_delay", 30, "");
    {
      // PgBouncer closes its reserve connections like the others.
      auto it = settings_.find("server_idle_timeout");
      const auto* s = it == settings_.end() ? nullptr : it->second;
      double v = 600;
      if (s) v = seconds_value(s->value).value_or(600);
      set("overflow_idle_timeout", number_text(v),
          (s ? origin(*s) : default_origin("server_idle_timeout", "600")) +
              " (PgBouncer's reserve connections close like the others)");
    }
    seconds("server_idle_timeout", "server_idle_timeout", 600, "");
    seconds("server_connect_timeout", "server_connect_timeout", 15,
            "PgBouncer waits for ever; pglens needs a limit, its default 15 s applies");
    seconds("client_login_timeout", "client_login_timeout", 60,
            "PgBouncer waits for ever; pglens needs a limit, its default 60 s applies");
    seconds("query_timeout", "query_timeout", 0, "");
    seconds("idle_transaction_timeout", "idle_transaction_timeout", 0, "");
    seconds("client_idle_timeout", "client_idle_timeout", 0, "");
    if (const auto* s = take("tcp_keepalive")) {
      if (auto v = int_value(s->value))
        set("tcp_keepalive", *v != 0 ? "true" : "false", origin(*s));
      else
        warn(*s, "not 0 or 1");
    }
    seconds("tcp_keepidle", "tcp_keepidle", std::nullopt, "");
    seconds("tcp_keepintvl", "tcp_keepintvl", std::nullopt, "");
    integer("tcp_keepcnt", "tcp_keepcnt", std::nullopt, 0, "not a count");
    text("server_reset_query", "server_reset_query", "DISCARD ALL");
    if (const auto* s = take("server_reset_query_always");
        s && int_value(s->value).value_or(0) != 0)
      warn(*s,
           "pglens runs server_reset_query in session mode only; in transaction mode it "
           "resets a connection whenever a client left session state on it");
    integer("max_client_conn", "max_client_conn", 100, 1, "pglens needs at least one client");
    integer("max_prepared_statements", "max_prepared_statements", std::nullopt, 0, "not a count");
    convert_auth();
    if (const auto* s = take("admin_users")) set("admin_users", toml_string(s->value), origin(*s));
    convert_tls();
    if (const auto* s = take("verbose")) {
      auto v = int_value(s->value).value_or(0);
      if (v > 0) set("log_level", v >= 2 ? "\"trace\"" : "\"debug\"", origin(*s));
    }
  }

  // ---- [databases] ----

  struct Route {
    std::string host = "127.0.0.1", port = "5432", user, password, dbname;
    std::vector<std::string> overrides;  // "pool_size = 5"
  };

  // Reads one connection string into a route; false when it cannot be used at all.
  bool read_route(const IniSetting& s, Route& r, bool fallback) {
    std::string error;
    auto pairs = parse_connstring(s.value, &error);
    if (!pairs) {
      warn(s, "not carried: " + error);
      return false;
    }
    bool host_set = false;
    std::optional<long long> size, min;
    for (const auto& [k, v] : *pairs) {
      if (k == "host") {
        host_set = true;
        std::string first = v.substr(0, v.find(','));
        if (v.find(',') != std::string::npos)
          warn_text(s, s.key + ": host=" + v + ": pglens connects to one host: " + first);
        if (!first.empty() && (first[0] == '/' || first[0] == '@'))
          warn_text(s, s.key + ": host=" + v +
                           ": a Unix socket; pglens connects over TCP, here to 127.0.0.1");
        else
          r.host = first;
      } else if (k == "port") {
        auto p = int_value(v);
        if (p && *p >= 1 && *p <= 65535)
          r.port = std::to_string(*p);
        else
          warn_text(s, s.key + ": port=" + v + ": not a port number; 5432 is used");
      } else if (k == "dbname") {
        r.dbname = v;
      } else if (k == "user") {
        r.user = v;
      } else if (k == "password") {
        r.password = v;
      } else if (k == "pool_mode") {
        auto mode = lower(v);
        if (mode == "session" || mode == "transaction" || mode == "statement")
          r.overrides.push_back("pool_mode = " + toml_string(mode));
        else
          warn_text(s, s.key + ": pool_mode=" + v + ": unknown pool mode");
      } else if (k == "pool_size" || k == "min_pool_size" || k == "reserve_pool" ||
                 k == "reserve_pool_size") {
        auto n = int_value(v);
        long long floor = k == "pool_size" ? 1 : 0;
        if (!n || *n < floor) {
          warn_text(s, s.key + ": " + k + "=" + v + ": not carried (pglens needs at least " +
                           std::to_string(floor) + ")");
        } else if (k == "pool_size") {
          size = n;
        } else if (k == "min_pool_size") {
          min = n;
        } else {
          r.overrides.push_back("max_overflow = " + std::to_string(*n));
        }
      } else {
        static const std::map<std::string, std::string, std::less<>> reasons = {
            {"connect_query", "pglens runs no query on a new server connection"},
            {"max_db_connections", "pglens has no per-database connection limit"},
            {"client_encoding",
             "pglens sends no parameters of its own; clients' startup parameters are applied"},
            {"datestyle",
             "pglens sends no parameters of its own; clients' startup parameters are applied"},
            {"timezone",
             "pglens sends no parameters of its own; clients' startup parameters are applied"},
            {"application_name",
             "pglens sends no parameters of its own; clients' startup parameters are applied"},
            {"auth_user", "pglens reads users and passwords from auth_file only"},
            {"auth_dbname", "pglens reads users and passwords from auth_file only"},
            {"auth_query", "pglens reads users and passwords from auth_file only"},
            {"server_lifetime", "pglens has one pool_recycle for every database"},
            {"load_balance_hosts", "pglens connects to one host"},
        };
        auto it = reasons.find(k);
        warn_text(s, s.key + ": " + k + "=" + (k == "password" ? "***" : v) + ": " +
                         (it != reasons.end() ? it->second : "unknown to pglens"));
      }
    }
    if (!host_set)
      warn_text(s, s.key +
                       ": no host=: PgBouncer used its Unix socket; pglens connects over "
                       "TCP, here to 127.0.0.1");
    if (size) r.overrides.insert(r.overrides.begin(), "pool_size = " + std::to_string(*size));
    if (min) {
      long long cap = size.value_or(pool_size_);
      r.overrides.push_back("min_pool_size = " + std::to_string(std::min(*min, cap)));
    }
    if (fallback) {
      if (!r.user.empty())
        warn_text(
            s, "* : user=" + r.user + ": pglens' default upstream logs in as each client's user");
      if (!r.dbname.empty())
        warn_text(s, "* : dbname=" + r.dbname +
                         ": pglens' default upstream uses each client's database name");
      for (const auto& o : r.overrides)
        warn_text(s, "* : " + o + ": pglens' default upstream takes the [pglens] pool settings");
    }
    return true;
  }

  std::string url(const Route& r, bool fallback) const {
    std::string u = "postgresql://";
    if (!fallback && !r.user.empty())
      u += percent_encode(r.user) + (r.password.empty() ? "" : ":" + percent_encode(r.password)) +
           "@";
    else if (!r.password.empty())
      u += ":" + percent_encode(r.password) + "@";
    u += r.host.find(':') != std::string::npos ? "[" + r.host + "]" : r.host;
    u += ":" + r.port;
    if (!fallback) u += "/" + percent_encode(r.dbname);
    return u;
  }

  void convert_databases() {
    std::string upstream = "upstream = \"postgresql://127.0.0.1:5432\"  # no '*' in [databases]";
    bool has_fallback = false;
    for (const auto& name : database_order_) {
      const auto& s = *databases_[name];
      if (name == "*") {
        Route r;
        if (!read_route(s, r, true)) continue;
        has_fallback = true;
        upstream = "upstream = " + toml_string(url(r, true)) + "  # " + s.where +
                   ": * = " + redacted(s.value);
        continue;
      }
      if (name == "pgbouncer" || name == "pglens") {
        warn(s, "the name is pglens' admin console");
        continue;
      }
      Route r;
      if (!read_route(s, r, false)) continue;
      // pglens honours a route's user only with its dbname; PgBouncer's default dbname is the
      // client's database name, which for this route is its name.
      if (r.dbname.empty()) r.dbname = name;
      std::string entry = "upstream = " + toml_string(url(r, false));
      for (const auto& o : r.overrides) entry += ", " + o;
      routes_.push_back("# " + s.where + ": " + name + " = " + redacted(s.value));
      routes_.push_back(toml_key(name) + " = { " + entry + " }");
    }
    if (!has_fallback && !databases_.empty() && !database_order_.empty())
      warn_text(*databases_[database_order_.front()],
                "no '*' in [databases]: PgBouncer refused other database names; pglens sends "
                "them to its default upstream (postgresql://127.0.0.1:5432 here)");
    if (databases_.empty())
      warn_text(IniSetting{"databases", "", "", "[databases]"},
                "no database: PgBouncer refused every client; pglens sends them to its default "
                "upstream (postgresql://127.0.0.1:5432 here): check it");
    lines_[upstream_line_] = upstream;
  }

  std::string working_dir_;
  std::map<std::string, const IniSetting*> settings_;
  std::map<std::string, const IniSetting*> databases_;
  std::vector<std::string> database_order_;
  std::vector<const IniSetting*> others_;
  std::set<std::string> taken_;
  std::vector<std::pair<std::string, std::string>> warnings_;  // (sort key, text)
  std::vector<std::string> lines_, routes_;
  std::size_t upstream_line_ = 0;
  long long pool_size_ = 20;
};

}  // namespace

IniRead read_pgbouncer_ini(const std::string& path, const ReadTextFile& read) {
  IniRead out;
  std::string section;
  read_into(path, read, 0, section, out);
  return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_connstring(
    const std::string& text, std::string* error) {
  std::vector<std::pair<std::string, std::string>> pairs;
  auto fail = [&](std::string why) {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  std::size_t i = 0, n = text.size();
  auto skip_ws = [&] {
    while (i < n && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  while (true) {
    skip_ws();
    if (i >= n) return pairs;
    std::size_t start = i;
    while (i < n && text[i] != '=' && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    std::string key = text.substr(start, i - start);
    skip_ws();
    if (key.empty() || i >= n || text[i] != '=')
      return fail("expected key=value at \"" + text.substr(start) + "\"");
    ++i;
    skip_ws();
    std::string value;
    if (i < n && text[i] == '\'') {
      ++i;
      while (true) {
        if (i >= n) return fail("unterminated quote in " + key + "=");
        if (text[i] == '\'') {
          if (i + 1 < n && text[i + 1] == '\'') {
            value += '\'';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        value += text[i++];
      }
    } else {
      while (i < n && text[i] != ' ') value += text[i++];
    }
    if (value.empty()) return fail("empty value for " + key + "=");
    pairs.emplace_back(lower(key), std::move(value));
  }
}

PgBouncerConversion convert_pgbouncer_ini(const std::string& path, const ReadTextFile& read,
                                          const std::string& working_dir) {
  auto ini = read_pgbouncer_ini(path, read);
  if (ini.error) {
    PgBouncerConversion out;
    out.error = *ini.error;
    return out;
  }
  return Converter(ini, working_dir).run(path);
}

}  // namespace pglens::config
