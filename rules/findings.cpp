#include "rules/findings.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace pglens::rules {

namespace {
std::string iso8601(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}
}  // namespace

std::string_view to_string(Severity s) {
  switch (s) {
    case Severity::Low:
      return "low";
    case Severity::Medium:
      return "medium";
    case Severity::High:
      return "high";
  }
  return "low";
}

nlohmann::json Finding::to_json() const {
  nlohmann::json j = details;
  j["rule"] = rule;
  j["severity"] = std::string(to_string(severity));
  j["fingerprint"] = fingerprint;
  j["parent"] = parent;  // with rule and fingerprint, what names it (merging replicas' reports)
  j["query"] = query;
  j["database"] = database;
  j["user"] = user;
  j["application_name"] = application_name;
  j["count"] = count;
  j["advice"] = advice;
  j["fix"] = fix;
  j["estimated_savings_ms"] = estimated_savings_ms;
  j["first_seen"] = iso8601(first_seen);
  j["last_seen"] = iso8601(last_seen);
  j["resolved"] = resolved;
  return j;
}

FindingStore::FindingStore(std::shared_ptr<prometheus::Registry> registry, std::size_t max_findings)
    : max_findings_(max_findings == 0 ? 1 : max_findings) {
  if (registry)
    gauge_family_ = &prometheus::BuildGauge()
                         .Name("pglens_findings")
                         .Help("Open findings (not resolved) by rule and severity")
                         .Register(*registry);
}

void FindingStore::report(Finding finding) {
  std::lock_guard lock(mutex_);
  Key key{finding.rule, finding.fingerprint, finding.parent};
  auto it = findings_.find(key);
  if (it == findings_.end()) {
    if (findings_.size() >= max_findings_) {
      // Full: the finding seen longest ago makes room.
      auto oldest = std::min_element(
          findings_.begin(), findings_.end(),
          [](const auto& a, const auto& b) { return a.second.last_seen < b.second.last_seen; });
      findings_.erase(oldest);
    }
    spdlog::warn("advice [{}/{}] {}: {} | fix: {}", finding.rule, to_string(finding.severity),
                 finding.query, finding.advice, finding.fix);
    findings_.emplace(key, std::move(finding));
  } else {
    auto& known = it->second;
    auto first_seen = known.first_seen;
    auto count = known.count + finding.count;
    known = std::move(finding);
    known.first_seen = first_seen;
    known.count = count;
  }
  update_gauges();
}

void FindingStore::resolve(const std::string& rule, const std::string& fingerprint,
                           const std::string& parent) {
  std::lock_guard lock(mutex_);
  auto it = findings_.find(Key{rule, fingerprint, parent});
  if (it == findings_.end() || it->second.resolved) return;
  it->second.resolved = true;
  spdlog::info("advice [{}] resolved: {}", rule, it->second.query);
  update_gauges();
}

std::vector<Finding> FindingStore::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<Finding> out;
  for (const auto& [key, f] : findings_) out.push_back(f);
  std::sort(out.begin(), out.end(), [](const Finding& a, const Finding& b) {
    if (a.resolved != b.resolved) return !a.resolved;
    if (a.severity != b.severity) return a.severity > b.severity;
    return a.estimated_savings_ms > b.estimated_savings_ms;
  });
  return out;
}

void FindingStore::update_gauges() {
  if (gauge_family_ == nullptr) return;
  std::map<std::pair<std::string, Severity>, int> open;
  for (const auto& [key, f] : findings_)
    if (!f.resolved) ++open[{f.rule, f.severity}];
  for (auto& [k, g] : gauges_) g->Set(0);
  for (const auto& [k, n] : open) {
    auto& g = gauges_[k];
    if (g == nullptr)
      g = &gauge_family_->Add({{"rule", k.first}, {"severity", std::string(to_string(k.second))}});
    g->Set(n);
  }
}

}  // namespace pglens::rules
