// A TCP relay the tests put between pglens and Postgres, to break the link on purpose: cut every
// connection (a reset, as a dead route or a killed middlebox gives), or stall them (no byte
// either way, as a half-open link or a frozen host gives). One thread, poll(), on 127.0.0.1.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pglens::test {

class Relay {
 public:
  // Listens on a free port and forwards each connection to 127.0.0.1:target_port.
  explicit Relay(int target_port);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  int port() const { return port_; }
  // Resets every connection now (both sides); new ones are still accepted.
  void cut();
  // No bytes are forwarded, either way, until resumed; connections stay open (and new ones are
  // accepted and stall too).
  void stall(bool on);
  // Connections open now.
  std::size_t connections() const;
  // URL for pglens' --upstream: postgresql://127.0.0.1:<port>.
  std::string url() const;

 private:
  struct Pair {
    int client = -1, server = -1;
  };
  void run();
  void wake();

  int listen_fd_ = -1;
  int port_ = 0;
  int target_port_ = 0;
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> stop_{false}, stalled_{false}, cut_{false};
  mutable std::mutex mutex_;
  std::vector<Pair> pairs_;  // guarded by mutex_ (the thread changes it, tests count it)
  std::thread thread_;
};

}  // namespace pglens::test
