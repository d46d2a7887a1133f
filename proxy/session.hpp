// One client connection, from its startup packet to its disconnect: the Asio side of
// session::ClientLogin and session::SessionCore, which decide; this only carries out.
#pragma once

#include <prometheus/histogram.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "analyzer/event_queue.hpp"
#include "config/config.hpp"
#include "proxy/cancel_registry.hpp"
#include "proxy/client_registry.hpp"
#include "proxy/net.hpp"
#include "proxy/server_pool.hpp"
#include "proxy/tls.hpp"

namespace pglens::proxy {

class AdminConsole;

// PAUSE: sessions finish their transactions, then wait before taking a new server connection.
class PauseGate {
 public:
  void pause() { paused_ = true; }
  void resume() { paused_ = false; }
  bool paused() const { return paused_; }
  // Resolves when not paused.
  awaitable<void> wait();

 private:
  std::atomic<bool> paused_{false};
};

// What a session needs of the proxy it runs in, handed over once by the ProxyServer.
struct SessionContext {
  std::function<std::shared_ptr<const config::Config>()> config;
  // The pool for a client's database and user (created on first use).
  std::function<std::shared_ptr<ServerPool>(const PoolKey&, const config::DatabaseRoute&,
                                            const config::Config&)>
      pool_for;
  CancelRegistry& cancels;
  ClientRegistry& clients;
  PauseGate& pause;
  prometheus::Histogram& pool_wait;  // every wait for a server connection
  analyzer::EventQueue* analysis;    // null when analysis is off
  AdminConsole& admin;
  // The TLS contexts of the last (re)load; a session keeps the one it started with.
  std::function<std::shared_ptr<const TlsContexts>()> tls;
  std::atomic<std::uint64_t>& client_tls_failures;  // handshakes with clients that failed
  // Shutting down: set before the clients' drain parkings are woken (ClientRegistry::wake_all).
  const std::atomic<bool>& draining;
};

// tcp_keepalive and its idle, interval and count, as configured.
KeepAlive keepalive_of(const config::Config& c);

// Runs a client's session: its login, then the admin console or the session proper.
awaitable<void> serve_client(tcp::socket client, SessionContext& context, std::uint64_t session_id);

}  // namespace pglens::proxy
