// TLS as configured for one side (clients to pglens, pglens to servers), in PgBouncer's terms:
// client_tls_* and server_tls_* keys, the same sslmode levels as libpq. Only names and files here;
// proxy/tls.cpp makes OpenSSL contexts of them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pglens::config {

enum class TlsMode { Disable, Allow, Prefer, Require, VerifyCa, VerifyFull };

std::string_view to_string(TlsMode mode);
std::optional<TlsMode> parse_tls_mode(std::string_view text);

struct TlsSettings {
  TlsMode mode = TlsMode::Disable;
  std::string key_file, cert_file;   // client side: pglens' own; server side: for cert auth
  std::string ca_file;               // to verify the peer's certificate (verify-ca, verify-full)
  std::string protocols = "secure";  // "secure" (TLS 1.2 and 1.3), "all", or e.g. "tlsv1.3"
  std::string ciphers = "default";   // OpenSSL's cipher list syntax; "default": OpenSSL's own

  bool on() const { return mode != TlsMode::Disable; }
  bool verifies() const { return mode == TlsMode::VerifyCa || mode == TlsMode::VerifyFull; }
  bool operator==(const TlsSettings&) const = default;
};

inline TlsSettings tls_default(TlsMode mode) {
  TlsSettings s;
  s.mode = mode;
  return s;
}

}  // namespace pglens::config
