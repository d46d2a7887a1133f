#include "proxy/server_pool.hpp"

#include <spdlog/spdlog.h>

#include <array>

namespace pglens::proxy {

namespace {
using namespace asio::experimental::awaitable_operators;
using pool::Action;
}  // namespace

// A session waiting for a connection, in its acquire()'s coroutine frame. The pool points at it
// (waiters_) while it is queued; `done`, `connection`, `error` and `queued` are written under the
// pool's mutex.
struct ServerPool::Waiter {
  Waiter(ServerPool& p, const asio::any_io_executor& executor)
      : pool(p), parking(executor, p.parkings_) {}
  ~Waiter() {
    pool::Actions actions;
    {
      std::lock_guard lock(pool.mutex_);
      if (queued) std::erase(pool.waiters_, this);
      // Assigned, but its coroutine is being destroyed before it took the connection (shutdown,
      // or an exception): the core must not count that connection as lent forever.
      if (connection) actions = pool.core_.broken(connection->pool_id, Clock::now());
    }
    pool.execute(std::move(actions));
  }
  ServerPool& pool;
  pool::WaiterId id = 0;
  bool queued = false;
  bool done = false;
  std::unique_ptr<ServerConnection> connection;
  protocol::ErrorResponse error;
  Parking parking;  // woken once done
};

ServerPool::ServerPool(asio::any_io_executor executor, PoolKey key, ServerTarget target,
                       pool::PoolSettings settings, ConnectSettings connect,
                       std::size_t statement_cache_size)
    : executor_(asio::make_strand(executor)),
      parkings_(asio::use_service<ParkingService>(asio::query(executor, asio::execution::context))),
      key_(std::move(key)),
      target_(std::move(target)),
      core_(settings),
      connect_(std::move(connect)),
      statement_cache_size_(statement_cache_size) {}

awaitable<AcquireResult> ServerPool::acquire() {
  auto started = Clock::now();
  Waiter waiter(*this, co_await asio::this_coro::executor);
  pool::Actions actions;
  {
    std::lock_guard lock(mutex_);
    waiter.id = next_waiter_++;
    waiter.queued = true;
    waiters_.push_back(&waiter);
    actions = core_.acquire(waiter.id, started);
  }
  // With an idle connection at hand this assigns it to the waiter right here.
  execute(std::move(actions));
  bool done;
  {
    std::lock_guard lock(mutex_);
    done = waiter.done;
  }
  if (!done) {
    co_await waiter.parking.wait();
    pool::Actions cancelled;
    {
      std::lock_guard lock(mutex_);
      if (!waiter.done) {  // the session itself was cancelled while waiting
        take_waiter(waiter.id);
        cancelled = core_.cancel(waiter.id, Clock::now());
        waiter.error =
            protocol::make_error("57014", "pglens: gave up waiting for a server connection");
      }
    }
    execute(std::move(cancelled));
  }
  AcquireResult result;
  std::lock_guard lock(mutex_);
  result.connection = std::move(waiter.connection);
  result.error = std::move(waiter.error);
  result.waited = Clock::now() - started;
  ++stats_.waits;
  stats_.total_wait += result.waited;
  stats_.max_wait = std::max(stats_.max_wait,
                             std::chrono::duration_cast<std::chrono::nanoseconds>(result.waited));
  co_return result;
}

void ServerPool::release(std::unique_ptr<ServerConnection> connection, bool reusable) {
  if (!connection) return;
  pool::Actions actions;
  {
    std::lock_guard lock(mutex_);
    auto id = connection->pool_id;
    connection->pooled_at = Clock::now();
    connection->watched = false;
    held_.push_back(std::move(connection));
    actions = core_.release(id, reusable, Clock::now());
    spdlog::trace("pool {}/{}: conn {} released (reusable {}); {} actions", key_.database,
                  key_.user, id, reusable, actions.size());
  }
  execute(std::move(actions));
}

ServerPool::Waiter* ServerPool::take_waiter(pool::WaiterId id) {
  auto it = std::find_if(waiters_.begin(), waiters_.end(), [&](Waiter* w) { return w->id == id; });
  if (it == waiters_.end()) return nullptr;
  Waiter* waiter = *it;
  waiters_.erase(it);
  waiter->queued = false;
  return waiter;
}

std::unique_ptr<ServerConnection> ServerPool::take_held(pool::ConnId id) {
  auto it =
      std::find_if(held_.begin(), held_.end(), [&](const auto& c) { return c->pool_id == id; });
  if (it == held_.end()) return nullptr;
  auto conn = std::move(*it);
  if (conn->watched) {  // whoever takes it reads it now; the watch's handler finds it gone
    conn->watched = false;
    error_code ignored;
    conn->stream.socket().cancel(ignored);
  }
  *it = std::move(held_.back());
  held_.pop_back();
  return conn;
}

void ServerPool::tick() {
  pool::Actions actions;
  {
    std::lock_guard lock(mutex_);
    auto now = Clock::now();
    actions = core_.tick(now);
    for (auto& conn : held_)
      if (!conn->watched && now - conn->pooled_at >= kWatchAfter &&
          core_.state(conn->pool_id) == pool::ConnState::Idle)
        watch(*conn);
  }
  execute(std::move(actions));
}

void ServerPool::watch(ServerConnection& conn) {
  conn.watched = true;
  conn.stream.socket().async_wait(
      tcp::socket::wait_read,
      asio::bind_executor(executor_, [self = shared_from_this(), id = conn.pool_id](error_code ec) {
        self->on_idle_readable(id, ec);
      }));
}

void ServerPool::on_idle_readable(pool::ConnId id, error_code ec) {
  if (ec == asio::error::operation_aborted) return;  // taken out of the pool, or closed
  pool::Actions actions;
  std::string what = "the server closed it";
  std::uint64_t server_id = 0;
  {
    std::lock_guard lock(mutex_);
    auto it =
        std::find_if(held_.begin(), held_.end(), [&](const auto& c) { return c->pool_id == id; });
    if (it == held_.end() || core_.state(id) != pool::ConnState::Idle) return;
    ServerConnection& conn = **it;
    server_id = conn.id;
    // What it said, for the log: usually FATAL 57P01 (terminated) or 57P03 (shutting down).
    // (Over TLS the bytes are a record: not read here, the close says enough.)
    std::array<std::uint8_t, 512> buffer;
    error_code read_ec;
    std::size_t n = 0;
    if (!conn.stream.encrypted()) {
      conn.stream.socket().non_blocking(true, read_ec);
      n = conn.stream.socket().read_some(asio::buffer(buffer), read_ec);
    }
    if (n > 5 && buffer[0] == 'E') {
      auto body = protocol::ByteView(buffer).subspan(5, n - 5);
      if (auto e = protocol::ErrorResponse::decode(body))
        what = std::string(e->sqlstate()) + " " + std::string(e->message());
      else
        what = "it sent an error";
    }
    actions = core_.broken(id, Clock::now(), pool::CloseReason::Lost);
  }
  spdlog::info("pool {}/{}: idle server connection s{} lost ({}): closed, not handed out",
               key_.database, key_.user, server_id, what);
  execute(std::move(actions));
}

void ServerPool::reconfigure(pool::PoolSettings settings, ConnectSettings connect) {
  pool::Actions actions;
  {
    std::lock_guard lock(mutex_);
    connect_ = std::move(connect);
    actions = core_.reconfigure(settings, Clock::now());
  }
  execute(std::move(actions));
}

void ServerPool::execute(pool::Actions actions) {
  for (const auto& a : actions) {
    spdlog::trace("pool {}/{}: action {} conn {} waiter {}", key_.database, key_.user,
                  static_cast<int>(a.kind), a.conn, a.waiter);
    switch (a.kind) {
      case Action::Kind::Connect:
        asio::co_spawn(executor_, open(a.conn), asio::detached);
        break;
      case Action::Kind::Assign: {
        pool::Actions returned;
        {
          std::lock_guard lock(mutex_);
          Waiter* waiter = take_waiter(a.waiter);
          if (waiter == nullptr) {
            // It gave up (cancelled) between the core's decision and this: the connection, still
            // held, goes back, to the next waiter or to the idle ones.
            returned = core_.release(a.conn, true, Clock::now());
          } else if (auto conn = take_held(a.conn)) {
            waiter->connection = std::move(conn);
            waiter->done = true;
            // Under the mutex: once it is released the waiter may see `done`, return and be gone.
            waiter->parking.wake();
          }
        }
        execute(std::move(returned));
        break;
      }
      case Action::Kind::Ping: {
        std::unique_ptr<ServerConnection> conn;
        {
          std::lock_guard lock(mutex_);
          conn = take_held(a.conn);
        }
        if (!conn) continue;
        asio::co_spawn(executor_, ping(a.conn, std::move(conn)), asio::detached);
        break;
      }
      case Action::Kind::Close: {
        std::unique_ptr<ServerConnection> conn;
        {
          std::lock_guard lock(mutex_);
          ++stats_.closes[a.close_reason];
          conn = take_held(a.conn);
          if (conn) tls_.erase(conn->id);
        }
        if (conn) close_server_connection(std::move(conn));
        break;
      }
      case Action::Kind::FailWaiter: {
        std::lock_guard lock(mutex_);
        Waiter* waiter = take_waiter(a.waiter);
        if (waiter == nullptr) continue;
        waiter->done = true;
        if (a.fail_reason == pool::FailReason::Timeout) {
          ++stats_.pool_timeouts;
          auto timeout = core_.settings().pool_timeout;
          auto seconds = std::chrono::duration<double>(timeout).count();
          // Connects failing meanwhile are the reason, not a busy pool.
          bool unreachable =
              !last_connect_error_.empty() && Clock::now() - last_connect_failure_ < timeout;
          waiter->error = protocol::make_error(
              unreachable ? "08006" : "53300",
              unreachable
                  ? fmt::format("pglens: no server connection within pool_timeout ({:g} s) for "
                                "database \"{}\" user \"{}\": the server cannot be reached: {}",
                                seconds, key_.database, key_.user, last_connect_error_)
                  : fmt::format(
                        "pglens: no server connection became free within pool_timeout ({:g} s) "
                        "for database \"{}\" user \"{}\" (pool_size {}, max_overflow {})",
                        seconds, key_.database, key_.user, core_.settings().pool_size,
                        core_.settings().max_overflow));
        } else {
          waiter->error = last_connect_failure_error_;
        }
        waiter->parking.wake();
        break;
      }
    }
  }
}

awaitable<void> ServerPool::open(pool::ConnId id) {
  ConnectSettings connect;
  {
    std::lock_guard lock(mutex_);
    connect = connect_;
  }
  auto result = co_await connect_server(target_, connect.timeout, connect.keepalive, connect.tls);
  pool::Actions actions;
  {
    std::lock_guard lock(mutex_);
    auto now = Clock::now();
    if (result.connection) {
      ++stats_.server_connects;
      result.connection->pool_id = id;
      result.connection->pooled_at = now;
      result.connection->statements.set_capacity(statement_cache_size_);
      if (result.connection->stream.encrypted()) {
        tls_[result.connection->id] = result.connection->stream.tls_description();
        spdlog::info(
            "pool {}/{}: server connection s{} over {}{}", key_.database, key_.user,
            result.connection->id, result.connection->stream.tls_description(),
            result.connection->channel_binding ? ", SCRAM-SHA-256-PLUS (channel bound)" : "");
      }
      if (server_parameters_.empty()) server_parameters_ = result.connection->parameters;
      held_.push_back(std::move(result.connection));
      actions = core_.connected(id, now);
    } else {
      ++stats_.connect_failures;
      if (result.lasting) ++stats_.tls_failures;
      last_connect_error_ = std::string(result.error.message());
      last_connect_failure_error_ = result.error;
      last_connect_failure_ = now;
      bool transient = transient_connect_failure(result);
      spdlog::warn("pool {}/{}: server connection failed{}: {}", key_.database, key_.user,
                   transient ? " (retrying; clients wait up to pool_timeout)" : "",
                   last_connect_error_);
      actions = core_.connect_failed(id, now, transient);
    }
  }
  execute(std::move(actions));
}

awaitable<void> ServerPool::ping(pool::ConnId id, std::unique_ptr<ServerConnection> conn) {
  // An empty query costs the server nothing and proves the backend is there.
  protocol::Bytes out;
  protocol::Query{""}.encode(out);
  bool alive = false;
  asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::seconds(5));
  auto exchange = [&]() -> awaitable<bool> {
    if (!co_await write_all(conn->stream, out)) co_return false;
    MessageReader reader(protocol::Direction::Backend);
    while (auto msg = co_await reader.read(conn->stream)) {
      if (msg->type == 'E') co_return false;
      if (msg->type == 'Z')
        co_return reader.pending().empty() && msg->body.size() == 1 && msg->body[0] == 'I';
    }
    co_return false;
  };
  auto outcome = co_await (exchange() || timer.async_wait(use_nothrow));
  alive = outcome.index() == 0 && std::get<0>(outcome);
  pool::Actions actions;
  {
    std::lock_guard lock(mutex_);
    if (!alive) {
      ++stats_.pre_ping_failures;
      tls_.erase(conn->id);
      spdlog::info("pool {}/{}: pre-ping found server connection s{} dead, replacing it",
                   key_.database, key_.user, conn->id);
      close_server_connection(std::move(conn));
    } else {
      held_.push_back(std::move(conn));
    }
    actions = core_.ping_result(id, alive, Clock::now());
  }
  execute(std::move(actions));
}

pool::PoolCounts ServerPool::counts() const {
  std::lock_guard lock(mutex_);
  return core_.counts();
}

pool::PoolSettings ServerPool::settings() const {
  std::lock_guard lock(mutex_);
  return core_.settings();
}

PoolStats ServerPool::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::vector<protocol::ParameterStatus> ServerPool::server_parameters() const {
  std::lock_guard lock(mutex_);
  return server_parameters_;
}

std::map<std::uint64_t, std::string> ServerPool::tls_of_connections() const {
  std::lock_guard lock(mutex_);
  return tls_;
}

std::vector<std::pair<std::uint64_t, pool::ConnState>> ServerPool::connection_states() const {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<std::uint64_t, pool::ConnState>> out;
  for (const auto& conn : held_)
    if (auto s = core_.state(conn->pool_id)) out.emplace_back(conn->id, *s);
  return out;
}

}  // namespace pglens::proxy
