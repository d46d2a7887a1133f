// One consistent look at the proxy's state: pools, their connections and counters, clients,
// the analyzer's counters. Built in one place (ProxyServer::snapshot) and read by the admin
// console's SHOW commands, /api/pools and /metrics, which are handed a way to take one instead of
// reaching into the proxy.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "analyzer/analyzer.hpp"
#include "config/config.hpp"
#include "pool/pool_core.hpp"
#include "proxy/client_registry.hpp"
#include "proxy/server_pool.hpp"

namespace pglens::proxy {

struct ClientSnapshot {
  std::uint64_t id = 0;
  std::string address;
  int port = 0;
  std::chrono::system_clock::time_point connect_time;
  std::string user, database, application_name;  // empty while logging in
  ClientState state = ClientState::Login;
  std::int64_t request_time_us = 0;  // wall clock of the last request, 0 for none
  std::uint64_t server_id = 0;       // the server connection held, 0 for none
  bool in_transaction = false;
  std::string tls;  // "TLSv1.3/TLS_AES_256_GCM_SHA384", "" in the clear
};

struct TrafficTotals {
  std::uint64_t transactions = 0, queries = 0, bytes_received = 0, bytes_sent = 0,
                transaction_us = 0, query_us = 0, wait_us = 0, state_resets = 0;
};

struct PoolSnapshot {
  PoolKey key;
  std::string server_database, server_user;  // as the pool logs in upstream
  std::string server_host;
  std::uint16_t server_port = 0;
  pool::PoolMode mode = pool::PoolMode::Transaction;
  pool::PoolSettings settings;
  pool::PoolCounts counts;
  PoolStats stats;
  TrafficTotals traffic;
  // The connections the pool holds (idle, being opened or pinged), by server id; those lent to
  // clients are known through the clients holding them.
  std::vector<std::pair<std::uint64_t, pool::ConnState>> connections;
  std::map<std::uint64_t, std::string> tls;  // TLS connections (held or lent) by server id
};

struct ProxySnapshot {
  std::shared_ptr<const config::Config> config;
  std::vector<PoolSnapshot> pools;      // by key
  std::vector<ClientSnapshot> clients;  // by id, logging-in ones included
  bool paused = false;
  std::uint16_t port = 0;  // the bound listening port
  std::chrono::steady_clock::duration uptime{};
  std::chrono::system_clock::time_point taken_at;
  std::optional<analyzer::AnalyzerCounters> analyzer;  // when analysis is on
  std::uint64_t client_tls_failures = 0;               // TLS handshakes with clients that failed
};

using SnapshotSource = std::function<ProxySnapshot()>;

}  // namespace pglens::proxy
