// A client's login to pglens, free of I/O: the startup packet (SSLRequest answered 'S' or 'N' as
// client_tls_sslmode says, a direct TLS handshake recognised, GSSENCRequest answered 'N', a
// CancelRequest taken), max_client_conn, and client authentication against the auth_file (trust,
// md5, scram-sha-256, as PostgreSQL does it) or by TLS certificate (cert). The admin console's
// users are checked here too. The caller feeds the client's bytes, sends output() after each
// call, and acts on status() (StartTls: it shakes hands, then reports how that went); the login
// timeout is a deadline it keeps with a timer.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/auth_type.hpp"
#include "auth/userlist.hpp"
#include "config/tls_settings.hpp"
#include "protocol/decoder.hpp"
#include "protocol/messages.hpp"

namespace pglens::session {

struct LoginSettings {
  auth::AuthType auth_type = auth::AuthType::Trust;
  std::shared_ptr<const auth::Userlist> userlist;  // required unless trust
  std::vector<std::string> admin_users;            // may use the admin console
  std::size_t max_client_conn = 1000;
  std::size_t clients = 1;  // client connections open now, this one included
  std::chrono::steady_clock::duration timeout = std::chrono::seconds(60);
  config::TlsMode tls_mode = config::TlsMode::Disable;  // client_tls_sslmode
};

class ClientLogin {
 public:
  using Clock = std::chrono::steady_clock;

  enum class Status {
    Reading,        // feed more of the client's bytes
    StartTls,       // send output() (an 'S', or nothing for direct TLS), then shake hands as the
                    // TLS server, handing it direct_tls_bytes() first; then on_tls_started()
    Cancel,         // a CancelRequest for cancel_key(): forward it, close without an answer
    Authenticated,  // logged in as user() to database() (or the admin console: admin())
    Failed,         // send output() (a FATAL ErrorResponse, unless the client is gone), close
  };

  ClientLogin(LoginSettings settings, Clock::time_point now);

  // Bytes from the client; returns how many the login took. What follows the last login message
  // (a client may send its first query right behind it) is the session's.
  std::size_t on_bytes(protocol::ByteView input, Clock::time_point now);
  // The client's connection closed or failed before the login ended.
  void on_client_gone(std::string_view reason);
  // The deadline passed (client_login_timeout).
  void on_timer(Clock::time_point now);
  // TLS is up: the client certificate's common name ("" without one), the ALPN protocol agreed,
  // and the hash of pglens' own certificate (RFC 5929 tls-server-end-point), with which SCRAM is
  // offered channel-bound as SCRAM-SHA-256-PLUS ("": not offered).
  void on_tls_started(std::string peer_common_name, std::string_view alpn,
                      std::string own_end_point = {});
  // The handshake failed: nothing more can be said to the client.
  void on_tls_failed(std::string_view reason);
  // Direct TLS (no SSLRequest, Postgres 17's sslnegotiation=direct): the caller's pending bytes,
  // not taken by on_bytes, begin the handshake.
  bool direct_tls() const { return direct_tls_; }
  bool tls() const { return tls_; }
  Clock::time_point deadline() const { return deadline_; }

  Status status() const { return status_; }
  // To send to the client before acting on status(); the caller clears it.
  protocol::Bytes& output() { return output_; }
  // Why the login failed, or what it ended in ("cancel request"), for the log.
  const std::string& reason() const { return reason_; }
  // Failed with an ErrorResponse of pglens' own (not because the client went away).
  bool refused() const { return refused_; }

  const protocol::StartupPacket& startup() const { return startup_; }
  const std::string& user() const { return user_; }
  const std::string& database() const { return database_; }  // the user's name when not given
  bool admin() const { return admin_; }
  protocol::BackendKeyData cancel_key() const { return {startup_.process_id, startup_.secret_key}; }

 private:
  enum class Step { Startup, Md5Password, ScramFirst, ScramFinal, Done };
  std::size_t on_startup_bytes(protocol::ByteView input);
  void on_startup(protocol::StartupPacket packet);
  void on_message(char type, protocol::ByteView body);
  void begin_auth();
  void authenticated();
  void fail(std::string_view sqlstate, std::string message, std::string reason);
  void deny();  // the same words whatever went wrong, as PostgreSQL

  LoginSettings settings_;
  Clock::time_point deadline_;
  Status status_ = Status::Reading;
  Step step_ = Step::Startup;
  protocol::Bytes output_;
  protocol::Bytes startup_bytes_;  // a startup packet arriving in pieces
  protocol::MessageDecoder decoder_{protocol::Direction::Frontend};
  protocol::StartupPacket startup_;
  std::string user_, database_, reason_;
  bool admin_ = false;
  bool refused_ = false;
  bool tls_ = false;         // TLS is up
  bool direct_tls_ = false;  // and began without an SSLRequest
  std::string peer_common_name_;
  std::string own_end_point_;
  const auth::UserSecret* secret_ = nullptr;
  std::string salt_;
  std::unique_ptr<auth::ScramServer> scram_;
  auth::UserSecret unknown_user_;  // stands in for a user not in the auth_file
};

}  // namespace pglens::session
