// How a client session obtains and gives back a server connection. In session mode each client
// gets a connection of its own, opened on acquire and closed on release; the pooling modes keep
// connections between clients behind the same two calls.
#pragma once

#include <memory>

#include "proxy/server_connection.hpp"
#include "proxy/settings.hpp"

namespace pglens::proxy {

class ServerPool {
 public:
  explicit ServerPool(const Settings& settings) : settings_(settings) {}

  awaitable<ConnectResult> acquire(const ServerTarget& target);
  // reusable: the connection is idle and clean (ReadyForQuery 'I', no half-read message).
  void release(std::unique_ptr<ServerConnection> connection, bool reusable);

 private:
  const Settings& settings_;
};

}  // namespace pglens::proxy
