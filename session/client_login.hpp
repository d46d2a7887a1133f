// A client's login to pglens, free of I/O: the startup packet (answering SSLRequest and
// GSSENCRequest with 'N', taking a CancelRequest), max_client_conn, and client authentication
// against the auth_file (trust, md5, scram-sha-256, as PostgreSQL does it). The admin console's
// users are checked here too. The caller feeds the client's bytes, sends output() after each
// call, and acts on status(); the login timeout is a deadline it keeps with a timer.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/auth_type.hpp"
#include "auth/userlist.hpp"
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
};

class ClientLogin {
 public:
  using Clock = std::chrono::steady_clock;

  enum class Status {
    Reading,        // feed more of the client's bytes
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
  const auth::UserSecret* secret_ = nullptr;
  std::string salt_;
  std::unique_ptr<auth::ScramServer> scram_;
  auth::UserSecret unknown_user_;  // stands in for a user not in the auth_file
};

}  // namespace pglens::session
