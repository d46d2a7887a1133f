#include "proxy/report.hpp"

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <iostream>
#include <map>
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

// ---- merging replicas ----

double num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

// a[key] + b[key] into out, an integer when both are.
void sum(json& out, const json& a, const json& b, const char* key) {
  auto x = a.find(key), y = b.find(key);
  if (x == a.end() && y == b.end()) return;
  bool integers =
      (x == a.end() || x->is_number_integer()) && (y == b.end() || y->is_number_integer());
  if (integers)
    out[key] =
        (x == a.end() ? 0 : x->get<std::int64_t>()) + (y == b.end() ? 0 : y->get<std::int64_t>());
  else
    out[key] = num(a, key) + num(b, key);
}

template <class Pick>
void pick(json& out, const json& a, const json& b, const char* key, Pick better) {
  auto x = a.find(key), y = b.find(key);
  if (x == a.end() || y == b.end()) return;  // out already has whichever there is
  out[key] = better(*x, *y) ? *x : *y;
}

bool greater_number(const json& x, const json& y) {
  return x.get<double>() >= y.get<double>();
}
bool less_number(const json& x, const json& y) {
  return x.get<double>() <= y.get<double>();
}
// ISO 8601 times in UTC compare as strings.
bool earlier(const json& x, const json& y) {
  return x.get<std::string>() <= y.get<std::string>();
}
bool later(const json& x, const json& y) {
  return x.get<std::string>() >= y.get<std::string>();
}

std::string statement_key(const json& s) {
  return str(s, "fingerprint") + '\x1f' + str(s, "database") + '\x1f' + str(s, "user") + '\x1f' +
         str(s, "application_name");
}

json merge_statement(const json& a, const json& b) {
  json out = num(b, "calls") > num(a, "calls") ? b : a;  // the rest from the busier replica
  for (const char* key : {"calls", "errors", "rows", "total_ms"}) sum(out, a, b, key);
  pick(out, a, b, "min_ms", less_number);
  // Percentiles cannot be summed: the greatest is an upper bound of the merged one.
  for (const char* key : {"max_ms", "p50_ms", "p95_ms", "p99_ms"})
    pick(out, a, b, key, greater_number);
  pick(out, a, b, "first_seen", earlier);
  pick(out, a, b, "last_seen", later);
  if (num(out, "calls") > 0) out["mean_ms"] = num(out, "total_ms") / num(out, "calls");
  return out;
}

std::string finding_key(const json& f) {
  std::string parent = f.contains("parent")         ? str(f, "parent")
                       : f.contains("parent_query") ? str(f, "parent_query")
                                                    : str(f, "table");
  return str(f, "rule") + '\x1f' + str(f, "fingerprint") + '\x1f' + parent;
}

json merge_finding(const json& a, const json& b) {
  json out = num(b, "count") > num(a, "count") ? b : a;  // evidence from the one seen most
  for (const char* key : {"count", "estimated_savings_ms"}) sum(out, a, b, key);
  pick(out, a, b, "first_seen", earlier);
  pick(out, a, b, "last_seen", later);
  out["resolved"] = a.value("resolved", false) && b.value("resolved", false);
  return out;
}

json merge_pool(const json& a, const json& b) {
  json out = a;
  for (const auto& [key, value] : b.items()) {
    if (!value.is_number() || key == "pool_size" || key == "min_pool_size" ||
        key == "max_overflow" || key == "avg_wait_ms" || key == "max_wait_ms")
      continue;
    sum(out, a, b, key.c_str());
  }
  pick(out, a, b, "max_wait_ms", greater_number);
  double waits = num(a, "waits") + num(b, "waits");
  if (waits > 0)
    out["avg_wait_ms"] =
        (num(a, "avg_wait_ms") * num(a, "waits") + num(b, "avg_wait_ms") * num(b, "waits")) / waits;
  return out;
}

// Merges the array `field` of each replica's `part` by `key_of`, in first-seen order.
template <class Key, class Merge>
json merge_rows(const std::vector<ReplicaAnswers>& replicas, json ReplicaAnswers::*part,
                const char* field, Key key_of, Merge merge) {
  json rows = json::array();
  std::map<std::string, std::size_t> index;
  for (const auto& r : replicas) {
    const json& answer = r.*part;
    if (!answer.is_object()) continue;
    for (const auto& row : answer.value(field, json::array())) {
      auto [it, fresh] = index.emplace(key_of(row), rows.size());
      if (fresh)
        rows.push_back(row);
      else
        rows[it->second] = merge(rows[it->second], row);
    }
  }
  return rows;
}
}  // namespace

ReplicaAnswers merge_replicas(const std::vector<ReplicaAnswers>& replicas, std::size_t top) {
  auto statements = merge_rows(replicas, &ReplicaAnswers::fingerprints, "fingerprints",
                               statement_key, merge_statement);
  std::stable_sort(statements.begin(), statements.end(), [](const json& x, const json& y) {
    return num(x, "total_ms") > num(y, "total_ms");
  });
  if (statements.size() > top)
    statements.erase(statements.begin() + static_cast<std::ptrdiff_t>(top), statements.end());
  auto findings =
      merge_rows(replicas, &ReplicaAnswers::advice, "findings", finding_key, merge_finding);
  std::stable_sort(findings.begin(), findings.end(), [](const json& x, const json& y) {
    return num(x, "estimated_savings_ms") > num(y, "estimated_savings_ms");
  });
  auto pools = merge_rows(
      replicas, &ReplicaAnswers::pools, "pools",
      [](const json& p) { return str(p, "database") + '\x1f' + str(p, "user"); }, merge_pool);
  bool analysis = false;
  for (const auto& r : replicas)
    analysis = analysis || (r.advice.is_object() && r.advice.value("analysis", false));
  ReplicaAnswers out;
  out.advice = {{"analysis", analysis}, {"findings", std::move(findings)}};
  out.fingerprints = {{"fingerprints", std::move(statements)}, {"analysis", analysis}};
  out.pools = {{"pools", std::move(pools)}};
  return out;
}

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

  auto replicas = advice.value("replicas", json::array());
  if (format == ReportFormat::Json) {
    json j{{"findings", findings}, {"fingerprints", top}, {"state_resets", resets}};
    if (!replicas.empty()) j["replicas"] = replicas;
    return j.dump(2) + "\n";
  }

  bool md = format == ReportFormat::Markdown;
  std::string out = md ? "# pglens report\n\n" : "pglens report\n=============\n\n";
  if (!replicas.empty()) {
    std::string names;
    for (const auto& r : replicas) names += (names.empty() ? "" : ", ") + r.get<std::string>();
    out += fmt::format(
        "{} replicas merged: {}. Counts and times are summed; p95 is the highest of the "
        "replicas' (an upper bound).\n\n",
        replicas.size(), names);
  }
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

int run_report(const std::vector<std::string>& from, ReportFormat format) {
  std::vector<ReplicaAnswers> answers;
  for (const auto& url : from) {
    try {
      // Each replica's whole table when merging: a statement outside one replica's top ten may
      // be in the top ten of them all.
      auto limit = from.size() > 1 ? "100000" : "10";
      answers.push_back(
          {fetch(url, "/api/advice"),
           fetch(url, std::string("/api/fingerprints?sort=total_time&limit=") + limit),
           fetch(url, "/api/pools")});
    } catch (const std::exception& e) {
      std::cerr << "pglens report: cannot read " << url << ": " << e.what() << "\n";
      return 1;
    }
  }
  if (answers.size() == 1) {
    std::cout << render_report(answers[0].advice, answers[0].fingerprints, format,
                               answers[0].pools);
    return 0;
  }
  auto merged = merge_replicas(answers);
  merged.advice["replicas"] = from;
  std::cout << render_report(merged.advice, merged.fingerprints, format, merged.pools);
  return 0;
}

}  // namespace pglens::proxy
