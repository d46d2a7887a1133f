#include "proxy/proxy_metrics.hpp"

#include <array>
#include <string>

namespace pglens::proxy {

namespace {
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr std::array kCloseReasons = {pool::CloseReason::Recycle,      pool::CloseReason::Idle,
                                      pool::CloseReason::OverflowIdle, pool::CloseReason::Dirty,
                                      pool::CloseReason::PingFailed,   pool::CloseReason::Shrink,
                                      pool::CloseReason::Broken,       pool::CloseReason::Lost};

MetricFamily family(const MetricName& m, MetricType type) {
  MetricFamily f;
  f.name = std::string(m.name);
  f.help = std::string(m.help);
  f.type = type;
  return f;
}

void add(MetricFamily& f, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric c;
  c.label = std::move(labels);
  if (f.type == MetricType::Counter)
    c.counter.value = value;
  else
    c.gauge.value = value;
  f.metric.push_back(std::move(c));
}

double as_double(std::uint64_t v) {
  return static_cast<double>(v);
}
}  // namespace

std::string_view to_string(pool::CloseReason reason) {
  switch (reason) {
    case pool::CloseReason::Dirty:
      return "dirty";
    case pool::CloseReason::Recycle:
      return "recycle";
    case pool::CloseReason::Idle:
      return "idle";
    case pool::CloseReason::OverflowIdle:
      return "overflow_idle";
    case pool::CloseReason::PingFailed:
      return "ping_failed";
    case pool::CloseReason::Shrink:
      return "shrink";
    case pool::CloseReason::Broken:
      return "broken";
    case pool::CloseReason::Lost:
      return "lost";
  }
  return "unknown";
}

std::vector<MetricFamily> ProxyMetrics::Collect() const {
  std::vector<MetricFamily> out;
  auto snapshot = snapshot_();

  // Clients, every state present even at zero so a dashboard never sees a gap.
  auto clients = family(metric::kClientConnections, MetricType::Gauge);
  std::array<std::uint64_t, 4> by_state{};
  for (const auto& c : snapshot.clients) {
    auto s = static_cast<std::size_t>(c.state);
    if (s < by_state.size()) ++by_state[s];
  }
  for (auto s : {ClientState::Login, ClientState::Idle, ClientState::Waiting, ClientState::Active})
    add(clients, {{"state", std::string(to_string(s))}},
        as_double(by_state[static_cast<std::size_t>(s)]));
  out.push_back(std::move(clients));

  auto servers = family(metric::kServerConnections, MetricType::Gauge);
  auto waiting = family(metric::kWaitingClients, MetricType::Gauge);
  auto pool_size = family(metric::kPoolSize, MetricType::Gauge);
  auto transactions = family(metric::kTransactions, MetricType::Counter);
  auto connects = family(metric::kServerConnects, MetricType::Counter);
  auto connect_failures = family(metric::kServerConnectFailures, MetricType::Counter);
  auto closes = family(metric::kServerCloses, MetricType::Counter);
  auto pre_ping = family(metric::kPrePingFailures, MetricType::Counter);
  auto timeouts = family(metric::kPoolTimeouts, MetricType::Counter);
  auto resets = family(metric::kStateResets, MetricType::Counter);
  for (const auto& pool : snapshot.pools) {
    const auto& key = pool.key;
    auto labels = [&key](std::vector<ClientMetric::Label> more = {}) {
      std::vector<ClientMetric::Label> l{{"database", key.database}, {"user", key.user}};
      l.insert(l.end(), more.begin(), more.end());
      return l;
    };
    const auto& counts = pool.counts;
    const auto& stats = pool.stats;
    add(servers, labels({{"state", "active"}}), counts.active);
    add(servers, labels({{"state", "idle"}}), counts.idle);
    add(servers, labels({{"state", "connecting"}}), counts.connecting);
    add(servers, labels({{"state", "pinging"}}), counts.pinging);
    add(waiting, labels(), counts.waiting);
    add(pool_size, labels(), pool.settings.pool_size);
    add(transactions, labels(), as_double(pool.traffic.transactions));
    add(connects, labels(), as_double(stats.server_connects));
    add(connect_failures, labels(), as_double(stats.connect_failures));
    for (auto reason : kCloseReasons) {
      auto it = stats.closes.find(reason);
      add(closes, labels({{"reason", std::string(to_string(reason))}}),
          it == stats.closes.end() ? 0.0 : as_double(it->second));
    }
    add(pre_ping, labels(), as_double(stats.pre_ping_failures));
    add(timeouts, labels(), as_double(stats.pool_timeouts));
    add(resets, labels(), as_double(pool.traffic.state_resets));
  }
  for (auto* f : {&servers, &waiting, &pool_size, &transactions, &connects, &connect_failures,
                  &closes, &pre_ping, &timeouts, &resets})
    out.push_back(std::move(*f));

  auto tls_failures = family(metric::kTlsHandshakeFailures, MetricType::Counter);
  std::uint64_t server_side = 0;
  for (const auto& pool : snapshot.pools) server_side += pool.stats.tls_failures;
  add(tls_failures, {{"side", "client"}}, as_double(snapshot.client_tls_failures));
  add(tls_failures, {{"side", "server"}}, as_double(server_side));
  out.push_back(std::move(tls_failures));

  if (snapshot.analyzer) {
    const auto& c = *snapshot.analyzer;
    auto single = [&out](const MetricName& m, std::uint64_t value) {
      auto f = family(m, MetricType::Counter);
      add(f, {}, as_double(value));
      out.push_back(std::move(f));
    };
    single(metric::kAnalyzerEvents, c.events);
    single(metric::kFingerprintCacheHits, c.cache_hits);
    single(metric::kFingerprintCacheMisses, c.cache_misses);
    single(metric::kFingerprintStatsEvictions, c.stats_evictions);
  }
  return out;
}

}  // namespace pglens::proxy
