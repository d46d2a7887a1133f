// pglens' HTTP side (--http HOST:PORT): a page for people at / (proxy/web/index.html), /metrics
// for Prometheus, a JSON API (/api/fingerprints, /api/pools, /api/advice), /healthz (ready: 503
// "draining" while shutting down) and /livez (alive: 200 while the process serves).
// Boost.Beast HTTP/1.1 on the proxy's io_context, a strand per connection, keep-alive, requests
// bounded in size and idle time. GET only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include <prometheus/metric_family.h>

#include "analyzer/analyzer.hpp"
#include "proxy/net.hpp"
#include "proxy/proxy_snapshot.hpp"
#include "rules/advisor.hpp"

namespace pglens::proxy {

// What a route answers, before it becomes an HTTP response.
struct HttpReply {
  unsigned status = 200;
  std::string content_type;
  std::string body;
};

class HttpServer {
 public:
  static constexpr std::size_t kMaxHeaderBytes = 8 * 1024;
  static constexpr std::size_t kMaxBodyBytes = 8 * 1024;
  static constexpr std::chrono::seconds kIdleTimeout{60};

  // What the routes read. analyzer and advisor are null when analysis is off.
  struct Sources {
    SnapshotSource snapshot;                                         // /api/pools
    std::function<std::vector<prometheus::MetricFamily>()> metrics;  // /metrics
    analyzer::Analyzer* analyzer = nullptr;                          // /api/fingerprints
    rules::Advisor* advisor = nullptr;                               // /api/advice
    std::function<bool()> draining;  // /healthz answers 503 while true (shutting down)
  };

  HttpServer(asio::io_context& io, Sources sources);

  // Binds "HOST:PORT" (HOST an address or a name); throws std::runtime_error saying what failed.
  void bind(const std::string& host_port);
  // Starts accepting on the server's io_context (call after bind()).
  void start();
  std::uint16_t port() const { return port_; }

  // The routing, without sockets: method and request-target in, reply out.
  HttpReply handle(std::string_view method, std::string_view target) const;

 private:
  awaitable<void> accept_loop();
  awaitable<void> serve(tcp::socket socket);

  HttpReply metrics() const;
  HttpReply fingerprints(std::string_view query) const;
  HttpReply pools() const;
  HttpReply advice() const;

  asio::io_context& io_;
  Sources sources_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
};

// A JSON reply: the body is j.dump() (invalid UTF-8 replaced), Content-Type application/json.
HttpReply json_reply(unsigned status, const nlohmann::json& j);

}  // namespace pglens::proxy
