// Maps the BackendKeyData pglens gave each client to the server connection that client is using
// at that moment, so a CancelRequest reaches the right backend.
#pragma once

#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>

#include "proxy/net.hpp"

namespace pglens::proxy {

struct CancelTarget {
  tcp::endpoint endpoint;
  protocol::BackendKeyData server_key;
};

class CancelRegistry {
 public:
  // A fresh key, unique among live clients.
  protocol::BackendKeyData add_client();
  void remove_client(const protocol::BackendKeyData& client_key);
  void set_target(const protocol::BackendKeyData& client_key, std::optional<CancelTarget> target);
  // The target, only if both the process id and the secret match.
  std::optional<CancelTarget> find(const protocol::BackendKeyData& client_key) const;

 private:
  struct Entry {
    std::int32_t secret = 0;
    std::optional<CancelTarget> target;
  };
  mutable std::mutex mutex_;
  std::unordered_map<std::int32_t, Entry> entries_;  // by process id
  std::mt19937 random_{std::random_device{}()};
};

}  // namespace pglens::proxy
