#include "pool/pool_core.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <random>
#include <set>

namespace pglens::pool {

// gtest finds these by ADL, so they live in the namespace of the types.
inline void PrintTo(const Action& a, std::ostream* os) {
  static const char* const kinds[] = {"Connect", "Assign", "Ping", "Close", "FailWaiter"};
  static const char* const closes[] = {"Dirty",      "Recycle", "Idle",   "OverflowIdle",
                                       "PingFailed", "Shrink",  "Broken", "Lost"};
  static const char* const fails[] = {"Timeout", "ConnectFailed"};
  *os << kinds[static_cast<int>(a.kind)] << "(conn=" << a.conn << ", waiter=" << a.waiter;
  if (a.kind == Action::Kind::Close) *os << ", " << closes[static_cast<int>(a.close_reason)];
  if (a.kind == Action::Kind::FailWaiter) *os << ", " << fails[static_cast<int>(a.fail_reason)];
  *os << ")";
}

namespace {

using namespace std::chrono_literals;
using Kind = Action::Kind;

Action Connect(ConnId c) {
  return {.kind = Kind::Connect, .conn = c};
}
Action Assign(ConnId c, WaiterId w) {
  return {.kind = Kind::Assign, .conn = c, .waiter = w};
}
Action Ping(ConnId c, WaiterId w) {
  return {.kind = Kind::Ping, .conn = c, .waiter = w};
}
Action Close(ConnId c, CloseReason r) {
  return {.kind = Kind::Close, .conn = c, .close_reason = r};
}
Action Fail(WaiterId w, FailReason r) {
  return {.kind = Kind::FailWaiter, .waiter = w, .fail_reason = r};
}

std::vector<Action> of_kind(const Actions& actions, Kind kind) {
  std::vector<Action> out;
  for (const Action& a : actions) {
    if (a.kind == kind) out.push_back(a);
  }
  return out;
}

// Defaults, with the idle timeout off so only the tests about it see it.
PoolSettings sized(int pool_size, int max_overflow) {
  PoolSettings s;
  s.pool_size = pool_size;
  s.max_overflow = max_overflow;
  s.server_idle_timeout = Duration::zero();
  return s;
}

// A pool and a hand-driven clock.
struct Harness {
  explicit Harness(PoolSettings s) : pool(s) {}

  PoolCore pool;
  TimePoint now = TimePoint{} + 1h;

  void advance(Duration d) { now += d; }
  Actions acquire(WaiterId w) { return pool.acquire(w, now); }
  Actions cancel(WaiterId w) { return pool.cancel(w, now); }
  Actions release(ConnId c, bool reusable = true) { return pool.release(c, reusable, now); }
  Actions broken(ConnId c) { return pool.broken(c, now); }
  Actions connected(ConnId c) { return pool.connected(c, now); }
  Actions connect_failed(ConnId c, bool transient = false) {
    return pool.connect_failed(c, now, transient);
  }
  Actions ping_result(ConnId c, bool alive) { return pool.ping_result(c, alive, now); }
  Actions tick() { return pool.tick(now); }
  Actions reconfigure(PoolSettings s) { return pool.reconfigure(s, now); }

  // Waiter w asks with nothing idle: a connection is opened and handed over.
  ConnId serve_fresh(WaiterId w) {
    Actions a = acquire(w);
    EXPECT_EQ(a.size(), 1u);
    if (a.size() != 1 || a[0].kind != Kind::Connect) return 0;
    ConnId c = a[0].conn;
    EXPECT_EQ(connected(c), Actions{Assign(c, w)});
    return c;
  }
  // n connections, all back in the pool; returned oldest first.
  std::vector<ConnId> idle_connections(int n, WaiterId first_waiter = 1000) {
    std::vector<ConnId> cs;
    for (int i = 0; i < n; ++i) cs.push_back(serve_fresh(first_waiter + i));
    for (ConnId c : cs) EXPECT_EQ(release(c), Actions{});
    return cs;
  }
};

// ---- basics ----

TEST(PoolCore, FirstAcquireConnectsAndFreshConnectionIsNotPinged) {
  PoolSettings s = sized(2, 0);
  s.pool_pre_ping = true;
  s.server_check_delay = Duration::zero();  // would ping anything idle
  Harness h(s);
  EXPECT_EQ(h.acquire(1), Actions{Connect(1)});
  EXPECT_EQ(h.pool.state(1), ConnState::Connecting);
  EXPECT_EQ(h.pool.counts().waiting, 1);
  EXPECT_EQ(h.connected(1), Actions{Assign(1, 1)});
  EXPECT_EQ(h.pool.state(1), ConnState::Active);
  EXPECT_EQ(h.pool.counts().waiting, 0);
}

TEST(PoolCore, ReleasedConnectionIsReusedWithoutConnecting) {
  Harness h(sized(2, 0));
  ConnId c = h.serve_fresh(1);
  EXPECT_EQ(h.release(c), Actions{});
  EXPECT_EQ(h.pool.state(c), ConnState::Idle);
  EXPECT_EQ(h.acquire(2), Actions{Assign(c, 2)});
  PoolCounts n = h.pool.counts();
  EXPECT_EQ(n.active, 1);
  EXPECT_EQ(n.total(), 1);
}

TEST(PoolCore, MostRecentlyIdledIsHandedOutFirst) {
  Harness h(sized(3, 0));
  ConnId a = h.serve_fresh(1), b = h.serve_fresh(2), c = h.serve_fresh(3);
  h.release(b);
  h.advance(1s);
  h.release(a);
  h.advance(1s);
  h.release(c);
  EXPECT_EQ(h.acquire(4), Actions{Assign(c, 4)});
  EXPECT_EQ(h.acquire(5), Actions{Assign(a, 5)});
  EXPECT_EQ(h.acquire(6), Actions{Assign(b, 6)});
}

// ---- pool_size and max_overflow ----

TEST(PoolCore, PoolSizeBoundsConnectionsWithoutOverflow) {
  Harness h(sized(3, 0));
  std::vector<ConnId> connects;
  for (WaiterId w = 1; w <= 5; ++w) {
    for (const Action& a : h.acquire(w)) {
      ASSERT_EQ(a.kind, Kind::Connect);
      connects.push_back(a.conn);
    }
  }
  ASSERT_EQ(connects.size(), 3u);
  EXPECT_EQ(h.pool.counts().waiting, 5);
  for (std::size_t i = 0; i < connects.size(); ++i) {
    EXPECT_EQ(h.connected(connects[i]), Actions{Assign(connects[i], i + 1)});
  }
  EXPECT_EQ(h.pool.counts().waiting, 2);
  EXPECT_EQ(h.release(connects[1]), Actions{Assign(connects[1], 4)});
  EXPECT_EQ(h.release(connects[0]), Actions{Assign(connects[0], 5)});
}

TEST(PoolCore, OverflowOpensOnlyWhenAllAreBusy) {
  Harness h(sized(2, 2));
  std::vector<ConnId> cs = h.idle_connections(2);
  // Idle ones are used first.
  EXPECT_EQ(h.acquire(1), Actions{Assign(cs[1], 1)});
  EXPECT_EQ(h.acquire(2), Actions{Assign(cs[0], 2)});
  // All busy: overflow.
  Actions a = h.acquire(3);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, Kind::Connect);
  ConnId extra = a[0].conn;
  EXPECT_EQ(h.connected(extra), Actions{Assign(extra, 3)});
  EXPECT_TRUE(h.pool.is_overflow(extra));
  EXPECT_FALSE(h.pool.is_overflow(cs[0]));
  EXPECT_FALSE(h.pool.is_overflow(cs[1]));
  // The last overflow slot, then nothing more.
  EXPECT_EQ(of_kind(h.acquire(4), Kind::Connect).size(), 1u);
  EXPECT_EQ(h.acquire(5), Actions{});
  EXPECT_EQ(h.pool.counts().total(), 4);
}

TEST(PoolCore, NeverMoreThanPoolSizePlusMaxOverflowEvenWithAHundredWaiters) {
  Harness h(sized(3, 2));
  std::vector<ConnId> connects;
  for (WaiterId w = 1; w <= 100; ++w) {
    for (const Action& a : h.acquire(w)) {
      ASSERT_EQ(a.kind, Kind::Connect);
      connects.push_back(a.conn);
    }
    ASSERT_LE(h.pool.counts().total(), 5);
  }
  ASSERT_EQ(connects.size(), 5u);
  for (std::size_t i = 0; i < connects.size(); ++i) {
    EXPECT_EQ(h.connected(connects[i]), Actions{Assign(connects[i], i + 1)});
  }
  EXPECT_EQ(h.pool.counts().waiting, 95);
  // Every release serves the next waiter in arrival order; no new connection is ever opened.
  WaiterId next = 6;
  for (int round = 0; round < 19; ++round) {
    for (ConnId c : connects) {
      EXPECT_EQ(h.release(c), Actions{Assign(c, next)});
      ++next;
    }
  }
  EXPECT_EQ(next, 101u);
  EXPECT_EQ(h.pool.counts().waiting, 0);
  EXPECT_EQ(h.pool.counts().total(), 5);
}

TEST(PoolCore, OverflowIdleClosesAfterOverflowIdleTimeoutWhileSteadyOnesStay) {
  PoolSettings s = sized(2, 2);
  s.overflow_idle_timeout = 10s;
  Harness h(s);
  ConnId c1 = h.serve_fresh(1), c2 = h.serve_fresh(2), c3 = h.serve_fresh(3), c4 = h.serve_fresh(4);
  h.release(c3);  // idle longest
  h.advance(1s);
  h.release(c1);
  h.advance(1s);
  h.release(c4);
  h.release(c2);
  h.advance(8s);  // c3 idle 10s, c1 9s, c4 and c2 8s
  EXPECT_EQ(h.tick(), Actions{Close(c3, CloseReason::OverflowIdle)});
  h.advance(999ms);
  EXPECT_EQ(h.tick(), Actions{});
  h.advance(1ms);
  EXPECT_EQ(h.tick(), Actions{Close(c1, CloseReason::OverflowIdle)});
  // Back at pool_size: the rest stay however long they idle.
  h.advance(1h);
  EXPECT_EQ(h.tick(), Actions{});
  EXPECT_EQ(h.pool.counts().idle, 2);
  EXPECT_EQ(h.pool.state(c2), ConnState::Idle);
  EXPECT_EQ(h.pool.state(c4), ConnState::Idle);
}

TEST(PoolCore, OnlyIdleConnectionsAreClosedAsOverflow) {
  PoolSettings s = sized(1, 1);
  s.overflow_idle_timeout = 1s;
  Harness h(s);
  ConnId c1 = h.serve_fresh(1);
  ConnId c2 = h.serve_fresh(2);
  h.release(c1);
  h.advance(1h);
  // Two exist, more than pool_size: the idle one goes though it is the older; the busy one stays.
  EXPECT_EQ(h.tick(), Actions{Close(c1, CloseReason::OverflowIdle)});
  EXPECT_EQ(h.pool.state(c2), ConnState::Active);
  h.release(c2);
  h.advance(1h);
  EXPECT_EQ(h.tick(), Actions{});
}

// ---- min_pool_size ----

TEST(PoolCore, MinPoolSizeIsOpenedAheadByTickAndKeptThroughIdleTimeouts) {
  PoolSettings s = sized(4, 2);
  s.min_pool_size = 2;
  s.server_idle_timeout = 60s;
  s.overflow_idle_timeout = 10s;
  Harness h(s);
  EXPECT_EQ(h.tick(), (Actions{Connect(1), Connect(2)}));
  EXPECT_EQ(h.tick(), Actions{});  // connects in flight count
  EXPECT_EQ(h.connected(1), Actions{});
  EXPECT_EQ(h.connected(2), Actions{});
  EXPECT_EQ(h.pool.counts().idle, 2);
  // A third for a client, then all idle for long.
  EXPECT_EQ(h.acquire(1), Actions{Assign(2, 1)});
  EXPECT_EQ(h.acquire(2), Actions{Assign(1, 2)});
  ConnId c3 = h.serve_fresh(3);
  h.release(c3);
  h.advance(1s);
  h.release(1);
  h.release(2);
  h.advance(58s);
  EXPECT_EQ(h.tick(), Actions{});
  h.advance(1s);  // c3 idle 60s, the others 59s
  EXPECT_EQ(h.tick(), Actions{Close(c3, CloseReason::Idle)});
  h.advance(24h);
  EXPECT_EQ(h.tick(), Actions{});
  EXPECT_EQ(h.pool.counts().idle, 2);
}

TEST(PoolCore, MinPoolSizeIsRefilledAfterLosses) {
  PoolSettings s = sized(3, 0);
  s.min_pool_size = 2;
  Harness h(s);
  h.tick();
  h.connected(1);
  h.connected(2);
  h.broken(1);
  EXPECT_EQ(h.tick(), Actions{Connect(3)});
  EXPECT_EQ(h.connect_failed(3), Actions{});  // nobody waits: nobody told
  EXPECT_EQ(h.tick(), Actions{Connect(4)});
}

TEST(PoolCore, MinPoolSizeNeverExceedsTheLimit) {
  PoolSettings s = sized(1, 1);
  s.min_pool_size = 5;
  Harness h(s);
  EXPECT_EQ(h.tick(), (Actions{Connect(1), Connect(2)}));
  EXPECT_EQ(h.tick(), Actions{});
}

// ---- pool_timeout ----

TEST(PoolCore, WaiterFailsExactlyAtPoolTimeoutNotBefore) {
  PoolSettings s = sized(1, 0);
  s.pool_timeout = 5s;
  Harness h(s);
  ConnId c = h.serve_fresh(1);
  EXPECT_EQ(h.acquire(2), Actions{});
  h.advance(2s);
  EXPECT_EQ(h.acquire(3), Actions{});
  h.advance(3s - 1ns);
  EXPECT_EQ(h.tick(), Actions{});
  h.advance(1ns);
  EXPECT_EQ(h.tick(), Actions{Fail(2, FailReason::Timeout)});
  EXPECT_EQ(h.pool.counts().waiting, 1);
  h.advance(2s);
  EXPECT_EQ(h.tick(), Actions{Fail(3, FailReason::Timeout)});
  EXPECT_EQ(h.pool.counts().waiting, 0);
  // Nobody left to serve.
  EXPECT_EQ(h.release(c), Actions{});
}

TEST(PoolCore, WaiterServedBeforeItsTimeoutIsNotFailed) {
  PoolSettings s = sized(1, 0);
  s.pool_timeout = 5s;
  Harness h(s);
  ConnId c = h.serve_fresh(1);
  h.acquire(2);
  h.advance(5s - 1ns);
  EXPECT_EQ(h.release(c), Actions{Assign(c, 2)});
  h.advance(1h);
  EXPECT_EQ(h.tick(), Actions{});
}

TEST(PoolCore, WaiterWhosePingIsStillOutTimesOutAndTheConnectionStays) {
  PoolSettings s = sized(1, 0);
  s.pool_timeout = 5s;
  s.pool_pre_ping = true;
  s.server_check_delay = 1s;
  Harness h(s);
  ConnId c = h.idle_connections(1)[0];
  h.advance(1s);
  EXPECT_EQ(h.acquire(1), Actions{Ping(c, 1)});
  h.advance(5s);
  EXPECT_EQ(h.tick(), Actions{Fail(1, FailReason::Timeout)});
  EXPECT_EQ(h.ping_result(c, true), Actions{});
  EXPECT_EQ(h.pool.state(c), ConnState::Idle);
}

// ---- FIFO ----

TEST(PoolCore, WaitersAreServedInArrivalOrder) {
  Harness h(sized(1, 0));
  ConnId c = h.serve_fresh(1);
  for (WaiterId w = 2; w <= 5; ++w) EXPECT_EQ(h.acquire(w), Actions{});
  for (WaiterId w = 2; w <= 5; ++w) EXPECT_EQ(h.release(c), Actions{Assign(c, w)});
}

TEST(PoolCore, CancelRemovesAWaiterFromTheMiddle) {
  Harness h(sized(1, 0));
  ConnId c = h.serve_fresh(1);
  h.acquire(2);
  h.acquire(3);
  h.acquire(4);
  EXPECT_EQ(h.cancel(3), Actions{});
  EXPECT_EQ(h.pool.counts().waiting, 2);
  EXPECT_EQ(h.release(c), Actions{Assign(c, 2)});
  EXPECT_EQ(h.release(c), Actions{Assign(c, 4)});
  EXPECT_EQ(h.release(c), Actions{});
  EXPECT_EQ(h.cancel(3), Actions{});  // unknown by now: harmless
}

TEST(PoolCore, CancelledWaiterDoesNotKeepAConnectAlive) {
  Harness h(sized(2, 0));
  EXPECT_EQ(h.acquire(1), Actions{Connect(1)});
  EXPECT_EQ(h.cancel(1), Actions{});
  EXPECT_EQ(h.connected(1), Actions{});
  EXPECT_EQ(h.pool.state(1), ConnState::Idle);
}

// ---- pool_recycle ----

TEST(PoolCore, RecycleClosesAnAgedConnectionOnRelease) {
  PoolSettings s = sized(2, 0);
  s.pool_recycle = 60s;
  Harness h(s);
  ConnId c = h.serve_fresh(1);
  h.advance(59s);
  EXPECT_EQ(h.release(c), Actions{});
  EXPECT_EQ(h.acquire(2), Actions{Assign(c, 2)});
  h.advance(1s);
  EXPECT_EQ(h.release(c), Actions{Close(c, CloseReason::Recycle)});
}

TEST(PoolCore, RecycleClosesAnAgedIdleConnectionOnTick) {
  PoolSettings s = sized(2, 0);
  s.pool_recycle = 60s;
  Harness h(s);
  ConnId c = h.idle_connections(1)[0];
  h.advance(60s - 1ns);
  EXPECT_EQ(h.tick(), Actions{});
  h.advance(1ns);
  EXPECT_EQ(h.tick(), Actions{Close(c, CloseReason::Recycle)});
}

TEST(PoolCore, RecycleNeverHandsOutAnAgedConnection) {
  PoolSettings s = sized(2, 0);
  s.pool_recycle = 60s;
  Harness h(s);
  std::vector<ConnId> cs = h.idle_connections(2);
  h.advance(60s);
  // No tick in between: acquire itself refuses them.
  EXPECT_EQ(h.acquire(1), (Actions{Close(cs[1], CloseReason::Recycle),
                                   Close(cs[0], CloseReason::Recycle), Connect(3)}));
}

TEST(PoolCore, RecycleWithMinPoolSizeReplacesTheAgedConnection) {
  PoolSettings s = sized(2, 0);
  s.min_pool_size = 1;
  s.pool_recycle = 60s;
  Harness h(s);
  EXPECT_EQ(h.tick(), Actions{Connect(1)});
  h.connected(1);
  h.advance(60s);
  EXPECT_EQ(h.tick(), (Actions{Close(1, CloseReason::Recycle), Connect(2)}));
}

TEST(PoolCore, ConnectionThatAgesDuringItsPingIsClosedNotHandedOut) {
  PoolSettings s = sized(2, 0);
  s.pool_recycle = 60s;
  s.pool_pre_ping = true;
  s.server_check_delay = 10s;
  Harness h(s);
  ConnId c = h.idle_connections(1)[0];
  h.advance(59s);
  EXPECT_EQ(h.acquire(1), Actions{Ping(c, 1)});
  h.advance(1s);
  EXPECT_EQ(h.ping_result(c, true), (Actions{Close(c, CloseReason::Recycle), Connect(2)}));
  EXPECT_EQ(h.connected(2), Actions{Assign(2, 1)});
}

// ---- pool_pre_ping ----

TEST(PoolCore, PrePingOnlyWhenIdleAtLeastServerCheckDelay) {
  PoolSettings s = sized(2, 0);
  s.pool_pre_ping = true;
  s.server_check_delay = 30s;
  Harness h(s);
  ConnId c = h.idle_connections(1)[0];
  h.advance(30s - 1ns);
  EXPECT_EQ(h.acquire(1), Actions{Assign(c, 1)});
  h.release(c);
  h.advance(30s);
  EXPECT_EQ(h.acquire(2), Actions{Ping(c, 2)});
  EXPECT_EQ(h.pool.state(c), ConnState::Pinging);
  EXPECT_EQ(h.pool.counts().pinging, 1);
  EXPECT_EQ(h.pool.counts().waiting, 0);
}

TEST(PoolCore, PrePingAliveAssignsToTheWaiter) {
  PoolSettings s = sized(2, 0);
  s.pool_pre_ping = true;
  s.server_check_delay = 1s;
  Harness h(s);
  ConnId c = h.idle_connections(1)[0];
  h.advance(1s);
  EXPECT_EQ(h.acquire(1), Actions{Ping(c, 1)});
  EXPECT_EQ(h.ping_result(c, true), Actions{Assign(c, 1)});
  EXPECT_EQ(h.pool.state(c), ConnState::Active);
}

TEST(PoolCore, PrePingDeadClosesItAndTakesAnotherForTheSameWaiter) {
  PoolSettings s = sized(3, 0);
  s.pool_pre_ping = true;
  s.server_check_delay = 1s;
  Harness h(s);
  std::vector<ConnId> cs = h.idle_connections(2);
  h.advance(1s);
  EXPECT_EQ(h.acquire(1), Actions{Ping(cs[1], 1)});
  EXPECT_EQ(h.ping_result(cs[1], false),
            (Actions{Close(cs[1], CloseReason::PingFailed), Ping(cs[0], 1)}));
  EXPECT_EQ(h.ping_result(cs[0], false),
            (Actions{Close(cs[0], CloseReason::PingFailed), Connect(3)}));
  EXPECT_EQ(h.connected(3), Actions{Assign(3, 1)});
}

TEST(PoolCore, PrePingDeadKeepsTheWaitersPlace) {
  PoolSettings s = sized(1, 0);
  s.pool_pre_ping = true;
  s.server_check_delay = 1s;
  Harness h(s);
  ConnId c = h.idle_connections(1)[0];
  h.advance(1s);
  EXPECT_EQ(h.acquire(1), Actions{Ping(c, 1)});
  EXPECT_EQ(h.acquire(2), Actions{});
  EXPECT_EQ(h.acquire(3), Actions{});
  EXPECT_EQ(h.ping_result(c, false), (Actions{Close(c, CloseReason::PingFailed), Connect(2)}));
  EXPECT_EQ(h.connected(2), Actions{Assign(2, 1)});
  EXPECT_EQ(h.release(2), Actions{Assign(2, 2)});
  EXPECT_EQ(h.release(2), Actions{Assign(2, 3)});
}

TEST(PoolCore, PrePingWaitersReturnInArrivalOrderWhateverOrderPingsFail) {
  PoolSettings s = sized(2, 0);
  s.pool_pre_ping = true;
  s.server_check_delay = 1s;
  Harness h(s);
  std::vector<ConnId> cs = h.idle_connections(2);
  h.advance(1s);
  EXPECT_EQ(h.acquire(1), Actions{Ping(cs[1], 1)});
  EXPECT_EQ(h.acquire(2), Actions{Ping(cs[0], 2)});
  EXPECT_EQ(h.acquire(3), Actions{});
  // 1 goes back first, then 2 behind it (not ahead of it), both ahead of 3.
  EXPECT_EQ(h.ping_result(cs[1], false),
            (Actions{Close(cs[1], CloseReason::PingFailed), Connect(3)}));
  EXPECT_EQ(h.ping_result(cs[0], false),
            (Actions{Close(cs[0], CloseReason::PingFailed), Connect(4)}));
  EXPECT_EQ(h.pool.counts().waiting, 3);
  EXPECT_EQ(h.connected(4), Actions{Assign(4, 1)});
  EXPECT_EQ(h.connected(3), Actions{Assign(3, 2)});
  EXPECT_EQ(h.release(3), Actions{Assign(3, 3)});
}

TEST(PoolCore, PrePingForACancelledWaiterReturnsTheConnectionToThePool) {
  PoolSettings s = sized(2, 0);
  s.pool_pre_ping = true;
  s.server_check_delay = 1s;
  Harness h(s);
  ConnId c = h.idle_connections(1)[0];
  h.advance(1s);
  EXPECT_EQ(h.acquire(1), Actions{Ping(c, 1)});
  EXPECT_EQ(h.cancel(1), Actions{});
  EXPECT_EQ(h.ping_result(c, true), Actions{});
  EXPECT_EQ(h.pool.state(c), ConnState::Idle);
  // Just checked: not pinged again right away.
  EXPECT_EQ(h.acquire(2), Actions{Assign(c, 2)});
}

TEST(PoolCore, PrePingOffNeverPings) {
  PoolSettings s = sized(2, 0);
  s.pool_pre_ping = false;
  s.server_check_delay = Duration::zero();
  Harness h(s);
  ConnId c = h.idle_connections(1)[0];
  h.advance(24h);
  EXPECT_EQ(h.acquire(1), Actions{Assign(c, 1)});
}

TEST(PoolCore, BrokenWhilePingingKeepsTheWaitersPlace) {
  PoolSettings s = sized(1, 0);
  s.pool_pre_ping = true;
  s.server_check_delay = 1s;
  Harness h(s);
  ConnId c = h.idle_connections(1)[0];
  h.advance(1s);
  h.acquire(1);
  h.acquire(2);
  EXPECT_EQ(h.broken(c), (Actions{Close(c, CloseReason::Broken), Connect(2)}));
  EXPECT_EQ(h.connected(2), Actions{Assign(2, 1)});
}

// ---- server_idle_timeout ----

TEST(PoolCore, ServerIdleTimeoutClosesLongIdleConnections) {
  PoolSettings s = sized(3, 0);
  s.server_idle_timeout = 600s;
  Harness h(s);
  std::vector<ConnId> cs = h.idle_connections(2);
  h.advance(100s);
  EXPECT_EQ(h.acquire(1), Actions{Assign(cs[1], 1)});
  h.release(cs[1]);
  h.advance(500s - 1ns);
  EXPECT_EQ(h.tick(), Actions{});
  h.advance(1ns);
  EXPECT_EQ(h.tick(), Actions{Close(cs[0], CloseReason::Idle)});
  h.advance(100s);
  EXPECT_EQ(h.tick(), Actions{Close(cs[1], CloseReason::Idle)});
  EXPECT_EQ(h.pool.counts().total(), 0);
}

TEST(PoolCore, ServerIdleTimeoutZeroIsOff) {
  PoolSettings s = sized(3, 0);
  s.server_idle_timeout = Duration::zero();
  Harness h(s);
  h.idle_connections(2);
  h.advance(24h * 365);
  EXPECT_EQ(h.tick(), Actions{});
}

// ---- failures ----

TEST(PoolCore, ConnectFailedFailsTheOldestWaiter) {
  Harness h(sized(3, 0));
  EXPECT_EQ(h.acquire(1), Actions{Connect(1)});
  EXPECT_EQ(h.acquire(2), Actions{Connect(2)});
  EXPECT_EQ(h.acquire(3), Actions{Connect(3)});
  // Whichever connect fails, the oldest waiter hears; the others still have one in flight.
  EXPECT_EQ(h.connect_failed(2), Actions{Fail(1, FailReason::ConnectFailed)});
  EXPECT_EQ(h.connected(3), Actions{Assign(3, 2)});
  EXPECT_EQ(h.connect_failed(1), Actions{Fail(3, FailReason::ConnectFailed)});
  EXPECT_EQ(h.pool.counts().total(), 1);
}

TEST(PoolCore, ServerDownGivesEveryWaiterAnErrorNotAHang) {
  Harness h(sized(1, 0));
  EXPECT_EQ(h.acquire(1), Actions{Connect(1)});
  h.acquire(2);
  h.acquire(3);
  EXPECT_EQ(h.connect_failed(1), (Actions{Fail(1, FailReason::ConnectFailed), Connect(2)}));
  EXPECT_EQ(h.connect_failed(2), (Actions{Fail(2, FailReason::ConnectFailed), Connect(3)}));
  EXPECT_EQ(h.connect_failed(3), Actions{Fail(3, FailReason::ConnectFailed)});
  EXPECT_EQ(h.pool.counts().total(), 0);
  EXPECT_EQ(h.pool.counts().waiting, 0);
}

// Postgres restarting (connection refused, "the database system is starting up"): waiters wait
// for it, connects are retried with a growing pause, and once one works everyone is served.
TEST(PoolCore, TransientConnectFailuresKeepWaitersWaitingAndRetry) {
  PoolSettings s = sized(2, 0);
  s.pool_timeout = std::chrono::seconds(5);
  Harness h(s);
  EXPECT_EQ(h.acquire(1), Actions{Connect(1)});
  EXPECT_EQ(h.acquire(2), Actions{Connect(2)});
  EXPECT_EQ(h.connect_failed(1, true), Actions{});  // nobody is failed
  EXPECT_EQ(h.connect_failed(2, true), Actions{});
  EXPECT_EQ(h.pool.counts().waiting, 2);
  EXPECT_EQ(h.pool.connects_paused_until(h.now), h.now + 200ms);  // 100 ms, then doubled
  h.advance(100ms);
  EXPECT_EQ(h.tick(), Actions{});  // still paused
  h.advance(100ms);
  EXPECT_EQ(h.tick(), (Actions{Connect(3), Connect(4)}));
  EXPECT_EQ(h.connected(3), Actions{Assign(3, 1)});
  EXPECT_EQ(h.pool.connects_paused_until(h.now), std::nullopt);  // the server is back
  EXPECT_EQ(h.connected(4), Actions{Assign(4, 2)});
}

TEST(PoolCore, PauseBetweenTransientRetriesGrowsToASecond) {
  Harness h(sized(1, 0));
  h.acquire(1);
  ConnId c = 1;
  for (auto pause : {100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms}) {
    EXPECT_EQ(h.connect_failed(c, true), Actions{});
    EXPECT_EQ(h.pool.connects_paused_until(h.now), h.now + pause);
    h.advance(pause);
    auto a = h.tick();
    ASSERT_EQ(a.size(), 1u);
    c = a[0].conn;
  }
}

TEST(PoolCore, WaitersOfAnUnreachableServerTimeOutAtPoolTimeout) {
  PoolSettings s = sized(1, 0);
  s.pool_timeout = std::chrono::seconds(2);
  Harness h(s);
  h.acquire(1);
  ConnId c = 1;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(h.connect_failed(c, true), Actions{});
    h.advance(500ms);
    auto a = h.tick();
    if (i < 3) c = a.at(0).conn;
  }
  EXPECT_EQ(h.pool.counts().waiting, 0);
}

TEST(PoolCore, PermanentConnectFailureStillFailsTheOldestWaiterAtOnce) {
  Harness h(sized(1, 0));
  h.acquire(1);
  EXPECT_EQ(h.connect_failed(1, false), Actions{Fail(1, FailReason::ConnectFailed)});
  EXPECT_EQ(h.pool.connects_paused_until(h.now), std::nullopt);
}

TEST(PoolCore, DirtyReleaseClosesTheConnection) {
  Harness h(sized(1, 0));
  ConnId c = h.serve_fresh(1);
  h.acquire(2);
  EXPECT_EQ(h.release(c, false), (Actions{Close(c, CloseReason::Dirty), Connect(2)}));
  EXPECT_EQ(h.pool.state(c), std::nullopt);
}

TEST(PoolCore, BrokenConnectionIsForgottenAndAWaiterGetsANewOne) {
  Harness h(sized(1, 0));
  ConnId c = h.serve_fresh(1);
  h.acquire(2);
  EXPECT_EQ(h.broken(c), (Actions{Close(c, CloseReason::Broken), Connect(2)}));
  EXPECT_EQ(h.pool.state(c), std::nullopt);
  EXPECT_EQ(h.release(c), Actions{});  // late report about a forgotten connection
}

TEST(PoolCore, BrokenWhileConnectingIsAConnectFailure) {
  Harness h(sized(1, 0));
  h.acquire(1);
  EXPECT_EQ(h.broken(1), Actions{Fail(1, FailReason::ConnectFailed)});
}

TEST(PoolCore, ReportsAboutUnknownOrMismatchedConnectionsAreIgnored) {
  Harness h(sized(1, 0));
  EXPECT_EQ(h.connected(7), Actions{});
  EXPECT_EQ(h.connect_failed(7), Actions{});
  EXPECT_EQ(h.ping_result(7, true), Actions{});
  EXPECT_EQ(h.broken(7), Actions{});
  EXPECT_EQ(h.release(7), Actions{});
  ConnId c = h.idle_connections(1)[0];
  EXPECT_EQ(h.release(c), Actions{});  // already idle
  EXPECT_EQ(h.connected(c), Actions{});
  EXPECT_EQ(h.ping_result(c, false), Actions{});
  EXPECT_EQ(h.pool.state(c), ConnState::Idle);
}

TEST(PoolCore, ReleaseOfAConnectionBeingPingedIsIgnored) {
  PoolSettings s = sized(1, 0);
  s.pool_pre_ping = true;
  s.server_check_delay = 1s;
  Harness h(s);
  ConnId c = h.idle_connections(1)[0];
  h.advance(1s);
  EXPECT_EQ(h.acquire(1), Actions{Ping(c, 1)});
  EXPECT_EQ(h.release(c), Actions{});
  EXPECT_EQ(h.release(c, false), Actions{});
  EXPECT_EQ(h.pool.state(c), ConnState::Pinging);
  EXPECT_EQ(h.ping_result(c, true), Actions{Assign(c, 1)});
}

// ---- reconfigure ----

TEST(PoolCore, ReconfigureGrowingServesWaiters) {
  Harness h(sized(1, 0));
  h.serve_fresh(1);
  h.acquire(2);
  h.acquire(3);
  EXPECT_EQ(h.reconfigure(sized(2, 1)), (Actions{Connect(2), Connect(3)}));
  EXPECT_EQ(h.pool.settings().pool_size, 2);
}

TEST(PoolCore, ReconfigureShrinkingClosesIdleNowAndBusyOnRelease) {
  Harness h(sized(4, 0));
  ConnId c1 = h.serve_fresh(1), c2 = h.serve_fresh(2), c3 = h.serve_fresh(3), c4 = h.serve_fresh(4);
  h.release(c2);
  h.advance(1s);
  h.release(c1);
  EXPECT_EQ(h.reconfigure(sized(1, 0)),
            (Actions{Close(c2, CloseReason::Shrink), Close(c1, CloseReason::Shrink)}));
  h.acquire(5);  // waits: still over the limit
  EXPECT_EQ(h.pool.counts().total(), 2);
  EXPECT_EQ(h.release(c3), Actions{Close(c3, CloseReason::Shrink)});
  EXPECT_EQ(h.release(c4), Actions{Assign(c4, 5)});
}

TEST(PoolCore, ReconfigureShrinkingClosesOnlyTheSurplusLongestIdleFirst) {
  Harness h(sized(4, 0));
  std::vector<ConnId> cs = h.idle_connections(4);
  h.advance(1s);
  EXPECT_EQ(h.acquire(1), Actions{Assign(cs[3], 1)});
  h.release(cs[3]);  // now the most recently used
  EXPECT_EQ(h.reconfigure(sized(2, 0)),
            (Actions{Close(cs[0], CloseReason::Shrink), Close(cs[1], CloseReason::Shrink)}));
  EXPECT_EQ(h.pool.state(cs[2]), ConnState::Idle);
  EXPECT_EQ(h.pool.state(cs[3]), ConnState::Idle);
  EXPECT_EQ(h.reconfigure(sized(2, 0)), Actions{});
}

TEST(PoolCore, ReconfigureShrinkingClosesAConnectionThatLandsAboveTheLimit) {
  Harness h(sized(2, 0));
  h.serve_fresh(1);
  EXPECT_EQ(h.acquire(2), Actions{Connect(2)});
  EXPECT_EQ(h.reconfigure(sized(1, 0)), Actions{});
  EXPECT_EQ(h.connected(2), Actions{Close(2, CloseReason::Shrink)});
  EXPECT_EQ(h.pool.counts().waiting, 1);
}

// ---- limits of the knobs ----

TEST(PoolCore, PoolSizeZeroNeverConnectsAndWaitersTimeOut) {
  PoolSettings s = sized(0, 0);
  s.min_pool_size = 3;
  s.pool_timeout = 1s;
  Harness h(s);
  EXPECT_EQ(h.acquire(1), Actions{});
  EXPECT_EQ(h.tick(), Actions{});
  h.advance(1s);
  EXPECT_EQ(h.tick(), Actions{Fail(1, FailReason::Timeout)});
}

TEST(PoolCore, PoolSizeZeroWithOverflowServesFromOverflowOnly) {
  PoolSettings s = sized(0, 1);
  s.overflow_idle_timeout = 5s;
  Harness h(s);
  ConnId c = h.serve_fresh(1);
  EXPECT_TRUE(h.pool.is_overflow(c));
  h.release(c);
  h.advance(5s);
  EXPECT_EQ(h.tick(), Actions{Close(c, CloseReason::OverflowIdle)});
}

TEST(PoolCore, IsOverflowMeansBeyondTheOldestPoolSizeConnections) {
  Harness h(sized(2, 2));
  ConnId c1 = h.serve_fresh(1), c2 = h.serve_fresh(2), c3 = h.serve_fresh(3);
  EXPECT_FALSE(h.pool.is_overflow(c1));
  EXPECT_FALSE(h.pool.is_overflow(c2));
  EXPECT_TRUE(h.pool.is_overflow(c3));
  h.broken(c1);
  EXPECT_FALSE(h.pool.is_overflow(c3));  // back within pool_size
  EXPECT_FALSE(h.pool.is_overflow(99));
}

// ---- random operations against a model ----

// Replays the actions on its own picture of the pool and checks each one is allowed.
class Model {
 public:
  explicit Model(PoolSettings s) : s_(s) {}

  struct MWaiter {
    WaiterId id;
    TimePoint since;
    std::uint64_t seq;
  };
  struct MConn {
    ConnState state;
    TimePoint created;
    std::optional<MWaiter> ping_for;
  };

  PoolSettings s_;
  std::map<ConnId, MConn> conns;
  std::vector<MWaiter> queue;   // by seq
  std::set<WaiterId> finished;  // assigned, failed or cancelled
  std::uint64_t next_seq = 1;
  ConnId max_conn = 0;

  long long limit() const {
    return std::max(0LL, (long long)s_.pool_size) + std::max(0LL, (long long)s_.max_overflow);
  }
  long long total() const { return (long long)conns.size(); }
  bool expired(const MConn& c, TimePoint now) const {
    return s_.pool_recycle > Duration::zero() && now - c.created >= s_.pool_recycle;
  }
  void requeue(const MWaiter& w) {
    auto pos = std::ranges::upper_bound(queue, w.seq, {}, &MWaiter::seq);
    queue.insert(pos, w);
  }
  int count(ConnState st) const {
    return (int)std::ranges::count_if(conns, [&](auto& kv) { return kv.second.state == st; });
  }

  // What the last input was, for the checks that depend on it.
  enum class Input {
    Acquire,
    Cancel,
    Release,
    Broken,
    Connected,
    ConnectFailed,
    Ping,
    Tick,
    Reconf,
    Wrong
  };

  void apply(Input in, ConnId conn, const Actions& actions, TimePoint now) {
    for (const Action& a : actions) {
      SCOPED_TRACE(::testing::PrintToString(a));
      switch (a.kind) {
        case Kind::Connect: {
          ASSERT_LT(total(), limit()) << "connect beyond the limit";
          ASSERT_GT(a.conn, max_conn) << "connection id reused";
          max_conn = a.conn;
          conns[a.conn] = MConn{ConnState::Connecting, now, std::nullopt};
          break;
        }
        case Kind::Assign: {
          auto it = conns.find(a.conn);
          ASSERT_NE(it, conns.end());
          MConn& c = it->second;
          ASSERT_EQ(c.state, ConnState::Idle) << "assigned while not idle";
          ASSERT_FALSE(finished.contains(a.waiter)) << "waiter served twice";
          bool verified = c.ping_for.has_value();
          if (verified) {
            ASSERT_EQ(a.waiter, c.ping_for->id) << "pinged for one, given to another";
            c.ping_for.reset();
          } else {
            ASSERT_FALSE(queue.empty());
            ASSERT_EQ(a.waiter, queue.front().id) << "not the longest-waiting waiter";
            queue.erase(queue.begin());
          }
          if (!(in == Input::Connected && a.conn == conn)) {
            ASSERT_FALSE(expired(c, now)) << "aged connection handed out";
          }
          // Above a lowered limit only a connection already pinged for its waiter is given.
          if (!verified) {
            ASSERT_LE(total(), limit()) << "handed out above the limit";
          }
          c.state = ConnState::Active;
          finished.insert(a.waiter);
          break;
        }
        case Kind::Ping: {
          ASSERT_TRUE(s_.pool_pre_ping);
          auto it = conns.find(a.conn);
          ASSERT_NE(it, conns.end());
          ASSERT_EQ(it->second.state, ConnState::Idle);
          ASSERT_FALSE(in == Input::Connected && a.conn == conn) << "fresh connection pinged";
          ASSERT_FALSE(queue.empty());
          ASSERT_EQ(a.waiter, queue.front().id);
          it->second.state = ConnState::Pinging;
          it->second.ping_for = queue.front();
          queue.erase(queue.begin());
          break;
        }
        case Kind::Close: {
          auto it = conns.find(a.conn);
          ASSERT_NE(it, conns.end());
          // Each reason only when its condition holds (total counts this one still).
          switch (a.close_reason) {
            case CloseReason::Recycle:
              ASSERT_TRUE(expired(it->second, now));
              break;
            case CloseReason::Shrink:
              ASSERT_GT(total(), limit());
              break;
            case CloseReason::OverflowIdle:
              ASSERT_EQ(in, Input::Tick);
              ASSERT_GT(total(), std::max(s_.pool_size, s_.min_pool_size));
              break;
            case CloseReason::Idle:
              ASSERT_EQ(in, Input::Tick);
              ASSERT_GT(total(), s_.min_pool_size);
              break;
            case CloseReason::Dirty:
              ASSERT_EQ(in, Input::Release);
              break;
            case CloseReason::PingFailed:
              ASSERT_EQ(in, Input::Ping);
              break;
            case CloseReason::Broken:
              ASSERT_EQ(in, Input::Broken);
              break;
            case CloseReason::Lost:  // the proxy reports these; this model never does
              FAIL() << "Lost without a report of it";
              break;
          }
          if (it->second.ping_for) requeue(*it->second.ping_for);
          conns.erase(it);
          break;
        }
        case Kind::FailWaiter: {
          ASSERT_FALSE(finished.contains(a.waiter));
          if (a.fail_reason == FailReason::ConnectFailed) {
            ASSERT_EQ(in, Input::ConnectFailed);
            ASSERT_FALSE(queue.empty());
            ASSERT_EQ(a.waiter, queue.front().id) << "not the oldest waiter";
            queue.erase(queue.begin());
          } else {
            ASSERT_EQ(in, Input::Tick);
            auto q = std::ranges::find(queue, a.waiter, &MWaiter::id);
            if (q != queue.end()) {
              ASSERT_GE(now - q->since, s_.pool_timeout) << "failed before its timeout";
              queue.erase(q);
            } else {
              bool found = false;
              for (auto& [id, c] : conns) {
                if (c.ping_for && c.ping_for->id == a.waiter) {
                  ASSERT_GE(now - c.ping_for->since, s_.pool_timeout);
                  c.ping_for.reset();
                  found = true;
                }
              }
              ASSERT_TRUE(found);
            }
          }
          finished.insert(a.waiter);
          break;
        }
      }
    }
  }

  void check(const PoolCore& pool, TimePoint now, Input in, long long total_before) const {
    PoolCounts n = pool.counts();
    ASSERT_EQ(n.connecting, count(ConnState::Connecting));
    ASSERT_EQ(n.idle, count(ConnState::Idle));
    ASSERT_EQ(n.pinging, count(ConnState::Pinging));
    ASSERT_EQ(n.active, count(ConnState::Active));
    ASSERT_EQ(n.waiting, (int)queue.size());
    // Only a lowered limit leaves more than it, and then the count only falls.
    ASSERT_LE(n.total(), std::max(limit(), total_before));
    for (const auto& [id, c] : conns) {
      ASSERT_EQ(pool.state(id), c.state);
      if (c.state != ConnState::Pinging) {
        ASSERT_FALSE(c.ping_for) << "a verified waiter lost";
      }
    }
    // Nothing is left undone: idle connections serve waiters, and connects cover the rest.
    if (n.waiting > 0) {
      ASSERT_EQ(n.idle, 0);
      ASSERT_TRUE(n.total() >= limit() || n.connecting >= n.waiting);
    }
    if (in == Input::Tick) {
      for (const MWaiter& w : queue) ASSERT_LT(now - w.since, s_.pool_timeout);
      for (const auto& [id, c] : conns) {
        if (c.state == ConnState::Idle) {
          ASSERT_FALSE(expired(c, now));
        }
      }
      long long floor = std::min<long long>(s_.min_pool_size, limit());
      ASSERT_GE(n.total(), floor);
    }
  }
};

template <class T>
T pick(std::mt19937_64& rng, const std::vector<T>& v) {
  return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)];
}

PoolSettings random_settings(std::mt19937_64& rng) {
  auto num = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  PoolSettings s;
  s.pool_size = num(0, 5);
  s.max_overflow = num(0, 3);
  s.min_pool_size = num(0, 4);
  s.pool_timeout = std::chrono::seconds(num(0, 8));
  s.pool_recycle = num(0, 1) ? std::chrono::seconds(num(1, 30)) : Duration::zero();
  s.pool_pre_ping = num(0, 1);
  s.server_check_delay = std::chrono::seconds(num(0, 5));
  s.overflow_idle_timeout = std::chrono::seconds(num(0, 10));
  s.server_idle_timeout = num(0, 1) ? std::chrono::seconds(num(1, 20)) : Duration::zero();
  return s;
}

void run_random(std::uint64_t seed, int steps) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto num = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  PoolSettings s = random_settings(rng);
  PoolCore pool(s);
  Model model(s);
  TimePoint now = TimePoint{} + 1h;
  WaiterId next_waiter = 1;
  using Input = Model::Input;

  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    // Mostly no time passes (same-instant races); now and then a step or a long lull.
    if (num(0, 3) == 0) now += std::chrono::milliseconds(num(0, 3000));
    if (num(0, 99) == 0) now += std::chrono::seconds(num(0, 40));

    std::vector<ConnId> by_state[4];
    for (const auto& [id, c] : model.conns) by_state[static_cast<int>(c.state)].push_back(id);
    const auto& connecting = by_state[static_cast<int>(ConnState::Connecting)];
    const auto& pinging = by_state[static_cast<int>(ConnState::Pinging)];
    const auto& active = by_state[static_cast<int>(ConnState::Active)];
    std::vector<ConnId> live;
    for (const auto& [id, c] : model.conns) {
      if (c.state != ConnState::Connecting) live.push_back(id);
    }

    Input in;
    ConnId conn = 0;
    Actions out;
    long long total_before = pool.counts().total();
    // Re-rolled until it applies, so every kind keeps its share.
    int op;
    do {
      op = num(0, 99);
    } while ((op >= 28 && op < 50 && active.empty()) || (op >= 50 && op < 54 && live.empty()) ||
             (op >= 54 && op < 73 && connecting.empty()) ||
             (op >= 73 && op < 85 && pinging.empty()));
    if (op < 22) {
      in = Input::Acquire;
      model.queue.push_back({next_waiter, now, model.next_seq++});
      out = pool.acquire(next_waiter++, now);
    } else if (op < 28) {
      in = Input::Cancel;
      std::vector<WaiterId> cands;
      for (const auto& w : model.queue) cands.push_back(w.id);
      for (const auto& [id, c] : model.conns) {
        if (c.ping_for) cands.push_back(c.ping_for->id);
      }
      WaiterId w =
          cands.empty() || num(0, 9) == 0 ? WaiterId(num(1, (int)next_waiter)) : pick(rng, cands);
      if (!model.finished.contains(w)) {
        std::erase_if(model.queue, [&](const auto& q) { return q.id == w; });
        for (auto& [id, c] : model.conns) {
          if (c.ping_for && c.ping_for->id == w) c.ping_for.reset();
        }
        if (w < next_waiter) model.finished.insert(w);
      }
      out = pool.cancel(w, now);
    } else if (op < 50) {
      in = Input::Release;
      conn = pick(rng, active);
      bool reusable = num(0, 9) != 0;
      model.conns[conn].state = ConnState::Idle;
      out = pool.release(conn, reusable, now);
      if (!reusable) {
        ASSERT_TRUE(std::ranges::count(out, Close(conn, CloseReason::Dirty)));
      }
    } else if (op < 54) {
      in = Input::Broken;
      conn = pick(rng, live);
      out = pool.broken(conn, now);
      ASSERT_FALSE(out.empty());
      ASSERT_EQ(out[0], Close(conn, CloseReason::Broken));
    } else if (op < 68) {
      in = Input::Connected;
      conn = pick(rng, connecting);
      model.conns[conn].state = ConnState::Idle;
      out = pool.connected(conn, now);
    } else if (op < 73) {
      in = Input::ConnectFailed;
      conn = pick(rng, connecting);
      model.conns.erase(conn);
      out = pool.connect_failed(conn, now);
    } else if (op < 85) {
      in = Input::Ping;
      conn = pick(rng, pinging);
      bool alive = num(0, 3) != 0;
      if (alive) model.conns[conn].state = ConnState::Idle;  // ping_for kept: it is owed
      out = pool.ping_result(conn, alive, now);
      if (!alive) {
        ASSERT_FALSE(out.empty());
        ASSERT_EQ(out[0], Close(conn, CloseReason::PingFailed));
      }
    } else if (op < 96) {
      in = Input::Tick;
      out = pool.tick(now);
    } else if (op < 99) {
      // A report that does not fit the connection's state (or an unknown one) changes nothing.
      in = Input::Wrong;
      int report = num(0, 3);
      const ConnState fits[] = {ConnState::Active, ConnState::Connecting, ConnState::Connecting,
                                ConnState::Pinging};
      std::vector<ConnId> cands{model.max_conn + 1};
      for (const auto& [id, c] : model.conns) {
        if (c.state != fits[report]) cands.push_back(id);
      }
      conn = pick(rng, cands);
      switch (report) {
        case 0:
          out = pool.release(conn, num(0, 1), now);
          break;
        case 1:
          out = pool.connected(conn, now);
          break;
        case 2:
          out = pool.connect_failed(conn, now);
          break;
        default:
          out = pool.ping_result(conn, num(0, 1), now);
          break;
      }
      ASSERT_EQ(out, Actions{});
    } else {
      in = Input::Reconf;
      PoolSettings next = random_settings(rng);
      model.s_ = next;
      out = pool.reconfigure(next, now);
    }
    model.apply(in, conn, out, now);
    if (::testing::Test::HasFatalFailure()) return;
    model.check(pool, now, in, total_before);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(PoolCoreRandom, InvariantsHoldUnderRandomOperations) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    run_random(seed, 5000);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace pglens::pool
