// The admin console: database "pglens" (or "pgbouncer", so tools written for PgBouncer work) on
// the proxy's own port. SHOW POOLS/STATS/CLIENTS/SERVERS/DATABASES/LISTS/CONFIG/VERSION use
// PgBouncer's column names and order; PAUSE, RESUME, RELOAD and SHUTDOWN act on the proxy.
#pragma once

#include <string>
#include <vector>

#include "proxy/protocol/messages.hpp"

namespace pglens::proxy {

class ProxyServer;

class AdminConsole {
 public:
  explicit AdminConsole(ProxyServer& server) : server_(server) {}

  // ParameterStatus messages an admin client gets at login.
  static std::vector<protocol::ParameterStatus> parameters();

  struct Result {
    protocol::Bytes response;  // RowDescription/DataRow/CommandComplete, or an ErrorResponse
  };
  // Runs one simple-protocol query (ReadyForQuery is the caller's).
  Result execute(const std::string& sql);

 private:
  ProxyServer& server_;
};

}  // namespace pglens::proxy
