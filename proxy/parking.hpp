// Parking: one coroutine waits until another wakes it. It stands in for the usual Asio signal
// (a timer that never expires, cancelled to wake its waiter), which costs a timer-queue insert,
// a cancel and two trips through the scheduler per wake-up: the forwarding path wakes a session
// at least twice per transaction (a server connection handed over, then attached).
#pragma once

#include <boost/asio/any_completion_handler.hpp>

#include <mutex>

#include "proxy/net.hpp"

namespace pglens::proxy {

class ParkingService;

class Parking {
 public:
  // executor: where the parking's io_context is found (for its shutdown) and the fallback for
  // waking a waiter whose handler names no executor of its own.
  explicit Parking(const asio::any_io_executor& executor);
  // With the service already at hand (it is looked up under the io_context's registry lock).
  Parking(const asio::any_io_executor& executor, ParkingService& service);
  ~Parking();
  Parking(const Parking&) = delete;
  Parking& operator=(const Parking&) = delete;

  // Returns when woken (at once when wake() came first, which it consumes), or with
  // operation_aborted when the waiting coroutine is cancelled. One waiter at a time.
  awaitable<error_code> wait();
  // Wakes the waiter on its own executor; with none, the next wait() returns at once.
  // Thread-safe; it touches nothing of the Parking once the waiter may run.
  void wake();

 private:
  friend class ParkingService;
  using Handler = asio::any_completion_handler<void(error_code)>;
  void park(Handler handler, asio::any_io_executor executor);
  void abort();
  static void resume(Handler handler, asio::any_io_executor executor, error_code ec);

  asio::any_io_executor executor_;
  ParkingService& service_;
  Parking* prev_ = nullptr;  // the service's list, guarded by its mutex
  Parking* next_ = nullptr;
  std::mutex mutex_;
  Handler handler_;                        // the parked waiter
  asio::any_io_executor waiter_executor_;  // where it runs (its strand)
  bool woken_ = false;
};

// Tracks parkings so the io_context's shutdown can destroy the coroutines still parked there, as
// it does with the ones waiting in its own operations (a parked handler is owned by nobody else).
class ParkingService : public asio::execution_context::service {
 public:
  using key_type = ParkingService;
  static inline asio::execution_context::id id;
  explicit ParkingService(asio::execution_context& context) : service(context) {}

  void add(Parking* parking);
  void remove(Parking* parking);

 private:
  void shutdown() override;

  std::mutex mutex_;
  Parking* head_ = nullptr;  // intrusive: adding and removing allocate nothing
};

}  // namespace pglens::proxy
