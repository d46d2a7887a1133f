// Client authentication, server side: PgBouncer's userlist file and the checks PostgreSQL makes
// of a client's password (MD5 and SCRAM-SHA-256). Sans-I/O: the caller moves the messages.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace pglens::auth {

// One user's secret as a userlist (or pg_authid.rolpassword) stores it.
struct UserSecret {
  enum class Kind {
    Plain,  // the password itself
    Md5,    // "md5" + md5(password + user)
    Scram,  // "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
  };
  Kind kind = Kind::Plain;
  std::string text;  // as written
  // Kind::Scram only, decoded from the verifier.
  int iterations = 0;
  std::string salt, stored_key, server_key;  // raw bytes

  // The kind follows PgBouncer: "md5" + 32 hex digits is an MD5 hash, a "SCRAM-SHA-256$" prefix a
  // verifier (malformed: nullopt with *error set), anything else plaintext.
  static std::optional<UserSecret> parse(std::string_view text, std::string* error = nullptr);
};

struct UserlistError {
  int line = 0;  // 1-based; 0 for the file as a whole
  std::string reason;
  std::string message() const;
};

struct Userlist {
  std::map<std::string, UserSecret, std::less<>> users;
  const UserSecret* find(std::string_view user) const;
};

struct UserlistLoad {
  std::optional<Userlist> userlist;
  UserlistError error;
};
// `"user" "secret"` per line, `""` for a quote inside; `;` or `#` lines and blank lines are
// skipped. A malformed line or a user listed twice is refused with its line number.
UserlistLoad parse_userlist(std::string_view text);
UserlistLoad load_userlist(const std::string& path);

// PostgreSQL's verifier text for a password: what CREATE ROLE ... PASSWORD stores under
// password_encryption = scram-sha-256. salt is raw bytes. The password is used as its bytes
// (no SASLprep), which matches PostgreSQL for ASCII passwords.
std::string scram_verifier(std::string_view password, std::string_view salt, int iterations);

// Checks an AuthenticationMD5Password answer: client_response is "md5" + 32 hex digits (the
// PasswordMessage text without its terminating zero). Works for plaintext and MD5 secrets; a SCRAM
// verifier cannot answer an MD5 challenge, and an empty password never matches.
bool verify_md5_response(const UserSecret& secret, std::string_view user, std::string_view salt4,
                         std::string_view client_response);

// The server side of one SCRAM-SHA-256 exchange, without channel binding.
//   client: SASLInitialResponse(client-first) → server_first() → AuthenticationSASLContinue
//   client: SASLResponse(client-final)        → server_final() → AuthenticationSASLFinal
// Any nullopt ends the exchange: the client failed to authenticate, error() says why.
class ScramServer {
 public:
  // Plaintext: a verifier is derived with a random salt and 4096 iterations. An MD5 secret cannot
  // serve SCRAM: ok() is false from the start. server_nonce: for tests; random when empty.
  explicit ScramServer(const UserSecret& secret, std::string server_nonce = {});

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // Over TLS, before server_first: the mechanism the client chose and the channel's binding data
  // (tls-server-end-point: the hash of pglens' certificate). SCRAM-SHA-256-PLUS then requires the
  // client's binding to match it; plain SCRAM-SHA-256 with "y" (the client could bind but
  // believes the server cannot) is refused, since SCRAM-SHA-256-PLUS was offered: someone
  // stripped it (RFC 5802, section 6).
  void bind_channel(bool plus_chosen, std::string end_point);

  std::optional<std::string> server_first(std::string_view client_first_message);
  // "v=<ServerSignature>" when the client proved it knows the password.
  std::optional<std::string> server_final(std::string_view client_final_message);

  bool authenticated() const { return authenticated_; }
  // After success, the client's ClientKey (raw): enough to log in to a server holding the same
  // verifier, as PgBouncer does with SCRAM pass-through.
  const std::string& client_key() const { return client_key_; }

 private:
  std::optional<std::string> fail(std::string why);

  enum class Step { First, Final, Done };
  Step step_ = Step::First;
  int iterations_ = 0;
  std::string salt_, stored_key_, server_key_;
  std::string server_nonce_;
  std::string cbind_b64_;  // base64 of the gs2 header (and binding data), expected back in c=
  bool offered_plus_ = false, plus_chosen_ = false;
  std::string end_point_;
  std::string nonce_;  // client nonce + server nonce
  std::string client_first_bare_, server_first_;
  std::string client_key_;
  bool authenticated_ = false;
  std::string error_;
};

}  // namespace pglens::auth
