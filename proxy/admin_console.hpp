// The admin console: database "pglens" (or "pgbouncer", so tools written for PgBouncer work) on
// the proxy's own port. SHOW POOLS/STATS/CLIENTS/SERVERS/DATABASES/LISTS/CONFIG/VERSION use
// PgBouncer 1.18's column names, order and types (int8 where PgBouncer sends numeric), so its
// exporters and dashboards read pglens unchanged; PAUSE, RESUME, RELOAD and SHUTDOWN act on the
// proxy. Commands are case-insensitive, with an optional trailing semicolon.
#pragma once

#include <string>
#include <vector>

#include "protocol/messages.hpp"

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
  // Runs one simple-protocol query (ReadyForQuery is the caller's). Never throws.
  Result execute(const std::string& sql);

 private:
  ProxyServer& server_;
};

}  // namespace pglens::proxy
