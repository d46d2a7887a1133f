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
