#include "proxy/session.hpp"

#include <spdlog/spdlog.h>

#include "analyzer/syntax_check.hpp"
#include "proxy/admin_console.hpp"
#include "proxy/admin_session.hpp"
#include "proxy/client_login_io.hpp"
#include "proxy/peer_writer.hpp"
#include "proxy/read_buffer.hpp"
#include "proxy/stream.hpp"
#include "session/client_parameters.hpp"
#include "session/session_core.hpp"

namespace pglens::proxy {

KeepAlive keepalive_of(const config::Config& c) {
  auto seconds = [](pool::Duration d) {
    return static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
  };
  return {c.tcp_keepalive, seconds(c.tcp_keepidle), seconds(c.tcp_keepintvl), c.tcp_keepcnt};
}

awaitable<void> PauseGate::wait() {
  while (paused_) {
    asio::steady_timer poll(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
    co_await poll.async_wait(use_nothrow);
  }
}

namespace {
using namespace asio::experimental::awaitable_operators;
using session::Action;

// A server connection's: pool_size of them, and reads of a result set in large pieces.
constexpr std::size_t kServerReadBufferSize = 64 * 1024;

std::int64_t wall_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ClientSession {
 public:
  ClientSession(tcp::socket client, SessionContext& context, std::uint64_t id)
      : client_(std::move(client)),
        ctx_(context),
        id_(id),
        config_(context.config()),
        to_client_(client_.get_executor()),
        to_server_(client_.get_executor()),
        server_ready_(client_.get_executor()),
        client_ready_(client_.get_executor()),
        drain_ready_(client_.get_executor()) {
    info_ = ctx_.clients.add(id_, &drain_ready_);
    error_code ec;
    auto remote = client_.socket().remote_endpoint(ec);
    if (!ec) {
      info_->address = remote.address().to_string();
      info_->port = remote.port();
    }
    peer_ = info_->address + ":" + std::to_string(info_->port);
    client_.socket().set_option(tcp::no_delay(true), ec);
    keepalive_of(*config_).apply(client_.socket());
  }

  awaitable<void> run() {
    auto started = Clock::now();
    co_await serve();
    if (registered_) ctx_.cancels.remove_client(client_key_);
    ctx_.clients.remove(id_);
    error_code ignored;
    client_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    client_.socket().close(ignored);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    spdlog::info("[c{}] disconnect {}: {} (after {} ms)", id_, peer_,
                 reason_.empty() ? "unknown" : reason_, ms);
  }

 private:
  awaitable<void> serve() {
    // The login's state lives in log_in()'s frame, gone before the session starts: what an idle
    // client costs is the session's alone.
    auto in = co_await log_in({client_, client_bytes_, *info_, id_, peer_}, ctx_, *config_);
    tls_ = std::move(in.tls);
    if (!in.startup) {
      reason_ = std::move(in.reason);
      co_return;
    }
    if (in.admin) {
      spdlog::info("[c{}] admin console login {} user={}", id_, peer_, info_->user);
      info_->state = ClientState::Idle;
      reason_ = co_await serve_admin(client_, ctx_.admin, pending());
      co_return;
    }
    co_await serve_session(*in.startup);
  }

  // Bytes read from the client and not taken yet.
  protocol::ByteView pending() const { return client_bytes_.pending(); }

  // ---- the session: carries out a SessionCore ----

  awaitable<void> serve_session(const protocol::StartupPacket& startup) {
    auto route = config_->route_for(info_->database);
    session::SessionSettings settings;
    settings.mode = config_->pool_mode_for(route);
    settings.server_reset_query = config_->server_reset_query;
    if (!config_->server_reset_query.empty())
      settings.state_reset_query = config_->server_reset_query;
    settings.query_timeout = config_->query_timeout;
    settings.idle_transaction_timeout = config_->idle_transaction_timeout;
    settings.client_idle_timeout = config_->client_idle_timeout;
    settings.check_syntax = [](std::string_view sql) -> std::optional<protocol::ErrorResponse> {
      auto error = analyzer::syntax_error(sql);
      if (!error) return std::nullopt;
      auto e = protocol::make_error("42601", error->message);
      if (error->position > 0) e.fields.emplace_back('P', std::to_string(error->position));
      return e;
    };
    for (const auto& [k, v] : startup.params)
      if (auto name = session::tracked_parameter(k)) settings.client_parameters[*name] = v;
    client_key_ = ctx_.cancels.add_client();
    registered_ = true;
    settings.client_key = client_key_;
    std::unique_ptr<session::ExecutionTracker> tracker;
    if (ctx_.analysis != nullptr) {
      auto who = std::make_shared<analyzer::SessionInfo>();
      who->session_id = id_;
      who->database = info_->database;
      who->user = info_->user;
      who->application_name = info_->application_name;
      who->client_address = info_->address;
      if (!startup.param("DateStyle").empty() && !startup.param("extra_float_digits").empty())
        who->driver = "pgjdbc";
      tracker = std::make_unique<session::ExecutionTracker>(std::move(who), *ctx_.analysis);
    }
    pool_ = ctx_.pool_for(PoolKey{info_->database, info_->user}, route, *config_);
    core_.emplace(std::move(settings), std::move(tracker), &pool_->traffic);
    spdlog::info("[c{}] login {} user={} database={} application_name={} pool_mode={}", id_, peer_,
                 info_->user, info_->database, info_->application_name,
                 to_string(config_->pool_mode_for(route)));
    pool_->traffic.bytes_received += pending().size();

    // Registered with its drain parking first, then the flag read: a shutdown either is seen
    // here or wakes drain_watch().
    if (ctx_.draining.load()) core_->on_shutdown(Clock::now());
    core_->start(Clock::now());
    co_await carry_out();
    if (!ended_) {
      if (timeout_period().count() > 0)
        co_await (client_reader() || server_reader() || timer_loop() || drain_watch());
      else
        co_await (client_reader() || server_reader() || drain_watch());
    }

    // Both readers have stopped: the server connection goes back or is closed.
    core_->finish(Clock::now());
    co_await carry_out();
    while (server_ && core_->holds_server()) {  // server_reset_query's answer
      auto* buffer = server_->read_buffer.get();
      auto [ec, n] = co_await server_->stream.async_read_some(
          asio::buffer(buffer, kServerReadBufferSize), use_nothrow);
      if (ec)
        core_->on_server_lost(read_error(ec, "server"), Clock::now());
      else
        core_->on_server_bytes({buffer, n}, Clock::now());
      co_await carry_out();
    }
    info_->state = ClientState::Idle;
  }

  awaitable<void> client_reader() {
    while (!ended_) {
      if (client_bytes_.empty()) {
        auto [ec, n] =
            co_await client_.async_read_some(to_buffer(client_bytes_.space()), use_nothrow);
        if (ec) {
          if (ec == asio::error::operation_aborted) co_return;  // the other reader ended first
          core_->on_client_gone(read_error(ec, "client"), Clock::now());
          co_await carry_out();
          co_return;
        }
        client_bytes_.filled(n);
        pool_->traffic.bytes_received += n;
        info_->request_time_us = wall_clock_us();
      }
      while (!client_bytes_.empty() && !ended_) {
        if (core_->client_paused()) {
          client_parked_ = true;
          auto ec = co_await client_ready_.wait();
          client_parked_ = false;
          if (ec) co_return;
          continue;
        }
        client_bytes_.take(core_->on_client_bytes(pending(), Clock::now()));
        if (!carry_out_now()) co_await carry_out();
      }
    }
  }

  awaitable<void> server_reader() {
    while (!ended_) {
      if (!server_readable_) {
        server_parked_ = true;
        auto ec = co_await server_ready_.wait();
        server_parked_ = false;
        if (ec) co_return;
        continue;
      }
      // The connection's own buffer: this read is the only one on it while the session holds it.
      auto* buffer = server_->read_buffer.get();
      auto [ec, n] = co_await server_->stream.async_read_some(
          asio::buffer(buffer, kServerReadBufferSize), use_nothrow);
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;  // the other reader ended first
        core_->on_server_lost(read_error(ec, "server"), Clock::now());
        co_await carry_out();
        continue;
      }
      core_->on_server_bytes({buffer, n}, Clock::now());
      info_->in_transaction = core_->transaction_status() != 'I';
      if (!carry_out_now()) co_await carry_out();
    }
  }

  // The shortest of the session's timeouts, zero when none is set.
  Clock::duration timeout_period() const {
    Clock::duration shortest{0};
    for (auto d :
         {config_->query_timeout, config_->idle_transaction_timeout, config_->client_idle_timeout})
      if (d > Clock::duration::zero() && (shortest == Clock::duration::zero() || d < shortest))
        shortest = d;
    return shortest;
  }

  // Wakes at the core's deadline. Not re-armed at every request (a timer-queue operation per
  // message): asleep for at most the shortest timeout, and a deadline is at least that far after
  // what set it, so none set meanwhile is missed.
  awaitable<void> timer_loop() {
    asio::steady_timer timer(client_.get_executor());
    auto wake = Clock::now() + timeout_period();
    while (!ended_) {
      timer.expires_at(wake);
      auto [ec] = co_await timer.async_wait(use_nothrow);
      if (ec || ended_) co_return;
      auto now = Clock::now();
      auto due = core_->deadline();
      if (due && *due <= now) {
        core_->on_timer(now);
        co_await carry_out();
        continue;
      }
      wake = due ? std::min(*due, now + timeout_period()) : now + timeout_period();
    }
  }

  // Waits for a shutdown, then tells the core, which closes the client now if it is between
  // transactions, else when its transaction is done (the readers carry that out). Returns only
  // once the session is over: its return ends the other branches.
  awaitable<void> drain_watch() {
    while (!ended_) {
      auto ec = co_await drain_ready_.wait();
      if (ec) co_return;  // the session ended first
      if (ended_ || !ctx_.draining.load()) continue;
      core_->on_shutdown(Clock::now());
      co_await carry_out();
    }
  }

  // ---- carrying out ----

  // Sends the core's outputs and runs its actions, as far as that goes without waiting: the
  // usual case, with no coroutine frame. False when a write must be awaited or a server
  // connection taken: carry_out() goes on from there.
  bool carry_out_now() {
    while (true) {
      if (!flush_now()) return false;
      const auto& actions = core_->actions();
      if (actions.empty()) return true;
      if (actions.back().kind == Action::Kind::Acquire) return false;  // always the last
      act_and_clear(actions.size());
    }
  }

  // The first n actions, then all are cleared (acting on one never calls into the core).
  void act_and_clear(std::size_t n) {
    const auto& actions = core_->actions();
    for (std::size_t i = 0; i < n; ++i) act(actions[i]);
    core_->clear_actions();
  }

  awaitable<void> carry_out() {
    while (!carry_out_now()) {
      if (!to_server_.idle()) {
        if (!server_)
          to_server_.reset();  // its connection is gone: nobody to write to
        else if (!co_await to_server_.drain(server_->stream))
          server_write_failed();
        continue;
      }
      if (!to_client_.idle()) {
        if (!co_await to_client_.drain(client_)) client_write_failed();
        continue;
      }
      // An Acquire, last: the others first. Awaited here, not in a coroutine of its own: this
      // runs once per transaction in transaction mode.
      act_and_clear(core_->actions().size() - 1);
      if (ctx_.pause.paused()) co_await ctx_.pause.wait();
      info_->state = ClientState::Waiting;
      auto result = co_await pool_->acquire();
      acquired(std::move(result));
    }
  }

  // Server output first: a request goes out before the client hears of anything after it.
  // False while either writer has bytes waiting (carry_out() drains them).
  bool flush_now() {
    auto& to_server = core_->server_output();
    if (!to_server.empty()) {
      if (!server_)
        to_server.clear();
      else if (!to_server_.send_now(server_->stream, to_server) && to_server_.failed())
        server_write_failed();
    }
    auto& to_client = core_->client_output();
    if (!to_client.empty()) {
      pool_->traffic.bytes_sent += to_client.size();
      if (!to_client_.send_now(client_, to_client) && to_client_.failed()) client_write_failed();
    }
    return to_server_.idle() && to_client_.idle();
  }

  // The server reader finds out and reports it (on_server_lost): one path for every failure.
  void server_write_failed() {
    error_code ignored;
    if (server_) server_->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  void client_write_failed() { core_->on_client_gone("client closed connection", Clock::now()); }

  void act(const Action& a) {
    switch (a.kind) {
      case Action::Kind::Acquire:  // carry_out() awaits it
        break;
      case Action::Kind::ReadServer:
        server_readable_ = true;
        if (server_parked_) server_ready_.wake();
        break;
      case Action::Kind::ResumeClient:
        if (client_parked_) client_ready_.wake();
        break;
      case Action::Kind::Release:
        release(a.reusable, a.reason);
        break;
      case Action::Kind::CancelServer:
        if (server_)
          asio::co_spawn(client_.get_executor(), send_cancel(server_->endpoint, server_->key),
                         asio::detached);
        break;
      case Action::Kind::CloseClient:
        ended_ = true;
        if (reason_.empty()) reason_ = a.reason;
        if (client_parked_) client_ready_.wake();
        if (server_parked_) server_ready_.wake();
        break;
      case Action::Kind::Log:
        spdlog::info("[c{}] {}", id_, a.reason);
        break;
      case Action::Kind::Warn:
        spdlog::warn("[c{}] {}", id_, a.reason);
        break;
    }
  }

  void acquired(AcquireResult result) {
    pool_->traffic.wait_us += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(result.waited).count());
    ctx_.pool_wait.Observe(std::chrono::duration<double>(result.waited).count());
    if (!result.connection) {
      info_->state = ClientState::Idle;
      core_->on_acquire_failed(std::move(result.error), Clock::now());
      return;
    }
    server_ = std::move(result.connection);
    if (!server_->read_buffer) server_->read_buffer.reset(new std::uint8_t[kServerReadBufferSize]);
    to_server_.reset();
    info_->state = ClientState::Active;
    info_->server_id = server_->id;
    ctx_.cancels.set_target(client_key_, CancelTarget{server_->endpoint, server_->key});
    core_->on_server_acquired(*server_, result.waited, Clock::now());
  }

  void release(bool reusable, const std::string& why) {
    server_readable_ = false;
    info_->state = ClientState::Idle;
    info_->server_id = 0;
    ctx_.cancels.set_target(client_key_, std::nullopt);
    if (!reusable) spdlog::info("[c{}] closing server connection s{}: {}", id_, server_->id, why);
    pool_->release(std::move(server_), reusable);
  }

  Stream client_;
  SessionContext& ctx_;
  std::uint64_t id_;
  std::shared_ptr<const config::Config> config_;
  std::shared_ptr<const TlsContexts> tls_;  // as loaded when the client connected
  std::shared_ptr<ClientInfo> info_;
  std::string peer_;
  std::string reason_;       // why the session ended; the first reason wins
  ReadBuffer client_bytes_;  // read from the client, not yet taken
  protocol::BackendKeyData client_key_;
  bool registered_ = false;
  std::optional<session::SessionCore> core_;
  std::shared_ptr<ServerPool> pool_;
  std::unique_ptr<ServerConnection> server_;
  PeerWriter to_client_, to_server_;
  Parking server_ready_;          // woken by ReadServer
  Parking client_ready_;          // woken by ResumeClient
  Parking drain_ready_;           // woken when pglens starts shutting down
  bool server_readable_ = false;  // ReadServer came, no Release since
  bool server_parked_ = false, client_parked_ = false;
  bool ended_ = false;  // CloseClient came
};
}  // namespace

awaitable<void> serve_client(tcp::socket client, SessionContext& context,
                             std::uint64_t session_id) {
  ClientSession session(std::move(client), context, session_id);
  co_await session.run();
}

}  // namespace pglens::proxy
