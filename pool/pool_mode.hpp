// When a session gives its server connection back to the pool.
#pragma once

#include <optional>
#include <string_view>

namespace pglens::pool {

enum class PoolMode {
  Session,      // when the client disconnects
  Transaction,  // when a transaction ends (ReadyForQuery 'I' with nothing in flight)
  Statement,    // after every statement; a transaction block is refused
};

std::string_view to_string(PoolMode mode);
std::optional<PoolMode> parse_pool_mode(std::string_view text);

}  // namespace pglens::pool
