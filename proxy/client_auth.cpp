#include "proxy/client_auth.hpp"

#include <openssl/rand.h>

#include "auth/userlist.hpp"

namespace pglens::proxy {

namespace {
ClientAuthResult accepted() {
  ClientAuthResult r;
  r.ok = true;
  return r;
}

ClientAuthResult denied(const std::string& user) {
  // The same words whatever went wrong, as PostgreSQL: no hint whether the user exists.
  return {false, "28P01", "password authentication failed for user \"" + user + "\""};
}

awaitable<bool> send(tcp::socket& client, const protocol::Authentication& request) {
  protocol::Bytes out;
  request.encode(out);
  bool ok = co_await write_all(client, out);
  co_return ok;
}

awaitable<std::optional<OwnedMessage>> read_password(tcp::socket& client, MessageReader& reader) {
  auto msg = co_await reader.read(client);
  if (!msg || msg->type != 'p') co_return std::nullopt;
  co_return msg;
}

awaitable<ClientAuthResult> md5_exchange(tcp::socket& client, const auth::UserSecret* secret,
                                         const std::string& user) {
  std::string salt(4, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), 4);
  // Every request is a named local and every co_await a statement of its own: GCC 12 destroys a
  // temporary inside `if (!co_await send(client, {...}))` twice (a double free).
  const protocol::Authentication request{protocol::Authentication::kMD5Password,
                                         protocol::Bytes(salt.begin(), salt.end())};
  bool sent = co_await send(client, request);
  if (!sent)
    co_return ClientAuthResult{false, "08006", "client closed connection during authentication"};
  MessageReader reader(protocol::Direction::Frontend);
  auto msg = co_await read_password(client, reader);
  if (!msg) co_return ClientAuthResult{false, "08P01", "expected a password message"};
  auto password = protocol::PasswordMessage::decode(msg->body);
  if (!password || secret == nullptr ||
      !auth::verify_md5_response(*secret, user, salt, password->password))
    co_return denied(user);
  co_return accepted();
}

awaitable<ClientAuthResult> scram_exchange(tcp::socket& client, const auth::UserSecret* secret,
                                           const std::string& user) {
  static const std::string mechanisms("SCRAM-SHA-256\0\0", 15);
  const protocol::Authentication offer{protocol::Authentication::kSASL,
                                       protocol::Bytes(mechanisms.begin(), mechanisms.end())};
  bool sent = co_await send(client, offer);
  if (!sent)
    co_return ClientAuthResult{false, "08006", "client closed connection during authentication"};
  MessageReader reader(protocol::Direction::Frontend);
  auto first = co_await read_password(client, reader);
  if (!first) co_return ClientAuthResult{false, "08P01", "expected a SASLInitialResponse"};
  auto initial = protocol::SASLInitialResponse::decode(first->body);
  if (!initial || initial->mechanism != "SCRAM-SHA-256" || !initial->data)
    co_return ClientAuthResult{false, "08P01",
                               "client selected an invalid SASL authentication mechanism"};
  // An unknown user still goes through the exchange (with a secret nobody knows) and fails at
  // the proof, so the answer does not reveal who exists.
  auth::UserSecret unknown;
  unknown.text = std::string(32, '\x01');
  auth::ScramServer scram(secret ? *secret : unknown);
  auto server_first = scram.server_first(protocol::as_chars(*initial->data));
  if (!server_first) co_return denied(user);
  const protocol::Authentication challenge{
      protocol::Authentication::kSASLContinue,
      protocol::Bytes(server_first->begin(), server_first->end())};
  sent = co_await send(client, challenge);
  if (!sent)
    co_return ClientAuthResult{false, "08006", "client closed connection during authentication"};
  auto second = co_await read_password(client, reader);
  if (!second) co_return ClientAuthResult{false, "08P01", "expected a SASLResponse"};
  auto server_final = scram.server_final(protocol::as_chars(second->body));
  if (!server_final || secret == nullptr) co_return denied(user);
  const protocol::Authentication outcome{
      protocol::Authentication::kSASLFinal,
      protocol::Bytes(server_final->begin(), server_final->end())};
  sent = co_await send(client, outcome);
  if (!sent)
    co_return ClientAuthResult{false, "08006", "client closed connection during authentication"};
  co_return accepted();
}
}  // namespace

awaitable<ClientAuthResult> authenticate_client(tcp::socket& client, const config::Config& config,
                                                const std::string& user) {
  if (config.auth_type == auth::AuthType::Trust) co_return accepted();
  const auth::UserSecret* secret = config.userlist ? config.userlist->find(user) : nullptr;
  // As PostgreSQL: a password stored as MD5 cannot do SCRAM, so such a user is asked for MD5.
  bool use_md5 = config.auth_type == auth::AuthType::Md5 ||
                 (secret && secret->kind == auth::UserSecret::Kind::Md5);
  if (use_md5 && secret && secret->kind == auth::UserSecret::Kind::Scram) use_md5 = false;
  // (Two statements: GCC 12 miscompiles co_await inside a conditional expression.)
  if (use_md5) co_return co_await md5_exchange(client, secret, user);
  co_return co_await scram_exchange(client, secret, user);
}

}  // namespace pglens::proxy
