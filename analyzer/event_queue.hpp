// The bounded hand-over from proxy threads to the analyzer thread. push() never waits: when the
// queue is full the statements are dropped and counted, so watching never slows forwarding.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "analyzer/event_batch.hpp"

namespace pglens::analyzer {

class EventQueue {
 public:
  // `capacity`: statements waiting, at most.
  explicit EventQueue(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // ---- producer side (proxy threads) ----
  // Appends `batch` and empties it (its buffer kept). False, and its statements dropped and
  // counted, when they do not all fit or the queue is closed; its session starts and ends go in
  // regardless (they are what keeps the reader's sessions right, and they are few).
  bool push(EventBatch& batch);
  // The same for one record, encoded straight into the queue: what a proxy session does as each
  // statement finishes. Its batch would be one more buffer per session to bring into the cache
  // per statement; the queue's is warm, every statement of every session writes to it.
  void start_session(std::shared_ptr<const SessionInfo> who);
  void end_session(std::uint64_t session_id);
  bool push(std::uint64_t session_id, const ExecutionEvent& event,
            EventBatch::SteadyClock::time_point finished, std::string_view bind_values = {});

  // ---- consumer side (the analyzer thread) ----
  // Swaps everything queued into `batch` (emptied first: the two buffers take turns); when
  // nothing is queued, sleeps `timeout` first. False once closed and drained.
  bool pop_all(EventBatch& batch, std::chrono::milliseconds timeout);

  void close();

  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  EventBatch queued_;
  bool closed_ = false;
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace pglens::analyzer
