// The decisions of one client session, free of I/O: what to forward, rewrite or answer, when to
// take a server connection and when it is safe to give it back.
//
// The Asio side reports what happened (bytes from the client or the server, a server connection
// acquired or not, a peer gone) and carries out what it gets back: first it sends what
// server_output() and client_output() hold, in that order, then it runs actions() in order and
// clears them.
// Time is passed in, so tests drive it with a fake clock. Between logins this is one state
// machine per client; the login itself is ClientLogin's.
//
// Pool modes. Session: the client's bytes go to its server as they are, and back; the core only
// watches (statements for analysis, the transaction status). Transaction and statement: the
// client's stream is rebuilt message by message for whichever server connection it has now;
// named statements are renamed to pglens_<sha256> and prepared on demand, and the
// RequestLedger (a FIFO of forwarded requests) hides the answers to pglens' own requests.
//
// What happens when a peer goes away, by state (docs/faults.md has the decisions and tests):
//   the server ends the connection with a FATAL (pg_terminate_backend, a shutdown) before any
//     answer reached the client, the transaction begun on that connection, or the connection
//     dies during parameter sync: the requests go to another connection, invisibly, at most
//     twice (what was asked cannot have committed)
//   a connection that just closes, after a request went out: the request may have run, so it is
//     not sent again; the client gets 08006
//   server lost after answer bytes reached the client, or in a transaction: the server's FATAL
//     (57P01, ...) or pglens' 08006, and only that client's session ends
//   client gone mid-transaction or mid-message: server connection cancelled and closed
//
// Transaction and statement mode also: a named Parse with no server connection held is answered
// here (after a syntax check) and prepared on whichever connection later runs it, so a client's
// blocking prepare never waits for the pool; SQL that leaves session state on a connection
// (session_state.hpp) makes the connection reset before another client gets it.
#pragma once

#include <boost/container/small_vector.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "pool/pool_mode.hpp"
#include "protocol/decoder.hpp"
#include "protocol/messages.hpp"
#include "session/execution_tracker.hpp"
#include "session/output.hpp"
#include "session/request_ledger.hpp"
#include "session/server_state.hpp"
#include "session/traffic.hpp"

namespace pglens::session {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

struct SessionSettings {
  pool::PoolMode mode = pool::PoolMode::Transaction;
  // Session mode: run on a clean server connection before it goes back to the pool; "" for none.
  std::string server_reset_query;
  // Transaction and statement mode: run before a connection whose session state a client
  // changed goes back (session_state.hpp).
  std::string state_reset_query = "DISCARD ALL";
  // Zero: off. A request without its answer for query_timeout is cancelled and the client closed;
  // a client idle inside a transaction for idle_transaction_timeout, or idle outside one for
  // client_idle_timeout, is closed (PgBouncer's meanings).
  Clock::duration query_timeout{0};
  Clock::duration idle_transaction_timeout{0};
  Clock::duration client_idle_timeout{0};
  // Checks a statement the core answers Parse for itself: nullopt when it parses, else the error
  // Postgres would give. Unset: every Parse goes to a server.
  std::function<std::optional<protocol::ErrorResponse>(std::string_view sql)> check_syntax;
  // The tracked startup parameters the client asked for (client_parameters.hpp): every server
  // connection it gets is brought in line with them.
  std::map<std::string, std::string> client_parameters;
  // What the client gets in BackendKeyData, to name this session in a CancelRequest.
  protocol::BackendKeyData client_key;
};

struct Action {
  enum class Kind {
    Acquire,       // take a server connection from the pool; report with on_server_acquired or
                   // on_acquire_failed. Always the last action: the core waits for the answer.
    ReadServer,    // the server connection is ready: read it, report with on_server_bytes
    ResumeClient,  // client bytes are wanted again (client_paused() is false now)
    Release,       // give the server connection back: reusable, or closed for `reason`
    CancelServer,  // send a CancelRequest for the backend still running on the held connection
    CloseClient,   // the session is over, for `reason`; stop both readers, then call finish()
    Log,           // a line for the operator: `reason` (a connection reset, ...)
    Warn,          // the same, worth a warning (a client refused a server connection)
  };
  // Built in place in the core's list: most carry no reason, and a string moved around per
  // action would be most of their cost.
  Action(Kind k, bool r = false) : kind(k), reusable(r) {}  // NOLINT: {Kind::X} reads well
  Action(Kind k, bool r, std::string why) : kind(k), reusable(r), reason(std::move(why)) {}
  Kind kind;
  bool reusable = false;
  std::string reason;
  bool operator==(const Action&) const = default;
};
// Zero to three actions per event, inline: the hot path allocates nothing here.
using Actions = boost::container::small_vector<Action, 4>;

class SessionCore {
 public:
  // tracker: null when analysis is off. traffic: the pool's counters, or null.
  SessionCore(SessionSettings settings, std::unique_ptr<ExecutionTracker> tracker,
              Traffic* traffic);

  // ---- events ----

  // The client logged in to pglens: a first server connection proves the login works upstream
  // and tells what the server reports (Acquire).
  void start(TimePoint now);
  // The pool lent `server` (it stays the caller's; the core keeps a reference until Release).
  void on_server_acquired(ServerState& server, std::chrono::nanoseconds waited, TimePoint now);
  // The pool had none for the client: the upstream's own error, or a pool timeout.
  void on_acquire_failed(protocol::ErrorResponse error, TimePoint now);
  // Bytes the client sent; returns how many were taken. Fewer when the core must wait: for a
  // server connection (Acquire), or while client_paused(); the caller feeds the rest later.
  std::size_t on_client_bytes(protocol::ByteView input, TimePoint now);
  // Bytes from the held server connection; all are taken.
  void on_server_bytes(protocol::ByteView input, TimePoint now);
  // The client's connection closed or failed (reason: "client closed connection", ...).
  void on_client_gone(std::string_view reason, TimePoint now);
  // The held server connection closed or failed, read or written.
  void on_server_lost(std::string_view reason, TimePoint now);
  // The deadline() passed (or may have: the core checks).
  void on_timer(TimePoint now);
  // pglens is shutting down: the client is closed with FATAL 57P01 as soon as it is at_rest(),
  // now or when what it has in flight is answered; a login not yet done is refused (57P03).
  void on_shutdown(TimePoint now);
  // Both readers have stopped: the server connection, if one is held, goes back (clean, after
  // server_reset_query in session mode: read the server until holds_server() is false) or is
  // closed (after a CancelServer when a request may still run there).
  void finish(TimePoint now);

  // ---- what to carry out ----

  Output& server_output() { return to_server_; }
  Output& client_output() { return to_client_; }
  // Acting on one never calls back into the core, so the caller may walk them in place.
  const Actions& actions() const { return actions_; }
  void clear_actions() { actions_.clear(); }
  Actions take_actions() { return std::exchange(actions_, {}); }

  // ---- state, for the caller's loops and for SHOW CLIENTS ----

  // Do not feed client bytes until ResumeClient: logging in, or bringing a server connection's
  // parameters in line.
  bool client_paused() const { return client_paused_; }
  bool ended() const { return phase_ == Phase::Ending || phase_ == Phase::Ended; }
  bool holds_server() const { return server_ != nullptr; }
  // When on_timer() should come next (query_timeout, idle_transaction_timeout,
  // client_idle_timeout), or nullopt for none.
  std::optional<TimePoint> deadline() const;
  // Between transactions with nothing in flight either way: closing the client now loses
  // nothing (what it sends next has not reached pglens, or waits unread).
  bool at_rest() const;
  // From the last ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' in a failed one.
  char transaction_status() const { return status_; }
  // The client's tracked parameters as they stand (SET application_name follows the client).
  const std::map<std::string, std::string>& client_parameters() const { return client_params_; }

 private:
  enum class Phase { New, Login, Running, Ending, Ended };
  // pglens' own exchange on the server connection, whose answers the client never sees.
  // Sync: parameter sync before a request. Discard: the state reset (state_reset_query) before
  // a connection a client changed goes back. Reset: server_reset_query at the session's end.
  enum class Task { None, Sync, Discard, Reset };

  // ---- client → server ----
  bool needs_server(char type) const;
  // One frame of the client's stream (transaction and statement mode), rewritten into
  // to_server_ (or answered here). raw: the frame's bytes when all of them are in this input,
  // else empty. True when it went to the server.
  bool route(const protocol::Frame& f, protocol::ByteView raw);
  bool answers_parse_here(protocol::ByteView rest) const;
  // A named Parse with no connection held: answered here.
  void answer_parse(const protocol::Frame& f);
  // Keeps a request for a retry on another connection while no answer has reached the client.
  void record(const protocol::Frame& f, protocol::ByteView raw);
  void observe_request(const protocol::Frame& f);  // session mode
  void note_request(char type);
  std::uint64_t track_request(const protocol::Frame& f);
  void forward(Output& out, const protocol::Frame& f, protocol::ByteView raw);
  bool rewrite_parse(protocol::ByteView body);  // false: forward it as it is
  void prepare_on_server(const std::string& name, const std::string& query,
                         const std::vector<std::uint32_t>& types, RequestLedger::Handling handling);
  void rewrite_with_statement(const protocol::Frame& f, protocol::ByteView raw, bool is_bind,
                              std::uint64_t tag = 0);
  void rewrite_close(const protocol::Frame& f, protocol::ByteView raw);
  void rewrite_query(const protocol::Frame& f, protocol::ByteView raw, std::uint64_t tag);

  // ---- server → client ----
  enum class FrameOutcome { Go, StatementBlock, Lost };
  FrameOutcome on_server_frame(const protocol::Frame& f, protocol::ByteView raw);
  void on_task_frame(const protocol::Frame& f, bool last_in_input);
  void finish_round_trip();

  void emit(Action::Kind kind, bool reusable = false) { actions_.emplace_back(kind, reusable); }
  void emit(Action::Kind kind, bool reusable, std::string reason) {
    actions_.emplace_back(kind, reusable, std::move(reason));
  }

  // ---- server connections ----
  void begin_sync();
  void read_server();
  // Client bytes are wanted again (ResumeClient), unless the session is over.
  void resume_client();
  // Attached and in line with the client: log the client in, or let it go on.
  void server_ready();
  void release(bool reusable, std::string reason = {});
  // Every request answered, no transaction open: give the connection back (after the state reset
  // a client's SQL asked for).
  void release_when_done();
  // The connection failed before any answer reached the client: the requests go to another.
  void retry(std::string reason);
  void replay();
  // unexecuted: what was sent cannot have run (a FATAL came first, or it was pglens' own sync),
  // so a retry cannot run anything twice.
  // error: what the server said (its FATAL), for the client if no retry is left.
  void lost(std::string reason, bool unexecuted,
            std::optional<protocol::ErrorResponse> error = std::nullopt);
  void refuse_pending(protocol::ErrorResponse error);
  // No server for the client's next request: it gets `error` and stays.
  void refuse(protocol::ErrorResponse error);
  void fail_login(protocol::ErrorResponse error);
  void close_client(std::string reason);
  void fatal(std::string_view sqlstate, std::string_view message, std::string reason);
  // Shutting down: closes the client if it is at rest.
  void close_if_at_rest();

  SessionSettings settings_;
  std::unique_ptr<ExecutionTracker> tracker_;
  Traffic* traffic_;
  Phase phase_ = Phase::New;
  Actions actions_;
  Output to_server_, to_client_;
  protocol::MessageDecoder client_decoder_{protocol::Direction::Frontend};
  protocol::MessageDecoder server_decoder_{protocol::Direction::Backend};

  ServerState* server_ = nullptr;
  bool reading_ = false;  // ReadServer issued for server_
  // The client's requests since the connection was taken, as they came, while no byte of an
  // answer has reached the client from it: what a retry sends again (replayable_ false once
  // that is no longer possible: an answer, a streamed or too large request, session mode).
  protocol::Bytes replay_;
  bool replayable_ = false;
  bool retrying_ = false;  // an Acquire for a retry is out; replay_ goes first once answered
  int retries_ = 0;        // for the requests in replay_
  std::vector<std::uint64_t> replay_tags_;  // the tracker's tags of the requests replayed
  std::size_t next_replay_tag_ = 0;
  protocol::MessageDecoder replay_decoder_{protocol::Direction::Frontend};
  bool server_said_fatal_ = false;  // its FATAL reached the client: no second one of ours
  std::string state_left_;          // what a client's SQL left on the connection ("SET ...")
  bool local_batch_ = false;        // Parse answered here since the last Sync, no server held
  Task task_ = Task::None;
  std::optional<protocol::ErrorResponse> task_error_;
  bool client_paused_ = true;  // until logged in
  bool draining_ = false;      // on_shutdown() came
  char waiting_type_ = 0;      // the message that asked for the server being acquired

  std::map<std::string, std::string> client_params_;
  std::map<std::string, ClientStatement, std::less<>> client_statements_;
  RequestLedger ledger_;
  char status_ = 'I';             // from the last ReadyForQuery
  bool unsynced_ = false;         // extended-protocol messages sent since the last Sync
  bool skip_until_sync_ = false;  // a failed acquire in the middle of a batch
  bool drop_next_ = false;        // a failed acquire for a Query or Sync: it is answered already
  bool server_dirty_ = false;
  bool server_at_boundary_ = true;
  bool request_started_ = false;
  TimePoint request_start_{};
  bool transaction_started_ = false;
  TimePoint transaction_start_{};
  // When the bytes being handled were read: every timestamp of a read's messages.
  TimePoint now_{};
  TimePoint client_active_at_{};  // the client's last bytes
  TimePoint answered_at_{};       // the last ReadyForQuery
};

}  // namespace pglens::session
