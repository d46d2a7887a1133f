// SessionCore: login, server connections (sync, release, retry), server → client, faults and
// timers. Client → server routing is in session_routing.cpp.
#include "session/session_core.hpp"

#include "session/client_parameters.hpp"
#include "session/frames.hpp"

namespace pglens::session {

namespace {
using pool::PoolMode;
using protocol::Bytes;
using protocol::ByteView;
using protocol::DecodeStatus;
using protocol::FrameKind;

// A connection that fails before any answer reached the client is replaced this many times.
constexpr int kMaxRetries = 2;

std::uint64_t micros(Clock::duration d) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

std::string seconds(Clock::duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) : std::to_string(ms / 1000.0);
}
}  // namespace

SessionCore::SessionCore(SessionSettings settings, std::unique_ptr<ExecutionTracker> tracker,
                         Traffic* traffic)
    : settings_(std::move(settings)),
      tracker_(std::move(tracker)),
      traffic_(traffic),
      client_params_(settings_.client_parameters) {}

// ---- server connections ----

void SessionCore::start(TimePoint now) {
  now_ = client_active_at_ = answered_at_ = now;
  phase_ = Phase::Login;
  if (draining_) {
    fatal("57P03", "pglens is shutting down", "shutting down");
    return;
  }
  emit(Action::Kind::Acquire);
}

void SessionCore::on_server_acquired(ServerState& server, std::chrono::nanoseconds waited,
                                     TimePoint now) {
  now_ = now;  // a request starts now: the pool wait is counted apart
  server_ = &server;
  server_decoder_.reset();
  server_at_boundary_ = true;
  server_dirty_ = server_said_fatal_ = false;
  state_left_.clear();
  if (!retrying_) {
    // A transaction starts on this connection: until an answer reaches the client, what the
    // client sends can go again elsewhere.
    replay_.clear();
    replayable_ = settings_.mode != PoolMode::Session && phase_ == Phase::Running;
    retries_ = 0;
  }
  if (tracker_) tracker_->add_pool_wait(waited);
  // Most of the time the backend already has exactly this client's values (clients of a pool
  // tend to share them): one map comparison, no SQL built.
  if (server.applied != client_params_) {
    begin_sync();
    if (task_ == Task::Sync) return;
  }
  server_ready();
}

void SessionCore::begin_sync() {
  auto sql = parameter_sync_sql(client_params_, server_->applied, server_->parameters);
  if (sql.empty()) {  // what differs are server defaults the backend already has
    server_->applied = client_params_;
    return;
  }
  to_server_.own([&](Bytes& b) { protocol::Query{sql}.encode(b); });
  task_ = Task::Sync;
  task_error_.reset();
  read_server();
  // The client's next bytes wait: they go to this connection once it is in line.
  client_paused_ = true;
}

void SessionCore::read_server() {
  if (reading_) return;
  reading_ = true;
  emit(Action::Kind::ReadServer);
}

void SessionCore::server_ready() {
  if (phase_ == Phase::Login) {
    to_client_.own([&](Bytes& out) {
      protocol::Authentication{}.encode(out);
      for (auto p : server_->parameters) {
        // The client sees the values it asked for, which every server it gets will have.
        if (auto it = client_params_.find(p.name); it != client_params_.end()) p.value = it->second;
        p.encode(out);
      }
      settings_.client_key.encode(out);
      protocol::ReadyForQuery{'I'}.encode(out);
    });
    phase_ = Phase::Running;
    retrying_ = false;
    if (settings_.mode != PoolMode::Session) release(true);
  }
  if (server_ != nullptr) read_server();
  if (retrying_) replay();
  resume_client();
  if (draining_) close_if_at_rest();
}

void SessionCore::resume_client() {
  if (!client_paused_ || ended()) return;
  client_paused_ = false;
  emit(Action::Kind::ResumeClient);
}

void SessionCore::release(bool reusable, std::string reason) {
  if (reason.empty())
    emit(Action::Kind::Release, reusable);
  else
    emit(Action::Kind::Release, reusable, std::move(reason));
  server_ = nullptr;
  reading_ = false;
  task_ = Task::None;
}

void SessionCore::release_when_done() {
  if (state_left_.empty()) {
    release(true);
    return;
  }
  // A client's SQL left state on this connection (a SET, a LISTEN, a temporary table...): it is
  // reset first, so the next client does not inherit it.
  if (traffic_ != nullptr) traffic_->state_resets++;
  emit(Action::Kind::Log, false,
       "resetting server connection s" + std::to_string(server_->id) + " after " + state_left_);
  to_server_.own([&](Bytes& b) { protocol::Query{settings_.state_reset_query}.encode(b); });
  task_ = Task::Discard;
  task_error_.reset();
  client_paused_ = true;  // its next request waits for a connection without that state
}

void SessionCore::on_acquire_failed(protocol::ErrorResponse error, TimePoint now) {
  now_ = now;
  refuse_pending(std::move(error));
}

// Requests waiting for a server connection that cannot be had (the pool's error), or that
// ran nowhere when theirs failed: answered with the error, as the server answers a failed
// request, and the client goes on.
void SessionCore::refuse_pending(protocol::ErrorResponse error) {
  if (phase_ == Phase::Login) {
    fail_login(std::move(error));
    return;
  }
  retrying_ = false;
  if (tracker_ && !replay_tags_.empty()) tracker_->on_skipped(replay_tags_);
  replay_tags_.clear();
  if (replay_.empty()) {  // a request still waiting for its first connection, or its sync
    refuse(std::move(error));
    return;
  }
  frames::set_severity(error, "ERROR");
  emit(Action::Kind::Warn, false, std::string(error.message()));
  // Each unit of the replayed requests gets what the server gives a failed one: the error at its
  // first message, ReadyForQuery at its Sync (or Query); one not closed by a Sync yet is skipped
  // until the client's.
  replay_decoder_.reset();
  protocol::ByteView in(replay_);
  bool told = false;
  while (!in.empty()) {
    auto r = replay_decoder_.next(in);
    if (r.status != DecodeStatus::Frame) break;
    in = in.subspan(r.consumed);
    char type = r.frame.type;
    if (type == 'H' || type == 'd' || type == 'c' || type == 'f') continue;
    if (!told) {
      to_client_.own([&](Bytes& b) { error.encode(b); });
      told = true;
    }
    if (type == 'Q' || type == 'S' || type == 'F') {
      to_client_.own([](Bytes& b) { protocol::ReadyForQuery{'I'}.encode(b); });
      told = false;
    }
  }
  skip_until_sync_ = told;
  unsynced_ = false;
  request_started_ = false;
  replay_.clear();
  replayable_ = false;
  waiting_type_ = 0;
  resume_client();
}

void SessionCore::fail_login(protocol::ErrorResponse error) {
  // The upstream's own reason (no such database, bad password) is the client's answer.
  frames::set_severity(error, "FATAL");
  to_client_.own([&](Bytes& b) { error.encode(b); });
  close_client("upstream login failed: " + std::string(error.message()));
}

void SessionCore::refuse(protocol::ErrorResponse error) {
  // The client asked for something and no server connection could be had: it gets the reason
  // and stays connected. A Query (or FunctionCall, or Sync) is answered at once, as the server
  // would after an error; in an extended batch, the rest until its Sync is skipped.
  frames::set_severity(error, "ERROR");
  to_client_.own([&](Bytes& b) { error.encode(b); });
  emit(Action::Kind::Warn, false, std::string(error.message()));
  if (waiting_type_ == 'Q' || waiting_type_ == 'S' || waiting_type_ == 'F') {
    to_client_.own([](Bytes& b) { protocol::ReadyForQuery{'I'}.encode(b); });
    drop_next_ = true;
  } else {
    skip_until_sync_ = true;
  }
  waiting_type_ = 0;
  resume_client();
}

void SessionCore::close_client(std::string reason) {
  if (ended()) return;
  phase_ = Phase::Ending;
  client_paused_ = true;
  emit(Action::Kind::CloseClient, false, std::move(reason));
}

void SessionCore::fatal(std::string_view sqlstate, std::string_view message, std::string reason) {
  to_client_.own([&](Bytes& b) { protocol::make_error(sqlstate, message, "FATAL").encode(b); });
  close_client(std::move(reason));
}

// ---- shutdown ----

void SessionCore::on_shutdown(TimePoint now) {
  now_ = now;
  draining_ = true;
  if (phase_ == Phase::New) return;  // start() refuses the login
  close_if_at_rest();
}

bool SessionCore::at_rest() const {
  if (phase_ != Phase::Running || status_ != 'I' || !ledger_.empty() || task_ != Task::None ||
      waiting_type_ != 0 || retrying_ || unsynced_ || local_batch_ || skip_until_sync_ ||
      !client_decoder_.at_boundary())
    return false;
  // Transaction and statement mode give the connection back between transactions; session mode
  // keeps it, idle.
  return settings_.mode == PoolMode::Session ? server_at_boundary_ : server_ == nullptr;
}

void SessionCore::close_if_at_rest() {
  // 57P01 (admin_shutdown), as Postgres' own shutdown says it: drivers and pools take it for a
  // connection to drop and open again, elsewhere.
  if (at_rest()) fatal("57P01", "pglens is shutting down", "shutting down");
}

// ---- faults ----

void SessionCore::on_client_gone(std::string_view reason, TimePoint now) {
  now_ = now;
  std::string why(reason);
  if (!client_decoder_.at_boundary())
    why += " (mid-message)";
  else if (status_ != 'I' || !ledger_.empty())
    why += " (mid-transaction)";
  close_client(std::move(why));
}

void SessionCore::on_server_lost(std::string_view reason, TimePoint now) {
  now_ = now;
  if (server_ == nullptr) return;
  // Closed without a word: a request sent may have run, and committed, with its answer lost on
  // the way. Only what is known not to have run goes again: pglens' own parameter sync.
  lost(std::string(reason), task_ == Task::Sync);
}

void SessionCore::lost(std::string reason, bool unexecuted,
                       std::optional<protocol::ErrorResponse> error) {
  server_dirty_ = true;
  if (task_ == Task::Reset) {
    release(false, reason + " during server_reset_query");
    phase_ = Phase::Ended;
    return;
  }
  if (task_ == Task::Discard) {  // the client was answered: only the connection goes
    release(false, reason + " during the state reset");
    resume_client();
    return;
  }
  if (task_ == Task::None && phase_ == Phase::Running && ledger_.empty() && status_ == 'I' &&
      !unsynced_ && waiting_type_ == 0 && settings_.mode != PoolMode::Session) {
    // Nothing was asked of it: the client loses nothing, its next request takes another.
    release(false, std::move(reason));
    return;
  }
  if (unexecuted && (phase_ == Phase::Login || replayable_) && !ended()) {
    if (retries_ < kMaxRetries) {
      retry(std::move(reason));
      return;
    }
    // What it was asked never ran, and no connection ran it either: the client is told, with
    // the server's SQLSTATE when it sent one, and stays.
    auto tags = ledger_.abandon();
    replay_tags_.insert(replay_tags_.end(), tags.begin(), tags.end());
    release(false, reason + "; no retry left");
    refuse_pending(
        error ? std::move(*error)
              : protocol::make_error("08006", "pglens: the server connection was lost: " + reason));
    return;
  }
  // Answers reached the client, or it is inside a transaction: only this session ends, with the
  // server's own FATAL (57P01, ...) when it sent one, else pglens' 08006.
  if (server_said_fatal_ || !server_decoder_.at_boundary())
    close_client(std::move(reason));
  else
    fatal("08006", "pglens: the server connection was lost", std::move(reason));
}

void SessionCore::retry(std::string reason) {
  ++retries_;
  // The requests it was asked will never be answered there; they go again, with their tags.
  auto tags = ledger_.abandon();
  replay_tags_.insert(replay_tags_.end(), tags.begin(), tags.end());
  release(false, reason + "; its requests go to another connection");
  retrying_ = true;
  client_paused_ = true;  // the client's next bytes go after the replayed ones
  if (waiting_type_ == 0 && !replay_.empty()) waiting_type_ = static_cast<char>(replay_[0]);
  emit(Action::Kind::Acquire);
}

void SessionCore::finish(TimePoint now) {
  now_ = now;
  if (phase_ != Phase::Ending && phase_ != Phase::Ended) phase_ = Phase::Ending;
  if (server_ == nullptr || task_ == Task::Reset) {
    if (server_ == nullptr) phase_ = Phase::Ended;
    return;
  }
  // A clean connection goes back to the pool (after server_reset_query in session mode, after
  // the state reset a client's SQL asked for otherwise); one left mid-transaction or
  // mid-message is closed, so no other client ever sees its state and its locks go at once.
  bool clean = !server_dirty_ && task_ == Task::None && status_ == 'I' && ledger_.empty() &&
               !unsynced_ && server_at_boundary_;
  std::string reset;
  if (clean && settings_.mode == PoolMode::Session) reset = settings_.server_reset_query;
  if (clean && settings_.mode != PoolMode::Session && !state_left_.empty())
    reset = settings_.state_reset_query;
  if (!reset.empty()) {
    to_server_.own([&](Bytes& b) { protocol::Query{reset}.encode(b); });
    task_ = Task::Reset;
    task_error_.reset();
    return;
  }
  if (!clean) {
    // A query still running there goes on, holding its locks, after its socket is closed:
    // cancel it, so they go now.
    if (request_started_ || !ledger_.empty()) emit(Action::Kind::CancelServer);
    release(false, "left unclean");
  } else {
    release(true);
  }
  phase_ = Phase::Ended;
}

// ---- timers ----

std::optional<TimePoint> SessionCore::deadline() const {
  if (phase_ != Phase::Running) return std::nullopt;
  const auto& s = settings_;
  if (server_ != nullptr && !ledger_.empty() && request_started_ &&
      s.query_timeout > Clock::duration::zero())
    return request_start_ + s.query_timeout;
  if (status_ != 'I' && ledger_.empty() && s.idle_transaction_timeout > Clock::duration::zero())
    return answered_at_ + s.idle_transaction_timeout;
  if (status_ == 'I' && server_ == nullptr && s.client_idle_timeout > Clock::duration::zero())
    return std::max(client_active_at_, answered_at_) + s.client_idle_timeout;
  return std::nullopt;
}

void SessionCore::on_timer(TimePoint now) {
  now_ = now;
  auto due = deadline();
  if (!due || now < *due) return;
  const auto& s = settings_;
  if (server_ != nullptr && !ledger_.empty() && request_started_ &&
      s.query_timeout > Clock::duration::zero()) {
    server_dirty_ = true;  // cancelled, then closed at the end
    fatal("57014",
          "pglens: query_timeout (" + seconds(s.query_timeout) +
              " s): the query was cancelled and the connection closed",
          "query_timeout");
    return;
  }
  if (status_ != 'I') {
    fatal("25P03",
          "pglens: idle_transaction_timeout (" + seconds(s.idle_transaction_timeout) +
              " s): the transaction was idle too long",
          "idle_transaction_timeout");
    return;
  }
  fatal("57P05",
        "pglens: client_idle_timeout (" + seconds(s.client_idle_timeout) +
            " s): closing an idle connection",
        "client_idle_timeout");
}

// ---- server → client ----

void SessionCore::on_server_bytes(ByteView input, TimePoint now) {
  if (server_ == nullptr) return;
  now_ = now;
  const bool session_mode = settings_.mode == PoolMode::Session;
  bool statement_block = false;
  std::size_t used = 0;
  while (used < input.size()) {
    ByteView rest = input.subspan(used);
    auto r = server_decoder_.next(rest);
    if (r.status == DecodeStatus::Error) {
      server_dirty_ = true;
      std::string why = "protocol violation from server: " + r.error;
      if (task_ == Task::Reset) {  // the session is over already: only the connection goes
        release(false, std::move(why));
        phase_ = Phase::Ended;
      } else if (task_ == Task::Discard) {
        release(false, std::move(why));
        resume_client();
      } else {
        close_client(std::move(why));
      }
      return;
    }
    ByteView consumed = rest.first(r.consumed);
    used += r.consumed;
    if (task_ != Task::None) {
      if (r.status == DecodeStatus::Frame) on_task_frame(r.frame, used == input.size());
      if (server_ == nullptr) {  // the task ended and the connection went
        if (draining_) close_if_at_rest();
        return;
      }
      continue;
    }
    if (r.status == DecodeStatus::NeedMore) {
      // Session mode forwards what it reads, whole messages or not.
      if (session_mode) to_client_.pass(consumed);
      break;
    }
    const auto& f = r.frame;
    bool whole = (f.kind == FrameKind::Message && r.consumed == f.body_length + 5) ||
                 (f.kind == FrameKind::StreamStart && r.consumed == 5);
    auto outcome = on_server_frame(f, whole ? consumed : ByteView{});
    if (outcome == FrameOutcome::Lost) return;  // it said FATAL instead of an answer
    if (session_mode) to_client_.pass(consumed);
    if (outcome == FrameOutcome::StatementBlock) {
      statement_block = true;
      break;
    }
  }
  server_at_boundary_ = server_decoder_.at_boundary();
  if (statement_block) {
    server_dirty_ = true;
    fatal("25001", "pglens: transaction blocks are not allowed in statement pooling mode",
          "transaction block in statement mode");
    return;
  }
  // Every request answered, outside a transaction, and none waiting for this connection: it is
  // safe to give it back.
  if (!session_mode && server_ != nullptr && task_ == Task::None && waiting_type_ == 0 &&
      server_at_boundary_ && ledger_.empty() && status_ == 'I' && !unsynced_ && !skip_until_sync_)
    release_when_done();
  if (draining_) close_if_at_rest();
}

// Observes (all modes) and, outside session mode, re-encodes one server frame for the client.
SessionCore::FrameOutcome SessionCore::on_server_frame(const protocol::Frame& f, ByteView raw) {
  const bool session_mode = settings_.mode == PoolMode::Session;
  if (f.kind == FrameKind::StreamChunk) {
    if (!session_mode) to_client_.pass(f.data);
    return FrameOutcome::Go;
  }
  if (f.kind == FrameKind::Message && f.type == 'E' && frames::is_fatal(f.data)) {
    // The backend ends (pg_terminate_backend, a shutdown) before any answer reached the
    // client: what it was asked did not commit (a commit is answered before the backend can
    // act on a signal), so the requests go to another connection.
    if ((phase_ == Phase::Login || replayable_) && !ended()) {
      auto error = protocol::ErrorResponse::decode(f.data);
      std::string why = "server sent FATAL " + std::string(error ? error->sqlstate() : "") + ": " +
                        std::string(error ? error->message() : "");
      lost(std::move(why), true, std::move(error));
      return FrameOutcome::Lost;
    }
    server_said_fatal_ = true;
  }
  // An answer reaches the client: from here on, losing the connection is the client's to see.
  if (replayable_) {
    replayable_ = false;
    replay_.clear();
  }
  auto outcome = ledger_.on_response(f.type);
  if (tracker_) {
    tracker_->on_response(f, outcome, now_);
    if (ledger_.has_skipped_tags()) tracker_->on_skipped(ledger_.take_skipped_tags());
  }
  bool end_statement_block = false;
  if (f.kind == FrameKind::Message) {
    if (f.type == 'Z' && f.data.size() == 1) {
      status_ = static_cast<char>(f.data[0]);
      answered_at_ = now_;
      finish_round_trip();
      if (tracker_) {
        tracker_->on_ready(status_);
        if (ledger_.empty()) tracker_->on_all_answered();
      }
      end_statement_block = settings_.mode == PoolMode::Statement && status_ != 'I';
    } else if (f.type == 'S') {
      // The client changed a parameter (SET application_name ...): it follows the client now.
      if (auto p = protocol::ParameterStatus::decode(f.data)) {
        if (auto name = tracked_parameter(p->name)) {
          client_params_[*name] = p->value;
          server_->applied[*name] = p->value;
        }
      }
    } else if (f.type == 'C' && f.data.size() >= 11 &&
               protocol::as_chars(f.data).substr(0, 11) == "DISCARD ALL") {
      server_->statements.clear();
      server_->applied.clear();
      state_left_.clear();  // the client reset it itself
    }
  }
  for (const auto& name : ledger_.take_unprepared()) server_->statements.erase(name);
  // The transaction block's ReadyForQuery is not forwarded: the client's BEGIN fails with the
  // FATAL error that follows, instead of succeeding before it.
  if (end_statement_block) return FrameOutcome::StatementBlock;
  if (session_mode) return FrameOutcome::Go;
  switch (outcome.verdict) {
    case RequestLedger::Verdict::Forward:
      forward(to_client_, f, raw);
      break;
    case RequestLedger::Verdict::Drop:
      break;
    case RequestLedger::Verdict::AsParseComplete:
      to_client_.own([](Bytes& b) { protocol::ParseComplete{}.encode(b); });
      break;
    case RequestLedger::Verdict::AsDeallocate:
      to_client_.own([](Bytes& b) { protocol::CommandComplete{"DEALLOCATE"}.encode(b); });
      break;
  }
  return FrameOutcome::Go;
}

// pglens' own exchanges: parameter sync before the client's request, the state reset after its
// transaction, server_reset_query after its session. Nothing of them reaches the client.
void SessionCore::on_task_frame(const protocol::Frame& f, bool last_in_input) {
  if (f.kind != FrameKind::Message) return;
  if (f.type == 'E') task_error_ = protocol::ErrorResponse::decode(f.data);
  if (f.type != 'Z') return;
  Task task = std::exchange(task_, Task::None);
  // The server said more than it was asked: this connection is not what pglens thinks.
  if (!last_in_input && !task_error_)
    task_error_ = protocol::make_error("08P01", "pglens: unexpected data after ReadyForQuery");
  if (task == Task::Reset || task == Task::Discard) {
    if (task_error_) {
      release(false, "reset failed: " + std::string(task_error_->message()));
    } else {
      server_->applied.clear();
      server_->statements.clear();
      release(true);
    }
    if (task == Task::Reset) phase_ = Phase::Ended;
    if (task == Task::Discard) resume_client();
    return;
  }
  if (task_error_) {
    auto error = std::move(*task_error_);
    release(false, "parameter sync failed: " + std::string(error.message()));
    refuse_pending(std::move(error));
    return;
  }
  // The backend now has exactly the client's values.
  server_->applied = client_params_;
  server_ready();
}

// At ReadyForQuery: a round trip ended, and with status 'I' a transaction (implicit or not).
void SessionCore::finish_round_trip() {
  if (!request_started_) return;
  request_started_ = false;
  bool transaction_ended = status_ == 'I' && transaction_started_;
  if (transaction_ended) transaction_started_ = false;
  if (traffic_ == nullptr) return;
  traffic_->queries++;
  traffic_->query_us += micros(now_ - request_start_);
  if (transaction_ended) {
    traffic_->transactions++;
    traffic_->transaction_us += micros(now_ - transaction_start_);
  }
}

}  // namespace pglens::session
