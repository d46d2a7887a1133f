// The bounded hand-over from proxy threads to the analyzer thread. push() never waits: when the
// queue is full the event is dropped and counted, so watching never slows forwarding.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "analyzer/event.hpp"

namespace pglens::analyzer {

class EventQueue {
 public:
  explicit EventQueue(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // False (and counted) when full or closed.
  bool push(ExecutionEvent&& event);
  // Takes everything queued; when nothing is, sleeps `timeout` first (empty if still nothing);
  // nullopt once closed and drained. The whole queue changes hands in O(1), so producers never
  // wait on the lock while a batch is copied out.
  std::optional<std::deque<ExecutionEvent>> pop_all(std::chrono::milliseconds timeout);
  void close();

  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<ExecutionEvent> events_;
  bool closed_ = false;
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace pglens::analyzer
