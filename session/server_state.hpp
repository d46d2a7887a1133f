// What a session knows of one server connection, beyond its socket: kept with the connection in
// the pool, so the next client to get it knows what it already has.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "protocol/messages.hpp"
#include "session/prepared_statements.hpp"

namespace pglens::session {

struct ServerState {
  std::uint64_t id = 0;                               // "s<id>" in logs and SHOW SERVERS
  protocol::BackendKeyData key;                       // the backend's own, for a CancelRequest
  std::vector<protocol::ParameterStatus> parameters;  // as the server reported them at login
  // Client-settable startup parameters as this backend has them now (see client_parameters).
  std::map<std::string, std::string> applied;
  // Named statements this backend has prepared for transaction-mode clients.
  ServerStatementCache statements;
};

}  // namespace pglens::session
