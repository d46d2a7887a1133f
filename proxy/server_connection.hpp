// Opening an authenticated connection to the upstream PostgreSQL server.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/upstream.hpp"
#include "proxy/net.hpp"
#include "proxy/prepared_statements.hpp"

namespace pglens::proxy {

// Who to log in as, and with which startup parameters.
struct ServerTarget {
  config::Upstream upstream;
  std::string user;
  std::string database;
  std::vector<std::pair<std::string, std::string>> params;  // without user and database
};

struct ServerConnection {
  explicit ServerConnection(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  std::uint64_t id = 0;
  tcp::endpoint endpoint;        // where a CancelRequest for this backend goes
  protocol::BackendKeyData key;  // the server's own key
  std::vector<protocol::ParameterStatus> parameters;
  Clock::time_point created_at = Clock::now();
  std::uint64_t pool_id = 0;  // the pool's name for it
  // Client-settable startup parameters as this backend has them now (see client_parameters).
  std::map<std::string, std::string> applied;
  // Named statements this backend has prepared for transaction-mode clients.
  ServerStatementCache statements;
};

struct ConnectResult {
  std::unique_ptr<ServerConnection> connection;
  protocol::ErrorResponse error;  // when connection is null: what the client should be told
};

// Resolves, connects and logs in (trust, cleartext, MD5 or SCRAM-SHA-256), all within timeout.
awaitable<ConnectResult> connect_server(const ServerTarget& target, Clock::duration timeout);

// Sends a CancelRequest for key to endpoint and waits for the server to close (best effort).
awaitable<void> send_cancel(tcp::endpoint endpoint, protocol::BackendKeyData key);

}  // namespace pglens::proxy
