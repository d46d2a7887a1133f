#include "proxy/proxy_server.hpp"

#include <spdlog/spdlog.h>

#include "proxy/session.hpp"

namespace pglens::proxy {

ProxyServer::ProxyServer(Settings settings)
    : settings_(std::move(settings)),
      pool_(settings_),
      acceptor_(accept_context_),
      signals_(accept_context_, SIGINT, SIGTERM) {
  unsigned n = std::max(1u, settings_.threads);
  for (unsigned i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(asio::make_work_guard(*workers_.back()));
  }
}

ProxyServer::~ProxyServer() {
  stop();
}

void ProxyServer::bind() {
  auto address = asio::ip::make_address(settings_.listen_host);
  tcp::endpoint endpoint(address, settings_.listen_port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  bound_port_ = acceptor_.local_endpoint().port();
}

void ProxyServer::run() {
  signals_.async_wait([this](const error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {} received, shutting down", signal);
    stop();
  });
  asio::co_spawn(accept_context_, accept_loop(), asio::detached);
  std::vector<std::thread> threads;
  for (auto& worker : workers_) threads.emplace_back([&ctx = *worker] { ctx.run(); });
  spdlog::info("pglens listening on {}:{}, upstream {}, {} I/O threads", settings_.listen_host,
               bound_port_, settings_.upstream.display(), workers_.size());
  accept_context_.run();
  for (auto& t : threads) t.join();
}

void ProxyServer::stop() {
  asio::post(accept_context_, [this] {
    error_code ignored;
    acceptor_.close(ignored);
    signals_.cancel(ignored);
  });
  guards_.clear();
  for (auto& worker : workers_) worker->stop();
  accept_context_.stop();
}

awaitable<void> ProxyServer::accept_loop() {
  std::size_t next_worker = 0;
  while (acceptor_.is_open()) {
    auto& worker = *workers_[next_worker];
    next_worker = (next_worker + 1) % workers_.size();
    auto [ec, socket] = co_await acceptor_.async_accept(worker, use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      spdlog::warn("accept failed: {}", ec.message());
      continue;
    }
    auto id = next_session_id_++;
    asio::co_spawn(worker, serve_client(std::move(socket), *this, id), [id](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("[c{}] session ended by an unexpected error: {}", id, ex.what());
      }
    });
  }
}

}  // namespace pglens::proxy
