// pglens' HTTP server (--http): HTTP/1.1 behaviour (keep-alive, limits, methods, errors), the
// /api/fingerprints parameters, and the pool gauges and pool-wait histogram while a client waits.
// pgbench, promtool and a real Prometheus are driven by the metrics_*.sh scripts.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/test_env.hpp"

namespace pglens::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

// Splits what came back on one connection into responses (each with a Content-Length).
std::vector<HttpResponse> parse_responses(const std::string& bytes) {
  std::vector<HttpResponse> out;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    auto head_end = bytes.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) break;
    std::istringstream head(bytes.substr(pos, head_end - pos));
    HttpResponse r;
    std::string line;
    std::getline(head, line);
    std::smatch m;
    if (!std::regex_search(line, m, std::regex(R"(^HTTP/1\.[01] (\d{3}))"))) break;
    r.status = std::stoi(m[1]);
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      auto name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[name] = value;
    }
    std::size_t length =
        r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    r.body = bytes.substr(head_end + 4, length);
    pos = head_end + 4 + length;
    out.push_back(std::move(r));
  }
  return out;
}

std::string get_request(const std::string& target, bool close = false,
                        const std::string& method = "GET") {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
         (close ? "Connection: close\r\n" : "") + "\r\n";
}

class MetricsHttp : public ::testing::Test {
 protected:
  std::uint16_t http_port = free_port();
  Proxy proxy{{"--upstream", Cluster::get().url(), "--pool-mode", "transaction", "--pool-size", "1",
               "--max-overflow", "0", "--http", "127.0.0.1:" + std::to_string(http_port)}};

  // One request on a connection of its own.
  HttpResponse request(const std::string& target, const std::string& method = "GET") {
    RawSocket s(http_port);
    s.send(get_request(target, true, method));
    auto bytes = s.read_until_closed(5s);
    EXPECT_TRUE(s.closed()) << "Connection: close, yet the connection stayed open";
    auto responses = parse_responses(std::string(bytes.begin(), bytes.end()));
    EXPECT_EQ(responses.size(), 1u) << std::string(bytes.begin(), bytes.end());
    return responses.empty() ? HttpResponse{} : responses.front();
  }

  // The value of one sample in /metrics ("name{labels}" exactly as exposed), or -1.
  double sample(const std::string& series) {
    auto body = request("/metrics").body;
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);)
      if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return -1;
  }
};

TEST_F(MetricsHttp, KeepAliveServesPipelinedRequestsOnOneConnection) {
  RawSocket s(http_port);
  s.send(get_request("/healthz") + get_request("/api/pools") + get_request("/metrics"));
  auto bytes = s.read_until_closed(1500ms);
  EXPECT_FALSE(s.closed()) << "a keep-alive connection was closed";
  auto responses = parse_responses(std::string(bytes.begin(), bytes.end()));
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[0].status, 200);
  EXPECT_EQ(responses[0].body, "ok\n");
  EXPECT_EQ(responses[1].status, 200);
  EXPECT_EQ(responses[1].headers["content-type"], "application/json");
  EXPECT_TRUE(json::parse(responses[1].body).contains("pools"));
  EXPECT_EQ(responses[2].status, 200);
  EXPECT_EQ(responses[2].headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(responses[2].body.find("# TYPE pglens_pool_wait_seconds histogram"), std::string::npos);
  // The same connection serves on, and closes when asked to.
  s.send(get_request("/healthz", true));
  bytes = s.read_until_closed(5s);
  EXPECT_TRUE(s.closed());
  responses = parse_responses(std::string(bytes.begin(), bytes.end()));
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].status, 200);
}

TEST_F(MetricsHttp, OversizedAndMalformedRequestsAreRefused) {
  {
    RawSocket s(http_port);
    s.send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(64 * 1024, 'a') +
           "\r\n\r\n");
    auto bytes = s.read_until_closed(5s);
    auto responses = parse_responses(std::string(bytes.begin(), bytes.end()));
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].status, 413);
    EXPECT_TRUE(s.closed());
  }
  {
    RawSocket s(http_port);
    s.send("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" +
           std::string(16 * 1024, 'b'));
    auto bytes = s.read_until_closed(5s);
    auto responses = parse_responses(std::string(bytes.begin(), bytes.end()));
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].status, 413);
    EXPECT_TRUE(s.closed());
  }
  {
    RawSocket s(http_port);
    s.send("this is not HTTP\r\n\r\n");
    auto bytes = s.read_until_closed(5s);
    auto responses = parse_responses(std::string(bytes.begin(), bytes.end()));
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].status, 400);
    EXPECT_TRUE(s.closed());
  }
  // The server is still there.
  EXPECT_EQ(request("/healthz").status, 200);
}

TEST_F(MetricsHttp, MethodsAndUnknownPaths) {
  auto post = request("/metrics", "POST");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET");
  EXPECT_EQ(request("/api/fingerprints", "HEAD").status, 405);
  auto missing = request("/api/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.headers["content-type"], "application/json");
  EXPECT_TRUE(json::parse(missing.body).contains("error"));
  EXPECT_EQ(request("/api").status, 404);
}

TEST_F(MetricsHttp, PageAtRoot) {
  auto page = request("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_NE(page.headers["content-security-policy"].find("connect-src 'self'"), std::string::npos);
  EXPECT_NE(page.body.find("<title>pglens</title>"), std::string::npos);
  EXPECT_NE(page.body.find("/api/fingerprints"), std::string::npos);
  EXPECT_EQ(request("/index.html").body, page.body);
  EXPECT_EQ(request("/", "POST").status, 405);
}

TEST_F(MetricsHttp, FingerprintsSortAndLimit) {
  auto c = connect(proxy.conninfo("postgres", "pglens_test", "application_name=metrics-test"));
  for (int i = 0; i < 5; ++i) exec(c.get(), "SELECT " + std::to_string(i) + " AS five_times");
  for (int i = 0; i < 2; ++i) exec(c.get(), "SELECT pg_sleep(0.05), 'twice_slow'");
  // The analyzer is asynchronous.
  json rows;
  for (int i = 0; i < 100; ++i) {
    rows = json::parse(request("/api/fingerprints?sort=calls").body)["fingerprints"];
    std::uint64_t calls = 0;
    for (const auto& r : rows) calls += r["calls"].get<std::uint64_t>();
    if (calls >= 7) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_GE(rows.size(), 2u);
  EXPECT_EQ(rows[0]["query"], "SELECT $1 AS five_times");
  EXPECT_EQ(rows[0]["calls"], 5);
  EXPECT_EQ(rows[0]["application_name"], "metrics-test");
  EXPECT_EQ(rows[0]["database"], "pglens_test");
  EXPECT_EQ(rows[0]["user"], "postgres");
  EXPECT_EQ(rows[0]["command"], "SELECT");
  // The latency histogram: as many bounds as counts, rising, the counts adding up to the calls.
  const auto& histogram = rows[0]["histogram"];
  ASSERT_EQ(histogram["le_ms"].size(), histogram["counts"].size());
  std::uint64_t counted = 0;
  for (std::size_t i = 0; i < histogram["counts"].size(); ++i) {
    counted += histogram["counts"][i].get<std::uint64_t>();
    if (i > 0) {
      EXPECT_LT(histogram["le_ms"][i - 1].get<double>(), histogram["le_ms"][i].get<double>());
    }
  }
  EXPECT_EQ(counted, 5u);
  EXPECT_TRUE(
      std::regex_match(rows[0]["fingerprint"].get<std::string>(), std::regex("[0-9a-f]{16}")));
  EXPECT_TRUE(std::regex_match(rows[0]["last_seen"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));

  auto by_time = json::parse(request("/api/fingerprints").body)["fingerprints"];
  ASSERT_GE(by_time.size(), 2u);
  EXPECT_EQ(by_time[0]["query"], "SELECT pg_sleep($1), $2");
  EXPECT_GE(by_time[0]["total_ms"].get<double>(), 100.0);
  EXPECT_GE(by_time[0]["p99_ms"].get<double>(), 40.0);
  auto by_p99 = json::parse(request("/api/fingerprints?sort=p99&limit=1").body)["fingerprints"];
  ASSERT_EQ(by_p99.size(), 1u);
  EXPECT_EQ(by_p99[0]["query"], "SELECT pg_sleep($1), $2");

  for (auto bad : {"sort=slowest", "limit=0", "limit=abc", "limit=", "limit=1000001"}) {
    auto r = request(std::string("/api/fingerprints?") + bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_TRUE(json::parse(r.body).contains("error")) << bad;
  }
}

TEST_F(MetricsHttp, WaitingClientShowsInGaugesAndPoolWaitHistogram) {
  // Pool of one: while the first client holds the connection in a transaction, the second waits.
  // (Both log in first: a login takes a server connection too.)
  auto holder = connect(proxy.conninfo());
  auto waiter = connect(proxy.conninfo());
  exec(holder.get(), "BEGIN");
  exec(holder.get(), "SELECT 1");
  ASSERT_TRUE(PQsendQuery(waiter.get(), "SELECT 'waited'"));
  const std::string pool = R"({database="pglens_test",user="postgres"})";
  double waiting = 0;
  for (int i = 0; i < 100 && waiting < 1; ++i) {
    waiting = sample("pglens_waiting_clients" + pool);
    if (waiting < 1) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(waiting, 1);
  EXPECT_EQ(sample(R"(pglens_client_connections{state="waiting"})"), 1);
  EXPECT_EQ(sample(R"(pglens_client_connections{state="active"})"), 1);
  EXPECT_EQ(
      sample(R"(pglens_server_connections{database="pglens_test",user="postgres",state="active"})"),
      1);
  auto pools = json::parse(request("/api/pools").body)["pools"];
  ASSERT_EQ(pools.size(), 1u);
  EXPECT_EQ(pools[0]["waiting"], 1);
  EXPECT_EQ(pools[0]["active"], 1);
  EXPECT_EQ(pools[0]["pool_mode"], "transaction");
  EXPECT_EQ(pools[0]["pool_size"], 1);

  std::this_thread::sleep_for(300ms);
  exec(holder.get(), "COMMIT");
  auto r = Result(PQgetResult(waiter.get()));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(waiter.get());
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), "waited");
  while (auto* more = PQgetResult(waiter.get())) PQclear(more);

  // One wait of at least 300 ms: above the 0.25 s bucket, within the 0.5 s... 10 s ones.
  double count = sample("pglens_pool_wait_seconds_count");
  EXPECT_GE(count, 3);  // two logins and the queries' attaches
  EXPECT_GE(sample("pglens_pool_wait_seconds_sum"), 0.3);
  EXPECT_LE(sample(R"(pglens_pool_wait_seconds_bucket{le="0.25"})"), count - 1);
  EXPECT_EQ(sample(R"(pglens_pool_wait_seconds_bucket{le="+Inf"})"), count);
  EXPECT_EQ(sample("pglens_waiting_clients" + pool), 0);
  EXPECT_GE(json::parse(request("/api/pools").body)["pools"][0]["max_wait_ms"].get<double>(),
            300.0);
}

}  // namespace
}  // namespace pglens::test
