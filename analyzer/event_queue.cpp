#include "analyzer/event_queue.hpp"

namespace pglens::analyzer {

bool EventQueue::push(EventBatch& batch) {
  if (batch.empty()) return true;
  // No wake-up here: a futex call and a context switch per statement would cost the proxy more
  // than the analysis itself. The consumer drains the queue in batches on its own timer.
  std::lock_guard lock(mutex_);
  if (closed_) {
    dropped_.fetch_add(batch.events(), std::memory_order_relaxed);
    batch.clear();
    return false;
  }
  bool fits = queued_.events() + batch.events() <= capacity_;
  if (!fits) dropped_.fetch_add(batch.events(), std::memory_order_relaxed);
  queued_.append(batch, fits);
  return fits;
}

void EventQueue::start_session(std::shared_ptr<const SessionInfo> who) {
  std::lock_guard lock(mutex_);
  if (!closed_) queued_.start_session(std::move(who));
}

void EventQueue::end_session(std::uint64_t session_id) {
  std::lock_guard lock(mutex_);
  if (!closed_) queued_.end_session(session_id);
}

bool EventQueue::push(std::uint64_t session_id, const ExecutionEvent& event,
                      EventBatch::SteadyClock::time_point finished, std::string_view bind_values) {
  std::lock_guard lock(mutex_);
  if (closed_ || queued_.events() >= capacity_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  queued_.add(session_id, event, finished, bind_values);
  return true;
}

bool EventQueue::pop_all(EventBatch& batch, std::chrono::milliseconds timeout) {
  batch.clear();
  std::unique_lock lock(mutex_);
  if (queued_.empty() && !closed_) {
    // Sleep for the batch interval (close() wakes it early), then take what came.
    ready_.wait_for(lock, timeout, [this] { return closed_; });
  }
  if (closed_ && queued_.empty()) return false;
  std::swap(batch, queued_);
  return true;
}

void EventQueue::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  ready_.notify_all();
}

}  // namespace pglens::analyzer
