#include "proxy/session.hpp"

#include <spdlog/spdlog.h>

#include "proxy/proxy_server.hpp"

namespace pglens::proxy {

namespace {
using namespace asio::experimental::awaitable_operators;
using protocol::Bytes;
using protocol::ByteView;
using protocol::DecodeStatus;
using protocol::FrameKind;

constexpr std::size_t kReadBufferSize = 64 * 1024;

class ClientSession {
 public:
  ClientSession(tcp::socket client, ProxyServer& server, std::uint64_t id)
      : client_(std::move(client)), proxy_(server), id_(id) {
    error_code ec;
    auto remote = client_.remote_endpoint(ec);
    peer_ =
        ec ? std::string("?") : remote.address().to_string() + ":" + std::to_string(remote.port());
    client_.set_option(tcp::no_delay(true), ec);
  }

  awaitable<void> run() {
    auto started = Clock::now();
    co_await serve();
    if (server_) proxy_.pool().release(std::move(server_), server_clean());
    if (registered_) proxy_.cancels().remove_client(client_key_);
    error_code ignored;
    client_.shutdown(tcp::socket::shutdown_both, ignored);
    client_.close(ignored);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    spdlog::info("[c{}] disconnect {}: {} (after {} ms)", id_, peer_,
                 reason_.empty() ? "unknown" : reason_, ms);
  }

 private:
  awaitable<void> serve() {
    asio::steady_timer login_timer(client_.get_executor(), proxy_.settings().client_login_timeout);
    auto startup = co_await (read_startup() || login_timer.async_wait(use_nothrow));
    if (startup.index() == 1) {
      co_await send_fatal("08P01",
                          "pglens: client did not complete its startup within the login timeout");
      end("startup timeout");
      co_return;
    }
    auto packet = std::get<0>(std::move(startup));
    if (!packet) co_return;  // reason_ already says why
    if (packet->kind == protocol::StartupPacket::Kind::CancelRequest) {
      co_await forward_cancel(*packet);
      co_return;
    }
    if (!co_await login(*packet)) co_return;
    co_await (client_to_server() || server_to_client());
  }

  // Reads startup-phase packets, refusing encryption requests, until a StartupMessage or a
  // CancelRequest arrives.
  awaitable<std::optional<protocol::StartupPacket>> read_startup() {
    while (true) {
      auto r = protocol::decode_startup(startup_buffer_);
      if (r.status == DecodeStatus::Error) {
        co_await send_fatal("08P01", "pglens: " + r.error);
        end("bad startup packet: " + r.error);
        co_return std::nullopt;
      }
      if (r.status == DecodeStatus::Frame) {
        startup_buffer_.erase(startup_buffer_.begin(),
                              startup_buffer_.begin() + static_cast<std::ptrdiff_t>(r.consumed));
        using Kind = protocol::StartupPacket::Kind;
        if (r.packet.kind == Kind::SSLRequest || r.packet.kind == Kind::GSSENCRequest) {
          static const std::uint8_t no[] = {'N'};
          if (!co_await write_all(client_, no)) {
            end("client closed connection during startup");
            co_return std::nullopt;
          }
          continue;
        }
        co_return std::move(r.packet);
      }
      std::array<std::uint8_t, 1024> chunk{};
      auto [ec, n] = co_await client_.async_read_some(asio::buffer(chunk), use_nothrow);
      if (ec) {
        if (ec != asio::error::operation_aborted) end("client closed connection during startup");
        co_return std::nullopt;
      }
      startup_buffer_.insert(startup_buffer_.end(), chunk.begin(),
                             chunk.begin() + static_cast<std::ptrdiff_t>(n));
    }
  }

  awaitable<void> forward_cancel(const protocol::StartupPacket& packet) {
    auto target = proxy_.cancels().find({packet.process_id, packet.secret_key});
    if (!target) {
      end("cancel request for an unknown or idle client");
      co_return;
    }
    co_await send_cancel(target->endpoint, target->server_key);
    end("cancel request forwarded");
  }

  awaitable<bool> login(const protocol::StartupPacket& packet) {
    std::string user(packet.param("user"));
    std::string database(packet.param("database"));
    if (database.empty()) database = user;
    application_name_ = packet.param("application_name");
    spdlog::info("[c{}] login {} user={} database={} application_name={}", id_, peer_, user,
                 database, application_name_);

    const auto& upstream = proxy_.settings().upstream;
    ServerTarget target;
    target.upstream = upstream;
    target.user = user;
    target.database = database;
    if (!upstream.dbname.empty()) {
      target.database = upstream.dbname;
      if (!upstream.user.empty()) target.user = upstream.user;
    }
    for (const auto& [k, v] : packet.params)
      if (k != "user" && k != "database") target.params.emplace_back(k, v);

    auto result = co_await proxy_.pool().acquire(target);
    if (!result.connection) {
      Bytes out;
      result.error.encode(out);
      co_await write_all(client_, out);
      end("upstream login failed: " + std::string(result.error.message()));
      co_return false;
    }
    server_ = std::move(result.connection);
    client_key_ = proxy_.cancels().add_client();
    registered_ = true;
    proxy_.cancels().set_target(client_key_, CancelTarget{server_->endpoint, server_->key});

    Bytes out;
    protocol::Authentication{}.encode(out);
    for (const auto& p : server_->parameters) p.encode(out);
    client_key_.encode(out);
    protocol::ReadyForQuery{'I'}.encode(out);
    if (!co_await write_all(client_, out)) {
      end("client closed connection during login");
      co_return false;
    }
    spdlog::debug("[c{}] server s{} (backend pid {}) assigned", id_, server_->id,
                  server_->key.process_id);
    co_return true;
  }

  // Frontend → backend. Frames are observed and the bytes forwarded as read.
  awaitable<void> client_to_server() {
    protocol::MessageDecoder decoder(protocol::Direction::Frontend);
    std::vector<std::uint8_t> buffer(kReadBufferSize);
    // Bytes a client sent right behind its startup packet belong to the typed phase.
    std::size_t carried = startup_buffer_.size();
    std::copy(startup_buffer_.begin(), startup_buffer_.end(), buffer.begin());
    startup_buffer_.clear();
    while (true) {
      std::size_t n = carried;
      carried = 0;
      if (n == 0) {
        auto [ec, got] = co_await client_.async_read_some(asio::buffer(buffer), use_nothrow);
        if (ec) {
          if (ec == asio::error::operation_aborted) co_return;  // the other direction ended first
          std::string why = ec == asio::error::eof ? "client closed connection"
                                                   : "client read error: " + ec.message();
          if (!decoder.at_boundary())
            why += " (mid-message)";
          else if (client_status_ != 'I')
            why += " (mid-transaction)";
          end(std::move(why));
          co_return;
        }
        n = got;
      }
      ByteView input(buffer.data(), n);
      std::size_t forward = n;
      bool terminate = false;
      while (!input.empty()) {
        auto r = decoder.next(input);
        if (r.status == DecodeStatus::Error) {
          co_await send_fatal("08P01", "pglens: protocol violation from client: " + r.error);
          end("protocol violation: " + r.error);
          server_dirty_ = true;
          co_return;
        }
        input = input.subspan(r.consumed);
        if (r.status == DecodeStatus::NeedMore) break;
        if (r.frame.kind == FrameKind::Message && r.frame.type == 'X') {
          // Terminate: the session ends here; the server connection is ours to release.
          std::size_t through = n - input.size();
          forward = through >= 5 ? through - 5 : 0;
          terminate = true;
          break;
        }
      }
      if (forward > 0 && !co_await write_all(server_->socket, {buffer.data(), forward})) {
        end("server closed connection");
        co_return;
      }
      if (terminate) {
        end("client sent Terminate");
        co_return;
      }
    }
  }

  // Backend → frontend: tracks the transaction status from ReadyForQuery.
  awaitable<void> server_to_client() {
    protocol::MessageDecoder decoder(protocol::Direction::Backend);
    std::vector<std::uint8_t> buffer(kReadBufferSize);
    while (true) {
      auto [ec, n] = co_await server_->socket.async_read_some(asio::buffer(buffer), use_nothrow);
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;  // the other direction ended first
        server_dirty_ = true;
        end(ec == asio::error::eof ? "server closed connection"
                                   : "server read error: " + ec.message());
        if (decoder.at_boundary())
          co_await send_fatal("08006", "pglens: the server connection was lost");
        co_return;
      }
      ByteView input(buffer.data(), n);
      while (!input.empty()) {
        auto r = decoder.next(input);
        if (r.status == DecodeStatus::Error) {
          server_dirty_ = true;
          end("protocol violation from server: " + r.error);
          co_return;
        }
        input = input.subspan(r.consumed);
        if (r.status == DecodeStatus::NeedMore) break;
        if (r.frame.kind == FrameKind::Message && r.frame.type == 'Z' && r.frame.data.size() == 1)
          client_status_ = static_cast<char>(r.frame.data[0]);
      }
      server_at_boundary_ = decoder.at_boundary();
      if (!co_await write_all(client_, {buffer.data(), n})) {
        end("client closed connection");
        co_return;
      }
    }
  }

  awaitable<void> send_fatal(std::string_view sqlstate, std::string_view message) {
    spdlog::warn("[c{}] {}: {}", id_, sqlstate, message);
    Bytes out;
    protocol::make_error(sqlstate, message, "FATAL").encode(out);
    co_await write_all(client_, out);
  }

  // Records why the session ends; the first reason wins.
  void end(std::string reason) {
    if (reason_.empty()) reason_ = std::move(reason);
  }

  bool server_clean() const {
    return !server_dirty_ && client_status_ == 'I' && server_at_boundary_;
  }

  tcp::socket client_;
  ProxyServer& proxy_;
  std::uint64_t id_;
  std::string peer_;
  std::string application_name_;
  std::string reason_;  // why the session ended; empty while it runs
  Bytes startup_buffer_;
  std::unique_ptr<ServerConnection> server_;
  protocol::BackendKeyData client_key_;
  bool registered_ = false;
  char client_status_ = 'I';  // from the last ReadyForQuery
  bool server_dirty_ = false;
  bool server_at_boundary_ = true;
};
}  // namespace

awaitable<void> serve_client(tcp::socket client, ProxyServer& server, std::uint64_t session_id) {
  ClientSession session(std::move(client), server, session_id);
  co_await session.run();
}

}  // namespace pglens::proxy
