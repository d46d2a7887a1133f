// A graceful shutdown's bookkeeping, free of I/O: what is left to wait for, and when to stop
// waiting. Each session decides for itself when its client can be closed
// (session::SessionCore::at_rest); the maintenance loop asks this whether all have been.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "proxy/client_registry.hpp"

namespace pglens::proxy {

struct DrainProgress {
  std::size_t sessions = 0;        // logged-in clients still connected
  std::size_t holding_server = 0;  // ...of which hold a server connection or wait for one
  std::size_t in_transaction = 0;  // ...of which are inside a transaction
};

// Admin console sessions and logins in progress have nothing in flight: they are not waited for
// (the process' exit closes them).
DrainProgress drain_progress(const std::vector<std::shared_ptr<const ClientInfo>>& clients);

enum class DrainStep { Wait, Done, TimedOut };
DrainStep drain_step(const DrainProgress& progress, std::chrono::steady_clock::time_point now,
                     std::chrono::steady_clock::time_point deadline);

}  // namespace pglens::proxy
