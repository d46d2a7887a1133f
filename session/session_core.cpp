#include "session/session_core.hpp"

#include <cctype>
#include <regex>

#include "session/client_parameters.hpp"

namespace pglens::session {

namespace {
using pool::PoolMode;
using protocol::Bytes;
using protocol::ByteView;
using protocol::DecodeStatus;
using protocol::FrameKind;
using Handling = RequestLedger::Handling;

// A Close of this name stands in for a Parse the server already has: closing a statement that
// does not exist is not an error, and its CloseComplete arrives exactly where ParseComplete would.
constexpr std::string_view kPlaceholderStatement = "pglens_placeholder";

void append_header(Bytes& out, char type, std::uint32_t body_length) {
  std::uint32_t len = body_length + 4;
  const std::uint8_t header[5] = {
      static_cast<std::uint8_t>(type), static_cast<std::uint8_t>(len >> 24),
      static_cast<std::uint8_t>(len >> 16), static_cast<std::uint8_t>(len >> 8),
      static_cast<std::uint8_t>(len)};
  out.insert(out.end(), header, header + 5);
}

// `DEALLOCATE [PREPARE] name|ALL` as a whole simple query: the statement named, or "" for ALL.
std::optional<std::string> deallocate_target(std::string_view sql) {
  std::size_t i = 0;
  while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
  if (sql.size() - i < 10) return std::nullopt;
  std::string head(sql.substr(i, 10));
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (head != "deallocate") return std::nullopt;
  static const std::regex pattern(
      R"re(^\s*deallocate\s+(?:prepare\s+)?(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_$]*))\s*;?\s*$)re",
      std::regex::icase);
  std::cmatch m;
  if (!std::regex_match(sql.data(), sql.data() + sql.size(), m, pattern)) return std::nullopt;
  if (m[1].matched) return m[1].str();
  std::string name = m[2].str();
  std::string lower = name;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "all") return std::string();
  return lower;  // unquoted identifiers fold to lower case
}

// The same error at another severity: FATAL while logging in, ERROR once the client can go on.
void set_severity(protocol::ErrorResponse& e, std::string_view severity) {
  std::erase_if(e.fields, [](const auto& f) { return f.first == 'S' || f.first == 'V'; });
  e.fields.insert(e.fields.begin(), {{'S', std::string(severity)}, {'V', std::string(severity)}});
}

// Requests the server answers (and the ledger records); Flush and COPY data are not.
bool answered(char type) {
  return type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C' || type == 'S' ||
         type == 'Q' || type == 'F';
}

std::uint64_t micros(Clock::duration d) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(d).count());
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
  now_ = now;
  phase_ = Phase::Login;
  emit(Action::Kind::Acquire);
}

void SessionCore::on_server_acquired(ServerState& server, std::chrono::nanoseconds waited,
                                     TimePoint now) {
  now_ = now;  // a request starts now: the pool wait is counted apart
  server_ = &server;
  server_decoder_.reset();
  server_at_boundary_ = true;
  server_dirty_ = false;
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
    if (settings_.mode != PoolMode::Session) release(true);
  }
  if (server_ != nullptr) read_server();
  if (client_paused_) {
    client_paused_ = false;
    emit(Action::Kind::ResumeClient);
  }
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

void SessionCore::on_acquire_failed(protocol::ErrorResponse error, TimePoint now) {
  now_ = now;
  if (phase_ == Phase::Login)
    fail_login(std::move(error));
  else
    refuse(std::move(error));
}

void SessionCore::fail_login(protocol::ErrorResponse error) {
  // The upstream's own reason (no such database, bad password) is the client's answer.
  set_severity(error, "FATAL");
  to_client_.own([&](Bytes& b) { error.encode(b); });
  close_client("upstream login failed: " + std::string(error.message()));
}

void SessionCore::refuse(protocol::ErrorResponse error) {
  // The client asked for something and no server connection could be had: it gets the reason
  // and stays connected. A Query (or FunctionCall, or Sync) is answered at once, as the server
  // would after an error; in an extended batch, the rest until its Sync is skipped.
  set_severity(error, "ERROR");
  to_client_.own([&](Bytes& b) { error.encode(b); });
  emit(Action::Kind::Log, false, std::string(error.message()));
  if (waiting_type_ == 'Q' || waiting_type_ == 'S' || waiting_type_ == 'F') {
    to_client_.own([](Bytes& b) { protocol::ReadyForQuery{'I'}.encode(b); });
    drop_next_ = true;
  } else {
    skip_until_sync_ = true;
  }
  waiting_type_ = 0;
  if (client_paused_) {
    client_paused_ = false;
    emit(Action::Kind::ResumeClient);
  }
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
  server_dirty_ = true;
  switch (task_) {
    case Task::Sync: {
      release(false, std::string(reason) + " while applying parameters");
      auto error =
          protocol::make_error("08006", "pglens: server connection lost while applying parameters");
      if (phase_ == Phase::Login)
        fail_login(std::move(error));
      else
        refuse(std::move(error));
      return;
    }
    case Task::Reset:
      release(false, std::string(reason) + " during server_reset_query");
      phase_ = Phase::Ended;
      return;
    case Task::None:
      break;
  }
  if (server_decoder_.at_boundary())
    fatal("08006", "pglens: the server connection was lost", std::string(reason));
  else
    close_client(std::string(reason));
}

void SessionCore::finish(TimePoint now) {
  now_ = now;
  if (phase_ != Phase::Ending && phase_ != Phase::Ended) phase_ = Phase::Ending;
  if (server_ == nullptr || task_ == Task::Reset) {
    if (server_ == nullptr) phase_ = Phase::Ended;
    return;
  }
  // A clean connection goes back to the pool (after server_reset_query in session mode); one
  // left mid-transaction or mid-message is closed, so no other client ever sees its state and
  // its locks go at once.
  bool clean = !server_dirty_ && task_ == Task::None && status_ == 'I' && ledger_.empty() &&
               !unsynced_ && server_at_boundary_;
  if (clean && settings_.mode == PoolMode::Session && !settings_.server_reset_query.empty()) {
    to_server_.own([&](Bytes& b) { protocol::Query{settings_.server_reset_query}.encode(b); });
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

// ---- client → server ----

bool SessionCore::needs_server(char type) const {
  if (type == 0 || type == 'X' || skip_until_sync_ || drop_next_) return false;
  // A Flush outside an open batch asks for nothing, and COPY messages outside a COPY are
  // ignored by the server: forwarding them could only race a connection being given back.
  bool in_request = !ledger_.empty() || unsynced_;
  if (type == 'H' && !unsynced_) return false;
  if ((type == 'd' || type == 'c' || type == 'f') && !in_request) return false;
  return true;
}

std::size_t SessionCore::on_client_bytes(ByteView input, TimePoint now) {
  if (phase_ != Phase::Running || client_paused_) return 0;
  now_ = now;
  const bool session_mode = settings_.mode == PoolMode::Session;
  std::size_t used = 0;
  while (used < input.size() && !ended()) {
    ByteView rest = input.subspan(used);
    char next = client_decoder_.next_type(rest);
    // Transaction and statement mode: the message that starts a transaction takes a server
    // connection first, and is decoded once it has one.
    if (!session_mode && server_ == nullptr && needs_server(next)) {
      waiting_type_ = next;
      emit(Action::Kind::Acquire);
      break;
    }
    auto r = client_decoder_.next(rest);
    if (r.status == DecodeStatus::Error) {
      server_dirty_ = true;
      fatal("08P01", "pglens: protocol violation from client: " + r.error,
            "protocol violation: " + r.error);
      break;
    }
    ByteView consumed = rest.first(r.consumed);
    used += r.consumed;
    if (r.status == DecodeStatus::NeedMore) {
      // Part of a message: session mode forwards what it reads, but never a Terminate.
      if (session_mode && next != 'X') to_server_.pass(consumed);
      break;
    }
    const auto& f = r.frame;
    if (f.kind == FrameKind::Message && f.type == 'X') {
      close_client("client sent Terminate");
      break;
    }
    if (session_mode) {
      to_server_.pass(consumed);
      observe_request(f);
      continue;
    }
    // The frame's bytes are all in this input when they are the whole of what it consumed.
    bool whole = (f.kind == FrameKind::Message && r.consumed == f.body_length + 5) ||
                 (f.kind == FrameKind::StreamStart && r.consumed == 5);
    route(f, whole ? consumed : ByteView{});
  }
  return used;
}

void SessionCore::observe_request(const protocol::Frame& f) {
  if (f.kind != FrameKind::Message) return;
  note_request(f.type);
  auto tag = track_request(f);
  if (answered(f.type)) ledger_.push(f.type, Handling::Pass, {}, tag);
}

void SessionCore::route(const protocol::Frame& f, ByteView raw) {
  if (f.kind == FrameKind::StreamChunk) {
    if (!skip_until_sync_ && server_) to_server_.pass(f.data);
    return;
  }
  if (drop_next_) {  // refused already: its answer is out
    drop_next_ = false;
    return;
  }
  if (skip_until_sync_) {
    // After a failed acquire the client's batch is answered with one error and, at its Sync,
    // ReadyForQuery: as the server would after an error.
    if (f.type == 'S') {
      skip_until_sync_ = false;
      to_client_.own([](Bytes& b) { protocol::ReadyForQuery{'I'}.encode(b); });
    }
    return;
  }
  if (server_ == nullptr) return;  // a Flush or COPY message needs_server() let go
  waiting_type_ = 0;               // the request the connection was taken for is on its way
  note_request(f.type);
  auto tag = track_request(f);
  if (f.kind == FrameKind::StreamStart) {  // a large CopyData: its chunks follow
    forward(to_server_, f, raw);
    return;
  }
  switch (f.type) {
    case 'P':
      if (!rewrite_parse(f.data)) forward(to_server_, f, raw);
      break;
    case 'B':
      rewrite_with_statement(f, raw, true);
      break;
    case 'D':
      rewrite_with_statement(f, raw, false);
      break;
    case 'C':
      rewrite_close(f, raw);
      break;
    case 'Q':
      rewrite_query(f, raw, tag);
      break;
    case 'E':
      ledger_.push('E', Handling::Pass, {}, tag);
      forward(to_server_, f, raw);
      break;
    case 'S':
    case 'F':
      ledger_.push(f.type);
      forward(to_server_, f, raw);
      break;
    default:  // Flush, CopyData, CopyDone, CopyFail: no answer of their own
      forward(to_server_, f, raw);
      break;
  }
}

void SessionCore::forward(Output& out, const protocol::Frame& f, ByteView raw) {
  if (!raw.empty()) {
    out.pass(raw);
    return;
  }
  // Gathered across reads (or its header was): the decoder's copy goes out as a whole message.
  out.own([&](Bytes& b) {
    append_header(b, f.type, f.body_length);
    if (f.kind == FrameKind::Message) b.insert(b.end(), f.data.begin(), f.data.end());
  });
}

// Book-keeping shared by every mode: when a round trip starts, whether the batch is open.
void SessionCore::note_request(char type) {
  if (!request_started_) {
    request_started_ = true;
    request_start_ = now_;
    if (!transaction_started_) {
      transaction_started_ = true;
      transaction_start_ = request_start_;
    }
  }
  if (type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C') unsynced_ = true;
  if (type == 'S' || type == 'Q') unsynced_ = false;
}

// Feeds the analysis; returns the tag an Execute or Query goes by in the ledger.
std::uint64_t SessionCore::track_request(const protocol::Frame& f) {
  if (!tracker_ || f.kind != FrameKind::Message) return 0;
  switch (f.type) {
    case 'P':
      tracker_->on_parse(f.data);
      return 0;
    case 'B':
      tracker_->on_bind(f.data);
      return 0;
    case 'C':
      tracker_->on_close(f.data);
      return 0;
    case 'S':
      tracker_->on_sync();
      return 0;
    case 'E':
      return tracker_->on_execute(f.data, now_);
    case 'Q':
      return tracker_->on_query(f.data, now_);
    default:
      return 0;
  }
}

bool SessionCore::rewrite_parse(ByteView body) {
  auto parse = protocol::Parse::decode(body);
  if (!parse || parse->statement.empty()) {  // malformed: the server will say so; unnamed: as is
    ledger_.push('P');
    return false;
  }
  auto name = server_statement_name(parse->query, parse->param_types);
  client_statements_[parse->statement] = ClientStatement{parse->query, parse->param_types, name};
  if (server_->statements.touch(name)) {
    to_server_.own([](Bytes& b) {
      protocol::Close{'S', std::string(kPlaceholderStatement)}.encode(b);
    });
    ledger_.push('C', Handling::CloseAsParseComplete);
    return true;
  }
  prepare_on_server(name, parse->query, parse->param_types, Handling::Pass);
  return true;
}

void SessionCore::prepare_on_server(const std::string& name, const std::string& query,
                                    const std::vector<std::uint32_t>& types, Handling handling) {
  if (auto evicted = server_->statements.insert(name)) {
    to_server_.own([&](Bytes& b) { protocol::Close{'S', *evicted}.encode(b); });
    ledger_.push('C', Handling::Skip);
  }
  to_server_.own([&](Bytes& b) { protocol::Parse{name, query, types}.encode(b); });
  ledger_.push('P', handling, name);
}

// Bind and Describe name a statement: the client's name becomes the server-side one, prepared
// first if the server this client has now does not have it.
void SessionCore::rewrite_with_statement(const protocol::Frame& f, ByteView raw, bool is_bind) {
  protocol::Reader in(f.data);
  std::string_view portal;
  char target = 'S';
  if (is_bind)
    portal = in.cstring();
  else
    target = static_cast<char>(in.u8());
  auto statement = in.cstring();
  const ClientStatement* known = nullptr;
  if (!in.failed() && target == 'S' && !statement.empty()) {
    auto it = client_statements_.find(statement);
    if (it != client_statements_.end()) known = &it->second;
  }
  if (known == nullptr) {  // unnamed, a portal, unknown or malformed: the server decides
    ledger_.push(f.type);
    forward(to_server_, f, raw);
    return;
  }
  if (!server_->statements.touch(known->server_name))
    prepare_on_server(known->server_name, known->query, known->param_types, Handling::Skip);
  ledger_.push(f.type);
  // The same message with the server-side name.
  auto rest = in.rest();
  const auto& name = known->server_name;
  std::size_t head = is_bind ? portal.size() + 1 : 1;
  to_server_.own([&](Bytes& out) {
    append_header(out, f.type, static_cast<std::uint32_t>(head + name.size() + 1 + rest.size()));
    if (is_bind) {
      out.insert(out.end(), portal.begin(), portal.end());
      out.push_back(0);
    } else {
      out.push_back(static_cast<std::uint8_t>(target));
    }
    out.insert(out.end(), name.begin(), name.end());
    out.push_back(0);
    out.insert(out.end(), rest.begin(), rest.end());
  });
}

void SessionCore::rewrite_close(const protocol::Frame& f, ByteView raw) {
  auto close = protocol::Close::decode(f.data);
  ledger_.push('C');
  if (close && close->target == 'S' && !close->name.empty() &&
      client_statements_.erase(close->name) > 0) {
    // The server-side statement stays for other clients; the client gets its CloseComplete.
    to_server_.own([](Bytes& b) {
      protocol::Close{'S', std::string(kPlaceholderStatement)}.encode(b);
    });
    return;
  }
  forward(to_server_, f, raw);
}

void SessionCore::rewrite_query(const protocol::Frame& f, ByteView raw, std::uint64_t tag) {
  ByteView body = f.data;
  auto sql = protocol::as_chars(body.first(body.empty() ? 0 : body.size() - 1));
  if (auto target = deallocate_target(sql)) {
    if (target->empty())
      client_statements_.clear();
    else
      client_statements_.erase(*target);
    to_server_.own([](Bytes& b) { protocol::Query{""}.encode(b); });
    ledger_.push('Q', Handling::EmptyAsDeallocate, {}, tag);
    return;
  }
  ledger_.push('Q', Handling::Pass, {}, tag);
  forward(to_server_, f, raw);
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
      } else {
        close_client(std::move(why));
      }
      return;
    }
    ByteView consumed = rest.first(r.consumed);
    used += r.consumed;
    if (task_ != Task::None) {
      if (r.status == DecodeStatus::Frame) on_task_frame(r.frame, used == input.size());
      if (server_ == nullptr) return;  // the task ended and the connection went
      continue;
    }
    // Session mode forwards what it reads, whole messages or not.
    if (session_mode) to_client_.pass(consumed);
    if (r.status == DecodeStatus::NeedMore) break;
    const auto& f = r.frame;
    bool whole = (f.kind == FrameKind::Message && r.consumed == f.body_length + 5) ||
                 (f.kind == FrameKind::StreamStart && r.consumed == 5);
    if (!on_server_frame(f, whole ? consumed : ByteView{})) {
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
    release(true);
}

// Observes (all modes) and, outside session mode, re-encodes one server frame for the client.
bool SessionCore::on_server_frame(const protocol::Frame& f, ByteView raw) {
  const bool session_mode = settings_.mode == PoolMode::Session;
  if (f.kind == FrameKind::StreamChunk) {
    if (!session_mode) to_client_.pass(f.data);
    return true;
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
    }
  }
  for (const auto& name : ledger_.take_unprepared()) server_->statements.erase(name);
  // The transaction block's ReadyForQuery is not forwarded: the client's BEGIN fails with the
  // FATAL error that follows, instead of succeeding before it.
  if (end_statement_block) return false;
  if (session_mode) return true;
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
  return true;
}

// pglens' own exchange: parameter sync before the client's request, server_reset_query after
// its session. Nothing of it reaches the client.
void SessionCore::on_task_frame(const protocol::Frame& f, bool last_in_input) {
  if (f.kind != FrameKind::Message) return;
  if (f.type == 'E') task_error_ = protocol::ErrorResponse::decode(f.data);
  if (f.type != 'Z') return;
  Task task = std::exchange(task_, Task::None);
  // The server said more than it was asked: this connection is not what pglens thinks.
  if (!last_in_input && !task_error_)
    task_error_ = protocol::make_error("08P01", "pglens: unexpected data after ReadyForQuery");
  if (task == Task::Reset) {
    if (task_error_) {
      release(false, "server_reset_query failed: " + std::string(task_error_->message()));
    } else {
      server_->applied.clear();
      server_->statements.clear();
      release(true);
    }
    phase_ = Phase::Ended;
    return;
  }
  if (task_error_) {
    auto error = std::move(*task_error_);
    release(false, "parameter sync failed: " + std::string(error.message()));
    if (phase_ == Phase::Login)
      fail_login(std::move(error));
    else
      refuse(std::move(error));
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
