#include "proxy/http_server.hpp"

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <charconv>
#include <ctime>
#include <stdexcept>

#include "proxy/proxy_metrics.hpp"
#include "proxy/web/page.hpp"

namespace pglens::proxy {

namespace {
namespace beast = boost::beast;
namespace http = beast::http;
using json = nlohmann::json;

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kText = "text/plain; charset=utf-8";
constexpr std::string_view kHtml = "text/html; charset=utf-8";
// The page shows statement texts clients sent: it builds its DOM from text nodes, and this keeps
// any script but its own from running, and it from reaching anything but pglens' API.
constexpr std::string_view kPagePolicy =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";
constexpr std::string_view kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::size_t kDefaultLimit = 100, kMaxLimit = 100'000;

std::string dump(const json& j) {
  // Statement text is whatever clients sent: invalid UTF-8 is replaced, never an exception.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

HttpReply error_reply(unsigned status, std::string message) {
  return json_reply(status, json{{"error", std::move(message)}});
}

std::string iso8601(std::chrono::system_clock::time_point tp) {
  auto secs = std::chrono::floor<std::chrono::seconds>(tp);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp - secs).count();
  std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buf[40];
  auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The value of `name` in a query string, percent-decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq)) != name) continue;
    return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

double ms(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

json or_null(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

json standard_json(const analyzer::StandardGrade& g) {
  return {{"class", std::string(to_string(g.cls))},
          {"limit_ms", or_null(g.limit_ms)},
          {"grade", std::string(to_string(g.grade))},
          {"over_by", or_null(g.over_by)},
          {"basis", g.from_plan ? "plan" : "shape"}};
}

// Upper bounds (null: +infinity, the bucket past 100 s) and non-cumulative counts.
}  // namespace

HttpReply json_reply(unsigned status, const json& j) {
  return {status, std::string(kJson), dump(j)};
}

HttpServer::HttpServer(asio::io_context& io, Sources sources)
    : io_(io), sources_(std::move(sources)), acceptor_(io) {}

void HttpServer::bind(const std::string& host_port) {
  auto hp = config::parse_host_port(host_port);
  if (!hp) throw std::runtime_error("--http: expected HOST:PORT, got \"" + host_port + "\"");
  try {
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(hp->first, std::to_string(hp->second),
                                    tcp::resolver::numeric_service | tcp::resolver::passive);
    if (results.empty()) throw boost::system::system_error(asio::error::host_not_found);
    tcp::endpoint endpoint = *results.begin();
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    port_ = acceptor_.local_endpoint().port();
  } catch (const boost::system::system_error& e) {
    error_code ignored;
    acceptor_.close(ignored);
    throw std::runtime_error("cannot listen for HTTP (--http) on " + host_port + ": " +
                             e.code().message());
  }
}

void HttpServer::start() {
  if (!acceptor_.is_open()) return;
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
  spdlog::info(
      "HTTP (the page at /, /metrics, /api/fingerprints, /api/pools, /api/advice, /healthz, "
      "/livez) on port {}",
      port_);
}

awaitable<void> HttpServer::accept_loop() {
  while (acceptor_.is_open()) {
    auto strand = asio::make_strand(io_);
    auto [ec, socket] = co_await acceptor_.async_accept(strand, use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      spdlog::warn("HTTP accept failed: {}", ec.message());
      continue;
    }
    asio::co_spawn(strand, serve(std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::warn("HTTP connection ended by an error: {}", ex.what());
      }
    });
  }
}

awaitable<void> HttpServer::serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer(kMaxHeaderBytes + kMaxBodyBytes);
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(kMaxHeaderBytes));
    parser.body_limit(kMaxBodyBytes);
    stream.expires_after(kIdleTimeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_nothrow);
    HttpReply reply;
    bool keep_alive = false;
    unsigned version = 11;
    bool refused = false;  // the request was not read whole: unread bytes may follow
    if (ec == http::error::header_limit || ec == http::error::body_limit ||
        ec == http::error::buffer_overflow) {
      reply = error_reply(413, "request too large");
      refused = true;
    } else if (ec && ec.category() == http::make_error_code(http::error::bad_target).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      reply = error_reply(400, "bad request: " + ec.message());
      refused = true;
    } else if (ec) {
      break;  // closed, reset, timed out
    } else {
      const auto& req = parser.get();
      reply = handle(std::string_view(req.method_string().data(), req.method_string().size()),
                     std::string_view(req.target().data(), req.target().size()));
      keep_alive = req.keep_alive();
      version = req.version();
    }
    http::response<http::string_body> res{static_cast<http::status>(reply.status), version};
    res.set(http::field::server, "pglens");
    res.set(http::field::content_type, reply.content_type);
    if (reply.content_type == kHtml) {
      res.set("Content-Security-Policy", kPagePolicy);
      res.set(http::field::cache_control, "no-cache");
    }
    if (reply.status == 405) res.set(http::field::allow, "GET");
    res.keep_alive(keep_alive);
    res.body() = std::move(reply.body);
    res.prepare_payload();
    stream.expires_after(kIdleTimeout);
    auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
    if (!wec && refused) {
      // Closing with unread input would reset the connection and could destroy the answer on its
      // way: send FIN, then read and drop what the client still sends, for a bounded time.
      error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream.expires_after(std::chrono::seconds(2));
      std::array<char, 4096> sink;
      for (std::size_t drained = 0; drained < 1024 * 1024;) {
        auto [rec, rn] = co_await stream.async_read_some(asio::buffer(sink), use_nothrow);
        if (rec) break;
        drained += rn;
      }
    }
    if (wec || !keep_alive) break;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.socket().close(ignored);
}

HttpReply HttpServer::advice() const {
  auto* advisor = sources_.advisor;
  nlohmann::json findings = nlohmann::json::array();
  if (advisor != nullptr)
    for (const auto& f : advisor->findings().snapshot()) findings.push_back(f.to_json());
  return json_reply(200, {{"analysis", advisor != nullptr}, {"findings", findings}});
}

HttpReply HttpServer::handle(std::string_view method, std::string_view target) const {
  auto q = target.find('?');
  auto path = target.substr(0, q);
  auto query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  enum class Route { Page, Metrics, Fingerprints, Pools, Advice, Health, Live };
  Route route;
  if (path == "/" || path == "/index.html")
    route = Route::Page;
  else if (path == "/metrics")
    route = Route::Metrics;
  else if (path == "/api/fingerprints")
    route = Route::Fingerprints;
  else if (path == "/api/pools")
    route = Route::Pools;
  else if (path == "/api/advice")
    route = Route::Advice;
  else if (path == "/healthz")
    route = Route::Health;
  else if (path == "/livez")
    route = Route::Live;
  else
    return error_reply(
        404,
        "not found: " + std::string(path) +
            " (try /, /metrics, /api/fingerprints, /api/pools, /api/advice, /healthz, /livez)");
  if (method != "GET") return error_reply(405, "method not allowed: only GET");
  try {
    switch (route) {
      case Route::Page:
        return {200, std::string(kHtml), std::string(web::index_html())};
      case Route::Metrics:
        return metrics();
      case Route::Fingerprints:
        return fingerprints(query);
      case Route::Pools:
        return pools();
      case Route::Health:
        // A load balancer or Kubernetes' readiness probe stops sending clients here.
        if (sources_.draining && sources_.draining())
          return {503, std::string(kText), "draining\n"};
        return {200, std::string(kText), "ok\n"};
      case Route::Live:
        return {200, std::string(kText), "ok\n"};
      case Route::Advice:
        return advice();
    }
  } catch (const std::exception& e) {
    spdlog::error("HTTP {}: {}", path, e.what());
    return error_reply(500, e.what());
  }
  return error_reply(404, "not found");
}

HttpReply HttpServer::metrics() const {
  prometheus::TextSerializer serializer;
  return {200, std::string(kPrometheusText), serializer.Serialize(sources_.metrics())};
}

HttpReply HttpServer::fingerprints(std::string_view query) const {
  analyzer::SortBy sort = analyzer::SortBy::TotalTime;
  if (auto s = query_param(query, "sort")) {
    if (*s == "total_time")
      sort = analyzer::SortBy::TotalTime;
    else if (*s == "calls")
      sort = analyzer::SortBy::Calls;
    else if (*s == "p99")
      sort = analyzer::SortBy::P99;
    else
      return error_reply(400, "sort must be total_time, calls or p99, got \"" + *s + "\"");
  }
  std::size_t limit = kDefaultLimit;
  if (auto l = query_param(query, "limit")) {
    auto [p, ec] = std::from_chars(l->data(), l->data() + l->size(), limit);
    if (l->empty() || ec != std::errc() || p != l->data() + l->size() || limit == 0 ||
        limit > kMaxLimit)
      return error_reply(400, "limit must be an integer from 1 to " + std::to_string(kMaxLimit) +
                                  ", got \"" + *l + "\"");
  }
  json rows = json::array();
  auto* analyzer = sources_.analyzer;
  if (analyzer == nullptr)
    return json_reply(200, json{{"fingerprints", rows}, {"analysis", false}});
  for (const auto& r : analyzer->fingerprints(sort, limit)) {
    rows.push_back({{"fingerprint", r.fingerprint},
                    {"query", r.query},
                    {"command", r.command},
                    {"database", r.database},
                    {"user", r.user},
                    {"application_name", r.application_name},
                    {"calls", r.calls},
                    {"errors", r.errors},
                    {"rows", r.rows},
                    {"total_ms", r.total_ms},
                    {"min_ms", r.min_ms},
                    {"max_ms", r.max_ms},
                    {"mean_ms", r.mean_ms},
                    {"p50_ms", r.p50_ms},
                    {"p95_ms", r.p95_ms},
                    {"p99_ms", r.p99_ms},
                    {"histogram", {{"le_ms", r.histogram_le_ms}, {"counts", r.histogram_counts}}},
                    {"first_seen", iso8601(r.first_seen)},
                    {"last_seen", iso8601(r.last_seen)},
                    {"standard", standard_json(r.standard)},
                    {"pool_wait",
                     {{"total_ms", r.pool_wait_total_ms},
                      {"mean_ms", r.pool_wait_mean_ms},
                      {"p95_ms", r.pool_wait_p95_ms},
                      {"max_ms", r.pool_wait_max_ms}}}});
  }
  return json_reply(200, json{{"fingerprints", std::move(rows)}, {"analysis", true}});
}

HttpReply HttpServer::pools() const {
  auto snapshot = sources_.snapshot();
  json rows = json::array();
  for (const auto& pool : snapshot.pools) {
    const auto& stats = pool.stats;
    json closes = json::object();
    for (const auto& [reason, n] : stats.closes) closes[std::string(to_string(reason))] = n;
    const auto& t = pool.traffic;
    rows.push_back({{"database", pool.key.database},
                    {"user", pool.key.user},
                    {"server_database", pool.server_database},
                    {"server_user", pool.server_user},
                    {"pool_mode", to_string(pool.mode)},
                    {"pool_size", pool.settings.pool_size},
                    {"min_pool_size", pool.settings.min_pool_size},
                    {"max_overflow", pool.settings.max_overflow},
                    {"active", pool.counts.active},
                    {"idle", pool.counts.idle},
                    {"connecting", pool.counts.connecting},
                    {"pinging", pool.counts.pinging},
                    {"waiting", pool.counts.waiting},
                    {"server_connects", stats.server_connects},
                    {"connect_failures", stats.connect_failures},
                    {"pool_timeouts", stats.pool_timeouts},
                    {"pre_ping_failures", stats.pre_ping_failures},
                    {"closes", std::move(closes)},
                    {"transactions", t.transactions},
                    {"queries", t.queries},
                    {"state_resets", t.state_resets},
                    {"bytes_received", t.bytes_received},
                    {"bytes_sent", t.bytes_sent},
                    {"waits", stats.waits},
                    {"avg_wait_ms", stats.waits == 0 ? 0.0 : ms(stats.total_wait) / stats.waits},
                    {"max_wait_ms", ms(stats.max_wait)}});
  }
  return json_reply(200, json{{"pools", std::move(rows)}});
}

}  // namespace pglens::proxy
