// Who is connected: for SHOW CLIENTS, max_client_conn and the connection gauges.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pglens::proxy {

class Parking;

enum class ClientState : int {
  Login,    // startup and authentication
  Idle,     // logged in, holds no server connection
  Waiting,  // waiting for a server connection
  Active,   // holds a server connection
};
std::string_view to_string(ClientState state);

// Written by its session, read by the admin console and metrics; fields that change after login
// are atomics, so readers never block the session.
struct ClientInfo {
  std::uint64_t id = 0;
  std::string address;
  int port = 0;
  std::chrono::system_clock::time_point connect_time = std::chrono::system_clock::now();
  // Set once at login, before the session becomes visible as logged in.
  std::string user, database, application_name;
  std::string tls;  // "TLSv1.3/TLS_AES_256_GCM_SHA384", "" in the clear
  std::atomic<ClientState> state{ClientState::Login};
  std::atomic<std::int64_t> request_time_us{0};  // wall-clock µs of the last request
  std::atomic<std::uint64_t> server_id{0};       // the server connection held, 0 for none
  std::atomic<bool> in_transaction{false};
};

class ClientRegistry {
 public:
  // drain: woken by wake_all() when pglens starts shutting down; it must outlive the entry
  // (removed before it is destroyed).
  std::shared_ptr<ClientInfo> add(std::uint64_t id, Parking* drain = nullptr);
  void remove(std::uint64_t id);
  // Wakes every client's drain parking; returns how many there were.
  std::size_t wake_all();
  std::size_t size() const;
  std::vector<std::shared_ptr<const ClientInfo>> snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, std::shared_ptr<ClientInfo>> clients_;
  std::map<std::uint64_t, Parking*> drains_;
};

}  // namespace pglens::proxy
