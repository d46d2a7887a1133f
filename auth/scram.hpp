// SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL uses it, and the MD5 password hash.
// Sans-I/O: the caller moves the messages; OpenSSL does the cryptography.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pglens::auth {

// "md5" + md5(md5(password + user) + salt), what PostgreSQL's MD5 method expects.
std::string md5_password_response(std::string_view user, std::string_view password,
                                  std::string_view salt4);

std::string base64_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view text);

// The client side of one SCRAM-SHA-256 exchange, with or without channel binding.
class ScramClient {
 public:
  enum class ChannelBinding {
    None,               // "n": not over TLS
    Supported,          // "y": over TLS, but the server offered no SCRAM-SHA-256-PLUS
    TlsServerEndPoint,  // "p=tls-server-end-point": SCRAM-SHA-256-PLUS, bound to the server's
                        // certificate (binding_data: its hash, RFC 5929)
  };
  // nonce: printable, without ','; a fresh random one when empty.
  explicit ScramClient(std::string password, std::string nonce = {},
                       ChannelBinding binding = ChannelBinding::None,
                       std::string binding_data = {});

  // client-first-message, sent in SASLInitialResponse.
  std::string client_first() const;
  // Consumes server-first-message (SASLContinue); returns client-final-message or nullopt with
  // error() set when the server's message is malformed or its nonce is not ours.
  std::optional<std::string> client_final(std::string_view server_first);
  // Checks server-final-message (SASLFinal): true when the server proved it knows the password.
  bool verify_server_final(std::string_view server_final);

  const std::string& error() const { return error_; }

 private:
  std::string password_;
  std::string nonce_;
  std::string gs2_header_;
  std::string binding_data_;
  std::string client_first_bare_;
  std::string expected_server_signature_;
  std::string error_;
};

}  // namespace pglens::auth
