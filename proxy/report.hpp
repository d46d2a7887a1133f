// `pglens report`: the advice and the top statements of a running pglens, as text a developer
// can paste into a ticket (text, markdown) or as JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace pglens::proxy {

enum class ReportFormat { Text, Markdown, Json };

// Renders /api/advice and /api/fingerprints answers. Pure, for tests.
// pools: /api/pools, for the server connections reset after a client left session state on
// them (omitted when empty).
std::string render_report(const nlohmann::json& advice, const nlohmann::json& fingerprints,
                          ReportFormat format, const nlohmann::json& pools = {});

// Fetches both from `from` ("http://HOST:PORT") and prints the report; returns the exit status.
int run_report(const std::string& from, ReportFormat format);

}  // namespace pglens::proxy
