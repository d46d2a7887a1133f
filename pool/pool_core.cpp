#include "pool/pool_core.hpp"

#include "pool/pool_mode.hpp"

#include <algorithm>

namespace pglens::pool {

namespace {

Action connect_action(ConnId conn) {
  return {.kind = Action::Kind::Connect, .conn = conn};
}
Action assign_action(ConnId conn, WaiterId waiter) {
  return {.kind = Action::Kind::Assign, .conn = conn, .waiter = waiter};
}
Action ping_action(ConnId conn, WaiterId waiter) {
  return {.kind = Action::Kind::Ping, .conn = conn, .waiter = waiter};
}
Action close_action(ConnId conn, CloseReason why) {
  return {.kind = Action::Kind::Close, .conn = conn, .close_reason = why};
}
Action fail_action(WaiterId waiter, FailReason why) {
  return {.kind = Action::Kind::FailWaiter, .waiter = waiter, .fail_reason = why};
}

}  // namespace

long long PoolCore::max_total() const {
  // Negative knobs count as zero; long long so huge values cannot overflow the sum.
  return std::max(0LL, static_cast<long long>(settings_.pool_size)) +
         std::max(0LL, static_cast<long long>(settings_.max_overflow));
}

long long PoolCore::connecting() const {
  return std::ranges::count_if(
      conns_, [](const auto& kv) { return kv.second.state == ConnState::Connecting; });
}

bool PoolCore::expired(const Conn& c, TimePoint now) const {
  return settings_.pool_recycle > Duration::zero() && now - c.created_at >= settings_.pool_recycle;
}

ConnId PoolCore::open(TimePoint now, Actions& out) {
  ConnId id = next_conn_++;
  Conn& c = conns_[id];
  c.state = ConnState::Connecting;
  c.created_at = now;
  out.push_back(connect_action(id));
  return id;
}

void PoolCore::close(ConnId conn, CloseReason why, Actions& out) {
  conns_.erase(conn);
  out.push_back(close_action(conn, why));
}

std::vector<ConnId> PoolCore::idle_longest_first() const {
  std::vector<ConnId> idle;
  for (const auto& [id, c] : conns_) {
    if (c.state == ConnState::Idle) idle.push_back(id);
  }
  std::ranges::sort(idle, [&](ConnId a, ConnId b) {
    const Conn& ca = conns_.at(a);
    const Conn& cb = conns_.at(b);
    return ca.idle_since != cb.idle_since ? ca.idle_since < cb.idle_since : a < b;
  });
  return idle;
}

void PoolCore::requeue(const Waiter& w) {
  auto pos = std::ranges::upper_bound(waiters_, w.seq, {}, &Waiter::seq);
  waiters_.insert(pos, w);
}

void PoolCore::make_idle(ConnId conn, TimePoint now, Actions& out) {
  Conn& c = conns_.at(conn);
  if (total() > max_total()) {
    close(conn, CloseReason::Shrink, out);
  } else if (expired(c, now)) {
    close(conn, CloseReason::Recycle, out);
  } else {
    c.state = ConnState::Idle;
    c.idle_since = now;
    c.pinging_for.reset();
  }
}

void PoolCore::dispatch(TimePoint now, Actions& out) {
  while (!waiters_.empty()) {
    // Most recently idled first, so the surplus stays idle long enough to time out.
    auto best = conns_.end();
    for (auto it = conns_.begin(); it != conns_.end(); ++it) {
      if (it->second.state != ConnState::Idle) continue;
      if (best == conns_.end() || it->second.idle_since >= best->second.idle_since) best = it;
    }
    if (best == conns_.end()) break;
    auto& [id, c] = *best;
    if (expired(c, now)) {
      close(id, CloseReason::Recycle, out);
      continue;
    }
    Waiter w = waiters_.front();
    waiters_.pop_front();
    if (settings_.pool_pre_ping && now - c.idle_since >= settings_.server_check_delay) {
      c.state = ConnState::Pinging;
      c.pinging_for = w;
      out.push_back(ping_action(id, w.id));
    } else {
      c.state = ConnState::Active;
      out.push_back(assign_action(id, w.id));
    }
  }
  // One connect per waiter not yet covered by a connect in flight, within the limit; none while
  // the server refuses (transient failures), until the pause is over.
  if (now < retry_at_) return;
  long long in_flight = connecting();
  while (total() < max_total() && in_flight < static_cast<long long>(waiters_.size())) {
    open(now, out);
    ++in_flight;
  }
}

Actions PoolCore::acquire(WaiterId waiter, TimePoint now) {
  Actions out;
  waiters_.push_back(Waiter{.id = waiter, .since = now, .seq = next_seq_++});
  dispatch(now, out);
  return out;
}

Actions PoolCore::cancel(WaiterId waiter, TimePoint now) {
  Actions out;
  auto it = std::ranges::find(waiters_, waiter, &Waiter::id);
  if (it != waiters_.end()) {
    waiters_.erase(it);
  } else {
    // Its ping finishes on its own; the connection then goes back to the pool.
    for (auto& [id, c] : conns_) {
      if (c.pinging_for && c.pinging_for->id == waiter) c.pinging_for.reset();
    }
  }
  dispatch(now, out);
  return out;
}

Actions PoolCore::release(ConnId conn, bool reusable, TimePoint now) {
  Actions out;
  auto it = conns_.find(conn);
  if (it == conns_.end() || it->second.state != ConnState::Active) return out;
  if (!reusable) {
    close(conn, CloseReason::Dirty, out);
  } else {
    make_idle(conn, now, out);
  }
  dispatch(now, out);
  return out;
}

Actions PoolCore::broken(ConnId conn, TimePoint now, CloseReason why) {
  Actions out;
  auto it = conns_.find(conn);
  if (it == conns_.end()) return out;
  if (it->second.state == ConnState::Connecting) {
    fail_connect(it, now, out);
    return out;
  }
  std::optional<Waiter> waiter = it->second.pinging_for;
  close(conn, why, out);
  if (waiter) requeue(*waiter);
  dispatch(now, out);
  return out;
}

Actions PoolCore::connected(ConnId conn, TimePoint now) {
  Actions out;
  auto it = conns_.find(conn);
  if (it == conns_.end() || it->second.state != ConnState::Connecting) return out;
  Conn& c = it->second;
  retry_pause_ = Duration::zero();  // the server accepts again
  retry_at_ = TimePoint{};
  if (total() > max_total()) {
    close(conn, CloseReason::Shrink, out);
  } else if (!waiters_.empty()) {
    // Just proven alive: no ping. Not checked for age either, or a connect slower than
    // pool_recycle would never serve anyone.
    c.state = ConnState::Active;
    out.push_back(assign_action(conn, waiters_.front().id));
    waiters_.pop_front();
  } else {
    make_idle(conn, now, out);
  }
  dispatch(now, out);
  return out;
}

Actions PoolCore::connect_failed(ConnId conn, TimePoint now, bool transient) {
  Actions out;
  auto it = conns_.find(conn);
  if (it == conns_.end() || it->second.state != ConnState::Connecting) return out;
  if (!transient) {
    fail_connect(it, now, out);
    return out;
  }
  conns_.erase(it);
  retry_pause_ =
      retry_pause_ == Duration::zero() ? kRetryFirst : std::min(2 * retry_pause_, kRetryMax);
  retry_at_ = now + retry_pause_;
  dispatch(now, out);  // idle connections may still serve waiters
  return out;
}

std::optional<TimePoint> PoolCore::connects_paused_until(TimePoint now) const {
  if (now >= retry_at_) return std::nullopt;
  return retry_at_;
}

void PoolCore::fail_connect(Conns::iterator conn, TimePoint now, Actions& out) {
  conns_.erase(conn);
  if (!waiters_.empty()) {
    out.push_back(fail_action(waiters_.front().id, FailReason::ConnectFailed));
    waiters_.pop_front();
  }
  dispatch(now, out);
}

Actions PoolCore::ping_result(ConnId conn, bool alive, TimePoint now) {
  Actions out;
  auto it = conns_.find(conn);
  if (it == conns_.end() || it->second.state != ConnState::Pinging) return out;
  Conn& c = it->second;
  std::optional<Waiter> waiter = c.pinging_for;
  if (!alive) {
    close(conn, CloseReason::PingFailed, out);
    if (waiter) requeue(*waiter);
  } else if (!waiter) {
    make_idle(conn, now, out);
  } else if (expired(c, now)) {
    // The ping took it past pool_recycle: still never handed out.
    close(conn, CloseReason::Recycle, out);
    requeue(*waiter);
  } else {
    c.state = ConnState::Active;
    c.pinging_for.reset();
    out.push_back(assign_action(conn, waiter->id));
  }
  dispatch(now, out);
  return out;
}

Actions PoolCore::tick(TimePoint now) {
  Actions out;

  // (1) Waiters out of time, queued or with a ping still out.
  std::erase_if(waiters_, [&](const Waiter& w) {
    if (now - w.since < settings_.pool_timeout) return false;
    out.push_back(fail_action(w.id, FailReason::Timeout));
    return true;
  });
  for (auto& [id, c] : conns_) {
    if (c.pinging_for && now - c.pinging_for->since >= settings_.pool_timeout) {
      out.push_back(fail_action(c.pinging_for->id, FailReason::Timeout));
      c.pinging_for.reset();
    }
  }

  // (2) Idle closes, longest idle first: the most recently used stay.
  std::vector<ConnId> idle = idle_longest_first();
  const long long min_size = settings_.min_pool_size;
  // A min_pool_size above pool_size is kept too, or tick would close and reopen it forever.
  const long long steady = std::max<long long>(settings_.pool_size, min_size);
  for (ConnId id : idle) {
    const Conn& c = conns_.at(id);
    Duration idle_for = now - c.idle_since;
    if (expired(c, now)) {
      close(id, CloseReason::Recycle, out);
    } else if (total() > steady && idle_for >= settings_.overflow_idle_timeout) {
      close(id, CloseReason::OverflowIdle, out);
    } else if (settings_.server_idle_timeout > Duration::zero() &&
               idle_for >= settings_.server_idle_timeout && total() > min_size) {
      close(id, CloseReason::Idle, out);
    }
  }

  // (3) Ahead of demand, but never past the limit, nor while connects are paused.
  while (now >= retry_at_ && total() < std::min(min_size, max_total())) open(now, out);

  // (4)
  dispatch(now, out);
  return out;
}

Actions PoolCore::reconfigure(PoolSettings settings, TimePoint now) {
  Actions out;
  settings_ = settings;
  // Longest idle first; busy connections above the limit are closed when released.
  for (ConnId id : idle_longest_first()) {
    if (total() <= max_total()) break;
    close(id, CloseReason::Shrink, out);
  }
  dispatch(now, out);
  return out;
}

PoolCounts PoolCore::counts() const {
  PoolCounts n;
  for (const auto& [id, c] : conns_) {
    switch (c.state) {
      case ConnState::Connecting:
        ++n.connecting;
        break;
      case ConnState::Idle:
        ++n.idle;
        break;
      case ConnState::Pinging:
        ++n.pinging;
        break;
      case ConnState::Active:
        ++n.active;
        break;
    }
  }
  n.waiting = static_cast<int>(waiters_.size());
  return n;
}

std::optional<ConnState> PoolCore::state(ConnId conn) const {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return std::nullopt;
  return it->second.state;
}

bool PoolCore::is_overflow(ConnId conn) const {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return false;
  // conns_ is ordered by id, which is creation order.
  return std::distance(conns_.begin(), it) >= settings_.pool_size;
}

std::string_view to_string(PoolMode mode) {
  switch (mode) {
    case PoolMode::Session:
      return "session";
    case PoolMode::Transaction:
      return "transaction";
    case PoolMode::Statement:
      return "statement";
  }
  return "?";
}

std::optional<PoolMode> parse_pool_mode(std::string_view text) {
  if (text == "session") return PoolMode::Session;
  if (text == "transaction") return PoolMode::Transaction;
  if (text == "statement") return PoolMode::Statement;
  return std::nullopt;
}

}  // namespace pglens::pool
