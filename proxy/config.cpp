#include "proxy/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <vector>

#include "proxy/auth/userlist.hpp"

namespace pglens::proxy {

namespace {

// Past this a duration would overflow steady_clock's nanoseconds.
constexpr double kMaxSeconds = 1e9;
// Reserved: a client naming them reaches the admin console, never a route.
constexpr std::string_view kAdminDatabases[] = {"pglens", "pgbouncer"};
constexpr std::string_view kLogLevels[] = {"trace", "debug",    "info", "warn",
                                           "error", "critical", "off"};

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

// What the user wrote, for "got ..." in a reason: the value when it is short, else its type.
std::string shown(const toml::node& n) {
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto f = n.as_floating_point()) {
    std::ostringstream s;
    s << f->get();
    return s.str();
  }
  if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
  if (auto s = n.as_string()) return "\"" + s->get() + "\"";
  return type_name(n);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string unknown_key_reason(std::string_view key, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_distance = 3;  // closer than this reads as a typo
  for (const auto& k : known) {
    if (auto d = edit_distance(key, k); d < best_distance) best = k, best_distance = d;
  }
  return best.empty() ? "unknown key" : "unknown key (did you mean " + best + "?)";
}

std::optional<PoolMode> parse_pool_mode(std::string_view s) {
  if (s == "session") return PoolMode::Session;
  if (s == "transaction") return PoolMode::Transaction;
  if (s == "statement") return PoolMode::Statement;
  return std::nullopt;
}

std::optional<AuthType> parse_auth_type(std::string_view s) {
  if (s == "trust") return AuthType::Trust;
  if (s == "md5") return AuthType::Md5;
  if (s == "scram-sha-256") return AuthType::ScramSha256;
  return std::nullopt;
}

// Typed reads of one value. Each returns false and records why on a bad value; the caller stops at
// the first error.
class Reader {
 public:
  const ConfigError& error() const { return error_; }

  bool fail(std::string key, std::string reason) {
    error_ = {std::move(key), std::move(reason)};
    return false;
  }

  bool string(const toml::node& n, const std::string& key, std::string& out) {
    auto s = n.as_string();
    if (!s) return fail(key, "must be a string, got " + type_name(n));
    out = s->get();
    return true;
  }

  bool boolean(const toml::node& n, const std::string& key, bool& out) {
    auto b = n.as_boolean();
    if (!b) return fail(key, "must be true or false, got " + shown(n));
    out = b->get();
    return true;
  }

  template <class Int>
  bool integer(const toml::node& n, const std::string& key, std::int64_t min, std::int64_t max,
               Int& out) {
    auto i = n.as_integer();
    if (!i || i->get() < min || i->get() > max) {
      std::string want = min == 1   ? "a positive integer"
                         : min == 0 ? "a non-negative integer"
                                    : "an integer";
      if (max < std::numeric_limits<int>::max())
        want = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
      return fail(key, "must be " + want + ", got " + shown(n));
    }
    out = static_cast<Int>(i->get());
    return true;
  }

  // Seconds as an integer or a float. zero_ok: 0 is allowed (it means "off" or "at once").
  bool seconds(const toml::node& n, const std::string& key, bool zero_ok, double& out) {
    std::optional<double> s;
    if (auto i = n.as_integer()) s = static_cast<double>(i->get());
    if (auto f = n.as_floating_point()) s = f->get();
    if (!s || !std::isfinite(*s) || *s < 0 || (*s == 0 && !zero_ok) || *s > kMaxSeconds) {
      std::string want =
          zero_ok ? "a number of seconds, 0 or more" : "a positive number of seconds";
      return fail(key, "must be " + want + ", got " + shown(n));
    }
    out = *s;
    return true;
  }

  bool duration(const toml::node& n, const std::string& key, bool zero_ok, pool::Duration& out) {
    double s = 0;
    if (!seconds(n, key, zero_ok, s)) return false;
    out = std::chrono::duration_cast<pool::Duration>(std::chrono::duration<double>(s));
    return true;
  }

  bool millis(const toml::node& n, const std::string& key, std::chrono::milliseconds& out) {
    double s = 0;
    if (!seconds(n, key, false, s)) return false;
    out = std::chrono::round<std::chrono::milliseconds>(std::chrono::duration<double>(s));
    if (out.count() == 0) return fail(key, "must be at least 0.001 seconds, got " + shown(n));
    return true;
  }

  bool upstream(const toml::node& n, const std::string& key, Upstream& out) {
    std::string text, why;
    if (!string(n, key, text)) return false;
    auto u = Upstream::parse(text, &why);
    if (!u) return fail(key, why);
    out = std::move(*u);
    return true;
  }

  bool pool_mode(const toml::node& n, const std::string& key, PoolMode& out) {
    std::string text;
    if (!string(n, key, text)) return false;
    auto mode = parse_pool_mode(text);
    if (!mode)
      return fail(key,
                  "must be \"session\", \"transaction\" or \"statement\", got \"" + text + "\"");
    out = *mode;
    return true;
  }

  bool host_port(const toml::node& n, const std::string& key, bool empty_ok, std::string& out) {
    if (!string(n, key, out)) return false;
    if (out.empty() && empty_ok) return true;
    if (!parse_host_port(out))
      return fail(key, "must be HOST:PORT (port 1-65535, [brackets] around an IPv6 host), got \"" +
                           out + "\"");
    return true;
  }

  // An array of names, or one string with commas between them as PgBouncer writes it.
  bool name_list(const toml::node& n, const std::string& key, std::vector<std::string>& out) {
    out.clear();
    auto add = [&](std::string_view name) {
      auto first = name.find_first_not_of(" \t");
      if (first == std::string_view::npos) return;
      auto last = name.find_last_not_of(" \t");
      out.emplace_back(name.substr(first, last - first + 1));
    };
    if (auto s = n.as_string()) {
      std::string_view rest = s->get();
      for (auto comma = rest.find(','); comma != std::string_view::npos; comma = rest.find(',')) {
        add(rest.substr(0, comma));
        rest.remove_prefix(comma + 1);
      }
      add(rest);
      return true;
    }
    auto a = n.as_array();
    if (!a)
      return fail(key,
                  "must be an array of strings or a comma-separated string, got " + type_name(n));
    for (const auto& item : *a) {
      auto s = item.as_string();
      if (!s || s->get().empty())
        return fail(key, "must hold non-empty strings, got " + shown(item));
      out.push_back(s->get());
    }
    return true;
  }

 private:
  ConfigError error_;
};

using Handler = std::function<bool(const toml::node&, const std::string& key)>;

// Applies each key of `table` through its handler; an unknown key is an error.
bool apply(Reader& r, const toml::table& table, const std::string& prefix,
           const std::map<std::string, Handler, std::less<>>& handlers) {
  std::vector<std::string> known;
  for (const auto& [name, handler] : handlers) known.push_back(name);
  for (auto&& [k, v] : table) {
    std::string key = prefix + std::string(k.str());
    auto h = handlers.find(k.str());
    if (h == handlers.end()) return r.fail(key, unknown_key_reason(k.str(), known));
    if (!h->second(v, key)) return false;
  }
  return true;
}

bool read_pglens(Reader& r, const toml::table& t, Config& c, bool& auth_file_set) {
  auto& p = c.pool;
  std::map<std::string, Handler, std::less<>> h{
      {"listen",
       [&](auto& n, auto& k) {
         std::string text;
         if (!r.host_port(n, k, false, text)) return false;
         auto hp = parse_host_port(text);
         c.listen_host = hp->first;
         c.listen_port = hp->second;
         return true;
       }},
      {"upstream", [&](auto& n, auto& k) { return r.upstream(n, k, c.upstream); }},
      {"threads", [&](auto& n, auto& k) { return r.integer(n, k, 1, 256, c.threads); }},
      {"pool_mode", [&](auto& n, auto& k) { return r.pool_mode(n, k, c.pool_mode); }},
      {"pool_size", [&](auto& n, auto& k) { return r.integer(n, k, 1, INT32_MAX, p.pool_size); }},
      {"min_pool_size",
       [&](auto& n, auto& k) { return r.integer(n, k, 0, INT32_MAX, p.min_pool_size); }},
      {"max_overflow",
       [&](auto& n, auto& k) { return r.integer(n, k, 0, INT32_MAX, p.max_overflow); }},
      {"pool_timeout", [&](auto& n, auto& k) { return r.duration(n, k, false, p.pool_timeout); }},
      {"pool_recycle",
       [&](auto& n, auto& k) {
         // SQLAlchemy's -1 means off; so does 0.
         if (auto i = n.as_integer(); i && i->get() == -1) {
           p.pool_recycle = pool::Duration::zero();
           return true;
         }
         if (r.duration(n, k, true, p.pool_recycle)) return true;
         return r.fail(k, "must be a number of seconds, or -1 or 0 for off, got " + shown(n));
       }},
      {"pool_pre_ping", [&](auto& n, auto& k) { return r.boolean(n, k, p.pool_pre_ping); }},
      {"server_check_delay",
       [&](auto& n, auto& k) { return r.duration(n, k, true, p.server_check_delay); }},
      {"overflow_idle_timeout",
       [&](auto& n, auto& k) { return r.duration(n, k, true, p.overflow_idle_timeout); }},
      {"server_idle_timeout",
       [&](auto& n, auto& k) { return r.duration(n, k, true, p.server_idle_timeout); }},
      {"server_connect_timeout",
       [&](auto& n, auto& k) { return r.millis(n, k, c.server_connect_timeout); }},
      {"client_login_timeout",
       [&](auto& n, auto& k) { return r.millis(n, k, c.client_login_timeout); }},
      {"server_reset_query",
       [&](auto& n, auto& k) { return r.string(n, k, c.server_reset_query); }},
      {"max_client_conn",
       [&](auto& n, auto& k) { return r.integer(n, k, 1, INT32_MAX, c.max_client_conn); }},
      {"max_prepared_statements",
       [&](auto& n, auto& k) { return r.integer(n, k, 0, INT32_MAX, c.max_prepared_statements); }},
      {"auth_type",
       [&](auto& n, auto& k) {
         std::string text;
         if (!r.string(n, k, text)) return false;
         auto type = parse_auth_type(text);
         if (!type)
           return r.fail(k,
                         "must be \"trust\", \"md5\" or \"scram-sha-256\", got \"" + text + "\"");
         c.auth_type = *type;
         return true;
       }},
      {"auth_file",
       [&](auto& n, auto& k) {
         auth_file_set = true;
         return r.string(n, k, c.auth_file);
       }},
      {"admin_users", [&](auto& n, auto& k) { return r.name_list(n, k, c.admin_users); }},
      {"http", [&](auto& n, auto& k) { return r.host_port(n, k, true, c.http_listen); }},
      {"analysis", [&](auto& n, auto& k) { return r.boolean(n, k, c.analysis); }},
      {"analysis_queue_size",
       [&](auto& n, auto& k) { return r.integer(n, k, 1, INT32_MAX, c.analysis_queue_size); }},
      {"max_fingerprints",
       [&](auto& n, auto& k) { return r.integer(n, k, 1, INT32_MAX, c.max_fingerprints); }},
      {"n_plus_one_min",
       [&](auto& n, auto& k) { return r.integer(n, k, 2, 100000, c.rules.n_plus_one_min); }},
      {"row_by_row_min",
       [&](auto& n, auto& k) { return r.integer(n, k, 2, 100000, c.rules.row_by_row_min); }},
      {"index_min_calls",
       [&](auto& n, auto& k) { return r.integer(n, k, 1, INT32_MAX, c.rules.index_min_calls); }},
      {"index_min_total_ms",
       [&](auto& n, auto& k) {
         std::int64_t v = 0;
         if (!r.integer(n, k, 0, INT32_MAX, v)) return false;
         c.rules.index_min_total_ms = static_cast<double>(v);
         return true;
       }},
      {"index_min_rows",
       [&](auto& n, auto& k) {
         std::int64_t v = 0;
         if (!r.integer(n, k, 0, INT64_MAX, v)) return false;
         c.rules.index_min_rows = static_cast<double>(v);
         return true;
       }},
      {"index_use_hypopg",
       [&](auto& n, auto& k) { return r.boolean(n, k, c.rules.index_use_hypopg); }},
      {"fingerprint_top_k",
       [&](auto& n, auto& k) { return r.integer(n, k, 0, 10000, c.fingerprint_top_k); }},
      {"log_level",
       [&](auto& n, auto& k) {
         std::string text;
         if (!r.string(n, k, text)) return false;
         if (std::find(std::begin(kLogLevels), std::end(kLogLevels), text) == std::end(kLogLevels))
           return r.fail(
               k, "must be trace, debug, info, warn, error, critical or off, got \"" + text + "\"");
         c.log_level = text;
         return true;
       }},
  };
  return apply(r, t, "", h);
}

bool read_database(Reader& r, const std::string& name, const toml::node& n, Config& c) {
  std::string key = "databases." + name;
  if (name.empty()) return r.fail(key, "a database name must not be empty");
  for (auto reserved : kAdminDatabases)
    if (name == reserved) return r.fail(key, "is reserved for the admin console");
  auto t = n.as_table();
  if (!t)
    return r.fail(
        key, "must be a table like { upstream = \"postgresql://host/db\" }, got " + type_name(n));
  DatabaseRoute route;
  bool has_upstream = false;
  std::map<std::string, Handler, std::less<>> h{
      {"upstream",
       [&](auto& v, auto& k) {
         has_upstream = true;
         return r.upstream(v, k, route.upstream);
       }},
      {"pool_mode", [&](auto& v, auto& k) { return r.pool_mode(v, k, route.pool_mode.emplace()); }},
      {"pool_size",
       [&](auto& v, auto& k) { return r.integer(v, k, 1, INT32_MAX, route.pool_size.emplace()); }},
      {"min_pool_size",
       [&](auto& v, auto& k) {
         return r.integer(v, k, 0, INT32_MAX, route.min_pool_size.emplace());
       }},
      {"max_overflow",
       [&](auto& v, auto& k) {
         return r.integer(v, k, 0, INT32_MAX, route.max_overflow.emplace());
       }},
  };
  if (!apply(r, *t, key + ".", h)) return false;
  if (!has_upstream) return r.fail(key + ".upstream", "is required");
  int size = route.pool_size.value_or(c.pool.pool_size);
  int min = route.min_pool_size.value_or(c.pool.min_pool_size);
  if (min > size)
    return r.fail(key + (route.min_pool_size ? ".min_pool_size" : ".pool_size"),
                  "min_pool_size (" + std::to_string(min) + ") must not exceed pool_size (" +
                      std::to_string(size) + ")");
  c.databases[name] = std::move(route);
  return true;
}

// Checks across keys, once all are read.
bool check_whole(Reader& r, Config& c, const std::filesystem::path& base_dir, bool auth_file_set) {
  if (c.pool.min_pool_size > c.pool.pool_size)
    return r.fail("min_pool_size", "must not exceed pool_size (" +
                                       std::to_string(c.pool.pool_size) + "), got " +
                                       std::to_string(c.pool.min_pool_size));
  if (c.auth_type != AuthType::Trust && c.auth_file.empty())
    return r.fail("auth_file",
                  "is required when auth_type is \"" + std::string(to_string(c.auth_type)) + "\"");
  if (c.auth_file.empty()) {
    c.userlist = nullptr;
    return true;
  }
  // A relative auth_file in a config file is relative to that file, not to the working directory.
  if (auth_file_set && !base_dir.empty() && std::filesystem::path(c.auth_file).is_relative())
    c.auth_file = (base_dir / c.auth_file).lexically_normal().string();
  auto users = auth::load_userlist(c.auth_file);
  if (!users.userlist) return r.fail("auth_file", c.auth_file + ": " + users.error.message());
  c.userlist = std::make_shared<const auth::Userlist>(std::move(*users.userlist));
  return true;
}

ConfigLoad load(const std::string& text, const std::string& source, Config c,
                const std::filesystem::path& base_dir) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    auto line = std::to_string(e.source().begin.line);
    auto column = std::to_string(e.source().begin.column);
    std::string where =
        source.empty() ? "line " + line + ", column " + column : source + ":" + line + ":" + column;
    return {std::nullopt, {"", where + ": " + std::string(e.description())}};
  }
  Reader r;
  bool auth_file_set = false;
  for (auto&& [k, v] : root) {
    std::string name(k.str());
    if (name != "pglens" && name != "databases")
      return {std::nullopt,
              {name, "unknown table or key; a pglens file has [pglens] and [databases]"}};
    if (!v.is_table()) return {std::nullopt, {name, "must be a table, got " + type_name(v)}};
  }
  if (auto t = root["pglens"].as_table(); t && !read_pglens(r, *t, c, auth_file_set))
    return {std::nullopt, r.error()};
  if (auto t = root["databases"].as_table()) {
    c.databases.clear();  // the file's list replaces the defaults'
    for (auto&& [k, v] : *t)
      if (!read_database(r, std::string(k.str()), v, c)) return {std::nullopt, r.error()};
  }
  if (!check_whole(r, c, base_dir, auth_file_set)) return {std::nullopt, r.error()};
  return {std::move(c), {}};
}

}  // namespace

std::string_view to_string(PoolMode mode) {
  switch (mode) {
    case PoolMode::Session:
      return "session";
    case PoolMode::Transaction:
      return "transaction";
    case PoolMode::Statement:
      return "statement";
  }
  return "?";
}

std::string_view to_string(AuthType type) {
  switch (type) {
    case AuthType::Trust:
      return "trust";
    case AuthType::Md5:
      return "md5";
    case AuthType::ScramSha256:
      return "scram-sha-256";
  }
  return "?";
}

DatabaseRoute Config::route_for(const std::string& database) const {
  if (auto it = databases.find(database); it != databases.end()) return it->second;
  DatabaseRoute route;
  route.upstream = upstream;
  return route;
}

pool::PoolSettings Config::pool_settings_for(const DatabaseRoute& route) const {
  pool::PoolSettings s = pool;
  if (route.pool_size) s.pool_size = *route.pool_size;
  if (route.min_pool_size) s.min_pool_size = *route.min_pool_size;
  if (route.max_overflow) s.max_overflow = *route.max_overflow;
  return s;
}

PoolMode Config::pool_mode_for(const DatabaseRoute& route) const {
  return route.pool_mode.value_or(pool_mode);
}

std::string ConfigError::message() const {
  return key.empty() ? reason : key + ": " + reason;
}

ConfigLoad load_config_text(const std::string& toml_text, Config defaults) {
  return load(toml_text, "", std::move(defaults), {});
}

ConfigLoad load_config_file(const std::string& path, Config defaults) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {std::nullopt, {"", "cannot read " + path + ": " + std::strerror(errno)}};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return {std::nullopt, {"", "cannot read " + path}};
  auto dir = std::filesystem::path(path).parent_path();
  return load(text.str(), path, std::move(defaults), dir.empty() ? "." : dir);
}

std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = text.substr(0, colon);
  std::string_view digits = std::string_view(text).substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find_first_of(":[]") != std::string::npos) {
    return std::nullopt;  // an IPv6 host needs brackets, else the port is ambiguous
  }
  unsigned port = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (host.empty() || digits.empty() || ec != std::errc() || p != digits.data() + digits.size() ||
      port == 0 || port > 65535)
    return std::nullopt;
  return std::pair{host, static_cast<std::uint16_t>(port)};
}

}  // namespace pglens::proxy
