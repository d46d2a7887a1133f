#include "auth/scram.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace pglens::auth {
namespace {

// RFC 7677, section 3: the SCRAM-SHA-256 example exchange (password "pencil"). The RFC's client
// sends n=user; PostgreSQL's clients send an empty name, which changes the AuthMessage, so the
// proof and server signature below were computed for "n=" with Python's hashlib/hmac (the same
// script reproduces the RFC's values for "n=user").
TEST(ScramClient, FollowsTheRfcExchangeShape) {
  ScramClient client("pencil", "rOprNGfwEbeRWgbNEkqO");
  EXPECT_EQ(client.client_first(), "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
  auto final = client.client_final(
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  ASSERT_TRUE(final) << client.error();
  EXPECT_EQ(*final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=");
  EXPECT_FALSE(client.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
  EXPECT_TRUE(client.verify_server_final("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg="));
}

// Channel binding (RFC 5802 section 6, RFC 5929 tls-server-end-point): the GS2 header names the
// binding in client-first, and client-final's c= carries the header followed by the binding data
// (the server certificate's hash), base64: what Postgres compares with its own certificate's.
TEST(ScramClient, ChannelBindingGoesInTheGs2HeaderAndInCFinal) {
  std::string hash(32, '\x5a');
  ScramClient client("pencil", "abc", ScramClient::ChannelBinding::TlsServerEndPoint, hash);
  EXPECT_EQ(client.client_first(), "p=tls-server-end-point,,n=,r=abc");
  auto final = client.client_final("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  ASSERT_TRUE(final) << client.error();
  EXPECT_EQ(final->substr(0, final->find(',')),
            "c=" + base64_encode("p=tls-server-end-point,," + hash));
}

TEST(ScramClient, OverTlsWithoutPlusTheClientSaysItCouldBind) {
  // "y": a server that does offer SCRAM-SHA-256-PLUS then knows its offer was stripped.
  ScramClient client("pencil", "abc", ScramClient::ChannelBinding::Supported);
  EXPECT_EQ(client.client_first(), "y,,n=,r=abc");
  auto final = client.client_final("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  ASSERT_TRUE(final);
  EXPECT_EQ(final->substr(0, 6), "c=eSws");  // base64("y,,")
}

TEST(ScramClient, RejectsAForeignNonce) {
  ScramClient client("pencil", "abc");
  EXPECT_FALSE(client.client_final("r=xyzdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
  EXPECT_NE(client.error().find("nonce"), std::string::npos);
}

TEST(ScramClient, RejectsMalformedServerFirst) {
  ScramClient client("pencil", "abc");
  EXPECT_FALSE(client.client_final("r=abcdef,i=4096"));
  EXPECT_FALSE(client.client_final("r=abcdef,s=!!!!,i=4096"));
  EXPECT_FALSE(client.client_final("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=zero"));
}

TEST(ScramClient, ReportsServerError) {
  ScramClient client("pencil", "abc");
  EXPECT_FALSE(client.verify_server_final("e=invalid-proof"));
  EXPECT_NE(client.error().find("invalid-proof"), std::string::npos);
}

TEST(Md5, MatchesPostgresFormula) {
  // md5(md5("secret" + "alice") + salt), computed independently with Python's hashlib.
  EXPECT_EQ(md5_password_response("alice", "secret", std::string("\x01\x02\x03\x04", 4)),
            "md598a0412b9c31436fc53776e863350083");
}

TEST(Base64, RoundTrips) {
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto back = base64_decode(base64_encode(s));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(base64_decode("abc"));
}

}  // namespace
}  // namespace pglens::auth
