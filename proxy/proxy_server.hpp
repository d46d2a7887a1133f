// The listening side of pglens: I/O threads, the acceptor, and what sessions share.
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
#include "proxy/cancel_registry.hpp"
#include "proxy/client_registry.hpp"
#include "proxy/http_server.hpp"
#include "proxy/net.hpp"
#include "proxy/server_pool.hpp"
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
  // Stops accepting; exits once no client holds a server connection (SHUTDOWN).
  void shutdown_gracefully();

  std::shared_ptr<const config::Config> config() const;
  // Re-reads the config file; on error keeps the old config and says why.
  bool reload(std::string* error);
  // Overrides applied on top of the file at every (re)load: the command-line flags.
  void set_reload_overrides(std::function<void(config::Config&)> overrides) {
    overrides_ = std::move(overrides);
  }

  // PAUSE: sessions finish their transactions, then wait before taking a new server connection.
  void pause() { paused_ = true; }
  void resume() { paused_ = false; }
  bool paused() const { return paused_; }
  // Resolves when not paused (sessions call it before acquiring).
  awaitable<void> wait_while_paused();

  CancelRegistry& cancels() { return cancels_; }
  // Null when analysis is off.
  analyzer::Analyzer* analyzer() { return analyzer_.get(); }
  // Null when analysis is off.
  rules::Advisor* advisor() { return advisor_.get(); }
  const std::shared_ptr<prometheus::Registry>& metrics() const { return registry_; }
  // Everything /metrics shows: the registry's families and the proxy's own, built now.
  std::vector<prometheus::MetricFamily> collect_metrics() const;
  // pglens_pool_wait_seconds; sessions observe every wait for a server connection.
  prometheus::Histogram& pool_wait_histogram() { return pool_wait_; }
  // The bound --http port, 0 when HTTP is off.
  std::uint16_t http_port() const { return http_.port(); }
  ClientRegistry& clients() { return clients_; }
  std::shared_ptr<ServerPool> pool_for(const PoolKey& key, const config::DatabaseRoute& route,
                                       const config::Config& config);
  std::vector<std::shared_ptr<ServerPool>> pools() const;
  std::uint16_t port() const { return bound_port_; }
  asio::io_context& io() { return io_; }
  Clock::time_point started_at() const { return started_at_; }

 private:
  awaitable<void> accept_loop();
  awaitable<void> maintenance_loop();
  void apply(std::shared_ptr<const config::Config> config);
  // libpq conninfo for pglens' own (catalog) connection to a database as a user.
  std::string catalog_conninfo(const std::string& database, const std::string& user) const;

  std::string config_path_;
  std::function<void(config::Config&)> overrides_;
  mutable std::mutex config_mutex_;
  std::shared_ptr<const config::Config> config_;

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
  std::atomic<bool> paused_{false};
  std::atomic<bool> shutting_down_{false};
  Clock::time_point started_at_ = Clock::now();

  prometheus::Histogram& pool_wait_;
  std::shared_ptr<prometheus::Collectable> proxy_metrics_;
  HttpServer http_{*this};
  CancelRegistry cancels_;
  ClientRegistry clients_;
  mutable std::mutex pools_mutex_;
  std::map<PoolKey, std::shared_ptr<ServerPool>> pools_;
};

}  // namespace pglens::proxy
