#include "auth/userlist.hpp"

#include "auth/auth_type.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "auth/scram.hpp"

namespace pglens::auth {

namespace {
constexpr std::string_view kScramPrefix = "SCRAM-SHA-256$";
constexpr int kDefaultIterations = 4096;  // PostgreSQL's scram_iterations default
constexpr std::size_t kKeyLen = SHA256_DIGEST_LENGTH;

std::string hmac(std::string_view key, std::string_view data) {
  std::string out(kKeyLen, '\0');
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       reinterpret_cast<unsigned char*>(out.data()), &len);
  return out;
}

std::string sha256(std::string_view data) {
  std::string out(kKeyLen, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string md5_hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_md5(), nullptr);
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < len; ++i) {
    s.push_back(digits[out[i] >> 4]);
    s.push_back(digits[out[i] & 15]);
  }
  return s;
}

// Constant time, so a timing probe learns nothing about how much of a proof matched.
bool same_bytes(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<std::string> random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    return std::nullopt;
  return out;
}

struct ScramKeys {
  std::string stored_key, server_key;
};

ScramKeys derive_keys(std::string_view password, std::string_view salt, int iterations) {
  std::string salted(kKeyLen, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(),
                    static_cast<int>(kKeyLen), reinterpret_cast<unsigned char*>(salted.data()));
  return {sha256(hmac(salted, "Client Key")), hmac(salted, "Server Key")};
}

bool is_hex(std::string_view s) {
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// SCRAM attributes are "x=value"; a nonce is printable ASCII without ','.
bool valid_nonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce)
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  return true;
}

// Takes "name=value" off the front of `message` (up to the next ',').
std::optional<std::string_view> take_attribute(std::string_view& message, char name) {
  if (message.size() < 2 || message[0] != name || message[1] != '=') return std::nullopt;
  auto comma = message.find(',');
  auto value = message.substr(2, comma == std::string_view::npos ? comma : comma - 2);
  message = comma == std::string_view::npos ? std::string_view{} : message.substr(comma + 1);
  return value;
}

// A quoted userlist field: '"' ... '"', with "" standing for one quote.
std::optional<std::string> take_quoted(std::string_view& line, std::string& why) {
  if (line.empty() || line.front() != '"') {
    why = "expected a double-quoted string";
    return std::nullopt;
  }
  std::string out;
  for (std::size_t i = 1; i < line.size(); ++i) {
    if (line[i] != '"') {
      out.push_back(line[i]);
    } else if (i + 1 < line.size() && line[i + 1] == '"') {
      out.push_back('"');
      ++i;
    } else {
      line.remove_prefix(i + 1);
      return out;
    }
  }
  why = "unterminated quoted string";
  return std::nullopt;
}

void skip_blanks(std::string_view& s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
}
}  // namespace

std::optional<UserSecret> UserSecret::parse(std::string_view text, std::string* error) {
  UserSecret s;
  s.text = text;
  if (text.size() == 35 && text.substr(0, 3) == "md5" && is_hex(text.substr(3))) {
    s.kind = Kind::Md5;
    return s;
  }
  if (text.substr(0, kScramPrefix.size()) != kScramPrefix) return s;  // plaintext

  auto bad = [&](std::string why) {
    if (error) *error = "malformed SCRAM-SHA-256 verifier: " + why;
    return std::nullopt;
  };
  // <iterations>:<salt>$<StoredKey>:<ServerKey>
  std::string_view rest = text.substr(kScramPrefix.size());
  auto colon = rest.find(':');
  auto dollar = rest.find('$');
  if (colon == std::string_view::npos || dollar == std::string_view::npos || dollar < colon)
    return bad("expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>");
  auto iter_text = rest.substr(0, colon);
  auto salt_b64 = rest.substr(colon + 1, dollar - colon - 1);
  auto keys = rest.substr(dollar + 1);
  auto key_colon = keys.find(':');
  if (key_colon == std::string_view::npos)
    return bad("expected <StoredKey>:<ServerKey> after the salt");
  auto [p, ec] =
      std::from_chars(iter_text.data(), iter_text.data() + iter_text.size(), s.iterations);
  if (ec != std::errc() || p != iter_text.data() + iter_text.size() || s.iterations < 1)
    return bad("iteration count is not a positive integer");
  auto salt = base64_decode(salt_b64);
  auto stored = base64_decode(keys.substr(0, key_colon));
  auto server = base64_decode(keys.substr(key_colon + 1));
  if (!salt || salt->empty()) return bad("salt is not base64");
  if (!stored || stored->size() != kKeyLen) return bad("StoredKey is not 32 bytes of base64");
  if (!server || server->size() != kKeyLen) return bad("ServerKey is not 32 bytes of base64");
  s.kind = Kind::Scram;
  s.salt = std::move(*salt);
  s.stored_key = std::move(*stored);
  s.server_key = std::move(*server);
  return s;
}

std::string UserlistError::message() const {
  return line > 0 ? "line " + std::to_string(line) + ": " + reason : reason;
}

const UserSecret* Userlist::find(std::string_view user) const {
  auto it = users.find(user);
  return it == users.end() ? nullptr : &it->second;
}

UserlistLoad parse_userlist(std::string_view text) {
  Userlist list;
  std::map<std::string, int, std::less<>> first_line;
  int number = 0;
  auto fail = [&](std::string why) { return UserlistLoad{std::nullopt, {number, std::move(why)}}; };
  while (!text.empty()) {
    auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    skip_blanks(line);
    if (line.empty() || line.front() == ';' || line.front() == '#') continue;

    std::string why;
    auto user = take_quoted(line, why);
    if (!user) return fail(why + " for the user name");
    skip_blanks(line);
    auto secret_text = take_quoted(line, why);
    if (!secret_text) return fail(why + " for the secret of \"" + *user + "\"");
    skip_blanks(line);
    if (!line.empty()) return fail("unexpected text after the secret of \"" + *user + "\"");
    if (user->empty()) return fail("empty user name");
    if (auto seen = first_line.find(*user); seen != first_line.end())
      return fail("user \"" + *user + "\" is listed twice (also on line " +
                  std::to_string(seen->second) + ")");
    auto secret = UserSecret::parse(*secret_text, &why);
    if (!secret) return fail(why + " for \"" + *user + "\"");
    first_line.emplace(*user, number);
    list.users.emplace(std::move(*user), std::move(*secret));
  }
  return {std::move(list), {}};
}

UserlistLoad load_userlist(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {std::nullopt, {0, "cannot read " + path + ": " + std::strerror(errno)}};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return {std::nullopt, {0, "cannot read " + path}};
  return parse_userlist(text.str());
}

std::string scram_verifier(std::string_view password, std::string_view salt, int iterations) {
  auto keys = derive_keys(password, salt, iterations);
  return std::string(kScramPrefix) + std::to_string(iterations) + ":" + base64_encode(salt) + "$" +
         base64_encode(keys.stored_key) + ":" + base64_encode(keys.server_key);
}

bool verify_md5_response(const UserSecret& secret, std::string_view user, std::string_view salt4,
                         std::string_view client_response) {
  if (salt4.size() != 4) return false;
  std::string expected;
  switch (secret.kind) {
    case UserSecret::Kind::Plain:
      // PostgreSQL never accepts an empty password; neither does pglens.
      if (secret.text.empty()) return false;
      expected = md5_password_response(user, secret.text, salt4);
      break;
    case UserSecret::Kind::Md5:
      // The stored hash is md5(password + user): the client's inner hash exactly.
      expected = "md5" + md5_hex(lower(secret.text.substr(3)) + std::string(salt4));
      break;
    case UserSecret::Kind::Scram:
      return false;  // the verifier cannot reproduce md5(password + user)
  }
  return same_bytes(expected, client_response);
}

ScramServer::ScramServer(const UserSecret& secret, std::string server_nonce)
    : server_nonce_(std::move(server_nonce)) {
  if (server_nonce_.empty()) {
    auto raw = random_bytes(18);  // as PostgreSQL: 18 random bytes, base64
    if (!raw) {
      error_ = "no randomness for the SCRAM nonce";
      return;
    }
    server_nonce_ = base64_encode(*raw);
  }
  switch (secret.kind) {
    case UserSecret::Kind::Scram:
      iterations_ = secret.iterations;
      salt_ = secret.salt;
      stored_key_ = secret.stored_key;
      server_key_ = secret.server_key;
      break;
    case UserSecret::Kind::Plain: {
      if (secret.text.empty()) {
        error_ = "the user has an empty password, which is never accepted";
        return;
      }
      auto salt = random_bytes(16);
      if (!salt) {
        error_ = "no randomness for the SCRAM salt";
        return;
      }
      salt_ = std::move(*salt);
      iterations_ = kDefaultIterations;
      auto keys = derive_keys(secret.text, salt_, iterations_);
      stored_key_ = std::move(keys.stored_key);
      server_key_ = std::move(keys.server_key);
      break;
    }
    case UserSecret::Kind::Md5:
      error_ = "the user's secret is an MD5 hash, which cannot verify SCRAM-SHA-256";
      return;
  }
}

std::optional<std::string> ScramServer::fail(std::string why) {
  error_ = std::move(why);
  step_ = Step::Done;
  return std::nullopt;
}

void ScramServer::bind_channel(bool plus_chosen, std::string end_point) {
  offered_plus_ = !end_point.empty();
  plus_chosen_ = plus_chosen;
  end_point_ = std::move(end_point);
}

std::optional<std::string> ScramServer::server_first(std::string_view message) {
  if (!ok()) return std::nullopt;
  if (step_ != Step::First) return fail("SCRAM client-first-message out of order");
  // gs2-header: cbind-flag "," [authzid] ","
  std::string_view rest = message;
  constexpr std::string_view kEndPoint = "p=tls-server-end-point,";
  bool binds = false;
  if (rest.substr(0, 2) == "p=") {
    if (!offered_plus_)
      return fail("the client requires SCRAM channel binding, which needs TLS to pglens");
    if (rest.substr(0, kEndPoint.size()) != kEndPoint)
      return fail("unsupported SCRAM channel binding type (pglens binds tls-server-end-point)");
    if (!plus_chosen_) return fail("SCRAM channel binding requested without SCRAM-SHA-256-PLUS");
    rest.remove_prefix(kEndPoint.size());
    binds = true;
  } else if (rest.substr(0, 2) == "y,") {
    if (offered_plus_)
      return fail(
          "SCRAM channel binding negotiation error: the client believes it was not offered");
    rest.remove_prefix(2);
  } else if (rest.substr(0, 2) == "n,") {
    rest.remove_prefix(2);
  } else {
    return fail("malformed SCRAM client-first-message: expected \"n,\", \"y,\" or \"p=\"");
  }
  if (plus_chosen_ && !binds) return fail("SCRAM-SHA-256-PLUS chosen without channel binding");
  if (rest.substr(0, 2) == "a=") return fail("SCRAM authorization identity (a=) is not supported");
  if (rest.empty() || rest.front() != ',')
    return fail("malformed SCRAM client-first-message: bad gs2 header");
  rest.remove_prefix(1);
  std::string_view gs2_header = message.substr(0, message.size() - rest.size());

  std::string_view bare = rest;
  if (rest.substr(0, 2) == "m=")
    return fail("the client requires an unsupported SCRAM extension (m=)");
  // The user name is ignored, as PostgreSQL does: the startup packet's user counts.
  if (!take_attribute(rest, 'n'))
    return fail("malformed SCRAM client-first-message: expected n=<user>");
  auto client_nonce = take_attribute(rest, 'r');
  if (!client_nonce || !valid_nonce(*client_nonce))
    return fail("malformed SCRAM client-first-message: expected r=<nonce>");

  cbind_b64_ = base64_encode(std::string(gs2_header) + (binds ? end_point_ : std::string()));
  client_first_bare_ = bare;
  nonce_ = std::string(*client_nonce) + server_nonce_;
  server_first_ =
      "r=" + nonce_ + ",s=" + base64_encode(salt_) + ",i=" + std::to_string(iterations_);
  step_ = Step::Final;
  return server_first_;
}

std::optional<std::string> ScramServer::server_final(std::string_view message) {
  if (!ok()) return std::nullopt;
  if (step_ != Step::Final) return fail("SCRAM client-final-message out of order");
  // client-final-message-without-proof "," "p=" proof; the proof is the last attribute.
  auto proof_at = message.rfind(",p=");
  if (proof_at == std::string_view::npos)
    return fail("malformed SCRAM client-final-message: no proof");
  std::string_view without_proof = message.substr(0, proof_at);
  std::string_view proof_b64 = message.substr(proof_at + 3);

  std::string_view rest = without_proof;
  auto cbind = take_attribute(rest, 'c');
  if (!cbind) return fail("malformed SCRAM client-final-message: expected c=<channel binding>");
  if (*cbind != cbind_b64_)
    return fail("SCRAM channel-binding data does not match the client-first-message");
  auto nonce = take_attribute(rest, 'r');
  if (!nonce) return fail("malformed SCRAM client-final-message: expected r=<nonce>");
  if (*nonce != nonce_) return fail("SCRAM nonce does not match");
  auto proof = base64_decode(proof_b64);
  if (!proof || proof->size() != kKeyLen)
    return fail("malformed SCRAM client-final-message: bad proof");

  std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  std::string client_signature = hmac(stored_key_, auth_message);
  std::string client_key(kKeyLen, '\0');
  for (std::size_t i = 0; i < kKeyLen; ++i) client_key[i] = (*proof)[i] ^ client_signature[i];
  if (!same_bytes(sha256(client_key), stored_key_))
    return fail("password authentication failed: wrong SCRAM proof");

  client_key_ = std::move(client_key);
  authenticated_ = true;
  step_ = Step::Done;
  return "v=" + base64_encode(hmac(server_key_, auth_message));
}

std::string_view to_string(AuthType type) {
  switch (type) {
    case AuthType::Trust:
      return "trust";
    case AuthType::Md5:
      return "md5";
    case AuthType::ScramSha256:
      return "scram-sha-256";
    case AuthType::Cert:
      return "cert";
  }
  return "?";
}

std::optional<AuthType> parse_auth_type(std::string_view text) {
  if (text == "trust") return AuthType::Trust;
  if (text == "md5") return AuthType::Md5;
  if (text == "scram-sha-256") return AuthType::ScramSha256;
  if (text == "cert") return AuthType::Cert;
  return std::nullopt;
}

}  // namespace pglens::auth
