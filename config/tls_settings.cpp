#include "config/tls_settings.hpp"

#include <array>
#include <utility>

namespace pglens::config {

namespace {
constexpr std::array<std::pair<TlsMode, std::string_view>, 6> kNames = {{
    {TlsMode::Disable, "disable"},
    {TlsMode::Allow, "allow"},
    {TlsMode::Prefer, "prefer"},
    {TlsMode::Require, "require"},
    {TlsMode::VerifyCa, "verify-ca"},
    {TlsMode::VerifyFull, "verify-full"},
}};
}  // namespace

std::string_view to_string(TlsMode mode) {
  for (const auto& [m, name] : kNames)
    if (m == mode) return name;
  return "?";
}

std::optional<TlsMode> parse_tls_mode(std::string_view text) {
  for (const auto& [m, name] : kNames)
    if (name == text) return m;
  return std::nullopt;
}

}  // namespace pglens::config
