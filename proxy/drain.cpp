#include "proxy/drain.hpp"

namespace pglens::proxy {

namespace {
bool is_admin(const ClientInfo& c) {
  return c.database == "pglens" || c.database == "pgbouncer";  // reserved: the admin console
}
}  // namespace

DrainProgress drain_progress(const std::vector<std::shared_ptr<const ClientInfo>>& clients) {
  DrainProgress p;
  for (const auto& c : clients) {
    auto state = c->state.load();
    // A session writes database before it leaves Login: read only after.
    if (state == ClientState::Login || is_admin(*c)) continue;
    ++p.sessions;
    if (state == ClientState::Active || state == ClientState::Waiting) ++p.holding_server;
    if (c->in_transaction.load()) ++p.in_transaction;
  }
  return p;
}

DrainStep drain_step(const DrainProgress& progress, std::chrono::steady_clock::time_point now,
                     std::chrono::steady_clock::time_point deadline) {
  if (progress.sessions == 0) return DrainStep::Done;
  return now >= deadline ? DrainStep::TimedOut : DrainStep::Wait;
}

}  // namespace pglens::proxy
