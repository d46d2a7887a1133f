#include "config/upstream.hpp"

#include <charconv>

namespace pglens::config {

namespace {
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc() || p != s.data() + i + 3) return std::nullopt;
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

bool fail(std::string* error, std::string why) {
  if (error) *error = std::move(why);
  return false;
}
}  // namespace

std::optional<Upstream> Upstream::parse(std::string_view url, std::string* error) {
  Upstream u;
  std::string_view rest;
  for (std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (url.substr(0, scheme.size()) == scheme) rest = url.substr(scheme.size());
  }
  if (rest.empty() && !fail(error, "upstream URL must start with postgresql:// and name a host"))
    return std::nullopt;
  if (auto q = rest.find('?'); q != std::string_view::npos) rest = rest.substr(0, q);

  std::string_view hostport = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    auto db = percent_decode(rest.substr(slash + 1));
    if (!db) return fail(error, "bad percent-encoding in database name"), std::nullopt;
    u.dbname = *db;
    hostport = rest.substr(0, slash);
  }
  if (auto at = hostport.rfind('@'); at != std::string_view::npos) {
    auto userinfo = hostport.substr(0, at);
    hostport = hostport.substr(at + 1);
    auto colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    auto password = colon == std::string_view::npos ? std::optional<std::string>("")
                                                    : percent_decode(userinfo.substr(colon + 1));
    if (!user || !password)
      return fail(error, "bad percent-encoding in user or password"), std::nullopt;
    u.user = *user;
    u.password = *password;
  }
  std::string_view host = hostport;
  if (!hostport.empty() && hostport.front() == '[') {  // [::1]:5432
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return fail(error, "unterminated [ in host"), std::nullopt;
    host = hostport.substr(1, close - 1);
    hostport = hostport.substr(close + 1);
    if (!hostport.empty() && hostport.front() != ':')
      return fail(error, "unexpected text after ]"), std::nullopt;
    if (!hostport.empty()) hostport.remove_prefix(0);
  } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    hostport = hostport.substr(colon);
  } else {
    hostport = {};
  }
  if (!hostport.empty()) {  // ":port"
    auto digits = hostport.substr(1);
    unsigned port = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || port == 0 ||
        port > 65535)
      return fail(error, "invalid port \"" + std::string(digits) + "\""), std::nullopt;
    u.port = static_cast<std::uint16_t>(port);
  }
  if (host.empty()) return fail(error, "upstream URL names no host"), std::nullopt;
  u.host = host;
  return u;
}

std::string Upstream::display() const {
  std::string s = "postgresql://";
  if (!user.empty()) s += user + "@";
  s += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  s += ":" + std::to_string(port);
  if (!dbname.empty()) s += "/" + dbname;
  return s;
}

}  // namespace pglens::config
