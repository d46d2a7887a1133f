#include "proxy/client_login_io.hpp"

#include <spdlog/spdlog.h>

#include "proxy/client_registry.hpp"
#include "proxy/read_buffer.hpp"
#include "proxy/server_connection.hpp"
#include "proxy/session.hpp"
#include "proxy/stream.hpp"
#include "proxy/tls.hpp"
#include "session/client_login.hpp"

namespace pglens::proxy {
namespace {
using namespace asio::experimental::awaitable_operators;
using Status = session::ClientLogin::Status;

class LoginIo {
 public:
  LoginIo(LoginClient client, SessionContext& context, session::ClientLogin& login,
          std::shared_ptr<const TlsContexts> tls)
      : client_(client), ctx_(context), login_(login), tls_(std::move(tls)) {}

  awaitable<void> read() {
    while (true) {
      if (login_.status() == Status::StartTls) {
        co_await start_tls();
        continue;
      }
      if (login_.status() != Status::Reading) co_return;
      if (client_.bytes.empty()) {
        auto [ec, n] =
            co_await client_.stream.async_read_some(to_buffer(client_.bytes.space()), use_nothrow);
        if (ec) {
          if (ec != asio::error::operation_aborted) login_.on_client_gone(read_error(ec, "client"));
          co_return;
        }
        client_.bytes.filled(n);
      }
      client_.bytes.take(login_.on_bytes(client_.bytes.pending(), Clock::now()));
      co_await send_output();
    }
  }

  awaitable<void> send_output() {
    auto& out = login_.output();
    if (out.empty()) co_return;
    bool sent = co_await write_all(client_.stream, out);
    out.clear();
    if (!sent) login_.on_client_gone("client closed connection");
  }

 private:
  // The client asked for TLS (SSLRequest, answered 'S' already) or began a handshake at once.
  awaitable<void> start_tls() {
    protocol::ByteView hello = login_.direct_tls() ? client_.bytes.pending() : protocol::ByteView{};
    auto ec = co_await client_.stream.accept_tls(tls_->for_clients, hello);
    client_.bytes.take(hello.size());  // the handshake has them
    SSL* ssl = client_.stream.ssl();
    if (ec) {
      ++ctx_.client_tls_failures;
      auto why = handshake_failure(ec, ssl);
      spdlog::warn("[c{}] TLS handshake with {} failed: {}", client_.id, client_.peer, why);
      login_.on_tls_failed(why);
      co_return;
    }
    client_.info.tls = client_.stream.tls_description();
    login_.on_tls_started(peer_common_name(ssl), negotiated_alpn(ssl), own_end_point(ssl));
  }

  LoginClient client_;
  SessionContext& ctx_;
  session::ClientLogin& login_;
  std::shared_ptr<const TlsContexts> tls_;
};

}  // namespace

// GCC 12 inlines Asio's frame allocation here and then sees aligned_alloc paired with the frame's
// operator delete, which frees it with free(): a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
awaitable<LoginOutcome> log_in(LoginClient client, SessionContext& context,
                               const config::Config& config) {
  LoginOutcome outcome;
  outcome.tls = context.tls();
  session::LoginSettings settings;
  settings.auth_type = config.auth_type;
  settings.userlist = config.userlist;
  settings.admin_users = config.admin_users;
  settings.max_client_conn = static_cast<std::size_t>(config.max_client_conn);
  settings.clients = context.clients.size();
  settings.timeout = config.client_login_timeout;
  settings.tls_mode =
      outcome.tls && outcome.tls->for_clients ? config.client_tls.mode : config::TlsMode::Disable;
  session::ClientLogin login(std::move(settings), Clock::now());
  LoginIo io(client, context, login, outcome.tls);
  asio::steady_timer timer(client.stream.get_executor(), login.deadline());
  auto ended = co_await (io.read() || timer.async_wait(use_nothrow));
  if (ended.index() == 1) {
    login.on_timer(Clock::now());
    co_await io.send_output();
  }
  switch (login.status()) {
    case Status::Reading:
    case Status::StartTls:
    case Status::Failed:
      if (login.refused()) spdlog::warn("[c{}] {}", client.id, login.reason());
      outcome.reason = login.reason();
      co_return outcome;
    case Status::Cancel: {
      auto target = context.cancels.find(login.cancel_key());
      if (!target) {
        outcome.reason = "cancel request for an unknown or idle client";
        co_return outcome;
      }
      co_await send_cancel(target->endpoint, target->server_key);
      outcome.reason = "cancel request forwarded";
      co_return outcome;
    }
    case Status::Authenticated:
      break;
  }
  client.info.user = login.user();
  client.info.database = login.database();
  client.info.application_name = login.startup().param("application_name");
  outcome.admin = login.admin();
  outcome.startup = login.startup();
  co_return outcome;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace pglens::proxy
