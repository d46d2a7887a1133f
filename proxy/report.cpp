#include "proxy/report.hpp"

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <iostream>
#include <sstream>

namespace pglens::proxy {

namespace {
namespace beast = boost::beast;
namespace http = beast::http;
using nlohmann::json;

// GET a path from http://HOST:PORT; throws with a readable message.
json fetch(const std::string& from, const std::string& path) {
  std::string rest = from;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  auto colon = rest.rfind(':');
  if (colon == std::string::npos)
    throw std::runtime_error("--from: expected http://HOST:PORT, got \"" + from + "\"");
  std::string host = rest.substr(0, colon), port = rest.substr(colon + 1);
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(10));
  stream.connect(resolver.resolve(host, port));
  http::request<http::string_body> req{http::verb::get, path, 11};
  req.set(http::field::host, host);
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  if (res.result() != http::status::ok)
    throw std::runtime_error(path + " answered " + std::to_string(res.result_int()) + ": " +
                             res.body());
  return json::parse(res.body());
}

std::string indent(const std::string& text, const std::string& prefix) {
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out += prefix + line + "\n";
  return out;
}

std::string str(const json& j, const char* key) {
  if (!j.contains(key)) return "";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

// A fingerprint's grade against the standard for its class: "ok (indexed < 10 ms)",
// "over 3.2x (primary_key_lookup < 1 ms, plan)", "avoid (full_scan, plan)", "n/a (write)".
std::string grade_text(const json& row) {
  auto st = row.value("standard", json::object());
  if (!st.is_object() || st.empty()) return "";
  auto cls = st.value("class", std::string("other"));
  auto grade = st.value("grade", std::string("n/a"));
  std::string text = grade;
  if (grade == "over" && st.value("over_by", json()).is_number())
    text = fmt::format("over {:.1f}x", st["over_by"].get<double>());
  std::string why = cls;
  if (st.value("limit_ms", json()).is_number())
    why += fmt::format(" < {:g} ms", st["limit_ms"].get<double>());
  if (st.value("basis", std::string()) == "plan") why += ", plan";
  return text + " (" + why + ")";
}

double pool_wait_p95(const json& row) {
  auto w = row.value("pool_wait", json::object());
  return w.is_object() ? w.value("p95_ms", 0.0) : 0.0;
}
}  // namespace

std::string render_report(const json& advice, const json& fingerprints, ReportFormat format,
                          const json& pools) {
  auto findings = advice.value("findings", json::array());
  auto top = fingerprints.value("fingerprints", json::array());
  json resets = json::array();
  if (pools.is_object())
    for (const auto& p : pools.value("pools", json::array()))
      if (p.value("state_resets", 0) > 0)
        resets.push_back({{"database", p.value("database", "")},
                          {"user", p.value("user", "")},
                          {"state_resets", p.value("state_resets", 0)}});
  if (format == ReportFormat::Json)
    return json{{"findings", findings}, {"fingerprints", top}, {"state_resets", resets}}.dump(2) +
           "\n";

  bool md = format == ReportFormat::Markdown;
  std::string out = md ? "# pglens report\n\n" : "pglens report\n=============\n\n";
  std::size_t open = 0;
  for (const auto& f : findings) open += f.value("resolved", false) ? 0 : 1;
  out += fmt::format("{} finding(s), {} open.\n\n", findings.size(), open);
  int n = 0;
  for (const auto& f : findings) {
    ++n;
    std::string title = fmt::format("{}. [{}] {}{}", n, str(f, "severity"), str(f, "rule"),
                                    f.value("resolved", false) ? " (resolved)" : "");
    out += md ? "## " + title + "\n\n" : title + "\n" + std::string(title.size(), '-') + "\n";
    out += md ? "Query: `" + str(f, "query") + "`\n\n" : "Query:   " + str(f, "query") + "\n";
    out += md ? str(f, "advice") + "\n\n" : "Advice:  " + str(f, "advice") + "\n";
    std::string evidence;
    for (const char* key :
         {"parent_query", "parent_column", "executions_per_occurrence", "table", "columns", "rows",
          "transactions", "round_trips", "cost_before", "cost_after", "table_rows", "hit_rate",
          "calls", "distinct_keys", "result_changes", "suggested_ttl_s", "saved_ms"})
      if (f.contains(key)) evidence += fmt::format("{}={} ", key, str(f, key));
    evidence += fmt::format("count={} estimated_savings_ms={:.1f}", f.value("count", 0),
                            f.value("estimated_savings_ms", 0.0));
    out += md ? "Evidence: " + evidence + "\n\nFix:\n\n```sql\n" + str(f, "fix") + "\n```\n\n"
              : "Evidence: " + evidence + "\nFix:\n" + indent(str(f, "fix"), "    ") + "\n";
  }
  // The p95 graded against the guide's standard for the statement's class, and the p95 of the
  // time its calls waited for a server connection.
  out += md ? "## Top statements by total time\n\n| calls | total ms | p95 ms | standard (p95) | "
              "pool wait p95 ms | query |\n|---:|---:|---:|---|---:|---|\n"
            : "Top statements by total time\n----------------------------\n";
  for (const auto& s : top) {
    auto q = str(s, "query");
    if (md)
      out += fmt::format("| {} | {:.1f} | {:.2f} | {} | {:.2f} | `{}` |\n", s.value("calls", 0),
                         s.value("total_ms", 0.0), s.value("p95_ms", 0.0), grade_text(s),
                         pool_wait_p95(s), q);
    else
      out += fmt::format(
          "{:>8} calls {:>10.1f} ms  p95 {:>8.2f} ms  {:<40}  pool wait p95 {:>7.2f} ms  {}\n",
          s.value("calls", 0), s.value("total_ms", 0.0), s.value("p95_ms", 0.0), grade_text(s),
          pool_wait_p95(s), q);
  }
  if (!resets.empty()) {
    out += md ? "\n## Session state left on server connections\n\n"
              : "\nSession state left on server connections\n"
                "----------------------------------------\n";
    out +=
        "Clients changed session state (a SET of a parameter the server does not report, "
        "LISTEN, a temporary table, an advisory lock...) that would have reached the next "
        "client of the connection; pglens reset each such connection first. Use SET LOCAL "
        "inside a transaction, or session mode, for state that should last.\n";
    for (const auto& r : resets)
      out += fmt::format("{}{}/{}: {} reset(s)\n", md ? "- " : "  ", str(r, "database"),
                         str(r, "user"), r.value("state_resets", 0));
  }
  return out;
}

int run_report(const std::string& from, ReportFormat format) {
  try {
    auto advice = fetch(from, "/api/advice");
    auto fingerprints = fetch(from, "/api/fingerprints?sort=total_time&limit=10");
    auto pools = fetch(from, "/api/pools");
    std::cout << render_report(advice, fingerprints, format, pools);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "pglens report: cannot read " << from << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace pglens::proxy
