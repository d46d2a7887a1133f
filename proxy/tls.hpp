// OpenSSL contexts made of the client_tls_* and server_tls_* keys, and what pglens reads from an
// established TLS session: its version and cipher (SHOW CLIENTS' tls column), the peer's common
// name (cert auth), the server certificate's hash (SCRAM channel binding).
#pragma once

#include <boost/asio/ssl.hpp>

#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"

namespace pglens::proxy {

namespace ssl = boost::asio::ssl;

// Built at start and at each reload; sessions keep the context they shook hands with.
struct TlsContexts {
  std::shared_ptr<ssl::context> for_clients;  // pglens as the TLS server; null: disabled
  std::shared_ptr<ssl::context> for_servers;  // pglens as the TLS client; null: disabled
};

// The contexts for c, or nullopt with *error naming the key and why (a missing file, a key that
// does not match its certificate, an unknown protocol or cipher).
std::optional<TlsContexts> make_tls_contexts(const config::Config& c, std::string* error);

// "TLSv1.3/TLS_AES_256_GCM_SHA384", as PgBouncer's SHOW CLIENTS prints it.
std::string describe_tls(SSL* ssl);
// The peer certificate's subject common name; "" without one.
std::string peer_common_name(SSL* ssl);
// RFC 5929 tls-server-end-point of the peer's certificate (the server's, on pglens' client side):
// its hash by the certificate's signature digest, SHA-256 for MD5 and SHA-1. "" without one.
std::string server_end_point(SSL* ssl);
// The same of pglens' own certificate (the server's, on pglens' client side).
std::string own_end_point(SSL* ssl);
// The ALPN protocol agreed in the handshake; "" for none.
std::string negotiated_alpn(SSL* ssl);
// What OpenSSL's error queue says, for a log line (and empties it).
std::string tls_error_text(const boost::system::error_code& ec);
// Why a handshake failed, as one line: the error, and the certificate check's own reason when it
// failed there ("certificate verify failed: hostname mismatch").
std::string handshake_failure(const boost::system::error_code& ec, SSL* ssl);

}  // namespace pglens::proxy
