// Turns the frames a session forwards into analyzer events: which statement text each Execute or
// simple-query statement ran, with its parameters, rows, a sample of its result, its latency and
// its error. Sans-I/O and per session; the session feeds it only when analysis is on.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "analyzer/event.hpp"
#include "analyzer/event_queue.hpp"
#include "proxy/protocol/decoder.hpp"
#include "proxy/request_ledger.hpp"

namespace pglens::proxy {

class ExecutionTracker {
 public:
  using Clock = std::chrono::steady_clock;
  // `blanks`: where new events come from (recycled, so that filling one allocates nothing once
  // warm); null: plain new events.
  explicit ExecutionTracker(std::shared_ptr<const analyzer::SessionInfo> session,
                            analyzer::EventQueue* blanks = nullptr)
      : session_(std::move(session)), blanks_(blanks) {}

  // ---- requests, in the order the client sent them ----
  void on_parse(protocol::ByteView body);
  void on_bind(protocol::ByteView body);
  void on_close(protocol::ByteView body);
  // Each returns the tag to record with the request in the RequestLedger.
  std::uint64_t on_execute(protocol::ByteView body, Clock::time_point now);
  std::uint64_t on_query(protocol::ByteView body, Clock::time_point now);
  void on_sync();

  // ---- responses: the frame with what the ledger said of it; finished statements go to `out` ----
  void on_response(const protocol::Frame& frame, const RequestLedger::Outcome& outcome,
                   Clock::time_point now, std::vector<analyzer::ExecutionEvent>& out);
  void on_skipped(const std::vector<std::uint64_t>& tags);
  // ReadyForQuery: statements after an 'I' belong to the next transaction.
  void on_ready(char status);
  // The session's ledger has nothing outstanding: whatever still waits here will never be
  // answered, and must not hold the ones after it in memory.
  void on_all_answered();
  // Statements sent and not yet answered (nor skipped after an error).
  std::size_t in_flight() const;
  // Time the session waited for a server connection; charged to the next statement.
  void add_pool_wait(std::chrono::nanoseconds waited) { pool_wait_ += waited; }

 private:
  struct Portal {
    std::shared_ptr<const std::string> sql;
    std::vector<std::optional<std::string>> parameters;
  };
  struct Execution {
    std::uint64_t tag = 0;
    bool done = false;  // answered (or skipped): kept only until the ones before it are done too
    analyzer::ExecutionEvent event;
    Clock::time_point started;
    std::size_t sampled_rows = 0;
    // A simple query between two of its statements: the last one's event has gone out, and the
    // next one's is taken when it shows up, for the same text.
    bool between_statements = false;
    std::shared_ptr<const std::string> next_sql;
  };
  // Moves e's event, finished, into `out`.
  void finish(Execution& e, Clock::time_point now, std::vector<analyzer::ExecutionEvent>& out);
  void start_next_statement(Execution& e);
  Execution start(std::shared_ptr<const std::string> sql, Clock::time_point now);
  Execution* find(std::uint64_t tag);
  void retire(Execution& e);

  std::shared_ptr<const analyzer::SessionInfo> session_;
  analyzer::EventQueue* blanks_;
  std::unordered_map<std::string, std::shared_ptr<const std::string>>
      statements_;  // Parse'd, by name
  std::unordered_map<std::string, Portal> portals_;
  // Waiting for their completion, in tag order (tags only grow). Answers come in order, so the
  // oldest finish first: [0, first_) are done, and the vector is emptied (capacity kept) whenever
  // all are, so the steady state allocates nothing.
  std::vector<Execution> executions_;
  std::size_t first_ = 0;
  std::uint64_t next_tag_ = 1;
  std::uint64_t transaction_ = 1;
  std::vector<std::uint64_t> executes_since_sync_;
  std::chrono::nanoseconds pool_wait_{0};
};

}  // namespace pglens::proxy
