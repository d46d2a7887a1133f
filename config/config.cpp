#include "config/config.hpp"

#include <toml++/toml.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "config/key_table.hpp"

namespace pglens::config {

namespace {

// Reserved: a client naming them reaches the admin console, never a route.
constexpr std::string_view kAdminDatabases[] = {"pglens", "pgbouncer"};

using Handler = std::function<bool(const toml::node&, const std::string& key)>;
using Reader = ValueReader;

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

// [pglens]: every key through its row of the table.
bool read_pglens(Reader& r, const toml::table& t, Config& c) {
  std::map<std::string, Handler, std::less<>> h;
  for (const auto& row : key_table())
    h.emplace(std::string(row.key.name),
              [&r, &c, &row](const toml::node& n, const std::string& key) {
                return row.read(r, n, key, c);
              });
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
  for (auto&& [k, v] : root) {
    std::string name(k.str());
    if (name != "pglens" && name != "databases")
      return {std::nullopt,
              {name, "unknown table or key; a pglens file has [pglens] and [databases]"}};
    if (!v.is_table()) return {std::nullopt, {name, "must be a table, got " + type_name(v)}};
  }
  if (auto t = root["pglens"].as_table()) {
    if (!read_pglens(r, *t, c)) return {std::nullopt, r.error()};
    // A relative file name in a config file is relative to that file, not to the working
    // directory.
    auto relative_to_file = [&](std::string_view key, std::string& path) {
      if (t->contains(key) && !base_dir.empty() && !path.empty() &&
          std::filesystem::path(path).is_relative())
        path = (base_dir / path).lexically_normal().string();
    };
    relative_to_file("auth_file", c.auth_file);
    for (auto [side, s] :
         {std::pair{"client", &c.client_tls}, std::pair{"server", &c.server_tls}}) {
      relative_to_file(std::string(side) + "_tls_key_file", s->key_file);
      relative_to_file(std::string(side) + "_tls_cert_file", s->cert_file);
      relative_to_file(std::string(side) + "_tls_ca_file", s->ca_file);
    }
  }
  if (auto t = root["databases"].as_table()) {
    c.databases.clear();  // the file's list replaces the defaults'
    for (auto&& [k, v] : *t)
      if (!read_database(r, std::string(k.str()), v, c)) return {std::nullopt, r.error()};
  }
  if (auto error = finish_config(c)) return {std::nullopt, *error};
  return {std::move(c), {}};
}

}  // namespace

std::optional<ConfigError> finish_config(Config& c) {
  if (c.pool.min_pool_size > c.pool.pool_size)
    return ConfigError{"min_pool_size", "must not exceed pool_size (" +
                                            std::to_string(c.pool.pool_size) + "), got " +
                                            std::to_string(c.pool.min_pool_size)};
  if (c.client_tls.on() && (c.client_tls.key_file.empty() || c.client_tls.cert_file.empty()))
    return ConfigError{
        c.client_tls.key_file.empty() ? "client_tls_key_file" : "client_tls_cert_file",
        "is required when client_tls_sslmode is \"" + std::string(to_string(c.client_tls.mode)) +
            "\""};
  if (c.client_tls.verifies() && c.client_tls.ca_file.empty())
    return ConfigError{"client_tls_ca_file",
                       "is required to verify client certificates "
                       "(client_tls_sslmode \"" +
                           std::string(to_string(c.client_tls.mode)) + "\")"};
  if (c.server_tls.key_file.empty() != c.server_tls.cert_file.empty())
    return ConfigError{
        c.server_tls.key_file.empty() ? "server_tls_key_file" : "server_tls_cert_file",
        "is required with the other: a client certificate needs both"};
  if (c.auth_type == AuthType::Cert && !c.client_tls.verifies())
    return ConfigError{"auth_type", "\"cert\" needs client_tls_sslmode verify-ca or verify-full"};
  if (c.auth_type != AuthType::Trust && c.auth_type != AuthType::Cert && c.auth_file.empty())
    return ConfigError{"auth_file", "is required when auth_type is \"" +
                                        std::string(to_string(c.auth_type)) + "\""};
  if (c.auth_file.empty()) {
    c.userlist = nullptr;
    return std::nullopt;
  }
  auto users = auth::load_userlist(c.auth_file);
  if (!users.userlist) return ConfigError{"auth_file", c.auth_file + ": " + users.error.message()};
  c.userlist = std::make_shared<const auth::Userlist>(std::move(*users.userlist));
  return std::nullopt;
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

std::string format_host_port(const std::string& host, std::uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

}  // namespace pglens::config
