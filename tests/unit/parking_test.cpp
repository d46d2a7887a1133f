// Parking: the wake-up the forwarding path uses instead of a timer cancelled as a signal.
#include "proxy/parking.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

namespace pglens::proxy {
namespace {

using namespace asio::experimental::awaitable_operators;

TEST(Parking, WakeBeforeWaitReturnsAtOnceAndIsConsumed) {
  asio::io_context io;
  Parking parking(io.get_executor());
  parking.wake();
  int woken = 0;
  error_code result = asio::error::fault;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        result = co_await parking.wait();
        ++woken;
      },
      asio::detached);
  io.run();
  EXPECT_EQ(woken, 1);
  EXPECT_FALSE(result);

  // The wake was used up: a second wait parks until the next one.
  io.restart();
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await parking.wait();
        ++woken;
      },
      asio::detached);
  io.poll();
  EXPECT_EQ(woken, 1);
  parking.wake();
  io.run();
  EXPECT_EQ(woken, 2);
}

TEST(Parking, WakeFromAnotherThreadResumesOnTheWaitersStrand) {
  asio::io_context io;
  auto strand = asio::make_strand(io);
  Parking parking(io.get_executor());
  std::atomic<bool> parked{false};
  bool on_strand = false;
  asio::co_spawn(
      strand,
      [&]() -> awaitable<void> {
        parked = true;
        co_await parking.wait();
        on_strand = strand.running_in_this_thread();
      },
      asio::detached);
  std::thread waker([&] {
    while (!parked) std::this_thread::yield();
    parking.wake();
  });
  io.run();
  waker.join();
  EXPECT_TRUE(on_strand);
}

TEST(Parking, CancellationEndsTheWaitWithOperationAborted) {
  asio::io_context io;
  Parking parking(io.get_executor());
  error_code result;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        asio::steady_timer timer(io, std::chrono::milliseconds(1));
        // The timer wins; || cancels the parked branch, which must come back.
        auto outcome = co_await (parking.wait() || timer.async_wait(use_nothrow));
        EXPECT_EQ(outcome.index(), 1u);
        co_return;
      },
      asio::detached);
  io.run();
  // A wake after the cancelled wait is kept for the next one, and harms nothing.
  parking.wake();
  io.restart();
  asio::co_spawn(
      io, [&]() -> awaitable<void> { result = co_await parking.wait(); }, asio::detached);
  io.run();
  EXPECT_FALSE(result);
}

TEST(Parking, ShutdownDestroysACoroutineStillParked) {
  auto flag = std::make_shared<int>(0);
  std::weak_ptr<int> watch = flag;
  {
    asio::io_context io;
    // As on the forwarding path, the parking lives in the parked coroutine's own frame: nothing
    // but the io_context's shutdown can free it.
    asio::co_spawn(
        io,
        [held = std::move(flag)]() -> awaitable<void> {
          Parking parking(co_await asio::this_coro::executor);
          co_await parking.wait();
          ++*held;
        },
        asio::detached);
    io.poll();
    EXPECT_FALSE(watch.expired());  // parked, holding its state
  }
  // The io_context's shutdown destroyed the parked coroutine and what it held, without
  // resuming it.
  EXPECT_TRUE(watch.expired());
}

}  // namespace
}  // namespace pglens::proxy
