#include "proxy/parking.hpp"

#include <vector>

namespace pglens::proxy {

Parking::Parking(const asio::any_io_executor& executor)
    : Parking(executor,
              asio::use_service<ParkingService>(asio::query(executor, asio::execution::context))) {}

Parking::Parking(const asio::any_io_executor& executor, ParkingService& service)
    : executor_(executor), service_(service) {
  service_.add(this);
}

Parking::~Parking() {
  service_.remove(this);
}

awaitable<error_code> Parking::wait() {
  auto [ec] = co_await asio::async_initiate<decltype(use_nothrow), void(error_code)>(
      [this](auto handler) {
        auto executor = asio::get_associated_executor(handler, executor_);
        park(Handler(std::move(handler)), std::move(executor));
      },
      use_nothrow);
  // The cancellation handler points at this parking: it must not outlive the wait.
  (co_await asio::this_coro::cancellation_state).slot().clear();
  co_return ec;
}

void Parking::park(Handler handler, asio::any_io_executor executor) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  std::unique_lock lock(mutex_);
  if (woken_) {
    woken_ = false;
    lock.unlock();
    resume(std::move(handler), std::move(executor), {});
    return;
  }
  waiter_executor_ = std::move(executor);
  // Assigned on the waiter's own executor, before anyone can wake it.
  if (slot.is_connected()) slot.assign([this](asio::cancellation_type) { abort(); });
  // swap, not move-assignment: Boost 1.81's any_completion_handler move-assigns by wrapping
  // the source in another handler, and that recurses without end.
  handler_.swap(handler);
}

void Parking::wake() {
  Handler handler;
  asio::any_io_executor executor;
  {
    std::lock_guard lock(mutex_);
    if (!handler_) {
      woken_ = true;
      return;
    }
    handler.swap(handler_);
    executor = std::move(waiter_executor_);
  }
  resume(std::move(handler), std::move(executor), {});
}

void Parking::abort() {
  Handler handler;
  asio::any_io_executor executor;
  {
    std::lock_guard lock(mutex_);
    if (!handler_) return;
    handler.swap(handler_);
    executor = std::move(waiter_executor_);
  }
  resume(std::move(handler), std::move(executor), asio::error::operation_aborted);
}

void Parking::resume(Handler handler, asio::any_io_executor executor, error_code ec) {
  // Posted, never run inline: the waker may hold locks, and the waiter may live on a strand.
  asio::post(executor, [handler = std::move(handler), ec]() mutable { std::move(handler)(ec); });
}

void ParkingService::add(Parking* parking) {
  std::lock_guard lock(mutex_);
  parking->next_ = head_;
  if (head_) head_->prev_ = parking;
  head_ = parking;
}

void ParkingService::remove(Parking* parking) {
  std::lock_guard lock(mutex_);
  if (parking->prev_)
    parking->prev_->next_ = parking->next_;
  else
    head_ = parking->next_;
  if (parking->next_) parking->next_->prev_ = parking->prev_;
  parking->prev_ = parking->next_ = nullptr;
}

void ParkingService::shutdown() {
  std::vector<Parking::Handler> orphans;
  {
    std::lock_guard lock(mutex_);
    for (Parking* p = head_; p != nullptr; p = p->next_) {
      std::lock_guard parked(p->mutex_);
      if (p->handler_) {
        orphans.emplace_back().swap(p->handler_);
        p->waiter_executor_ = nullptr;
      }
    }
  }
  // Destroying a handler destroys its coroutine, and with it maybe parkings (which unregister).
  orphans.clear();
}

}  // namespace pglens::proxy
