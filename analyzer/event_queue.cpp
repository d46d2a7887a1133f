#include "analyzer/event_queue.hpp"

namespace pglens::analyzer {

bool EventQueue::push(ExecutionEvent&& event) {
  // No wake-up here: a futex call and a context switch per statement would cost the proxy more
  // than the analysis itself. The consumer drains the queue in batches on its own timer.
  std::lock_guard lock(mutex_);
  if (closed_ || events_.size() >= capacity_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  events_.push_back(std::move(event));
  return true;
}

std::optional<std::deque<ExecutionEvent>> EventQueue::pop_all(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (events_.empty() && !closed_) {
    // Sleep for the batch interval (close() wakes it early), then take what came.
    ready_.wait_for(lock, timeout, [this] { return closed_; });
  }
  if (closed_ && events_.empty()) return std::nullopt;
  std::deque<ExecutionEvent> out;
  out.swap(events_);
  return out;
}

void EventQueue::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  ready_.notify_all();
}

}  // namespace pglens::analyzer
