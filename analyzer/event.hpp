// One executed statement, as the proxy saw it: what the analyzer and the rules consume.
// Filled on the proxy's thread, handed over encoded (EventBatch) through a bounded queue.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pglens::analyzer {

// Who ran it; one per client session, shared by all its events.
struct SessionInfo {
  std::uint64_t session_id = 0;
  std::string database, user, application_name, client_address;
  // The driver, where its startup packet tells (pgJDBC sends DateStyle and extra_float_digits
  // and, by default, no application_name); "" when it does not.
  std::string driver{};
};

// Who ran a statement, as the statistics and the rules key it, hashed once per session (by the
// EventReader) rather than per statement: `all` covers (database, user, application_name), the
// statistics' key; `database_user` covers (database, user), the key of the per-command latency
// series and of the index checks. Maps keyed by them still compare the strings on a hit.
struct Identity {
  std::uint64_t all = 0, database_user = 0;  // both 0: not computed (an event built by hand)
  static Identity of(const SessionInfo& who);
  bool known() const { return all != 0; }
};

// Bounds on what an event carries, so a huge Bind or result never grows the queue.
inline constexpr std::size_t kMaxParameters = 32;
inline constexpr std::size_t kMaxParameterBytes = 128;
// Rows whose values are kept: enough for a page of parents an ORM loops over.
inline constexpr std::size_t kSampleRows = 64;
inline constexpr std::size_t kSampleColumns = 8;

struct ExecutionEvent {
  std::shared_ptr<const SessionInfo> session;
  Identity identity;              // of `session`: set by the EventReader (see identity_of)
  std::uint64_t transaction = 0;  // proxy-side transaction number within the session
  // The client request (a Query, or the Executes up to a Sync) it came in, numbered within the
  // session: statements with one number reached the server in one round trip (a multi-statement
  // query, a pipeline, a driver's batch).
  std::uint64_t request = 0;
  std::shared_ptr<const std::string>
      sql;  // the text as sent; a simple query may hold several statements
  std::uint32_t statement_index = 0;  // which statement of `sql` this was
  bool extended = false;              // Bind/Execute rather than a simple Query
  bool pipelined = false;             // more than one Execute before its Sync
  // Bind values as text, truncated to kMaxParameterBytes; a binary one as \x and the hex of as
  // many of its bytes as kMaxParameterBytes digits show; nullopt is NULL.
  std::vector<std::optional<std::string>> parameters;
  std::uint64_t rows = 0;            // returned or affected, from CommandComplete
  std::vector<std::string> columns;  // result column names, at most kSampleColumns
  // Hashes (hash_value) of the first kSampleRows rows' values, row after row, columns.size() each.
  std::vector<std::uint64_t> result_sample;
  // How long the client's request waited for a server connection before this statement could be
  // sent. Charged to the first statement started after the session got a connection (in
  // transaction mode a transaction's first statement, BEGIN for an explicit one; in session mode
  // the session's first): the others run on a connection already held and carry zero.
  std::chrono::nanoseconds pool_wait{0};
  std::chrono::nanoseconds latency{0};  // request forwarded → CommandComplete/ErrorResponse
  std::chrono::system_clock::time_point finished_at{};
  std::string sqlstate;  // set when it failed

  // Blank again, its buffers' capacity kept: the proxy's tracker fills the same events again and
  // again (only their encoding travels to the analyzer, EventBatch), so the steady state
  // allocates nothing per statement. session and sql are left for whoever fills it.
  void clear_keeping_capacity() {
    transaction = request = 0;
    statement_index = 0;
    extended = pipelined = false;
    parameters.clear();
    rows = 0;
    columns.clear();
    result_sample.clear();
    pool_wait = latency = std::chrono::nanoseconds(0);
    finished_at = {};
    sqlstate.clear();
  }
};

// The hash that links a result value to a later parameter value (FNV-1a over the text bytes).
inline std::uint64_t hash_value(std::string_view bytes) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

inline Identity Identity::of(const SessionInfo& who) {
  auto mix = [](std::uint64_t h, std::string_view part) {
    return (h ^ hash_value(part)) * 1099511628211ull ^ part.size();
  };
  std::uint64_t database_user = mix(mix(0, who.database), who.user);
  // Never 0, so a computed identity is told from a missing one.
  return Identity{mix(database_user, who.application_name) | 1, database_user | 1};
}

// The event's identity; computed here when whoever built the event did not set it.
inline Identity identity_of(const ExecutionEvent& event) {
  return event.identity.known() || !event.session ? event.identity : Identity::of(*event.session);
}

}  // namespace pglens::analyzer
