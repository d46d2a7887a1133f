// ClientLogin, byte by byte: startup packets, encryption and cancel requests, max_client_conn,
// trust / md5 / SCRAM-SHA-256 against a userlist, the admin console's users, the login timeout.
#include "session/client_login.hpp"

#include <gtest/gtest.h>

#include "auth/scram.hpp"
#include "protocol/messages.hpp"

namespace pglens::session {
namespace {

using namespace std::chrono_literals;
using protocol::Bytes;
using Status = ClientLogin::Status;

Bytes startup(std::vector<std::pair<std::string, std::string>> params) {
  protocol::StartupPacket p;
  p.protocol = protocol::kProtocolV3;
  p.params = std::move(params);
  Bytes out;
  protocol::encode(out, p);
  return out;
}
Bytes request(protocol::StartupPacket::Kind kind, std::int32_t pid = 0, std::int32_t key = 0) {
  protocol::StartupPacket p;
  p.kind = kind;
  p.process_id = pid;
  p.secret_key = key;
  Bytes out;
  protocol::encode(out, p);
  return out;
}
template <typename M>
Bytes wire(const M& m) {
  Bytes out;
  m.encode(out);
  return out;
}
Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The messages in `bytes`, decoded.
std::vector<std::pair<char, Bytes>> messages(const Bytes& bytes) {
  std::vector<std::pair<char, Bytes>> out;
  protocol::MessageDecoder decoder(protocol::Direction::Backend);
  protocol::ByteView in(bytes);
  while (!in.empty()) {
    auto r = decoder.next(in);
    in = in.subspan(r.consumed);
    if (r.status != protocol::DecodeStatus::Frame) break;
    out.emplace_back(r.frame.type, Bytes(r.frame.data.begin(), r.frame.data.end()));
  }
  return out;
}

std::string error_of(const Bytes& output) {
  auto m = messages(output);
  if (m.empty() || m.back().first != 'E') return "(no error)";
  auto e = protocol::ErrorResponse::decode(m.back().second);
  return std::string(e->sqlstate()) + " " + std::string(e->message());
}

std::shared_ptr<const auth::Userlist> users(const std::string& text) {
  auto load = auth::parse_userlist(text);
  return std::make_shared<const auth::Userlist>(std::move(*load.userlist));
}

class LoginTest : public ::testing::Test {
 protected:
  ClientLogin& make(LoginSettings s = {}) {
    login = std::make_unique<ClientLogin>(std::move(s), now);
    return *login;
  }
  // Feeds `bytes`; returns how many the login took.
  std::size_t feed(const Bytes& bytes) { return login->on_bytes(bytes, now); }
  Bytes output() { return std::exchange(login->output(), {}); }

  std::unique_ptr<ClientLogin> login;
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::time_point{} + 1h;
};

TEST_F(LoginTest, TrustLogsInAtTheStartupMessage) {
  make();
  Bytes s = startup({{"user", "alice"}, {"database", "shop"}, {"application_name", "web"}});
  EXPECT_EQ(feed(s), s.size());
  EXPECT_EQ(login->status(), Status::Authenticated);
  EXPECT_EQ(login->user(), "alice");
  EXPECT_EQ(login->database(), "shop");
  EXPECT_EQ(login->startup().param("application_name"), "web");
  EXPECT_FALSE(login->admin());
  EXPECT_TRUE(output().empty());  // the session answers, once the upstream login works
}

TEST_F(LoginTest, DatabaseDefaultsToTheUsersName) {
  make();
  feed(startup({{"user", "alice"}}));
  EXPECT_EQ(login->database(), "alice");
}

TEST_F(LoginTest, BytesBehindTheStartupPacketAreLeftForTheSession) {
  make();
  Bytes s = startup({{"user", "alice"}});
  Bytes q = wire(protocol::Query{"SELECT 1"});
  EXPECT_EQ(feed(s + q), s.size());
}

TEST_F(LoginTest, StartupPacketInPieces) {
  make();
  Bytes s = startup({{"user", "alice"}, {"database", "shop"}});
  for (std::size_t i = 0; i < s.size(); ++i) {
    EXPECT_EQ(login->status(), Status::Reading);
    EXPECT_EQ(feed(Bytes{s[i]}), 1u);
  }
  EXPECT_EQ(login->status(), Status::Authenticated);
}

TEST_F(LoginTest, SslRequestIsAnsweredNoAndTheClientGoesOn) {
  make();
  Bytes ssl = request(protocol::StartupPacket::Kind::SSLRequest);
  Bytes s = startup({{"user", "alice"}});
  EXPECT_EQ(feed(ssl + s), ssl.size() + s.size());
  EXPECT_EQ(output(), Bytes{'N'});
  EXPECT_EQ(login->status(), Status::Authenticated);
}

// ---- TLS ----

LoginSettings with_tls(config::TlsMode mode, auth::AuthType auth = auth::AuthType::Trust) {
  LoginSettings s;
  s.tls_mode = mode;
  s.auth_type = auth;
  return s;
}

TEST_F(LoginTest, SslRequestIsAnsweredYesWhenTlsIsOnThenTheStartupComesInsideTls) {
  make(with_tls(config::TlsMode::Prefer));
  Bytes ssl = request(protocol::StartupPacket::Kind::SSLRequest);
  EXPECT_EQ(feed(ssl), ssl.size());
  EXPECT_EQ(output(), Bytes{'S'});
  EXPECT_EQ(login->status(), Status::StartTls);
  EXPECT_FALSE(login->direct_tls());
  login->on_tls_started("", "");
  EXPECT_EQ(login->status(), Status::Reading);
  EXPECT_TRUE(login->tls());
  feed(startup({{"user", "alice"}}));
  EXPECT_EQ(login->status(), Status::Authenticated);
}

TEST_F(LoginTest, BytesBehindAnSslRequestAreRefused) {
  // CVE-2021-23222: bytes sent before the answer could be taken as if they came through TLS.
  make(with_tls(config::TlsMode::Require));
  feed(request(protocol::StartupPacket::Kind::SSLRequest) + startup({{"user", "alice"}}));
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(error_of(output()), "08P01 pglens: received unencrypted data after SSL request");
}

TEST_F(LoginTest, RequireRefusesAPlaintextLogin) {
  make(with_tls(config::TlsMode::Require));
  feed(startup({{"user", "alice"}}));
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(error_of(output()),
            "28000 pglens: TLS is required (client_tls_sslmode = require): connect with "
            "sslmode=require or stronger");
}

TEST_F(LoginTest, RequireStillTakesAPlaintextCancelRequest) {
  // libpq before 17 sends cancel requests in the clear, whatever its sslmode.
  make(with_tls(config::TlsMode::Require));
  feed(request(protocol::StartupPacket::Kind::CancelRequest, 1, 2));
  EXPECT_EQ(login->status(), Status::Cancel);
}

TEST_F(LoginTest, SecondSslRequestInsideTlsIsAProtocolViolation) {
  make(with_tls(config::TlsMode::Prefer));
  feed(request(protocol::StartupPacket::Kind::SSLRequest));
  output();
  login->on_tls_started("", "");
  feed(request(protocol::StartupPacket::Kind::SSLRequest));
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(error_of(output()), "08P01 pglens: SSLRequest inside TLS");
}

TEST_F(LoginTest, DirectTlsIsRecognisedByItsFirstByteAndLeftForTheHandshake) {
  make(with_tls(config::TlsMode::Require));
  Bytes hello{0x16, 0x03, 0x01, 0x02, 0x00};
  EXPECT_EQ(feed(hello), 0u);
  EXPECT_EQ(login->status(), Status::StartTls);
  EXPECT_TRUE(login->direct_tls());
  EXPECT_TRUE(output().empty());  // no 'S': the client did not ask
  login->on_tls_started("", "postgresql");
  feed(startup({{"user", "alice"}}));
  EXPECT_EQ(login->status(), Status::Authenticated);
}

TEST_F(LoginTest, DirectTlsWithoutTheAlpnProtocolIsRefused) {
  make(with_tls(config::TlsMode::Require));
  feed(Bytes{0x16, 0x03, 0x01});
  login->on_tls_started("", "");
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(login->reason(), "direct TLS connection without ALPN protocol \"postgresql\"");
}

TEST_F(LoginTest, DirectTlsWhenTlsIsOffEndsTheConnection) {
  make();
  feed(Bytes{0x16, 0x03, 0x01});
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_TRUE(output().empty());
}

TEST_F(LoginTest, FailedHandshakeFailsTheLoginSilently) {
  make(with_tls(config::TlsMode::Prefer));
  feed(request(protocol::StartupPacket::Kind::SSLRequest));
  output();
  login->on_tls_failed("certificate verify failed");
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(login->reason(), "TLS handshake failed: certificate verify failed");
  EXPECT_TRUE(output().empty());
}

TEST_F(LoginTest, LoginTimeoutDuringTheHandshakeSaysNothingInTheClear) {
  make(with_tls(config::TlsMode::Prefer));
  feed(request(protocol::StartupPacket::Kind::SSLRequest));
  output();
  now += 61s;
  login->on_timer(now);
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(login->reason(), "TLS handshake timeout");
  EXPECT_TRUE(output().empty());
}

TEST_F(LoginTest, VerifyFullWantsTheCertificateToNameTheUser) {
  make(with_tls(config::TlsMode::VerifyFull));
  feed(request(protocol::StartupPacket::Kind::SSLRequest));
  output();
  login->on_tls_started("bob", "");
  feed(startup({{"user", "alice"}}));
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(error_of(output()),
            "28000 pglens: certificate common name \"bob\" does not match user \"alice\"");
}

TEST_F(LoginTest, CertAuthLogsInTheUserItsCertificateNames) {
  make(with_tls(config::TlsMode::VerifyCa, auth::AuthType::Cert));
  feed(request(protocol::StartupPacket::Kind::SSLRequest));
  output();
  login->on_tls_started("alice", "");
  feed(startup({{"user", "alice"}}));
  EXPECT_EQ(login->status(), Status::Authenticated);
}

TEST_F(LoginTest, CertAuthRefusesAnotherUser) {
  make(with_tls(config::TlsMode::VerifyCa, auth::AuthType::Cert));
  feed(request(protocol::StartupPacket::Kind::SSLRequest));
  output();
  login->on_tls_started("bob", "");
  feed(startup({{"user", "alice"}}));
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(error_of(output()), "28000 certificate authentication failed for user \"alice\"");
}

TEST_F(LoginTest, GssEncRequestIsAnsweredNo) {
  make();
  feed(request(protocol::StartupPacket::Kind::GSSENCRequest));
  EXPECT_EQ(output(), Bytes{'N'});
  EXPECT_EQ(login->status(), Status::Reading);
}

TEST_F(LoginTest, CancelRequestNamesTheSessionAndGetsNoAnswer) {
  make();
  feed(request(protocol::StartupPacket::Kind::CancelRequest, 4242, 777));
  EXPECT_EQ(login->status(), Status::Cancel);
  EXPECT_EQ(login->cancel_key(), (protocol::BackendKeyData{4242, 777}));
  EXPECT_TRUE(output().empty());
}

TEST_F(LoginTest, ImpossibleStartupLengthIsRefused) {
  make();
  feed(Bytes{0, 0, 0, 2});
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(error_of(output()), "08P01 pglens: invalid startup packet length 2");
  EXPECT_EQ(login->reason(), "bad startup packet: invalid startup packet length 2");
}

TEST_F(LoginTest, HttpRequestToThePostgresPortIsRefused) {
  make();
  Bytes get{'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P'};
  feed(get);
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_TRUE(login->refused());
}

TEST_F(LoginTest, OtherProtocolVersionsAreRefused) {
  make();
  protocol::StartupPacket p;
  p.protocol = 2 << 16;
  p.params = {{"user", "alice"}};
  Bytes out;
  protocol::encode(out, p);
  feed(out);
  EXPECT_EQ(error_of(output()),
            "08P01 pglens: unsupported frontend protocol 2.0: server supports 3.0");
}

TEST_F(LoginTest, MaxClientConnRefusesOneTooMany) {
  LoginSettings s;
  s.max_client_conn = 3;
  s.clients = 4;
  make(s);
  feed(startup({{"user", "alice"}}));
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(error_of(output()), "53300 pglens: no more connections allowed (max_client_conn 3)");
}

TEST_F(LoginTest, Md5PasswordIsChecked) {
  LoginSettings s;
  s.auth_type = auth::AuthType::Md5;
  s.userlist = users("\"alice\" \"secret\"\n");
  make(s);
  feed(startup({{"user", "alice"}}));
  auto m = messages(output());
  ASSERT_EQ(m.size(), 1u);
  auto request = protocol::Authentication::decode(m[0].second);
  ASSERT_EQ(request->code, protocol::Authentication::kMD5Password);
  std::string salt(request->data.begin(), request->data.end());
  feed(wire(protocol::PasswordMessage{auth::md5_password_response("alice", "secret", salt)}));
  EXPECT_EQ(login->status(), Status::Authenticated);
}

TEST_F(LoginTest, WrongMd5PasswordIsDenied) {
  LoginSettings s;
  s.auth_type = auth::AuthType::Md5;
  s.userlist = users("\"alice\" \"secret\"\n");
  make(s);
  feed(startup({{"user", "alice"}}));
  output();
  feed(wire(protocol::PasswordMessage{"md5" + std::string(32, '0')}));
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(error_of(output()), "28P01 password authentication failed for user \"alice\"");
}

TEST_F(LoginTest, ScramExchangeLogsIn) {
  LoginSettings s;
  s.auth_type = auth::AuthType::ScramSha256;
  s.userlist = users("\"alice\" \"secret\"\n");
  make(s);
  feed(startup({{"user", "alice"}}));
  auto offer = protocol::Authentication::decode(messages(output())[0].second);
  ASSERT_EQ(offer->code, protocol::Authentication::kSASL);
  EXPECT_EQ(offer->mechanisms(), (std::vector<std::string>{"SCRAM-SHA-256"}));
  auth::ScramClient client("secret");
  auto first = client.client_first();
  feed(wire(protocol::SASLInitialResponse{"SCRAM-SHA-256", Bytes(first.begin(), first.end())}));
  auto challenge = protocol::Authentication::decode(messages(output())[0].second);
  ASSERT_EQ(challenge->code, protocol::Authentication::kSASLContinue);
  auto final_message = client.client_final(protocol::as_chars(challenge->data));
  ASSERT_TRUE(final_message) << client.error();
  feed(wire(protocol::SASLResponse{Bytes(final_message->begin(), final_message->end())}));
  auto outcome = protocol::Authentication::decode(messages(output())[0].second);
  ASSERT_EQ(outcome->code, protocol::Authentication::kSASLFinal);
  EXPECT_TRUE(client.verify_server_final(protocol::as_chars(outcome->data)));
  EXPECT_EQ(login->status(), Status::Authenticated);
}

TEST_F(LoginTest, ScramWithTheWrongPasswordIsDenied) {
  LoginSettings s;
  s.auth_type = auth::AuthType::ScramSha256;
  s.userlist = users("\"alice\" \"secret\"\n");
  make(s);
  feed(startup({{"user", "alice"}}));
  output();
  auth::ScramClient client("guess");
  auto first = client.client_first();
  feed(wire(protocol::SASLInitialResponse{"SCRAM-SHA-256", Bytes(first.begin(), first.end())}));
  auto challenge = protocol::Authentication::decode(messages(output())[0].second);
  auto final_message = client.client_final(protocol::as_chars(challenge->data));
  feed(wire(protocol::SASLResponse{Bytes(final_message->begin(), final_message->end())}));
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(error_of(output()), "28P01 password authentication failed for user \"alice\"");
}

TEST_F(LoginTest, UnknownUserGoesThroughScramAndFailsTheSameWay) {
  LoginSettings s;
  s.auth_type = auth::AuthType::ScramSha256;
  s.userlist = users("\"alice\" \"secret\"\n");
  make(s);
  feed(startup({{"user", "mallory"}}));
  output();
  auth::ScramClient client("secret");
  auto first = client.client_first();
  feed(wire(protocol::SASLInitialResponse{"SCRAM-SHA-256", Bytes(first.begin(), first.end())}));
  auto m = messages(output());
  ASSERT_EQ(m.size(), 1u);  // a challenge, as for a user who exists
  auto challenge = protocol::Authentication::decode(m[0].second);
  auto final_message = client.client_final(protocol::as_chars(challenge->data));
  ASSERT_TRUE(final_message);
  feed(wire(protocol::SASLResponse{Bytes(final_message->begin(), final_message->end())}));
  EXPECT_EQ(error_of(output()), "28P01 password authentication failed for user \"mallory\"");
}

// Over TLS pglens offers SCRAM-SHA-256-PLUS first, bound to its own certificate's hash, as
// Postgres does: a client with channel_binding=require logs in, one that binds to another
// certificate (a man in the middle) does not.
class TlsScramLoginTest : public LoginTest {
 protected:
  Status log_in_binding_to(const std::string& end_point) {
    LoginSettings s = with_tls(config::TlsMode::Require, auth::AuthType::ScramSha256);
    s.userlist = users("\"alice\" \"secret\"\n");
    make(s);
    feed(request(protocol::StartupPacket::Kind::SSLRequest));
    output();
    login->on_tls_started("", "", kOwnEndPoint);
    feed(startup({{"user", "alice"}}));
    auto offer = protocol::Authentication::decode(messages(output())[0].second);
    EXPECT_EQ(offer->mechanisms(),
              (std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}));
    auth::ScramClient client("secret", {}, auth::ScramClient::ChannelBinding::TlsServerEndPoint,
                             end_point);
    auto first = client.client_first();
    feed(wire(
        protocol::SASLInitialResponse{"SCRAM-SHA-256-PLUS", Bytes(first.begin(), first.end())}));
    auto challenge = protocol::Authentication::decode(messages(output())[0].second);
    auto final_message = client.client_final(protocol::as_chars(challenge->data));
    EXPECT_TRUE(final_message) << client.error();
    feed(wire(protocol::SASLResponse{Bytes(final_message->begin(), final_message->end())}));
    Bytes out = output();
    if (login->status() == Status::Authenticated) {
      auto outcome = protocol::Authentication::decode(messages(out)[0].second);
      EXPECT_TRUE(client.verify_server_final(protocol::as_chars(outcome->data)));
    }
    last_error = error_of(out);
    return login->status();
  }
  const std::string kOwnEndPoint = std::string(32, '\x17');
  std::string last_error;
};

TEST_F(TlsScramLoginTest, ChannelBoundScramLogsIn) {
  EXPECT_EQ(log_in_binding_to(kOwnEndPoint), Status::Authenticated);
}

TEST_F(TlsScramLoginTest, BindingToAnotherCertificateIsDenied) {
  EXPECT_EQ(log_in_binding_to(std::string(32, 'm')), Status::Failed);
  EXPECT_EQ(last_error, "28P01 password authentication failed for user \"alice\"");
}

TEST_F(LoginTest, WithoutTlsPlusIsNeitherOfferedNorAccepted) {
  LoginSettings s;
  s.auth_type = auth::AuthType::ScramSha256;
  s.userlist = users("\"alice\" \"secret\"\n");
  make(s);
  feed(startup({{"user", "alice"}}));
  output();
  auth::ScramClient client("secret");
  auto first = client.client_first();
  feed(
      wire(protocol::SASLInitialResponse{"SCRAM-SHA-256-PLUS", Bytes(first.begin(), first.end())}));
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(error_of(output()),
            "08P01 pglens: client selected an invalid SASL authentication mechanism");
}

TEST_F(LoginTest, NotAPasswordMessageDuringAuthentication) {
  LoginSettings s;
  s.auth_type = auth::AuthType::Md5;
  s.userlist = users("\"alice\" \"secret\"\n");
  make(s);
  feed(startup({{"user", "alice"}}));
  output();
  feed(wire(protocol::Query{"SELECT 1"}));
  EXPECT_EQ(error_of(output()), "08P01 pglens: expected a password message");
}

TEST_F(LoginTest, AdminConsoleForAdminUsersOnly) {
  LoginSettings s;
  s.admin_users = {"ops"};
  make(s);
  feed(startup({{"user", "ops"}, {"database", "pgbouncer"}}));
  EXPECT_EQ(login->status(), Status::Authenticated);
  EXPECT_TRUE(login->admin());
  make(s);
  feed(startup({{"user", "alice"}, {"database", "pglens"}}));
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(error_of(output()), "28000 pglens: user \"alice\" is not in admin_users");
}

TEST_F(LoginTest, LoginTimeoutCoversAuthenticationToo) {
  LoginSettings s;
  s.auth_type = auth::AuthType::Md5;
  s.userlist = users("\"alice\" \"secret\"\n");
  s.timeout = 5s;
  make(s);
  EXPECT_EQ(login->deadline(), now + 5s);
  feed(startup({{"user", "alice"}}));
  output();
  login->on_timer(now + 4s);
  EXPECT_EQ(login->status(), Status::Reading);  // not yet
  login->on_timer(now + 5s);
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_EQ(error_of(output()),
            "08P01 pglens: client did not complete its login within the login timeout");
  EXPECT_EQ(login->reason(), "authentication timeout");
}

TEST_F(LoginTest, ClientGoneDuringStartup) {
  make();
  feed(Bytes{0, 0});
  login->on_client_gone("client closed connection");
  EXPECT_EQ(login->status(), Status::Failed);
  EXPECT_FALSE(login->refused());
  EXPECT_EQ(login->reason(), "client closed connection during startup");
  EXPECT_TRUE(output().empty());
}

}  // namespace
}  // namespace pglens::session
