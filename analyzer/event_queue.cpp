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

ExecutionEvent EventQueue::take_blank() {
  ExecutionEvent event;
  {
    std::lock_guard lock(mutex_);
    if (blank_.empty()) return event;
    event = std::move(blank_.back());
    blank_.pop_back();
  }
  event.clear_keeping_capacity();
  return event;
}

bool EventQueue::pop_all(std::vector<ExecutionEvent>& batch, std::chrono::milliseconds timeout) {
  batch.clear();
  std::unique_lock lock(mutex_);
  if (events_.empty() && !closed_) {
    // Sleep for the batch interval (close() wakes it early), then take what came.
    ready_.wait_for(lock, timeout, [this] { return closed_; });
  }
  if (closed_ && events_.empty()) return false;
  batch.swap(events_);
  return true;
}

void EventQueue::recycle(std::vector<ExecutionEvent>& batch) {
  // Enough for a 20 ms batch at 200k statements/s; a burst that filled the queue does not keep
  // its memory for good.
  constexpr std::size_t kMaxBlank = 4096;
  // A blank keeps its statement text for the producer to let go (see clear_keeping_capacity), but
  // not a large one: 4096 blanks of 1 MB INSERTs would hold 4 GB while traffic is quiet.
  constexpr std::size_t kMaxKeptText = 1024;
  if (batch.size() > kMaxBlank) batch.resize(kMaxBlank);
  for (auto& e : batch)
    if (e.sql && e.sql->size() > kMaxKeptText) e.sql.reset();
  if (batch.capacity() > 4 * kMaxBlank) batch.shrink_to_fit();
  {
    std::lock_guard lock(mutex_);
    // O(1) under the lock: the larger set stays for reuse. Producers usually use up the last
    // batch's events before the next one comes, so what is dropped here is little.
    if (blank_.size() < batch.size()) blank_.swap(batch);
  }
  batch.clear();
  // The vector becomes the queue again at the next pop_all: not at a burst's size for good.
  if (batch.capacity() > 4 * kMaxBlank) batch.shrink_to_fit();
}

void EventQueue::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  ready_.notify_all();
}

}  // namespace pglens::analyzer
