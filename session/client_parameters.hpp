// Startup parameters a client may set that must follow it from one server connection to the next
// in transaction and statement mode.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.hpp"

namespace pglens::session {

// The canonical spelling of a tracked parameter ("datestyle" → "DateStyle"), or nullopt when the
// parameter is not one pglens carries between server connections.
std::optional<std::string> tracked_parameter(std::string_view name);

// The SQL that makes a backend whose tracked parameters are `current` match `desired` (keys absent
// from `desired` go back to the server default). Empty when nothing differs.
std::string parameter_sync_sql(const std::map<std::string, std::string>& desired,
                               const std::map<std::string, std::string>& current,
                               const std::vector<protocol::ParameterStatus>& server_defaults);

}  // namespace pglens::session
