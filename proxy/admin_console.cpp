#include "proxy/admin_console.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <chrono>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <sstream>

#include "config/config_keys.hpp"
#include "proxy/admin_views.hpp"

namespace pglens::proxy {

namespace {

using namespace admin;

constexpr std::string_view kVersion = "pglens 0.1.0";

constexpr Column kConfigColumns[] = {
    {"key", kText}, {"value", kText}, {"default", kText}, {"changeable", kText}};
constexpr Column kVersionColumns[] = {{"version", kText}};
// The same columns as /api/fingerprints.
constexpr Column kFingerprintColumns[] = {
    {"fingerprint", kText},
    {"query", kText},
    {"command", kText},
    {"database", kText},
    {"user", kText},
    {"application_name", kText},
    {"calls", kInt8},
    {"errors", kInt8},
    {"rows", kInt8},
    {"total_ms", kFloat8},
    {"min_ms", kFloat8},
    {"max_ms", kFloat8},
    {"mean_ms", kFloat8},
    {"p50_ms", kFloat8},
    {"p95_ms", kFloat8},
    {"p99_ms", kFloat8},
    // standard.class, .limit_ms, .grade ("over 3.2x" here), .over_by and .basis
    {"standard", kText},
    {"standard_limit_ms", kFloat8},
    {"grade", kText},
    {"over_by", kFloat8},
    {"basis", kText},
    // pool_wait.total_ms, .mean_ms, .p95_ms, .max_ms
    {"pool_wait_total_ms", kFloat8},
    {"pool_wait_mean_ms", kFloat8},
    {"pool_wait_p95_ms", kFloat8},
    {"pool_wait_max_ms", kFloat8},
};
constexpr Column kAdviceColumns[] = {
    {"rule", kText},        {"severity", kText},
    {"fingerprint", kText}, {"query", kText},
    {"count", kInt8},       {"advice", kText},
    {"fix", kText},         {"estimated_savings_ms", kFloat8},
    {"resolved", kText},    {"details", kText},
};

Bytes command_complete(std::string tag) {
  return protocol::encoded(protocol::CommandComplete{std::move(tag)});
}

Bytes error(std::string_view sqlstate, std::string_view message) {
  return protocol::encoded(protocol::make_error(sqlstate, message));
}

Bytes show_config(const View& s) {
  const auto& current = s.s.config;
  const config::Config defaults;
  std::vector<Row> rows;
  for (const auto& key : config::config_keys())
    rows.push_back(Row{text(key.name), text(key.show(*current)), text(key.show(defaults)),
                       text(key.reloadable ? "yes" : "no")});
  return table(kConfigColumns, rows);
}

Bytes show_version(const View&) {
  return table(kVersionColumns, {Row{text(kVersion)}});
}

Bytes show_fingerprints(const View& s) {
  std::vector<Row> rows;
  if (auto* analyzer = s.analysis.analyzer)
    for (const auto& f : analyzer->fingerprints(analyzer::SortBy::TotalTime, 1000)) {
      const auto& g = f.standard;
      rows.push_back(Row{text(f.fingerprint),
                         text(f.query),
                         text(f.command),
                         text(f.database),
                         text(f.user),
                         text(f.application_name),
                         num(f.calls),
                         num(f.errors),
                         num(f.rows),
                         real(f.total_ms),
                         real(f.min_ms),
                         real(f.max_ms),
                         real(f.mean_ms),
                         real(f.p50_ms),
                         real(f.p95_ms),
                         real(f.p99_ms),
                         text(analyzer::to_string(g.cls)),
                         g.limit_ms ? real(*g.limit_ms) : Cell{},
                         text(g.summary()),
                         g.over_by ? real(*g.over_by) : Cell{},
                         text(g.from_plan ? "plan" : "shape"),
                         real(f.pool_wait_total_ms),
                         real(f.pool_wait_mean_ms),
                         real(f.pool_wait_p95_ms),
                         real(f.pool_wait_max_ms)});
    }
  return table(kFingerprintColumns, rows);
}

Bytes show_advice(const View& s) {
  std::vector<Row> rows;
  if (auto* advisor = s.analysis.advisor)
    for (const auto& f : advisor->findings().snapshot()) {
      auto details = f.details;
      rows.push_back(Row{text(f.rule), text(rules::to_string(f.severity)), text(f.fingerprint),
                         text(f.query), num(f.count), text(f.advice), text(f.fix),
                         real(f.estimated_savings_ms), text(f.resolved ? "yes" : "no"),
                         text(details.dump())});
    }
  return table(kAdviceColumns, rows);
}

Bytes show_help(const View&) {
  // As PgBouncer answers it: a NOTICE listing the commands, then an empty SHOW.
  protocol::NoticeResponse notice;
  notice.fields = {
      {'S', "NOTICE"},
      {'V', "NOTICE"},
      {'C', "00000"},
      {'M', "Console usage"},
      {'D',
       "\n\tSHOW "
       "HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|LISTS|STATS|VERSION|FINGERPRINTS|ADVICE"
       "\n\tRELOAD\n\tPAUSE\n\tRESUME\n\tSHUTDOWN"}};
  auto out = protocol::encoded(notice);
  protocol::CommandComplete{"SHOW"}.encode(out);
  return out;
}

// ---- process control ----

Bytes pause(const View& s) {
  // Returns at once; sessions finish their transactions and then wait (PgBouncer's PAUSE
  // returns only once they have).
  s.controls.pause();
  return command_complete("PAUSE");
}

Bytes resume(const View& s) {
  s.controls.resume();
  return command_complete("RESUME");
}

Bytes reload(const View& s) {
  std::string why;
  if (!s.controls.reload(&why)) return error("F0000", "pglens: RELOAD failed: " + why);
  return command_complete("RELOAD");
}

Bytes shutdown(const View& s) {
  s.controls.shutdown();
  return command_complete("SHUTDOWN");
}

struct Command {
  std::string_view name;  // upper case, words separated by one space
  Bytes (*run)(const View&);
};
constexpr Command kCommands[] = {
    {"SHOW POOLS", show_pools},
    {"SHOW STATS", show_stats},
    {"SHOW CLIENTS", show_clients},
    {"SHOW SERVERS", show_servers},
    {"SHOW DATABASES", show_databases},
    {"SHOW LISTS", show_lists},
    {"SHOW CONFIG", show_config},
    {"SHOW VERSION", show_version},
    {"SHOW FINGERPRINTS", show_fingerprints},
    {"SHOW ADVICE", show_advice},
    {"SHOW HELP", show_help},
    {"PAUSE", pause},
    {"RESUME", resume},
    {"RELOAD", reload},
    {"SHUTDOWN", shutdown},
};

// "  show\tpools ;" → {"SHOW", "POOLS"}: trailing semicolons and all whitespace dropped.
std::vector<std::string> words_of(std::string_view sql) {
  while (!sql.empty() &&
         (sql.back() == ';' || std::isspace(static_cast<unsigned char>(sql.back()))))
    sql.remove_suffix(1);
  std::vector<std::string> words;
  std::istringstream in{std::string(sql)};
  for (std::string w; in >> w;) {
    for (auto& ch : w) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    words.push_back(std::move(w));
  }
  return words;
}

}  // namespace

std::vector<protocol::ParameterStatus> AdminConsole::parameters() {
  return {{"server_version", "15.0 (pglens 0.1.0)"},
          {"client_encoding", "UTF8"},
          {"server_encoding", "UTF8"},
          {"DateStyle", "ISO, MDY"},
          {"standard_conforming_strings", "on"}};
}

AdminConsole::Result AdminConsole::execute(const std::string& sql) {
  Result r;
  try {
    auto words = words_of(sql);
    if (words.empty()) {
      protocol::EmptyQueryResponse{}.encode(r.response);
      return r;
    }
    std::string name;
    for (const auto& w : words) name += (name.empty() ? "" : " ") + w;
    for (const auto& command : kCommands) {
      if (command.name == name) {
        auto snapshot = snapshot_();
        r.response = command.run(View(snapshot, analysis_, controls_));
        return r;
      }
    }
    if ((words[0] == "PAUSE" || words[0] == "RESUME") && words.size() > 1) {
      r.response = error("0A000", "pglens admin console: " + words[0] +
                                      " applies to every database; run it without a name");
      return r;
    }
    r.response = error("42601", "pglens admin console: unknown command \"" + name +
                                    "\"; SHOW HELP lists the commands");
  } catch (const std::exception& e) {
    r.response = error("XX000", std::string("pglens admin console: ") + e.what());
  }
  return r;
}

}  // namespace pglens::proxy
