#include "proxy/client_registry.hpp"

#include "proxy/parking.hpp"

namespace pglens::proxy {

std::string_view to_string(ClientState state) {
  switch (state) {
    case ClientState::Login:
      return "login";
    case ClientState::Idle:
      return "idle";
    case ClientState::Waiting:
      return "waiting";
    case ClientState::Active:
      return "active";
  }
  return "?";
}

std::shared_ptr<ClientInfo> ClientRegistry::add(std::uint64_t id, Parking* drain) {
  auto info = std::make_shared<ClientInfo>();
  info->id = id;
  std::lock_guard lock(mutex_);
  clients_[id] = info;
  if (drain != nullptr) drains_[id] = drain;
  return info;
}

void ClientRegistry::remove(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  clients_.erase(id);
  drains_.erase(id);
}

std::size_t ClientRegistry::wake_all() {
  // Under the lock: an entry's parking lives until its remove(), which waits for the lock.
  std::lock_guard lock(mutex_);
  for (auto& [id, parking] : drains_) parking->wake();
  return drains_.size();
}

std::size_t ClientRegistry::size() const {
  std::lock_guard lock(mutex_);
  return clients_.size();
}

std::vector<std::shared_ptr<const ClientInfo>> ClientRegistry::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<const ClientInfo>> out;
  out.reserve(clients_.size());
  for (const auto& [id, c] : clients_) out.push_back(c);
  return out;
}

}  // namespace pglens::proxy
