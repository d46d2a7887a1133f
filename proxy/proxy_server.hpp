// The listening side of pglens: worker threads, the acceptor, and what sessions share.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "proxy/cancel_registry.hpp"
#include "proxy/net.hpp"
#include "proxy/server_pool.hpp"
#include "proxy/settings.hpp"

namespace pglens::proxy {

class ProxyServer {
 public:
  explicit ProxyServer(Settings settings);
  ~ProxyServer();
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  // Binds the listening socket; throws with a readable message when it cannot.
  void bind();
  // Serves until stop() or SIGINT/SIGTERM.
  void run();
  void stop();

  const Settings& settings() const { return settings_; }
  CancelRegistry& cancels() { return cancels_; }
  ServerPool& pool() { return pool_; }
  std::uint16_t port() const { return bound_port_; }

 private:
  awaitable<void> accept_loop();

  Settings settings_;
  CancelRegistry cancels_;
  ServerPool pool_;
  // One io_context per I/O thread: a session lives on one thread from start to end, so its two
  // coroutines never race and need no strand.
  std::vector<std::unique_ptr<asio::io_context>> workers_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  asio::io_context accept_context_;
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  std::uint16_t bound_port_ = 0;
  std::atomic<std::uint64_t> next_session_id_{1};
};

}  // namespace pglens::proxy
