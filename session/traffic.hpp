// Traffic through one pool, counted by the sessions using it (SHOW STATS, /api/pools, /metrics).
#pragma once

#include <atomic>
#include <cstdint>

namespace pglens::session {

struct Traffic {
  std::atomic<std::uint64_t> transactions{0};
  std::atomic<std::uint64_t> queries{0};
  std::atomic<std::uint64_t> bytes_received{0};  // from clients
  std::atomic<std::uint64_t> bytes_sent{0};      // to clients
  std::atomic<std::uint64_t> transaction_us{0};
  std::atomic<std::uint64_t> query_us{0};
  std::atomic<std::uint64_t> wait_us{0};
  // Server connections reset (state_reset_query) because a client's SQL left session state on
  // them in transaction or statement mode.
  std::atomic<std::uint64_t> state_resets{0};
};

}  // namespace pglens::session
