// Typed reads of one TOML value, with the reason a bad one is refused. Internal to config/: the
// key table and the [databases] reader share them, and a command-line flag's text is read through
// them too (as the TOML value it spells), so a value means and fails the same either way.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace pglens::config {

// "a string", "an integer", ...: what the user wrote, for a reason.
std::string type_name(const toml::node& n);
// The value when it is short, else its type: "got -3", "got \"20\"".
std::string shown(const toml::node& n);
// "unknown key", with the nearest known key when it is close enough to be a typo.
std::string unknown_key_reason(std::string_view key, const std::vector<std::string>& known);

// Each read returns false and records why on a bad value; the caller stops at the first error.
class ValueReader {
 public:
  const ConfigError& error() const { return error_; }
  bool fail(std::string key, std::string reason);

  bool string(const toml::node& n, const std::string& key, std::string& out);
  bool boolean(const toml::node& n, const std::string& key, bool& out);
  template <class Int>
  bool integer(const toml::node& n, const std::string& key, std::int64_t min, std::int64_t max,
               Int& out) {
    std::int64_t v = 0;
    if (!integer64(n, key, min, max, v)) return false;
    out = static_cast<Int>(v);
    return true;
  }
  // Seconds as an integer or a float. zero_ok: 0 is allowed (it means "off" or "at once").
  bool seconds(const toml::node& n, const std::string& key, bool zero_ok, double& out);
  bool duration(const toml::node& n, const std::string& key, bool zero_ok, pool::Duration& out);
  // At least a millisecond.
  bool millis(const toml::node& n, const std::string& key, std::chrono::milliseconds& out);
  bool upstream(const toml::node& n, const std::string& key, Upstream& out);
  bool pool_mode(const toml::node& n, const std::string& key, PoolMode& out);
  bool auth_type(const toml::node& n, const std::string& key, AuthType& out);
  bool tls_mode(const toml::node& n, const std::string& key, TlsMode& out);
  bool host_port(const toml::node& n, const std::string& key, bool empty_ok, std::string& out);
  // One of `choices`, spelled exactly.
  bool choice(const toml::node& n, const std::string& key, const std::vector<std::string>& choices,
              std::string& out);
  // An array of names, or one string with commas between them as PgBouncer writes it.
  bool name_list(const toml::node& n, const std::string& key, std::vector<std::string>& out);

 private:
  bool integer64(const toml::node& n, const std::string& key, std::int64_t min, std::int64_t max,
                 std::int64_t& out);
  ConfigError error_;
};

}  // namespace pglens::config
