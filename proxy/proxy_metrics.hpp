// The proxy's own Prometheus metrics, built at scrape time from the state the proxy keeps anyway
// (the client registry, the pools' counts and counters, the analyzer's counters): nothing on the
// forwarding path updates a metric for them. The query histograms and counters live in the
// Analyzer; pglens_pool_wait_seconds is a real histogram in ProxyServer's registry.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string_view>
#include <vector>

#include "pool/pool_core.hpp"
#include "proxy/proxy_snapshot.hpp"

namespace pglens::proxy {

// Every metric name the proxy side exposes, in one place (the analyzer's are in analyzer.cpp).
struct MetricName {
  std::string_view name;
  std::string_view help;
};
namespace metric {
// Gauges
inline constexpr MetricName kClientConnections{"pglens_client_connections",
                                               "Client connections by state"};
inline constexpr MetricName kServerConnections{"pglens_server_connections",
                                               "Server connections by database, user and state"};
inline constexpr MetricName kWaitingClients{"pglens_waiting_clients",
                                            "Clients queued for a server connection"};
inline constexpr MetricName kPoolSize{"pglens_pool_size",
                                      "Configured steady server connections of a pool"};
// Counters
inline constexpr MetricName kTransactions{"pglens_transactions_total",
                                          "Transactions completed through a pool"};
inline constexpr MetricName kServerConnects{"pglens_server_connects_total",
                                            "Server connections opened"};
inline constexpr MetricName kServerConnectFailures{"pglens_server_connect_failures_total",
                                                   "Server connection attempts that failed"};
inline constexpr MetricName kTlsHandshakeFailures{
    "pglens_tls_handshake_failures_total",
    "TLS that failed: side=\"client\" handshakes with clients, side=\"server\" connects to servers "
    "(TLS refused, a handshake or certificate check that failed)"};
inline constexpr MetricName kServerCloses{
    "pglens_server_closes_total",
    "Server connections closed, by reason (recycle, idle, overflow_idle, dirty, ping_failed, "
    "shrink, broken, lost: an idle one the server closed)"};
inline constexpr MetricName kPrePingFailures{"pglens_pre_ping_failures_total",
                                             "Idle server connections found dead by pre-ping"};
inline constexpr MetricName kStateResets{
    "pglens_server_state_resets_total",
    "Server connections reset (server_reset_query) because a client's SQL left session state on "
    "them in transaction or statement mode (SET of an unreported parameter, LISTEN, a temporary "
    "table, an advisory lock...)"};
inline constexpr MetricName kPoolTimeouts{"pglens_pool_timeouts_total",
                                          "Clients that waited pool_timeout and got no connection"};
inline constexpr MetricName kAnalyzerEvents{"pglens_analyzer_events_total",
                                            "Execution events analyzed"};
inline constexpr MetricName kFingerprintCacheHits{"pglens_fingerprint_cache_hits_total",
                                                  "Statements whose fingerprint was cached"};
inline constexpr MetricName kFingerprintCacheMisses{"pglens_fingerprint_cache_misses_total",
                                                    "Statements fingerprinted by libpg_query"};
inline constexpr MetricName kFingerprintStatsEvictions{
    "pglens_fingerprint_stats_evictions_total",
    "Per-fingerprint statistics entries evicted (least recently seen first)"};
// Histogram (registered in ProxyServer's registry, observed by sessions)
inline constexpr MetricName kPoolWait{"pglens_pool_wait_seconds",
                                      "Time a client waited for a server connection from its pool"};
}  // namespace metric

std::string_view to_string(pool::CloseReason reason);

// Builds the families above (but the histogram) from a snapshot of the proxy, taken per scrape.
class ProxyMetrics : public prometheus::Collectable {
 public:
  explicit ProxyMetrics(SnapshotSource snapshot) : snapshot_(std::move(snapshot)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  SnapshotSource snapshot_;
};

}  // namespace pglens::proxy
