#include "proxy/server_connection.hpp"

#include <spdlog/spdlog.h>

#include <atomic>

#include "auth/scram.hpp"

namespace pglens::proxy {

namespace {
using namespace asio::experimental::awaitable_operators;
using protocol::ErrorResponse;
using protocol::make_error;

std::atomic<std::uint64_t> next_server_id{1};

// sqlstate: 08006 when the connection failed (worth retrying), 28000 when pglens cannot log in
// as configured (it will not get better by trying again).
ErrorResponse login_failed(const ServerTarget& t, std::string_view why,
                           std::string_view sqlstate = "08006") {
  return make_error(sqlstate,
                    "pglens: could not log in to upstream " + t.upstream.display() + " as \"" +
                        t.user + "\": " + std::string(why),
                    "FATAL");
}

awaitable<ConnectResult> connect_and_login(const ServerTarget& t, const KeepAlive& keepalive) {
  ConnectResult result;
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  auto [rerr, endpoints] = co_await resolver.async_resolve(
      t.upstream.host, std::to_string(t.upstream.port), use_nothrow);
  if (rerr) {
    result.error = make_error(
        "08001",
        "pglens: cannot resolve upstream host \"" + t.upstream.host + "\": " + rerr.message(),
        "FATAL");
    co_return result;
  }
  tcp::socket socket(executor);
  auto [cerr, endpoint] = co_await asio::async_connect(socket, endpoints, use_nothrow);
  if (cerr) {
    result.error = make_error(
        "08006",
        "pglens: could not connect to upstream " + t.upstream.display() + ": " + cerr.message(),
        "FATAL");
    co_return result;
  }
  socket.set_option(tcp::no_delay(true));
  keepalive.apply(socket);
  auto conn = std::make_unique<ServerConnection>(std::move(socket));
  conn->endpoint = endpoint;
  conn->id = next_server_id++;

  protocol::StartupPacket startup;
  startup.protocol = protocol::kProtocolV3;
  startup.params = {{"user", t.user}, {"database", t.database}};
  startup.params.insert(startup.params.end(), t.params.begin(), t.params.end());
  protocol::Bytes out;
  protocol::encode(out, startup);
  if (!co_await write_all(conn->socket, out)) {
    result.error = login_failed(t, "connection lost while sending the startup packet");
    co_return result;
  }

  MessageReader reader(protocol::Direction::Backend);
  std::optional<auth::ScramClient> scram;
  auto need_password = [&]() -> bool { return !t.upstream.password.empty(); };
  while (true) {
    auto msg = co_await reader.read(conn->socket);
    if (!msg) {
      result.error = login_failed(t, reader.error());
      co_return result;
    }
    out.clear();
    switch (msg->type) {
      case 'R': {
        auto a = protocol::Authentication::decode(msg->body);
        if (!a) {
          result.error = login_failed(t, "malformed authentication request");
          co_return result;
        }
        if (a->code != protocol::Authentication::kOk && !need_password()) {
          result.error =
              login_failed(t, "the server asks for a password and none is configured", "28000");
          co_return result;
        }
        switch (a->code) {
          case protocol::Authentication::kOk:
            break;
          case protocol::Authentication::kCleartextPassword:
            protocol::PasswordMessage{t.upstream.password}.encode(out);
            break;
          case protocol::Authentication::kMD5Password: {
            std::string salt(a->data.begin(), a->data.end());
            protocol::PasswordMessage{
                auth::md5_password_response(t.user, t.upstream.password, salt)}
                .encode(out);
            break;
          }
          case protocol::Authentication::kSASL: {
            auto mechs = a->mechanisms();
            if (std::find(mechs.begin(), mechs.end(), "SCRAM-SHA-256") == mechs.end()) {
              result.error =
                  login_failed(t, "the server offers no SASL mechanism pglens supports", "28000");
              co_return result;
            }
            scram.emplace(t.upstream.password);
            auto first = scram->client_first();
            protocol::SASLInitialResponse{"SCRAM-SHA-256",
                                          protocol::Bytes(first.begin(), first.end())}
                .encode(out);
            break;
          }
          case protocol::Authentication::kSASLContinue: {
            auto final_message =
                scram ? scram->client_final(protocol::as_chars(a->data)) : std::nullopt;
            if (!final_message) {
              result.error =
                  login_failed(t, scram ? scram->error() : "unexpected SASLContinue", "28000");
              co_return result;
            }
            protocol::SASLResponse{protocol::Bytes(final_message->begin(), final_message->end())}
                .encode(out);
            break;
          }
          case protocol::Authentication::kSASLFinal:
            if (!scram || !scram->verify_server_final(protocol::as_chars(a->data))) {
              result.error =
                  login_failed(t, scram ? scram->error() : "unexpected SASLFinal", "28000");
              co_return result;
            }
            break;
          default:
            result.error = login_failed(t,
                                        "unsupported authentication method " +
                                            std::to_string(a->code) + " requested by the server",
                                        "28000");
            co_return result;
        }
        if (!out.empty() && !co_await write_all(conn->socket, out)) {
          result.error = login_failed(t, "connection lost during authentication");
          co_return result;
        }
        break;
      }
      case 'E': {
        // The server's own reason (bad password, no such database...) is what the client needs.
        auto e = ErrorResponse::decode(msg->body);
        result.error = e ? *e : login_failed(t, "malformed error response");
        co_return result;
      }
      case 'S':
        if (auto p = protocol::ParameterStatus::decode(msg->body))
          conn->parameters.push_back(std::move(*p));
        break;
      case 'K':
        if (auto k = protocol::BackendKeyData::decode(msg->body)) conn->key = *k;
        break;
      case 'Z':
        if (!reader.pending().empty()) {
          result.error = login_failed(t, "unexpected data after ReadyForQuery");
          co_return result;
        }
        result.connection = std::move(conn);
        co_return result;
      case 'N':  // notices during login: nothing to act on
      case 'v':  // NegotiateProtocolVersion: we speak plain 3.0, the server accepts it
        break;
      default:
        result.error =
            login_failed(t, std::string("unexpected message '") + msg->type + "' during login");
        co_return result;
    }
  }
}
}  // namespace

awaitable<ConnectResult> connect_server(const ServerTarget& target, Clock::duration timeout,
                                        KeepAlive keepalive) {
  asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
  auto outcome = co_await (connect_and_login(target, keepalive) || timer.async_wait(use_nothrow));
  if (outcome.index() == 0) co_return std::move(std::get<0>(outcome));
  ConnectResult timed_out;
  timed_out.error = make_error(
      "08006", "pglens: timed out connecting to upstream " + target.upstream.display(), "FATAL");
  co_return timed_out;
}

bool transient_connect_failure(const protocol::ErrorResponse& error) {
  auto state = error.sqlstate();
  return state.starts_with("08") || state.starts_with("57") || state.starts_with("53");
}

awaitable<void> send_cancel(tcp::endpoint endpoint, protocol::BackendKeyData key) {
  tcp::socket socket(co_await asio::this_coro::executor);
  auto [cerr] = co_await socket.async_connect(endpoint, use_nothrow);
  if (cerr) {
    spdlog::warn("cancel: cannot reach server {}: {}", endpoint.address().to_string(),
                 cerr.message());
    co_return;
  }
  protocol::StartupPacket cancel;
  cancel.kind = protocol::StartupPacket::Kind::CancelRequest;
  cancel.process_id = key.process_id;
  cancel.secret_key = key.secret_key;
  protocol::Bytes out;
  protocol::encode(out, cancel);
  co_await write_all(socket, out);
  // The server closes the connection once it has read the request.
  std::array<char, 16> sink{};
  co_await socket.async_read_some(asio::buffer(sink), use_nothrow);
}

}  // namespace pglens::proxy
