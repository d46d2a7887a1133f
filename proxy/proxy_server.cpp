#include "proxy/proxy_server.hpp"

#include <spdlog/spdlog.h>

#include "proxy/drain.hpp"
#include "proxy/proxy_metrics.hpp"
#include "proxy/session.hpp"

namespace pglens::proxy {

namespace {
#ifdef PGLENS_IO_BACKEND_IO_URING
constexpr int kOneThreadHint = 1;
#else
constexpr int kOneThreadHint = BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO;
#endif
TrafficTotals totals_of(const session::Traffic& t) {
  return {t.transactions.load(), t.queries.load(),        t.bytes_received.load(),
          t.bytes_sent.load(),   t.transaction_us.load(), t.query_us.load(),
          t.wait_us.load(),      t.state_resets.load()};
}

ServerPool::ConnectSettings connect_settings(const config::Config& c, const TlsContexts& tls) {
  ServerTls server_tls;
  if (tls.for_servers) server_tls = {c.server_tls.mode, tls.for_servers};
  return {c.server_connect_timeout, keepalive_of(c), server_tls};
}

std::shared_ptr<const TlsContexts> tls_contexts_of(const config::Config& c) {
  std::string error;
  auto contexts = make_tls_contexts(c, &error);
  if (!contexts) throw std::runtime_error(error);
  return std::make_shared<const TlsContexts>(std::move(*contexts));
}

std::unique_ptr<analyzer::Analyzer> make_analyzer(const config::Config& c,
                                                  std::shared_ptr<prometheus::Registry> registry,
                                                  std::shared_ptr<rules::Advisor> advisor) {
  if (!c.analysis) return nullptr;
  analyzer::AnalyzerSettings a;
  a.queue_capacity = static_cast<std::size_t>(c.analysis_queue_size);
  a.max_fingerprints = static_cast<std::size_t>(c.max_fingerprints);
  a.top_k = static_cast<std::size_t>(c.fingerprint_top_k);
  auto plans = advisor->plans();
  return std::make_unique<analyzer::Analyzer>(
      a, std::move(registry), std::vector<std::shared_ptr<analyzer::EventConsumer>>{advisor},
      std::move(plans));
}
}  // namespace

ProxyServer::ProxyServer(config::Config config, std::string config_path)
    : config_path_(std::move(config_path)),
      config_(std::make_shared<const config::Config>(std::move(config))),
      tls_(tls_contexts_of(*config_)),
      advisor_(!config_->analysis ? nullptr
                                  : std::make_shared<rules::Advisor>(
                                        config_->rules,
                                        [this](const std::string& db, const std::string& user) {
                                          return catalog_conninfo(db, user);
                                        },
                                        registry_)),
      analyzer_(make_analyzer(*config_, registry_, advisor_)),
      io_threads_(std::max(1u, config_->threads)),
      // One thread: sockets are only ever used on it, so Asio's per-socket locks can go (the
      // scheduler keeps its own, for posts from the analysis and signal threads).
      io_(io_threads_ == 1 ? kOneThreadHint : static_cast<int>(io_threads_)),
      acceptor_(io_),
      signals_(io_, SIGINT, SIGTERM),
      pool_wait_(prometheus::BuildHistogram()
                     .Name(std::string(metric::kPoolWait.name))
                     .Help(std::string(metric::kPoolWait.help))
                     .Register(*registry_)
                     .Add({}, analyzer::latency_buckets())),
      proxy_metrics_(std::make_shared<ProxyMetrics>([this] { return snapshot(); })),
      admin_([this] { return snapshot(); }, {analyzer_.get(), advisor_.get()},
             {[this] { pause_.pause(); }, [this] { pause_.resume(); },
              [this] { shutdown_gracefully(); },
              [this](std::string* error) { return reload(error); }}),
      sessions_{[this] { return this->config(); },
                [this](const PoolKey& key, const config::DatabaseRoute& route,
                       const config::Config& c) { return pool_for(key, route, c); },
                cancels_,
                clients_,
                pause_,
                pool_wait_,
                analyzer_ ? &analyzer_->queue() : nullptr,
                admin_,
                [this] { return tls(); },
                client_tls_failures_,
                draining_},
      http_(io_, {[this] { return snapshot(); }, [this] { return collect_metrics(); },
                  analyzer_.get(), advisor_.get(), [this] { return draining(); }}) {
  signals_.add(SIGHUP);
}

ProxySnapshot ProxyServer::snapshot() const {
  ProxySnapshot s;
  s.config = config();
  s.paused = pause_.paused();
  s.port = bound_port_;
  s.uptime = Clock::now() - started_at_;
  s.taken_at = std::chrono::system_clock::now();
  for (const auto& pool : pools()) {
    PoolSnapshot p;
    p.key = pool->key();
    const auto& target = pool->target();
    p.server_database = target.database;
    p.server_user = target.user;
    p.server_host = target.upstream.host;
    p.server_port = target.upstream.port;
    p.mode = s.config->pool_mode_for(s.config->route_for(p.key.database));
    p.settings = pool->settings();
    p.counts = pool->counts();
    p.stats = pool->stats();
    p.traffic = totals_of(pool->traffic);
    p.connections = pool->connection_states();
    p.tls = pool->tls_of_connections();
    s.pools.push_back(std::move(p));
  }
  for (const auto& c : clients_.snapshot()) {
    ClientSnapshot cs;
    cs.id = c->id;
    cs.address = c->address;
    cs.port = c->port;
    cs.connect_time = c->connect_time;
    // The session writes user and database before it leaves Login, so they are only read after.
    cs.state = c->state.load();
    if (cs.state != ClientState::Login) {
      cs.user = c->user;
      cs.database = c->database;
      cs.application_name = c->application_name;
      cs.tls = c->tls;
    }
    cs.request_time_us = c->request_time_us.load();
    cs.server_id = c->server_id.load();
    cs.in_transaction = c->in_transaction.load();
    s.clients.push_back(std::move(cs));
  }
  if (analyzer_) s.analyzer = analyzer_->counters();
  s.client_tls_failures = client_tls_failures_.load();
  return s;
}

ProxyServer::~ProxyServer() {
  stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

std::shared_ptr<const config::Config> ProxyServer::config() const {
  std::lock_guard lock(config_mutex_);
  return config_;
}

std::shared_ptr<const TlsContexts> ProxyServer::tls() const {
  std::lock_guard lock(config_mutex_);
  return tls_;
}

void ProxyServer::bind() {
  auto cfg = config();
  try {
    tcp::endpoint endpoint(asio::ip::make_address(cfg->listen_host), cfg->listen_port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    bound_port_ = acceptor_.local_endpoint().port();
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("cannot listen on " + cfg->listen_host + ":" +
                             std::to_string(cfg->listen_port) + ": " + e.code().message());
  }
  if (!cfg->http_listen.empty()) http_.bind(cfg->http_listen);
}

std::vector<prometheus::MetricFamily> ProxyServer::collect_metrics() const {
  auto families = registry_->Collect();
  auto own = proxy_metrics_->Collect();
  families.insert(families.end(), std::make_move_iterator(own.begin()),
                  std::make_move_iterator(own.end()));
  return families;
}

void ProxyServer::run() {
  std::function<void()> wait_signal = [this, &wait_signal] {
    signals_.async_wait([this, &wait_signal](const error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        std::string error;
        if (!reload(&error))
          spdlog::error("reload on SIGHUP failed, keeping the old config: {}", error);
        wait_signal();
        return;
      }
      if (draining_) {
        spdlog::warn("signal {} received while draining: exiting at once", signal);
        stop();
        return;
      }
      spdlog::info("signal {} received, draining", signal);
      shutdown_gracefully();
      wait_signal();  // a second one stops at once
    });
  };
  wait_signal();
  asio::co_spawn(io_, accept_loop(), asio::detached);
  http_.start();
  asio::co_spawn(asio::make_strand(io_), maintenance_loop(), asio::detached);
  auto cfg = config();
  spdlog::info("pglens listening on {}:{}, upstream {}, pool_mode {}, {} I/O threads",
               cfg->listen_host, bound_port_, cfg->upstream.display(), to_string(cfg->pool_mode),
               io_threads_);
  for (unsigned i = 1; i < io_threads_; ++i) threads_.emplace_back([this] { io_.run(); });
  io_.run();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void ProxyServer::stop() {
  io_.stop();
}

void ProxyServer::shutdown_gracefully() {
  if (draining_.load()) return;
  auto timeout = config()->shutdown_timeout;
  drain_deadline_ = (Clock::now() + timeout).time_since_epoch().count();  // before the flag
  if (draining_.exchange(true)) return;
  if (timeout == pool::Duration::zero()) {
    spdlog::info("shutdown_timeout is 0: exiting at once");
    stop();
    return;
  }
  asio::post(io_, [this] {
    error_code ignored;
    acceptor_.close(ignored);
  });
  pause_.resume();  // paused sessions must be able to finish
  auto progress = drain_progress(clients_.snapshot());
  clients_.wake_all();
  spdlog::info(
      "shutting down: no new clients; {} client(s) closed as each finishes its transaction ({} in "
      "a transaction now), for at most {} s (shutdown_timeout)",
      progress.sessions, progress.in_transaction, std::chrono::duration<double>(timeout).count());
}

bool ProxyServer::reload(std::string* error) {
  if (config_path_.empty()) {
    if (error) *error = "pglens was started without --config: there is no file to re-read";
    return false;
  }
  auto loaded = config::load_config_file(config_path_);
  if (!loaded.config) {
    if (error) *error = loaded.error.message();
    return false;
  }
  if (overrides_) overrides_(*loaded.config);
  loaded.config->io_backend = config()->io_backend;  // chosen at start-up, for good
  // Certificates and keys are read again: a file that cannot be used keeps the old config whole.
  std::string tls_error;
  auto contexts = make_tls_contexts(*loaded.config, &tls_error);
  if (!contexts) {
    if (error) *error = tls_error;
    return false;
  }
  apply(std::make_shared<const config::Config>(std::move(*loaded.config)),
        std::make_shared<const TlsContexts>(std::move(*contexts)));
  spdlog::info("configuration reloaded from {}", config_path_);
  return true;
}

void ProxyServer::apply(std::shared_ptr<const config::Config> config,
                        std::shared_ptr<const TlsContexts> tls) {
  {
    std::lock_guard lock(config_mutex_);
    config_ = config;
    tls_ = tls;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  for (auto& pool : pools()) {
    auto route = config->route_for(pool->key().database);
    pool->reconfigure(config->pool_settings_for(route), connect_settings(*config, *tls));
  }
}

std::shared_ptr<ServerPool> ProxyServer::pool_for(const PoolKey& key,
                                                  const config::DatabaseRoute& route,
                                                  const config::Config& config) {
  std::lock_guard lock(pools_mutex_);
  auto& pool = pools_[key];
  if (!pool) {
    ServerTarget target;
    target.upstream = route.upstream;
    target.database = route.upstream.dbname.empty() ? key.database : route.upstream.dbname;
    target.user = !route.upstream.dbname.empty() && !route.upstream.user.empty()
                      ? route.upstream.user
                      : key.user;
    // No password in the URL: a plaintext password for this user in auth_file logs in upstream,
    // as PgBouncer does.
    if (target.upstream.password.empty() && config.userlist) {
      auto* secret = config.userlist->find(target.user);
      if (secret && secret->kind == auth::UserSecret::Kind::Plain)
        target.upstream.password = secret->text;
    }
    pool = std::make_shared<ServerPool>(
        io_.get_executor(), key, std::move(target), config.pool_settings_for(route),
        connect_settings(config, *tls()), static_cast<std::size_t>(config.max_prepared_statements));
  }
  return pool;
}

std::string ProxyServer::catalog_conninfo(const std::string& database,
                                          const std::string& user) const {
  auto cfg = config();
  auto route = cfg->route_for(database);
  const auto& u = route.upstream;
  std::string login_user = !u.dbname.empty() && !u.user.empty() ? u.user : user;
  std::string password = u.password;
  if (password.empty() && cfg->userlist)
    if (auto* secret = cfg->userlist->find(login_user);
        secret && secret->kind == auth::UserSecret::Kind::Plain)
      password = secret->text;
  auto quote = [](const std::string& v) {
    std::string out = "'";
    for (char c : v) {
      if (c == '\\' || c == '\'') out += '\\';
      out += c;
    }
    return out + "'";
  };
  std::string conninfo = "host=" + quote(u.host) + " port=" + std::to_string(u.port) +
                         " dbname=" + quote(u.dbname.empty() ? database : u.dbname) +
                         " user=" + quote(login_user) +
                         " application_name=pglens-advisor connect_timeout=5";
  if (!password.empty()) conninfo += " password=" + quote(password);
  return conninfo;
}

std::vector<std::shared_ptr<ServerPool>> ProxyServer::pools() const {
  std::lock_guard lock(pools_mutex_);
  std::vector<std::shared_ptr<ServerPool>> out;
  for (const auto& [key, pool] : pools_) out.push_back(pool);
  return out;
}

awaitable<void> ProxyServer::maintenance_loop() {
  // The pools' clock: timeouts, idle closes and min_pool_size are decided on each tick.
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (true) {
    timer.expires_after(std::chrono::milliseconds(100));
    auto [ec] = co_await timer.async_wait(use_nothrow);
    if (ec) co_return;
    for (auto& pool : pools()) pool->tick();
    if (draining_) {
      auto progress = drain_progress(clients_.snapshot());
      auto deadline = Clock::time_point(Clock::duration(drain_deadline_.load()));
      switch (drain_step(progress, Clock::now(), deadline)) {
        case DrainStep::Wait:
          break;
        case DrainStep::Done:
          spdlog::info(
              "shutdown: no client holds a server connection, every client has left; exiting");
          stop();
          co_return;
        case DrainStep::TimedOut:
          spdlog::warn(
              "shutdown_timeout reached: closing {} client(s), {} of them in a transaction "
              "(rolled back)",
              progress.sessions, progress.in_transaction);
          stop();
          co_return;
      }
    }
  }
}

awaitable<void> ProxyServer::accept_loop() {
  while (acceptor_.is_open()) {
    asio::any_io_executor strand = io_.get_executor();
    if (io_threads_ > 1) strand = asio::make_strand(io_);
    auto [ec, socket] = co_await acceptor_.async_accept(strand, use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      spdlog::warn("accept failed: {}", ec.message());
      continue;
    }
    auto id = next_session_id_++;
    asio::co_spawn(
        strand, serve_client(std::move(socket), sessions_, id), [id](std::exception_ptr e) {
          if (!e) return;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            spdlog::error("[c{}] session ended by an unexpected error: {}", id, ex.what());
          }
        });
  }
}

}  // namespace pglens::proxy
