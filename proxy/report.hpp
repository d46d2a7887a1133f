// `pglens report`: the advice and the top statements of a running pglens, as text a developer
// can paste into a ticket (text, markdown) or as JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pglens::proxy {

enum class ReportFormat { Text, Markdown, Json };

// Renders /api/advice and /api/fingerprints answers. Pure, for tests.
// pools: /api/pools, for the server connections reset after a client left session state on
// them (omitted when empty).
std::string render_report(const nlohmann::json& advice, const nlohmann::json& fingerprints,
                          ReportFormat format, const nlohmann::json& pools = {});

// What one pglens answers: /api/advice, /api/fingerprints, /api/pools.
struct ReplicaAnswers {
  nlohmann::json advice, fingerprints, pools;
};

// Several replicas' answers as one pglens' (pure, for tests). Statements are merged by
// fingerprint, database, user and application: calls, errors, rows and total time summed, mean
// recomputed, min the least, max and the percentiles the greatest of the replicas' (an upper
// bound: the replicas' histograms are not summed), sorted by total time again. Findings are
// merged by rule, fingerprint and parent: counts and estimated savings summed, resolved only
// where every replica has it resolved. Pools by database and user: counters summed.
ReplicaAnswers merge_replicas(const std::vector<ReplicaAnswers>& replicas, std::size_t top = 10);

// Fetches the answers from each of `from` ("http://HOST:PORT"), merges them when there are
// several, and prints the report; returns the exit status.
int run_report(const std::vector<std::string>& from, ReportFormat format);

}  // namespace pglens::proxy
