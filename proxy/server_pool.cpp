#include "proxy/server_pool.hpp"

namespace pglens::proxy {

awaitable<ConnectResult> ServerPool::acquire(const ServerTarget& target) {
  co_return co_await connect_server(target, settings_.server_connect_timeout);
}

void ServerPool::release(std::unique_ptr<ServerConnection> connection, bool reusable) {
  if (!connection) return;
  if (reusable) {
    // Session mode keeps nothing between clients: say goodbye so the backend exits at once.
    protocol::Bytes bye;
    protocol::Terminate{}.encode(bye);
    error_code ignored;
    asio::write(connection->socket, asio::buffer(bye), ignored);
  }
  error_code ignored;
  connection->socket.shutdown(tcp::socket::shutdown_both, ignored);
  connection->socket.close(ignored);
}

}  // namespace pglens::proxy
