// Opening an authenticated connection to the upstream PostgreSQL server.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/tls_settings.hpp"
#include "config/upstream.hpp"
#include "proxy/net.hpp"
#include "proxy/stream.hpp"
#include "session/server_state.hpp"

namespace pglens::proxy {

// Who to log in as, and with which startup parameters.
struct ServerTarget {
  config::Upstream upstream;
  std::string user;
  std::string database;
  std::vector<std::pair<std::string, std::string>> params;  // without user and database
};

// TLS to servers as server_tls_sslmode says, with the context of the last (re)load.
struct ServerTls {
  config::TlsMode mode = config::TlsMode::Disable;
  std::shared_ptr<ssl::context> context;  // set unless mode is Disable
};

// A server connection: its stream (TCP, or TLS over it), and what sessions know of it
// (session::ServerState: the backend's key and parameters, what it has applied and prepared).
struct ServerConnection : session::ServerState {
  explicit ServerConnection(tcp::socket s) : stream(std::move(s)) {}
  Stream stream;
  tcp::endpoint endpoint;  // where a CancelRequest for this backend goes
  Clock::time_point created_at = Clock::now();
  std::uint64_t pool_id = 0;  // the pool's name for it
  // Idle in the pool since; watched: a wait for it to become readable is out (a pooled
  // connection the server speaks on, or closes, is dead).
  Clock::time_point pooled_at = Clock::now();
  bool watched = false;
  bool channel_binding = false;  // logged in with SCRAM-SHA-256-PLUS
  // Where a session holding it reads its answers: one per server connection, not per client.
  std::unique_ptr<std::uint8_t[]> read_buffer;
};

struct ConnectResult {
  std::unique_ptr<ServerConnection> connection;
  protocol::ErrorResponse error;  // when connection is null: what the client should be told
  // Trying again will not help whatever the SQLSTATE says (TLS refused, a certificate that
  // does not verify): a configuration to fix.
  bool lasting = false;
};

// Resolves, connects, starts TLS as `tls` says, and logs in (trust, cleartext, MD5 or
// SCRAM-SHA-256, bound to the TLS channel when the server offers SCRAM-SHA-256-PLUS), all within
// timeout. Unless `lasting`, the error's SQLSTATE tells whether trying again may help: class 08
// (the connection failed, timed out) and 57/53 (the server shutting down, starting up, full)
// may; 28 and 3D may not.
awaitable<ConnectResult> connect_server(const ServerTarget& target, Clock::duration timeout,
                                        KeepAlive keepalive = {}, ServerTls tls = {});
// Whether a failed connect may work when tried again (see connect_server).
bool transient_connect_failure(const ConnectResult& result);

// Says Terminate and closes, without waiting: in the clear at once, over TLS (Terminate and
// close_notify as records) in a coroutine of its own that owns the connection, a second at most.
void close_server_connection(std::unique_ptr<ServerConnection> conn);

// Sends a CancelRequest for key to endpoint and waits for the server to close (best effort).
awaitable<void> send_cancel(tcp::endpoint endpoint, protocol::BackendKeyData key);

}  // namespace pglens::proxy
