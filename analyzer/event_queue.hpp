// The bounded hand-over from proxy threads to the analyzer thread. push() never waits: when the
// queue is full the event is dropped and counted, so watching never slows forwarding.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "analyzer/event.hpp"

namespace pglens::analyzer {

class EventQueue {
 public:
  explicit EventQueue(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // ---- producer side (proxy threads) ----
  // False (and counted) when full or closed.
  bool push(ExecutionEvent&& event);
  // An event to fill: one the consumer gave back when there is one (its buffers allocated, and
  // freed, on this side), else a new one.
  ExecutionEvent take_blank();

  // ---- consumer side (the analyzer thread) ----
  // Swaps everything queued into `batch` (which must be empty); when nothing is queued, sleeps
  // `timeout` first. False once closed and drained. The whole queue changes hands in O(1), so
  // producers never wait on the lock while a batch is copied out.
  bool pop_all(std::vector<ExecutionEvent>& batch, std::chrono::milliseconds timeout);
  // Gives processed events back for take_blank(), and leaves `batch` empty. Their memory was
  // allocated on the producer side and is reused there: freeing it here instead cost the proxy
  // thread more than the whole analysis (measured: see README, "Benchmarks").
  void recycle(std::vector<ExecutionEvent>& batch);

  void close();

  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<ExecutionEvent> events_;
  std::vector<ExecutionEvent> blank_;  // given back by the consumer, not yet reused
  bool closed_ = false;
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace pglens::analyzer
