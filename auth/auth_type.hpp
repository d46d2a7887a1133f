// How clients prove who they are to pglens (PgBouncer's auth_type).
#pragma once

#include <optional>
#include <string_view>

namespace pglens::auth {

// Cert: the client's TLS certificate (its common name is the user name), no password.
enum class AuthType { Trust, Md5, ScramSha256, Cert };

std::string_view to_string(AuthType type);
std::optional<AuthType> parse_auth_type(std::string_view text);

}  // namespace pglens::auth
