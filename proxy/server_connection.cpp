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

// TLS failures are configuration to fix, not worth a retry (ConnectResult::lasting).
ConnectResult tls_failed(const ServerTarget& t, const std::string& why) {
  ConnectResult r;
  r.error = make_error("08001",
                       "pglens: no TLS connection to upstream " + t.upstream.display() + ": " + why,
                       "FATAL");
  r.lasting = true;
  return r;
}

// Sends SSLRequest and, when the server answers 'S', shakes hands. An 'N' is fine below
// require. False with *failure set when the connection cannot go on.
awaitable<bool> start_tls(ServerConnection& conn, const ServerTarget& t, const ServerTls& tls,
                          bool must, ConnectResult* failure) {
  protocol::StartupPacket request;
  request.kind = protocol::StartupPacket::Kind::SSLRequest;
  protocol::Bytes out;
  protocol::encode(out, request);
  if (!co_await write_all(conn.stream.socket(), out)) {
    failure->error = login_failed(t, "connection lost while sending SSLRequest");
    co_return false;
  }
  // Exactly one byte: anything the server sent after it belongs to the TLS handshake, never to
  // the protocol in the clear (CVE-2021-23222).
  std::array<std::uint8_t, 1> answer{};
  auto [ec, n] = co_await asio::async_read(conn.stream.socket(), asio::buffer(answer), use_nothrow);
  if (ec) {
    failure->error = login_failed(t, "connection lost after SSLRequest: " + ec.message());
    co_return false;
  }
  if (answer[0] == 'N') {
    if (!must) co_return true;
    *failure = tls_failed(t, "the server does not support TLS (server_tls_sslmode = " +
                                 std::string(config::to_string(tls.mode)) + ")");
    co_return false;
  }
  if (answer[0] != 'S') {
    failure->error = login_failed(t, "unexpected answer to SSLRequest");
    co_return false;
  }
  auto handshake = co_await conn.stream.connect_tls(tls.context, t.upstream.host,
                                                    tls.mode == config::TlsMode::VerifyFull);
  if (handshake) {
    *failure =
        tls_failed(t, "TLS handshake failed: " + handshake_failure(handshake, conn.stream.ssl()));
    co_return false;
  }
  co_return true;
}

awaitable<ConnectResult> connect_and_login(const ServerTarget& t, const KeepAlive& keepalive,
                                           const ServerTls& tls, bool use_tls) {
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
  if (use_tls) {
    bool must = tls.mode >= config::TlsMode::Require || tls.mode == config::TlsMode::Allow;
    if (!co_await start_tls(*conn, t, tls, must, &result)) co_return result;
  }

  protocol::StartupPacket startup;
  startup.protocol = protocol::kProtocolV3;
  startup.params = {{"user", t.user}, {"database", t.database}};
  startup.params.insert(startup.params.end(), t.params.begin(), t.params.end());
  protocol::Bytes out;
  protocol::encode(out, startup);
  if (!co_await write_all(conn->stream, out)) {
    result.error = login_failed(t, "connection lost while sending the startup packet");
    co_return result;
  }

  MessageReader reader(protocol::Direction::Backend);
  std::optional<auth::ScramClient> scram;
  auto need_password = [&]() -> bool { return !t.upstream.password.empty(); };
  while (true) {
    auto msg = co_await reader.read(conn->stream);
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
            auto offers = [&](std::string_view m) {
              return std::find(mechs.begin(), mechs.end(), m) != mechs.end();
            };
            using Binding = auth::ScramClient::ChannelBinding;
            // Over TLS, bound to the server's certificate when the server can: a man in the
            // middle holding another certificate cannot relay the exchange.
            std::string end_point =
                conn->stream.encrypted() ? server_end_point(conn->stream.ssl()) : "";
            std::string mechanism = "SCRAM-SHA-256";
            if (!end_point.empty() && offers("SCRAM-SHA-256-PLUS")) {
              mechanism = "SCRAM-SHA-256-PLUS";
              scram.emplace(t.upstream.password, "", Binding::TlsServerEndPoint, end_point);
            } else if (offers("SCRAM-SHA-256")) {
              scram.emplace(t.upstream.password, "",
                            conn->stream.encrypted() ? Binding::Supported : Binding::None);
            } else {
              result.error =
                  login_failed(t, "the server offers no SASL mechanism pglens supports", "28000");
              co_return result;
            }
            conn->channel_binding = mechanism == "SCRAM-SHA-256-PLUS";
            auto first = scram->client_first();
            protocol::SASLInitialResponse{mechanism, protocol::Bytes(first.begin(), first.end())}
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
        if (!out.empty() && !co_await write_all(conn->stream, out)) {
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
                                        KeepAlive keepalive, ServerTls tls) {
  asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
  auto attempt = [&]() -> awaitable<ConnectResult> {
    using config::TlsMode;
    bool tls_first = tls.mode != TlsMode::Disable && tls.mode != TlsMode::Allow;
    auto result = co_await connect_and_login(target, keepalive, tls, tls_first);
    // allow: in the clear first; TLS when the server refused that (hostssl only).
    if (!result.connection && tls.mode == TlsMode::Allow && !result.lasting &&
        result.error.sqlstate().starts_with("28"))
      result = co_await connect_and_login(target, keepalive, tls, true);
    co_return result;
  };
  auto outcome = co_await (attempt() || timer.async_wait(use_nothrow));
  if (outcome.index() == 0) co_return std::move(std::get<0>(outcome));
  ConnectResult timed_out;
  timed_out.error = make_error(
      "08006", "pglens: timed out connecting to upstream " + target.upstream.display(), "FATAL");
  co_return timed_out;
}

bool transient_connect_failure(const ConnectResult& result) {
  if (result.lasting) return false;
  auto state = result.error.sqlstate();
  return state.starts_with("08") || state.starts_with("57") || state.starts_with("53");
}

void close_server_connection(std::unique_ptr<ServerConnection> conn) {
  protocol::Bytes bye;
  protocol::Terminate{}.encode(bye);
  error_code ignored;
  if (!conn->stream.encrypted()) {
    // Best effort: the socket is non-blocking for the reactor, a tiny write fits or fails.
    auto& socket = conn->stream.socket();
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(bye), ignored);
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    return;
  }
  auto executor = conn->stream.get_executor();
  asio::co_spawn(
      executor,
      [conn = std::move(conn), bye = std::move(bye)]() -> awaitable<void> {
        asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::seconds(1));
        auto goodbye = [&]() -> awaitable<void> {
          if (co_await write_all(conn->stream, bye)) co_await conn->stream.shutdown_tls();
        };
        co_await (goodbye() || timer.async_wait(use_nothrow));
        error_code ignored;
        conn->stream.socket().close(ignored);
      },
      asio::detached);
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
