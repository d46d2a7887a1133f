#include "analyzer/event_queue.hpp"

namespace pglens::analyzer {

bool EventQueue::push(ExecutionEvent&& event) {
  {
    std::lock_guard lock(mutex_);
    if (closed_ || events_.size() >= capacity_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    events_.push_back(std::move(event));
    if (events_.size() > 1) return true;  // the consumer was already told
  }
  ready_.notify_one();
  return true;
}

std::optional<std::vector<ExecutionEvent>> EventQueue::pop_all(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout, [this] { return closed_ || !events_.empty(); });
  if (closed_ && events_.empty()) return std::nullopt;
  std::vector<ExecutionEvent> out(std::make_move_iterator(events_.begin()),
                                  std::make_move_iterator(events_.end()));
  events_.clear();
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
