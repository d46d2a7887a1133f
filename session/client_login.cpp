#include "session/client_login.hpp"

#include <openssl/rand.h>

#include <algorithm>

namespace pglens::session {

namespace {
using protocol::Authentication;
using protocol::Bytes;
using protocol::ByteView;
using protocol::DecodeStatus;

bool is_admin_database(std::string_view database) {
  return database == "pglens" || database == "pgbouncer";
}
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
  if (status_ != Status::Reading || now < deadline_) return;
  fail("08P01", "pglens: client did not complete its login within the login timeout",
       step_ == Step::Startup ? "startup timeout" : "authentication timeout");
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
      used += on_startup_bytes(rest);
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
    case Kind::GSSENCRequest:
      output_.push_back('N');  // no encryption; the client goes on in the clear
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
  static const std::string mechanisms("SCRAM-SHA-256\0\0", 15);
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
      if (!initial || initial->mechanism != "SCRAM-SHA-256" || !initial->data) {
        fail("08P01", "pglens: client selected an invalid SASL authentication mechanism",
             "client selected an invalid SASL authentication mechanism");
        return;
      }
      scram_ = std::make_unique<auth::ScramServer>(secret_ ? *secret_ : unknown_user_);
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
