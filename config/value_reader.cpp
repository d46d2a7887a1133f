#include "config/value_reader.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace pglens::config {

namespace {
// Past this a duration would overflow steady_clock's nanoseconds.
constexpr double kMaxSeconds = 1e9;

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
}  // namespace

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

std::string unknown_key_reason(std::string_view key, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_distance = 3;  // closer than this reads as a typo
  for (const auto& k : known) {
    if (auto d = edit_distance(key, k); d < best_distance) best = k, best_distance = d;
  }
  return best.empty() ? "unknown key" : "unknown key (did you mean " + best + "?)";
}

bool ValueReader::fail(std::string key, std::string reason) {
  error_ = {std::move(key), std::move(reason)};
  return false;
}

bool ValueReader::string(const toml::node& n, const std::string& key, std::string& out) {
  auto s = n.as_string();
  if (!s) return fail(key, "must be a string, got " + type_name(n));
  out = s->get();
  return true;
}

bool ValueReader::boolean(const toml::node& n, const std::string& key, bool& out) {
  auto b = n.as_boolean();
  if (!b) return fail(key, "must be true or false, got " + shown(n));
  out = b->get();
  return true;
}

bool ValueReader::integer64(const toml::node& n, const std::string& key, std::int64_t min,
                            std::int64_t max, std::int64_t& out) {
  auto i = n.as_integer();
  if (!i || i->get() < min || i->get() > max) {
    std::string want = min == 1   ? "a positive integer"
                       : min == 0 ? "a non-negative integer"
                                  : "an integer";
    if (max < std::numeric_limits<int>::max())
      want = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    return fail(key, "must be " + want + ", got " + shown(n));
  }
  out = i->get();
  return true;
}

bool ValueReader::seconds(const toml::node& n, const std::string& key, bool zero_ok, double& out) {
  std::optional<double> s;
  if (auto i = n.as_integer()) s = static_cast<double>(i->get());
  if (auto f = n.as_floating_point()) s = f->get();
  if (!s || !std::isfinite(*s) || *s < 0 || (*s == 0 && !zero_ok) || *s > kMaxSeconds) {
    std::string want = zero_ok ? "a number of seconds, 0 or more" : "a positive number of seconds";
    return fail(key, "must be " + want + ", got " + shown(n));
  }
  out = *s;
  return true;
}

bool ValueReader::duration(const toml::node& n, const std::string& key, bool zero_ok,
                           pool::Duration& out) {
  double s = 0;
  if (!seconds(n, key, zero_ok, s)) return false;
  out = std::chrono::duration_cast<pool::Duration>(std::chrono::duration<double>(s));
  return true;
}

bool ValueReader::millis(const toml::node& n, const std::string& key,
                         std::chrono::milliseconds& out) {
  double s = 0;
  if (!seconds(n, key, false, s)) return false;
  out = std::chrono::round<std::chrono::milliseconds>(std::chrono::duration<double>(s));
  if (out.count() == 0) return fail(key, "must be at least 0.001 seconds, got " + shown(n));
  return true;
}

bool ValueReader::upstream(const toml::node& n, const std::string& key, Upstream& out) {
  std::string text, why;
  if (!string(n, key, text)) return false;
  auto u = Upstream::parse(text, &why);
  if (!u) return fail(key, why);
  out = std::move(*u);
  return true;
}

bool ValueReader::pool_mode(const toml::node& n, const std::string& key, PoolMode& out) {
  std::string text;
  if (!string(n, key, text)) return false;
  auto mode = pool::parse_pool_mode(text);
  if (!mode)
    return fail(key, "must be \"session\", \"transaction\" or \"statement\", got \"" + text + "\"");
  out = *mode;
  return true;
}

bool ValueReader::auth_type(const toml::node& n, const std::string& key, AuthType& out) {
  std::string text;
  if (!string(n, key, text)) return false;
  auto type = auth::parse_auth_type(text);
  if (!type)
    return fail(key,
                "must be \"trust\", \"md5\", \"scram-sha-256\" or \"cert\", got \"" + text + "\"");
  out = *type;
  return true;
}

bool ValueReader::tls_mode(const toml::node& n, const std::string& key, TlsMode& out) {
  std::string text;
  if (!string(n, key, text)) return false;
  auto mode = parse_tls_mode(text);
  if (!mode)
    return fail(key, "must be disable, allow, prefer, require, verify-ca or verify-full, got \"" +
                         text + "\"");
  out = *mode;
  return true;
}

bool ValueReader::host_port(const toml::node& n, const std::string& key, bool empty_ok,
                            std::string& out) {
  if (!string(n, key, out)) return false;
  if (out.empty() && empty_ok) return true;
  if (!parse_host_port(out))
    return fail(key, "must be HOST:PORT (port 1-65535, [brackets] around an IPv6 host), got \"" +
                         out + "\"");
  return true;
}

bool ValueReader::choice(const toml::node& n, const std::string& key,
                         const std::vector<std::string>& choices, std::string& out) {
  std::string text;
  if (!string(n, key, text)) return false;
  if (std::find(choices.begin(), choices.end(), text) == choices.end()) {
    std::string list;
    for (std::size_t i = 0; i < choices.size(); ++i)
      list += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
    return fail(key, "must be " + list + ", got \"" + text + "\"");
  }
  out = text;
  return true;
}

bool ValueReader::name_list(const toml::node& n, const std::string& key,
                            std::vector<std::string>& out) {
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
    if (!s || s->get().empty()) return fail(key, "must hold non-empty strings, got " + shown(item));
    out.push_back(s->get());
  }
  return true;
}

}  // namespace pglens::config
