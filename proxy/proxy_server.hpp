// The listening side of pglens: I/O threads, the acceptor, and what sessions share. It owns the
// parts and hands each one what it needs: sessions a SessionContext, the admin console, HTTP and
// the metrics a way to take a snapshot of the proxy's state (snapshot(), built here only).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "analyzer/analyzer.hpp"
#include "config/config.hpp"
#include "proxy/admin_console.hpp"
#include "proxy/cancel_registry.hpp"
#include "proxy/client_registry.hpp"
#include "proxy/http_server.hpp"
#include "proxy/net.hpp"
#include "proxy/proxy_snapshot.hpp"
#include "proxy/server_pool.hpp"
#include "proxy/session.hpp"
#include "proxy/tls.hpp"
#include "rules/advisor.hpp"

namespace pglens::proxy {

class ProxyServer {
 public:
  // config_path: re-read on SIGHUP and RELOAD; empty when the command line is all there is.
  explicit ProxyServer(config::Config config, std::string config_path = {});
  ~ProxyServer();
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  // Binds the listening socket, and the HTTP one when http_listen is set; throws with a readable
  // message naming the address when it cannot.
  void bind();
  // Serves until shutdown.
  void run();
  // Stops at once: every session ends.
  void stop();
  // Drains (SIGTERM, SIGINT, SHUTDOWN): stops accepting, /healthz answers 503, each client is
  // closed as soon as it is between transactions; exits once none is left, or at
  // shutdown_timeout. Again while draining: nothing more (a second signal stops at once).
  void shutdown_gracefully();
  bool draining() const { return draining_.load(); }

  std::shared_ptr<const config::Config> config() const;
  std::shared_ptr<const TlsContexts> tls() const;
  // Re-reads the config file; on error keeps the old config and says why.
  bool reload(std::string* error);
  // Overrides applied on top of the file at every (re)load: the command-line flags.
  void set_reload_overrides(std::function<void(config::Config&)> overrides) {
    overrides_ = std::move(overrides);
  }

  // Pools, clients and counters, taken now.
  ProxySnapshot snapshot() const;
  std::uint16_t port() const { return bound_port_; }
  std::uint16_t http_port() const { return http_.port(); }

 private:
  awaitable<void> accept_loop();
  awaitable<void> maintenance_loop();
  void apply(std::shared_ptr<const config::Config> config, std::shared_ptr<const TlsContexts> tls);
  std::shared_ptr<ServerPool> pool_for(const PoolKey& key, const config::DatabaseRoute& route,
                                       const config::Config& config);
  std::vector<std::shared_ptr<ServerPool>> pools() const;
  // libpq conninfo for pglens' own (catalog) connection to a database as a user.
  std::string catalog_conninfo(const std::string& database, const std::string& user) const;
  std::vector<prometheus::MetricFamily> collect_metrics() const;

  std::string config_path_;
  std::function<void(config::Config&)> overrides_;
  mutable std::mutex config_mutex_;
  std::shared_ptr<const config::Config> config_;
  std::shared_ptr<const TlsContexts> tls_;  // made of config_, under config_mutex_ too
  std::atomic<std::uint64_t> client_tls_failures_{0};

  // Declared before io_, so they outlive every session: a session's tracker pushes to the
  // analyzer's queue until its coroutine frame is destroyed with io_ (its session's end last).
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::shared_ptr<rules::Advisor> advisor_;  // before analyzer_: the analyzer's thread uses it
  std::unique_ptr<analyzer::Analyzer> analyzer_;

  // One io_context run by every I/O thread; with more than one, each session runs on a strand
  // of its own. With one, handlers already run one at a time, and a strand would only add a
  // lock and a queue hop to every one of them.
  const unsigned io_threads_;
  asio::io_context io_;
  std::vector<std::thread> threads_;
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  std::uint16_t bound_port_ = 0;
  std::atomic<std::uint64_t> next_session_id_{1};
  std::atomic<bool> draining_{false};
  // When a drain gives up waiting: a steady_clock count, written before draining_ is set.
  std::atomic<Clock::rep> drain_deadline_{0};
  Clock::time_point started_at_ = Clock::now();

  prometheus::Histogram& pool_wait_;
  CancelRegistry cancels_;
  ClientRegistry clients_;
  PauseGate pause_;
  mutable std::mutex pools_mutex_;
  std::map<PoolKey, std::shared_ptr<ServerPool>> pools_;

  std::shared_ptr<prometheus::Collectable> proxy_metrics_;
  AdminConsole admin_;
  SessionContext sessions_;
  HttpServer http_;
};

}  // namespace pglens::proxy
