#include "auth/scram.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace pglens::auth {

namespace {
using Digest = std::array<unsigned char, 32>;

Digest hmac(std::string_view key, std::string_view data) {
  Digest out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

Digest sha256(std::string_view data) {
  Digest out{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

std::string_view view(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    s.push_back(digits[p[i] >> 4]);
    s.push_back(digits[p[i] & 15]);
  }
  return s;
}

std::string md5_hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_md5(), nullptr);
  return hex(out, len);
}

// The value of attribute `name` ("r", "s", "i", "v", "e") in a comma-separated SCRAM message.
std::optional<std::string_view> attribute(std::string_view message, char name) {
  while (!message.empty()) {
    auto comma = message.find(',');
    auto part = message.substr(0, comma);
    if (part.size() >= 2 && part[0] == name && part[1] == '=') return part.substr(2);
    if (comma == std::string_view::npos) break;
    message.remove_prefix(comma + 1);
  }
  return std::nullopt;
}

std::string random_nonce() {
  std::array<unsigned char, 18> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return base64_encode({reinterpret_cast<const char*>(raw.data()), raw.size()});
}
}  // namespace

std::string md5_password_response(std::string_view user, std::string_view password,
                                  std::string_view salt4) {
  std::string inner = md5_hex(std::string(password) + std::string(user));
  return "md5" + md5_hex(inner + std::string(salt4));
}

std::string base64_encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts padding as zero bytes.
  std::size_t len = static_cast<std::size_t>(n);
  if (!text.empty() && text.back() == '=') --len;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

ScramClient::ScramClient(std::string password, std::string nonce, ChannelBinding binding,
                         std::string binding_data)
    : password_(std::move(password)),
      nonce_(nonce.empty() ? random_nonce() : std::move(nonce)),
      binding_data_(std::move(binding_data)) {
  switch (binding) {
    case ChannelBinding::None:
      gs2_header_ = "n,,";
      break;
    case ChannelBinding::Supported:
      gs2_header_ = "y,,";
      break;
    case ChannelBinding::TlsServerEndPoint:
      gs2_header_ = "p=tls-server-end-point,,";
      break;
  }
  // PostgreSQL ignores the SCRAM user name (it uses the startup packet's), so send it empty.
  client_first_bare_ = "n=,r=" + nonce_;
}

std::string ScramClient::client_first() const {
  return gs2_header_ + client_first_bare_;
}

std::optional<std::string> ScramClient::client_final(std::string_view server_first) {
  auto nonce = attribute(server_first, 'r');
  auto salt_b64 = attribute(server_first, 's');
  auto iter_text = attribute(server_first, 'i');
  if (!nonce || !salt_b64 || !iter_text) {
    error_ = "malformed SCRAM server-first-message";
    return std::nullopt;
  }
  if (nonce->size() <= nonce_.size() || nonce->substr(0, nonce_.size()) != nonce_) {
    error_ = "SCRAM server nonce does not extend the client nonce";
    return std::nullopt;
  }
  int iterations = 0;
  auto [p, ec] =
      std::from_chars(iter_text->data(), iter_text->data() + iter_text->size(), iterations);
  auto salt = base64_decode(*salt_b64);
  if (ec != std::errc() || iterations < 1 || !salt) {
    error_ = "malformed SCRAM salt or iteration count";
    return std::nullopt;
  }

  Digest salted{};
  PKCS5_PBKDF2_HMAC(password_.data(), static_cast<int>(password_.size()),
                    reinterpret_cast<const unsigned char*>(salt->data()),
                    static_cast<int>(salt->size()), iterations, EVP_sha256(),
                    static_cast<int>(salted.size()), salted.data());
  Digest client_key = hmac(view(salted), "Client Key");
  Digest stored_key = sha256(view(client_key));
  Digest server_key = hmac(view(salted), "Server Key");

  // c=: the GS2 header, and with channel binding the channel's data after it ("biws" is "n,,").
  std::string final_without_proof =
      "c=" + base64_encode(gs2_header_ + binding_data_) + ",r=" + std::string(*nonce);
  std::string auth_message =
      client_first_bare_ + "," + std::string(server_first) + "," + final_without_proof;
  Digest client_signature = hmac(view(stored_key), auth_message);
  Digest proof{};
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = client_key[i] ^ client_signature[i];
  expected_server_signature_ = base64_encode(view(hmac(view(server_key), auth_message)));
  return final_without_proof + ",p=" + base64_encode(view(proof));
}

bool ScramClient::verify_server_final(std::string_view server_final) {
  if (auto e = attribute(server_final, 'e')) {
    error_ = "SCRAM server error: " + std::string(*e);
    return false;
  }
  auto v = attribute(server_final, 'v');
  if (!v || expected_server_signature_.empty() || *v != expected_server_signature_) {
    error_ = "SCRAM server signature does not match";
    return false;
  }
  return true;
}

}  // namespace pglens::auth
