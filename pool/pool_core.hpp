// The decisions of one server-connection pool (one per database and user), free of I/O.
//
// The Asio layer calls in when something happens (a client asks, a connection comes back, a
// connect finishes, time passes) and carries out the actions it gets back: open a connection,
// hand one to a waiter, ping one, close one, or tell a waiter it cannot be served. Time is passed
// in, so tests drive it with a fake clock.
#pragma once

#include <boost/container/flat_map.hpp>
#include <boost/container/small_vector.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pglens::pool {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

using ConnId = std::uint64_t;
using WaiterId = std::uint64_t;

// The knobs, named as SQLAlchemy names them where it has one, else as PgBouncer does.
struct PoolSettings {
  int pool_size = 20;     // steady server connections
  int min_pool_size = 0;  // opened ahead of demand and kept through idle timeouts
  int max_overflow = 10;  // extra connections while all are busy
  Duration pool_timeout = std::chrono::seconds(30);        // a waiter's limit
  Duration pool_recycle = Duration::zero();                // max connection age; zero: off
  bool pool_pre_ping = false;                              // check idle connections before use
  Duration server_check_delay = std::chrono::seconds(30);  // ...idle at least this long
  Duration overflow_idle_timeout = std::chrono::seconds(10);
  Duration server_idle_timeout = std::chrono::seconds(600);  // zero: off
};

enum class ConnState {
  Connecting,  // Connect action issued, not yet reported
  Idle,        // in the pool, ready to hand out
  Pinging,     // Ping action issued on behalf of a waiter
  Active,      // handed to a client
};

// Lost: an idle connection the server closed (or spoke on unasked: a FATAL 57P01 before it
// closes), noticed while it sat in the pool.
enum class CloseReason { Dirty, Recycle, Idle, OverflowIdle, PingFailed, Shrink, Broken, Lost };
enum class FailReason { Timeout, ConnectFailed };

struct Action {
  enum class Kind {
    Connect,     // open connection `conn` (report with connected / connect_failed)
    Assign,      // give connection `conn` to `waiter`
    Ping,        // check connection `conn` (report with ping_result); it is meant for `waiter`
    Close,       // close connection `conn` for `close_reason`
    FailWaiter,  // tell `waiter` it gets nothing, for `fail_reason`
  };
  Kind kind;
  ConnId conn = 0;
  WaiterId waiter = 0;
  CloseReason close_reason = CloseReason::Dirty;
  FailReason fail_reason = FailReason::Timeout;
  bool operator==(const Action&) const = default;
};
// Usually zero to two actions: kept inline, so the hot path allocates nothing.
using Actions = boost::container::small_vector<Action, 4>;

// What SHOW POOLS and the metrics need.
struct PoolCounts {
  int connecting = 0, idle = 0, pinging = 0, active = 0;
  // Queued waiters; one whose connection is being pinged counts under `pinging` instead.
  int waiting = 0;
  int total() const { return connecting + idle + pinging + active; }
};

class PoolCore {
 public:
  explicit PoolCore(PoolSettings settings) : settings_(settings) {}

  // A client asks for a connection. Waiters are served first come, first served.
  Actions acquire(WaiterId waiter, TimePoint now);
  // A waiting client went away; nothing is assigned to it afterwards.
  Actions cancel(WaiterId waiter, TimePoint now);
  // A client gives its connection back. reusable: idle and clean (the session checked).
  // Closed instead when dirty, older than pool_recycle, or above a lowered limit (Shrink).
  Actions release(ConnId conn, bool reusable, TimePoint now);
  // A connection broke (server gone); it is forgotten and a Close(why) is still emitted, so
  // the I/O layer frees every connection in one place. A waiter it was pinged for keeps its
  // place in the queue. On a Connecting connection this is connect_failed.
  Actions broken(ConnId conn, TimePoint now, CloseReason why = CloseReason::Broken);

  // Reports on unknown connections, or in the wrong state, are ignored (empty Actions).
  Actions connected(ConnId conn, TimePoint now);
  // Permanent (a bad password, no such database): the oldest waiter gets the failure, so it is
  // reported, not waited out. Transient (refused, reset, timed out, the server starting up or
  // shutting down): waiters keep waiting, up to pool_timeout, while connects are retried with a
  // growing pause (kRetryFirst, doubling to kRetryMax) until one works.
  Actions connect_failed(ConnId conn, TimePoint now, bool transient = false);
  static constexpr Duration kRetryFirst = std::chrono::milliseconds(100);
  static constexpr Duration kRetryMax = std::chrono::seconds(1);
  // When the next connect may start after transient failures; nullopt when not held back.
  std::optional<TimePoint> connects_paused_until(TimePoint now) const;
  // Dead: closed, and its waiter goes back to its place in the queue.
  Actions ping_result(ConnId conn, bool alive, TimePoint now);

  // Time passed: waiter timeouts (also of waiters whose ping is still out), idle and overflow
  // closes, recycling, min_pool_size.
  Actions tick(TimePoint now);
  // New settings (reload): limits apply from now on; surplus idle connections are closed.
  Actions reconfigure(PoolSettings settings, TimePoint now);

  PoolCounts counts() const;
  const PoolSettings& settings() const { return settings_; }
  std::optional<ConnState> state(ConnId conn) const;
  // While there are more than pool_size connections (any state), the newest ones beyond the
  // first pool_size (by creation order) are the overflow.
  bool is_overflow(ConnId conn) const;

 private:
  struct Waiter {
    WaiterId id;
    TimePoint since;
    std::uint64_t seq;  // arrival order: a waiter back from a failed ping re-enters by it
  };
  struct Conn {
    ConnState state = ConnState::Connecting;
    TimePoint created_at{};
    TimePoint idle_since{};
    std::optional<Waiter> pinging_for;  // empty once that waiter cancelled or timed out
  };
  // Ordered by id (creation order). A few dozen entries, scanned on every hand-over: contiguous
  // storage scans several times faster than a tree, and insertions happen only on connect.
  using Conns = boost::container::flat_map<ConnId, Conn>;

  // Hands idle connections to waiters and opens new ones while the limits allow.
  void dispatch(TimePoint now, Actions& out);
  ConnId open(TimePoint now, Actions& out);
  // A connect failed: the oldest waiter is told, and dispatch goes on.
  void fail_connect(Conns::iterator conn, TimePoint now, Actions& out);
  void close(ConnId conn, CloseReason why, Actions& out);
  bool expired(const Conn& c, TimePoint now) const;
  // A connection free again: back to Idle, unless aged or above the limit.
  void make_idle(ConnId conn, TimePoint now, Actions& out);
  void requeue(const Waiter& w);
  std::vector<ConnId> idle_longest_first() const;
  long long max_total() const;
  long long total() const { return static_cast<long long>(conns_.size()); }
  long long connecting() const;

  PoolSettings settings_;
  Conns conns_;
  std::deque<Waiter> waiters_;  // ordered by seq
  ConnId next_conn_ = 1;
  std::uint64_t next_seq_ = 1;
  // After transient connect failures: no connect before retry_at_; the pause grows to kRetryMax.
  TimePoint retry_at_{};
  Duration retry_pause_{0};
};

}  // namespace pglens::pool
