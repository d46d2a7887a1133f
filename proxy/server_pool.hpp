// The Asio side of a server-connection pool: carries out what pool::PoolCore decides, owns the
// connections that are not lent to a client, and wakes waiting sessions. One per (database, user).
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "pool/pool_core.hpp"
#include "proxy/parking.hpp"
#include "proxy/server_connection.hpp"
#include "session/traffic.hpp"

namespace pglens::proxy {

struct PoolKey {
  std::string database;  // as the client named it
  std::string user;
  auto operator<=>(const PoolKey&) const = default;
};

// Counters a pool keeps for SHOW STATS and the metrics (monotonic).
struct PoolStats {
  std::uint64_t server_connects = 0;
  std::uint64_t connect_failures = 0;
  std::uint64_t pool_timeouts = 0;
  std::uint64_t pre_ping_failures = 0;
  std::uint64_t tls_failures = 0;  // connects that failed for TLS (refused, handshake, certificate)
  std::map<pool::CloseReason, std::uint64_t> closes;
  std::uint64_t waits = 0;
  std::chrono::nanoseconds total_wait{0};
  std::chrono::nanoseconds max_wait{0};
};

struct AcquireResult {
  std::unique_ptr<ServerConnection> connection;
  protocol::ErrorResponse error;  // when connection is null
  std::chrono::nanoseconds waited{0};
};

class ServerPool : public std::enable_shared_from_this<ServerPool> {
 public:
  // How new server connections are opened (server_connect_timeout, tcp_keepalive...).
  struct ConnectSettings {
    Clock::duration timeout = std::chrono::seconds(15);
    KeepAlive keepalive;
    ServerTls tls;
  };
  // A connection idle in the pool this long is watched: if the server closes it or speaks on
  // it unasked (a FATAL 57P01 before it closes), it is closed and forgotten (CloseReason::Lost).
  // Not at once: connections in use come back within this most of the time, and watching
  // costs a reactor operation and a cancel per hand-over.
  static constexpr Clock::duration kWatchAfter = std::chrono::seconds(1);

  ServerPool(asio::any_io_executor executor, PoolKey key, ServerTarget target,
             pool::PoolSettings settings, ConnectSettings connect,
             std::size_t statement_cache_size);

  // Waits (first come, first served, at most pool_timeout) for a connection.
  awaitable<AcquireResult> acquire();
  // reusable: idle and clean (ReadyForQuery 'I', nothing half-sent or half-read).
  void release(std::unique_ptr<ServerConnection> connection, bool reusable);
  // Time passed: timeouts, idle closes, min_pool_size.
  void tick();
  void reconfigure(pool::PoolSettings settings, ConnectSettings connect);

  session::Traffic traffic;  // counted by the sessions using it

  const PoolKey& key() const { return key_; }
  const ServerTarget& target() const { return target_; }
  pool::PoolCounts counts() const;
  pool::PoolSettings settings() const;
  PoolStats stats() const;
  // ParameterStatus values the server reported on its first connection (for client logins).
  std::vector<protocol::ParameterStatus> server_parameters() const;
  // Idle and in-flight connections the pool holds right now (for SHOW SERVERS).
  std::vector<std::pair<std::uint64_t, pool::ConnState>> connection_states() const;
  // Each open TLS connection's "TLSv1.3/cipher", by server id (SHOW SERVERS' tls column).
  std::map<std::uint64_t, std::string> tls_of_connections() const;

 private:
  struct Waiter;
  void execute(pool::Actions actions);
  awaitable<void> open(pool::ConnId id);
  awaitable<void> ping(pool::ConnId id, std::unique_ptr<ServerConnection> conn);
  // Both under the mutex; null when absent.
  Waiter* take_waiter(pool::WaiterId id);
  std::unique_ptr<ServerConnection> take_held(pool::ConnId id);
  // Under the mutex: starts watching an idle connection (kWatchAfter).
  void watch(ServerConnection& conn);
  void on_idle_readable(pool::ConnId id, error_code ec);

  asio::any_io_executor executor_;
  ParkingService& parkings_;
  const PoolKey key_;
  const ServerTarget target_;

  mutable std::mutex mutex_;  // guards everything below; never held across I/O
  pool::PoolCore core_;
  ConnectSettings connect_;
  std::size_t statement_cache_size_;
  // Connections the pool holds: idle ones, and those being opened or pinged. A few dozen at
  // most, so a vector searched by pool_id beats a node-based map that allocates per hand-over.
  std::vector<std::unique_ptr<ServerConnection>> held_;
  std::map<std::uint64_t, std::string> tls_;  // open TLS connections, held or lent, by server id
  // Sessions waiting, oldest first (the core serves them in that order, so the one it names is
  // nearly always at the front). Each lives in its acquire()'s coroutine frame.
  std::deque<Waiter*> waiters_;
  pool::WaiterId next_waiter_ = 1;
  std::vector<protocol::ParameterStatus> server_parameters_;
  std::string last_connect_error_;
  protocol::ErrorResponse last_connect_failure_error_;  // as the server (or the connect) said it
  Clock::time_point last_connect_failure_{};
  PoolStats stats_;
};

}  // namespace pglens::proxy
