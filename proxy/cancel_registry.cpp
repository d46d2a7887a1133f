#include "proxy/cancel_registry.hpp"

namespace pglens::proxy {

protocol::BackendKeyData CancelRegistry::add_client() {
  std::lock_guard lock(mutex_);
  std::uniform_int_distribution<std::int32_t> pid(1, INT32_MAX);
  std::uniform_int_distribution<std::int32_t> secret(INT32_MIN, INT32_MAX);
  while (true) {
    protocol::BackendKeyData key{pid(random_), secret(random_)};
    if (entries_.try_emplace(key.process_id, Entry{key.secret_key, std::nullopt}).second)
      return key;
  }
}

void CancelRegistry::remove_client(const protocol::BackendKeyData& key) {
  std::lock_guard lock(mutex_);
  entries_.erase(key.process_id);
}

void CancelRegistry::set_target(const protocol::BackendKeyData& key,
                                std::optional<CancelTarget> target) {
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(key.process_id); it != entries_.end())
    it->second.target = std::move(target);
}

std::optional<CancelTarget> CancelRegistry::find(const protocol::BackendKeyData& key) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key.process_id);
  if (it == entries_.end() || it->second.secret != key.secret_key) return std::nullopt;
  return it->second.target;
}

}  // namespace pglens::proxy
