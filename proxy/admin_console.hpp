// The admin console: database "pglens" (or "pgbouncer", so tools written for PgBouncer work) on
// the proxy's own port. SHOW POOLS/STATS/CLIENTS/SERVERS/DATABASES/LISTS/CONFIG/VERSION use
// PgBouncer 1.18's column names, order and types (int8 where PgBouncer sends numeric), so its
// exporters and dashboards read pglens unchanged; PAUSE, RESUME, RELOAD and SHUTDOWN act on the
// proxy. Commands are case-insensitive, with an optional trailing semicolon.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "analyzer/analyzer.hpp"
#include "protocol/messages.hpp"
#include "proxy/proxy_snapshot.hpp"
#include "rules/advisor.hpp"

namespace pglens::proxy {

class AdminConsole {
 public:
  // SHOW FINGERPRINTS and SHOW ADVICE; both null when analysis is off.
  struct Analysis {
    analyzer::Analyzer* analyzer = nullptr;
    rules::Advisor* advisor = nullptr;
  };
  // PAUSE, RESUME, SHUTDOWN and RELOAD (false with the reason when the config cannot be read).
  struct Controls {
    std::function<void()> pause, resume, shutdown;
    std::function<bool(std::string*)> reload;
  };

  AdminConsole(SnapshotSource snapshot, Analysis analysis, Controls controls)
      : snapshot_(std::move(snapshot)), analysis_(analysis), controls_(std::move(controls)) {}

  // ParameterStatus messages an admin client gets at login.
  static std::vector<protocol::ParameterStatus> parameters();

  struct Result {
    protocol::Bytes response;  // RowDescription/DataRow/CommandComplete, or an ErrorResponse
  };
  // Runs one simple-protocol query (ReadyForQuery is the caller's). Never throws.
  Result execute(const std::string& sql);

 private:
  SnapshotSource snapshot_;
  Analysis analysis_;
  Controls controls_;
};

}  // namespace pglens::proxy
