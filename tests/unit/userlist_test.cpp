#include "auth/userlist.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "auth/scram.hpp"

namespace pglens::auth {
namespace {

// Real secrets, read from pg_authid of a PostgreSQL 15 cluster made by tests/support/pg_cluster.sh.
constexpr std::string_view kPgScramUser = "pglens_scram";
constexpr std::string_view kPgScramPassword = "scram-secret";
constexpr std::string_view kPgScramVerifier =
    "SCRAM-SHA-256$4096:14xgBKxruLYwQX/1S2iOOg==$f3oYbONEpJXdP3/2va6ABKcydqB/Weg7v0UzlZzsvHY=:"
    "iGAQ7uYey9cQ/5axD5e2RfdlgaDH0ebF9o3CG5oVF1Y=";
constexpr std::string_view kPgMd5User = "pglens_md5";
constexpr std::string_view kPgMd5Password = "md5-secret";
constexpr std::string_view kPgMd5Secret = "md52fd9d60c5cbf563c2cb293e2f9a1eb5f";

// RFC 7677, section 3.
constexpr std::string_view kRfcSaltB64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

const std::string kSalt4("\x01\x02\x03\x04", 4);

UserSecret secret(std::string_view text) {
  std::string error;
  auto s = UserSecret::parse(text, &error);
  EXPECT_TRUE(s) << error;
  return s.value_or(UserSecret{});
}

// Runs the whole exchange with pglens' own SCRAM client; returns the server's error, "" on success.
std::string scram_exchange(const UserSecret& s, std::string_view password) {
  ScramServer server(s);
  ScramClient client{std::string(password)};
  auto first = server.server_first(client.client_first());
  if (!first) return server.error();
  auto client_final = client.client_final(*first);
  if (!client_final) return "client: " + client.error();
  auto final = server.server_final(*client_final);
  if (!final) return server.error();
  if (!server.authenticated()) return "not authenticated";
  if (!client.verify_server_final(*final)) return "client rejected server: " + client.error();
  return "";
}

// An independent SCRAM client proof (RFC 5802), for messages ScramClient does not send.
std::string proof_for(std::string_view password, std::string_view salt, int iterations,
                      const std::string& auth_message) {
  unsigned char salted[32], client_key[32], stored_key[32], signature[32];
  unsigned len = 0;
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(), 32, salted);
  HMAC(EVP_sha256(), salted, 32, reinterpret_cast<const unsigned char*>("Client Key"), 10,
       client_key, &len);
  SHA256(client_key, 32, stored_key);
  HMAC(EVP_sha256(), stored_key, 32, reinterpret_cast<const unsigned char*>(auth_message.data()),
       auth_message.size(), signature, &len);
  std::string proof(32, '\0');
  for (int i = 0; i < 32; ++i) proof[i] = static_cast<char>(client_key[i] ^ signature[i]);
  return base64_encode(proof);
}

// ---- userlist ----

TEST(Userlist, ParsesEveryKindOfSecretAndSkipsCommentsAndBlanks) {
  std::string text =
      "; PgBouncer comment\n"
      "# another\n"
      "\n"
      "   \n"
      "\"alice\" \"plain pass\"\n"
      "  \"pglens_md5\"\t\"" +
      std::string(kPgMd5Secret) + "\"  \r\n\"pglens_scram\" \"" + std::string(kPgScramVerifier) +
      "\"";
  auto load = parse_userlist(text);
  ASSERT_TRUE(load.userlist) << load.error.message();
  const auto& users = load.userlist->users;
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users.at("alice").kind, UserSecret::Kind::Plain);
  EXPECT_EQ(users.at("alice").text, "plain pass");
  EXPECT_EQ(users.at("pglens_md5").kind, UserSecret::Kind::Md5);
  const auto& scram = users.at("pglens_scram");
  EXPECT_EQ(scram.kind, UserSecret::Kind::Scram);
  EXPECT_EQ(scram.iterations, 4096);
  EXPECT_EQ(scram.salt.size(), 16u);
  EXPECT_EQ(scram.stored_key.size(), 32u);
  EXPECT_EQ(scram.server_key.size(), 32u);
  EXPECT_NE(load.userlist->find("alice"), nullptr);
  EXPECT_EQ(load.userlist->find("bob"), nullptr);
}

TEST(Userlist, DoubledQuoteStandsForOneQuote) {
  auto load = parse_userlist(R"("we""ird" "pa""ss""")");
  ASSERT_TRUE(load.userlist) << load.error.message();
  auto s = load.userlist->find("we\"ird");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->text, "pa\"ss\"");
}

TEST(Userlist, EmptyFileIsAnEmptyList) {
  auto load = parse_userlist("");
  ASSERT_TRUE(load.userlist);
  EXPECT_TRUE(load.userlist->users.empty());
}

TEST(Userlist, MalformedLinesAreRefusedWithTheirLineNumber) {
  struct Case {
    std::string text;
    int line;
    std::string reason_part;
  };
  const Case cases[] = {
      {"alice \"x\"", 1, "double-quoted"},
      {"\"alice\" x", 1, "secret"},
      {"# c\n\"alice\"", 2, "secret"},
      {"\"alice\" \"x\"\n\"bob\" \"unterminated", 2, "unterminated"},
      {"\"alice\" \"x\" extra", 1, "unexpected text"},
      {"\"\" \"x\"", 1, "empty user name"},
      {"\"alice\" \"x\"\n\n\"alice\" \"y\"", 3, "listed twice (also on line 1)"},
      {"\"alice\" \"SCRAM-SHA-256$4096:c2FsdA==$short:short\"", 1, "StoredKey"},
      {"\"alice\" \"SCRAM-SHA-256$zero:c2FsdA==$a:b\"", 1, "iteration"},
      {"\"alice\" \"SCRAM-SHA-256$4096\"", 1, "SCRAM-SHA-256 verifier"},
  };
  for (const auto& c : cases) {
    auto load = parse_userlist(c.text);
    ASSERT_FALSE(load.userlist) << c.text;
    EXPECT_EQ(load.error.line, c.line) << c.text;
    EXPECT_NE(load.error.message().find(c.reason_part), std::string::npos)
        << c.text << " → " << load.error.message();
    EXPECT_EQ(load.error.message().rfind("line " + std::to_string(c.line) + ": ", 0), 0u);
  }
}

TEST(Userlist, LoadsAFileAndReportsAnUnreadableOne) {
  auto path = std::filesystem::temp_directory_path() /
              ("pglens-userlist-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(path) << "\"alice\" \"secret\"\n";
  auto load = load_userlist(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(load.userlist) << load.error.message();
  EXPECT_NE(load.userlist->find("alice"), nullptr);

  auto missing = load_userlist(path.string());
  ASSERT_FALSE(missing.userlist);
  EXPECT_NE(missing.error.message().find("cannot read"), std::string::npos);
}

TEST(UserlistSecretKind, TellsKindsApart) {
  EXPECT_EQ(secret("md5").kind, UserSecret::Kind::Plain);
  EXPECT_EQ(secret("md52fd9d60c5cbf563c2cb293e2f9a1eb5").kind, UserSecret::Kind::Plain);  // 31
  EXPECT_EQ(secret("md5zzd9d60c5cbf563c2cb293e2f9a1eb5f").kind, UserSecret::Kind::Plain);
  EXPECT_EQ(secret(kPgMd5Secret).kind, UserSecret::Kind::Md5);
  EXPECT_EQ(secret(kPgScramVerifier).kind, UserSecret::Kind::Scram);
  EXPECT_EQ(secret("scram-sha-256$lowercase-is-plain").kind, UserSecret::Kind::Plain);
}

// ---- verifiers and MD5 ----

TEST(ScramVerifier, ReproducesPostgresVerifier) {
  auto salt = base64_decode("14xgBKxruLYwQX/1S2iOOg==");
  ASSERT_TRUE(salt);
  EXPECT_EQ(scram_verifier(kPgScramPassword, *salt, 4096), kPgScramVerifier);
}

TEST(UserlistMd5Verify, AcceptsTheRightPasswordAgainstPostgresMd5Secret) {
  auto s = secret(kPgMd5Secret);
  auto response = md5_password_response(kPgMd5User, kPgMd5Password, kSalt4);
  EXPECT_TRUE(verify_md5_response(s, kPgMd5User, kSalt4, response));
  EXPECT_FALSE(verify_md5_response(s, kPgMd5User, kSalt4,
                                   md5_password_response(kPgMd5User, "wrong", kSalt4)));
  // The stored hash is salted with the user name: another user's hash never matches.
  EXPECT_FALSE(verify_md5_response(s, "someone_else", kSalt4,
                                   md5_password_response("someone_else", kPgMd5Password, kSalt4)));
  // Another salt, as a replayed answer would have.
  EXPECT_FALSE(verify_md5_response(s, kPgMd5User, "abcd", response));
}

TEST(UserlistMd5Verify, UppercaseHexSecretStillMatches) {
  std::string upper = "md5" + std::string(kPgMd5Secret.substr(3));
  for (std::size_t i = 3; i < upper.size(); ++i)
    upper[i] = static_cast<char>(std::toupper(upper[i]));
  auto response = md5_password_response(kPgMd5User, kPgMd5Password, kSalt4);
  EXPECT_TRUE(verify_md5_response(secret(upper), kPgMd5User, kSalt4, response));
}

TEST(UserlistMd5Verify, PlaintextSecretWorksScramAndEmptyDoNot) {
  auto response = md5_password_response("alice", "secret", kSalt4);
  EXPECT_TRUE(verify_md5_response(secret("secret"), "alice", kSalt4, response));
  EXPECT_FALSE(verify_md5_response(secret("secreT"), "alice", kSalt4, response));
  EXPECT_FALSE(verify_md5_response(secret(kPgScramVerifier), "alice", kSalt4, response));
  EXPECT_FALSE(
      verify_md5_response(secret(""), "alice", kSalt4, md5_password_response("alice", "", kSalt4)));
  EXPECT_FALSE(verify_md5_response(secret("secret"), "alice", kSalt4, ""));
  EXPECT_FALSE(verify_md5_response(secret("secret"), "alice", kSalt4, response + "0"));
  EXPECT_FALSE(verify_md5_response(secret("secret"), "alice", "abc", response));
}

// ---- SCRAM server ----

TEST(ScramServer, AuthenticatesPglensClientAgainstPostgresVerifier) {
  EXPECT_EQ(scram_exchange(secret(kPgScramVerifier), kPgScramPassword), "");
}

TEST(ScramServer, AuthenticatesAgainstPlaintextSecret) {
  EXPECT_EQ(scram_exchange(secret("plain-secret"), "plain-secret"), "");
}

TEST(ScramServer, RefusesWrongPassword) {
  for (auto s : {secret(kPgScramVerifier), secret("plain-secret")}) {
    auto error = scram_exchange(s, "wrong");
    EXPECT_NE(error.find("wrong SCRAM proof"), std::string::npos) << error;
  }
}

TEST(ScramServer, ReproducesRfc7677Exchange) {
  auto salt = base64_decode(kRfcSaltB64);
  ASSERT_TRUE(salt);
  ScramServer server(secret(scram_verifier("pencil", *salt, 4096)), std::string(kRfcServerNonce));
  auto first = server.server_first("n,,n=user,r=" + std::string(kRfcClientNonce));
  ASSERT_TRUE(first) << server.error();
  EXPECT_EQ(*first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
            "i=4096");
  auto final = server.server_final(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  ASSERT_TRUE(final) << server.error();
  EXPECT_EQ(*final, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  EXPECT_TRUE(server.authenticated());
  // The recovered ClientKey hashes to the StoredKey.
  unsigned char stored[32];
  SHA256(reinterpret_cast<const unsigned char*>(server.client_key().data()),
         server.client_key().size(), stored);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(stored), 32),
            secret(scram_verifier("pencil", *salt, 4096)).stored_key);
}

TEST(ScramServer, PlaintextSecretGetsAFreshSaltEachTime) {
  auto s = secret("plain-secret");
  ScramServer a(s, "N1"), b(s, "N1");
  auto fa = a.server_first("n,,n=,r=abc");
  auto fb = b.server_first("n,,n=,r=abc");
  ASSERT_TRUE(fa && fb);
  EXPECT_NE(*fa, *fb);
  EXPECT_NE(fa->find(",i=4096"), std::string::npos);
}

TEST(ScramServer, RandomServerNonceExtendsTheClientNonce) {
  ScramServer server(secret(kPgScramVerifier));
  auto first = server.server_first("n,,n=,r=clientnonce");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->rfind("r=clientnonce", 0), 0u);
  EXPECT_GT(first->find(",s="), std::string("r=clientnonce").size());
}

TEST(ScramServer, AcceptsYFlagWithMatchingChannelBindingAttribute) {
  auto s = secret(kPgScramVerifier);
  ScramServer server(s, "SRV");
  auto first = server.server_first("y,,n=,r=cli");
  ASSERT_TRUE(first) << server.error();
  std::string without_proof = "c=eSws,r=cliSRV";
  std::string proof =
      proof_for(kPgScramPassword, s.salt, s.iterations, "n=,r=cli," + *first + "," + without_proof);
  auto final = server.server_final(without_proof + ",p=" + proof);
  EXPECT_TRUE(final) << server.error();
}

TEST(ScramServer, RefusesChannelBindingMismatch) {
  auto s = secret(kPgScramVerifier);
  ScramServer server(s, "SRV");
  auto first = server.server_first("y,,n=,r=cli");
  ASSERT_TRUE(first);
  std::string without_proof = "c=biws,r=cliSRV";  // "n,," although the client sent "y,,"
  std::string proof =
      proof_for(kPgScramPassword, s.salt, s.iterations, "n=,r=cli," + *first + "," + without_proof);
  EXPECT_FALSE(server.server_final(without_proof + ",p=" + proof));
  EXPECT_NE(server.error().find("channel-binding"), std::string::npos) << server.error();
}

TEST(ScramServer, RefusesChannelBindingRequest) {
  ScramServer server(secret(kPgScramVerifier));
  EXPECT_FALSE(server.server_first("p=tls-server-end-point,,n=,r=abc"));
  EXPECT_NE(server.error().find("channel binding"), std::string::npos) << server.error();
}

// Over TLS to pglens: the whole exchange with a client that binds to pglens' certificate hash.
std::string bound_exchange(bool plus_chosen, const std::string& server_end_point,
                           ScramClient::ChannelBinding binding,
                           const std::string& client_end_point) {
  ScramServer server(secret(kPgScramVerifier));
  server.bind_channel(plus_chosen, server_end_point);
  ScramClient client(std::string(kPgScramPassword), {}, binding, client_end_point);
  auto first = server.server_first(client.client_first());
  if (!first) return server.error();
  auto client_final = client.client_final(*first);
  if (!client_final) return "client: " + client.error();
  auto final = server.server_final(*client_final);
  if (!final) return server.error();
  if (!client.verify_server_final(*final)) return "client rejected server";
  return "";
}

TEST(ScramServer, PlusBindsTheTlsServerEndPoint) {
  std::string hash(32, '\x42');
  EXPECT_EQ(bound_exchange(true, hash, ScramClient::ChannelBinding::TlsServerEndPoint, hash), "");
}

TEST(ScramServer, PlusRefusesABindingToAnotherCertificate) {
  // A man in the middle terminates the client's TLS with its own certificate.
  auto error = bound_exchange(true, std::string(32, '\x42'),
                              ScramClient::ChannelBinding::TlsServerEndPoint, std::string(32, 'x'));
  EXPECT_NE(error.find("channel-binding"), std::string::npos) << error;
}

TEST(ScramServer, OverTlsAClientWithoutBindingSupportStillLogsIn) {
  EXPECT_EQ(bound_exchange(false, std::string(32, '\x42'), ScramClient::ChannelBinding::None, ""),
            "");
}

TEST(ScramServer, YIsRefusedWhenPlusWasOffered) {
  // The client could bind but believes pglens cannot: the PLUS offer was stripped on the way.
  auto error =
      bound_exchange(false, std::string(32, '\x42'), ScramClient::ChannelBinding::Supported, "");
  EXPECT_NE(error.find("negotiation"), std::string::npos) << error;
}

TEST(ScramServer, PlusWithoutBindingIsRefused) {
  auto error = bound_exchange(true, std::string(32, '\x42'), ScramClient::ChannelBinding::None, "");
  EXPECT_NE(error.find("without channel binding"), std::string::npos) << error;
}

TEST(ScramServer, RefusesAWrongNonceInClientFinal) {
  auto s = secret(kPgScramVerifier);
  ScramServer server(s, "SRV");
  auto first = server.server_first("n,,n=,r=cli");
  ASSERT_TRUE(first);
  // A correct proof over the altered message: only the nonce check can catch it.
  std::string without_proof = "c=biws,r=cliOTHER";
  std::string proof =
      proof_for(kPgScramPassword, s.salt, s.iterations, "n=,r=cli," + *first + "," + without_proof);
  EXPECT_FALSE(server.server_final(without_proof + ",p=" + proof));
  EXPECT_NE(server.error().find("nonce"), std::string::npos) << server.error();
}

TEST(ScramServer, AcceptsExtensionsBeforeTheProof) {
  auto s = secret(kPgScramVerifier);
  ScramServer server(s, "SRV");
  auto first = server.server_first("n,,n=,r=cli,x=ext");
  ASSERT_TRUE(first) << server.error();
  std::string without_proof = "c=biws,r=cliSRV,x=more";
  std::string proof = proof_for(kPgScramPassword, s.salt, s.iterations,
                                "n=,r=cli,x=ext," + *first + "," + without_proof);
  EXPECT_TRUE(server.server_final(without_proof + ",p=" + proof)) << server.error();
}

TEST(ScramServer, RefusesMalformedClientFirst) {
  const char* messages[] = {
      "",         "n",        "x,,n=,r=abc", "n,a=admin,n=,r=abc", "n,,m=ext,n=,r=abc",
      "n,,n=,r=", "n,,r=abc", "n,,n=,s=abc", "n,n=,r=abc",         "n,,n=,r=ab\x01",
  };
  for (const char* m : messages) {
    ScramServer server(secret(kPgScramVerifier));
    EXPECT_FALSE(server.server_first(m)) << m;
    EXPECT_FALSE(server.error().empty()) << m;
    // The exchange is over: nothing more is accepted.
    EXPECT_FALSE(server.server_first("n,,n=,r=abc")) << m;
  }
}

TEST(ScramServer, RefusesMalformedClientFinal) {
  const char* messages[] = {
      "",
      "c=biws,r=cliSRV",                                        // no proof
      "c=biws,r=cliSRV,p=",                                     // empty proof
      "c=biws,r=cliSRV,p=!!!!",                                 // not base64
      "c=biws,r=cliSRV,p=c2hvcnQ=",                             // not 32 bytes
      "r=cliSRV,p=c2hvcnQ=",                                    // no c=
      "c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",  // no r=
  };
  for (const char* m : messages) {
    ScramServer server(secret(kPgScramVerifier), "SRV");
    ASSERT_TRUE(server.server_first("n,,n=,r=cli"));
    EXPECT_FALSE(server.server_final(m)) << m;
    EXPECT_FALSE(server.error().empty()) << m;
    EXPECT_FALSE(server.authenticated());
  }
}

TEST(ScramServer, RefusesMessagesOutOfOrder) {
  ScramServer server(secret(kPgScramVerifier), "SRV");
  EXPECT_FALSE(server.server_final("c=biws,r=cliSRV,p=c2hvcnQ="));
  EXPECT_NE(server.error().find("out of order"), std::string::npos);

  ScramServer done(secret("pw"), "SRV");
  ScramClient client("pw");
  auto first = done.server_first(client.client_first());
  ASSERT_TRUE(first);
  auto final = client.client_final(*first);
  ASSERT_TRUE(final && done.server_final(*final));
  EXPECT_FALSE(done.server_final(*final));  // a replay after success
}

TEST(ScramServer, Md5SecretCannotServeScram) {
  ScramServer server(secret(kPgMd5Secret));
  EXPECT_FALSE(server.ok());
  EXPECT_NE(server.error().find("MD5"), std::string::npos);
  EXPECT_FALSE(server.server_first("n,,n=,r=abc"));
}

TEST(ScramServer, EmptyPlaintextPasswordIsNeverAccepted) {
  ScramServer server(secret(""));
  EXPECT_FALSE(server.ok());
  EXPECT_FALSE(server.server_first("n,,n=,r=abc"));
}

}  // namespace
}  // namespace pglens::auth
