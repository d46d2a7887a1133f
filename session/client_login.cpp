#include "session/client_login.hpp"

#include <openssl/rand.h>

#include <algorithm>

namespace pglens::session {

namespace {
using protocol::Authentication;
using protocol::Bytes;
using protocol::ByteView;
using protocol::DecodeStatus;

using config::TlsMode;

bool is_admin_database(std::string_view database) {
  return database == "pglens" || database == "pgbouncer";
}

constexpr std::uint8_t kTlsHandshakeRecord = 0x16;  // a TLS record's first byte: a ClientHello
}  // namespace

ClientLogin::ClientLogin(LoginSettings settings, Clock::time_point now)
    : settings_(std::move(settings)), deadline_(now + settings_.timeout) {
  // An unknown user still goes through a SCRAM exchange (with a secret nobody knows) and fails at
  // the proof, so the answer does not reveal who exists.
  unknown_user_.text = std::string(32, '\x01');
}

void ClientLogin::fail(std::string_view sqlstate, std::string message, std::string reason) {
  protocol::make_error(sqlstate, message, "FATAL").encode(output_);
  refused_ = true;
  status_ = Status::Failed;
  step_ = Step::Done;
  reason_ = std::move(reason);
}

void ClientLogin::deny() {
  std::string message = "password authentication failed for user \"" + user_ + "\"";
  fail("28P01", message, "client authentication failed: " + message);
}

void ClientLogin::on_client_gone(std::string_view reason) {
  if (status_ != Status::Reading) return;
  reason_ =
      std::string(reason) + (step_ == Step::Startup ? " during startup" : " during authentication");
  status_ = Status::Failed;
  step_ = Step::Done;
}

void ClientLogin::on_timer(Clock::time_point now) {
  if (now < deadline_) return;
  if (status_ == Status::StartTls) {  // mid-handshake: nothing can be said in the clear
    status_ = Status::Failed;
    step_ = Step::Done;
    reason_ = "TLS handshake timeout";
    return;
  }
  if (status_ != Status::Reading) return;
  fail("08P01", "pglens: client did not complete its login within the login timeout",
       step_ == Step::Startup ? "startup timeout" : "authentication timeout");
}

void ClientLogin::on_tls_started(std::string peer_common_name, std::string_view alpn,
                                 std::string own_end_point) {
  if (status_ != Status::StartTls) return;
  // As Postgres 17: a direct TLS connection must have agreed on ALPN "postgresql", so that TLS
  // meant for another protocol is not taken for ours.
  if (direct_tls_ && alpn != "postgresql") {
    status_ = Status::Failed;
    step_ = Step::Done;
    reason_ = "direct TLS connection without ALPN protocol \"postgresql\"";
    return;
  }
  tls_ = true;
  peer_common_name_ = std::move(peer_common_name);
  own_end_point_ = std::move(own_end_point);
  status_ = Status::Reading;
}

void ClientLogin::on_tls_failed(std::string_view reason) {
  if (status_ != Status::StartTls) return;
  status_ = Status::Failed;
  step_ = Step::Done;
  reason_ = "TLS handshake failed: " + std::string(reason);
}

std::size_t ClientLogin::on_bytes(ByteView input, Clock::time_point now) {
  std::size_t used = 0;
  while (status_ == Status::Reading && used < input.size()) {
    if (now >= deadline_) {
      on_timer(now);
      break;
    }
    ByteView rest = input.subspan(used);
    if (step_ == Step::Startup) {
      if (!tls_ && startup_bytes_.empty() && rest[0] == kTlsHandshakeRecord) {
        // Direct TLS: the caller hands these bytes to the handshake.
        if (settings_.tls_mode == TlsMode::Disable) {
          status_ = Status::Failed;
          step_ = Step::Done;
          reason_ = "direct TLS connection, but client_tls_sslmode is disable";
          break;
        }
        direct_tls_ = true;
        status_ = Status::StartTls;
        break;
      }
      used += on_startup_bytes(rest);
      // Bytes behind an SSLRequest came before the client could know the answer: a client may
      // not send them, and taken in the clear they would pass for TLS-protected ones
      // (CVE-2021-23222's injection).
      if (status_ == Status::StartTls && used < input.size()) {
        output_.clear();
        fail("08P01", "pglens: received unencrypted data after SSL request",
             "protocol violation: unencrypted data after SSL request");
      }
      continue;
    }
    auto r = decoder_.next(rest);
    used += r.consumed;
    if (r.status == DecodeStatus::Error) {
      fail("08P01", "pglens: " + r.error, "protocol violation during authentication: " + r.error);
      break;
    }
    if (r.status == DecodeStatus::NeedMore) break;
    if (r.frame.kind != protocol::FrameKind::Message) {  // no password streams
      fail("08P01", "pglens: expected a password message", "expected a password message");
      break;
    }
    on_message(r.frame.type, r.frame.data);
  }
  return used;
}

// The untyped phase: a packet may arrive in pieces, and several (SSLRequest, then the startup
// message) may arrive at once. Returns the bytes taken; never more than the packets need.
std::size_t ClientLogin::on_startup_bytes(ByteView input) {
  // The packet's length is in its first four bytes: take them, then just what it needs (an
  // impossible length is refused by decode_startup as soon as it is known).
  std::size_t held = startup_bytes_.size();
  std::size_t need = held < 4 ? 4 : protocol::load_be32(startup_bytes_.data());
  std::size_t take = std::min(input.size(), need > held ? need - held : 0);
  startup_bytes_.insert(startup_bytes_.end(), input.begin(),
                        input.begin() + static_cast<std::ptrdiff_t>(take));
  auto r = protocol::decode_startup(startup_bytes_);
  if (r.status == DecodeStatus::Error) {
    fail("08P01", "pglens: " + r.error, "bad startup packet: " + r.error);
    return take;
  }
  if (r.status == DecodeStatus::NeedMore) return take;
  startup_bytes_.clear();
  using Kind = protocol::StartupPacket::Kind;
  switch (r.packet.kind) {
    case Kind::SSLRequest:
      if (tls_) {
        fail("08P01", "pglens: SSLRequest inside TLS", "protocol violation: SSLRequest inside TLS");
      } else if (settings_.tls_mode == TlsMode::Disable) {
        output_.push_back('N');  // the client goes on in the clear, or gives up
      } else {
        output_.push_back('S');
        status_ = Status::StartTls;
      }
      break;
    case Kind::GSSENCRequest:
      output_.push_back('N');  // no GSSAPI encryption; the client goes on (or asks for TLS)
      break;
    case Kind::CancelRequest:
      startup_ = std::move(r.packet);
      status_ = Status::Cancel;
      step_ = Step::Done;
      reason_ = "cancel request";
      break;
    case Kind::Startup:
      on_startup(std::move(r.packet));
      break;
  }
  return take;
}

void ClientLogin::on_startup(protocol::StartupPacket packet) {
  startup_ = std::move(packet);
  user_ = std::string(startup_.param("user"));
  database_ = std::string(startup_.param("database"));
  if (database_.empty()) database_ = user_;
  admin_ = is_admin_database(database_);
  // As a hostssl-only pg_hba.conf: the same answer whatever the user.
  if (!tls_ && settings_.tls_mode >= TlsMode::Require) {
    fail("28000",
         "pglens: TLS is required (client_tls_sslmode = " +
             std::string(config::to_string(settings_.tls_mode)) +
             "): connect with sslmode=require or stronger",
         "refused a plaintext login (client_tls_sslmode " +
             std::string(config::to_string(settings_.tls_mode)) + ")");
    return;
  }
  // verify-full: the certificate names the user (Postgres' clientcert=verify-full).
  if (settings_.tls_mode == TlsMode::VerifyFull && peer_common_name_ != user_) {
    fail("28000",
         "pglens: certificate common name \"" + peer_common_name_ + "\" does not match user \"" +
             user_ + "\"",
         "client certificate of \"" + peer_common_name_ + "\" for user \"" + user_ + "\"");
    return;
  }
  if (settings_.clients > settings_.max_client_conn) {
    fail("53300",
         "pglens: no more connections allowed (max_client_conn " +
             std::to_string(settings_.max_client_conn) + ")",
         "max_client_conn reached");
    return;
  }
  begin_auth();
}

void ClientLogin::begin_auth() {
  if (settings_.auth_type == auth::AuthType::Trust) {
    authenticated();
    return;
  }
  if (settings_.auth_type == auth::AuthType::Cert) {
    if (!tls_ || peer_common_name_.empty() || peer_common_name_ != user_) {
      fail("28000", "certificate authentication failed for user \"" + user_ + "\"",
           "certificate authentication failed for user \"" + user_ + "\" (certificate of \"" +
               peer_common_name_ + "\")");
      return;
    }
    authenticated();
    return;
  }
  secret_ = settings_.userlist ? settings_.userlist->find(user_) : nullptr;
  // As PostgreSQL: a password stored as MD5 cannot do SCRAM, so such a user is asked for MD5.
  bool use_md5 = settings_.auth_type == auth::AuthType::Md5 ||
                 (secret_ && secret_->kind == auth::UserSecret::Kind::Md5);
  if (use_md5 && secret_ && secret_->kind == auth::UserSecret::Kind::Scram) use_md5 = false;
  if (use_md5) {
    salt_.assign(4, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(salt_.data()), 4);
    Authentication{Authentication::kMD5Password, Bytes(salt_.begin(), salt_.end())}.encode(output_);
    step_ = Step::Md5Password;
    return;
  }
  // Over TLS the channel-bound variant first, as Postgres lists them.
  static const std::string plain("SCRAM-SHA-256\0\0", 15);
  static const std::string both("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0", 34);
  const std::string& mechanisms = own_end_point_.empty() ? plain : both;
  Authentication{Authentication::kSASL, Bytes(mechanisms.begin(), mechanisms.end())}.encode(
      output_);
  step_ = Step::ScramFirst;
}

void ClientLogin::on_message(char type, ByteView body) {
  if (type != 'p') {
    fail("08P01", "pglens: expected a password message", "expected a password message");
    return;
  }
  switch (step_) {
    case Step::Md5Password: {
      auto password = protocol::PasswordMessage::decode(body);
      if (!password || secret_ == nullptr ||
          !auth::verify_md5_response(*secret_, user_, salt_, password->password))
        return deny();
      return authenticated();
    }
    case Step::ScramFirst: {
      auto initial = protocol::SASLInitialResponse::decode(body);
      bool plus = initial && initial->mechanism == "SCRAM-SHA-256-PLUS" && !own_end_point_.empty();
      if (!initial || (initial->mechanism != "SCRAM-SHA-256" && !plus) || !initial->data) {
        fail("08P01", "pglens: client selected an invalid SASL authentication mechanism",
             "client selected an invalid SASL authentication mechanism");
        return;
      }
      scram_ = std::make_unique<auth::ScramServer>(secret_ ? *secret_ : unknown_user_);
      if (!own_end_point_.empty()) scram_->bind_channel(plus, own_end_point_);
      auto server_first = scram_->server_first(protocol::as_chars(*initial->data));
      if (!server_first) return deny();
      Authentication{Authentication::kSASLContinue,
                     Bytes(server_first->begin(), server_first->end())}
          .encode(output_);
      step_ = Step::ScramFinal;
      return;
    }
    case Step::ScramFinal: {
      auto server_final = scram_->server_final(protocol::as_chars(body));
      if (!server_final || secret_ == nullptr) return deny();
      Authentication{Authentication::kSASLFinal, Bytes(server_final->begin(), server_final->end())}
          .encode(output_);
      return authenticated();
    }
    case Step::Startup:
    case Step::Done:
      return;
  }
}

void ClientLogin::authenticated() {
  step_ = Step::Done;
  if (admin_ && std::find(settings_.admin_users.begin(), settings_.admin_users.end(), user_) ==
                    settings_.admin_users.end()) {
    fail("28000", "pglens: user \"" + user_ + "\" is not in admin_users", "admin console refused");
    return;
  }
  status_ = Status::Authenticated;
  reason_ = admin_ ? "admin console login" : "login";
}

}  // namespace pglens::session
