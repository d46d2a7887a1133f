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
#include "analyzer/event_batch.hpp"
#include "analyzer/event_queue.hpp"
#include "protocol/decoder.hpp"
#include "session/request_ledger.hpp"

namespace pglens::session {

class ExecutionTracker {
 public:
  using Clock = std::chrono::steady_clock;
  // Each statement goes to `sink` as it finishes (never waiting: a full queue drops and counts
  // it); the session's start goes first, its end when the tracker is destroyed.
  ExecutionTracker(std::shared_ptr<const analyzer::SessionInfo> session,
                   analyzer::EventQueue& sink);
  ~ExecutionTracker();
  ExecutionTracker(const ExecutionTracker&) = delete;
  ExecutionTracker& operator=(const ExecutionTracker&) = delete;

  // ---- requests, in the order the client sent them ----
  void on_parse(protocol::ByteView body);
  void on_bind(protocol::ByteView body);
  void on_close(protocol::ByteView body);
  // A Describe of a prepared statement: its RowDescription names the columns of every later
  // Execute of it, which drivers with statement caches (asyncpg, pgJDBC, psycopg 3) run without
  // one. Returns the tag for the ledger (0: not watched).
  std::uint64_t on_describe(protocol::ByteView body);
  // Each returns the tag to record with the request in the RequestLedger.
  std::uint64_t on_execute(protocol::ByteView body, Clock::time_point now);
  std::uint64_t on_query(protocol::ByteView body, Clock::time_point now);
  void on_sync();

  // ---- responses: the frame with what the ledger said of it ----
  void on_response(const protocol::Frame& frame, const RequestLedger::Outcome& outcome,
                   Clock::time_point now);
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
  using Columns = std::shared_ptr<const std::vector<std::string>>;
  struct Portal {
    std::shared_ptr<const std::string> sql;
    Columns described;        // its statement's columns, from a Describe
    std::string bind_values;  // as analyzer::capture_bind_values kept them
  };
  // A statement sent and not yet answered. The slots are reused: an event's buffers stay with
  // this thread, and only its encoding goes to the analyzer.
  struct Execution {
    std::uint64_t tag = 0;
    bool done = false;  // answered (or skipped): kept only until the ones before it are done too
    analyzer::ExecutionEvent event;
    // A simple query's text up to EventBatch::kMaxCopiedText, event.sql while it runs.
    std::shared_ptr<std::string> query_text;
    Clock::time_point started;
    std::size_t sampled_rows = 0;
    Columns described;
    std::string bind_values;  // its portal's: the analyzer decodes them into event.parameters
  };
  // A slot for a new statement of `sql`, blank but for what start() sets.
  Execution& start(std::shared_ptr<const std::string> sql, Clock::time_point now);
  // Hands e's event, finished, to the analyzer's queue.
  void finish(Execution& e, Clock::time_point now);
  Execution* find(std::uint64_t tag);
  void retire(Execution& e);
  // Once all are answered: a pipeline of thousands does not keep its slots' memory.
  void trim_executions();

  std::uint64_t session_id_;
  analyzer::EventQueue& sink_;
  // Looked up by the name's bytes in the message: no string is built to find one.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const {
      return std::hash<std::string_view>{}(name);
    }
  };
  template <typename T>
  using ByName = std::unordered_map<std::string, T, NameHash, std::equal_to<>>;
  // The Parse'd statement or the bound portal of that name; null when it does not exist. The
  // unnamed ones, which most drivers use for every statement, are members: no lookup.
  std::shared_ptr<const std::string>* find_statement(std::string_view name);
  Portal* find_portal(std::string_view name);
  // The same, created empty when missing.
  std::shared_ptr<const std::string>& statement(std::string_view name);
  Portal& portal(std::string_view name);
  ByName<std::shared_ptr<const std::string>> statements_;
  ByName<Columns> statement_columns_;  // from Describe; "" is the unnamed statement
  struct PendingDescribe {
    std::uint64_t tag;
    std::string statement;  // or the portal's name
    bool portal = false;    // Describe 'P' (libpq's PQexecParams, psycopg 3, node-postgres)
  };
  std::vector<PendingDescribe> describes_;  // sent, not answered yet (a few at most)
  ByName<Portal> portals_;
  std::shared_ptr<const std::string> unnamed_statement_;
  Portal unnamed_portal_;
  // Waiting for their completion, in tag order (tags only grow), in [first_, end_). Answers come
  // in order, so the oldest finish first: [0, first_) are done, and both go back to 0 whenever
  // all are. Slots past end_ wait for reuse, their buffers kept: the steady state allocates
  // nothing.
  std::vector<Execution> executions_;
  std::size_t first_ = 0, end_ = 0;
  std::uint64_t next_tag_ = 1;
  std::uint64_t transaction_ = 1;
  std::uint64_t request_ = 1;  // the client request being read (ExecutionEvent::request)
  // Executes since the last Sync, and the first of them: the one to mark pipelined when a second
  // comes (the later ones are marked as they come).
  std::size_t executes_since_sync_ = 0;
  std::uint64_t first_execute_since_sync_ = 0;
  std::chrono::nanoseconds pool_wait_{0};
};

}  // namespace pglens::session
