// SessionCore, client → server: which messages take a server connection, how they are rewritten
// for the one held (statement names, DEALLOCATE), what is answered here (Parse with no
// connection held), and what is kept for a retry.
#include <cctype>
#include <regex>

#include "session/frames.hpp"
#include "session/session_core.hpp"
#include "session/session_state.hpp"

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
// Requests kept for a retry, at most: beyond, a connection lost before its answer is an error.
constexpr std::size_t kMaxReplay = 64 * 1024;

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

std::string_view query_text(ByteView body) {
  return protocol::as_chars(body.first(body.empty() ? 0 : body.size() - 1));
}
}  // namespace

bool SessionCore::needs_server(char type) const {
  if (type == 0 || type == 'X' || skip_until_sync_ || drop_next_) return false;
  // A Flush outside an open batch asks for nothing, and COPY messages outside a COPY are
  // ignored by the server: forwarding them could only race a connection being given back.
  bool in_request = !ledger_.empty() || unsynced_;
  if (type == 'H' && !unsynced_) return false;
  if ((type == 'd' || type == 'c' || type == 'f') && !in_request) return false;
  // A batch of Parses answered here ends at its Sync, here too.
  if (type == 'S' && local_batch_) return false;
  return true;
}

// A named Parse (its name, the body's first byte, in sight) with no connection held is answered
// here; what follows it decides whether a server is needed.
bool SessionCore::answers_parse_here(ByteView rest) const {
  return settings_.check_syntax && !skip_until_sync_ && client_decoder_.at_boundary() &&
         rest.size() > 5 && rest[0] == 'P' && rest[5] != 0;
}

std::size_t SessionCore::on_client_bytes(ByteView input, TimePoint now) {
  if (phase_ != Phase::Running || client_paused_) return 0;
  now_ = client_active_at_ = now;
  const bool session_mode = settings_.mode == PoolMode::Session;
  std::size_t used = 0;
  while (used < input.size() && !ended() && !client_paused_) {
    ByteView rest = input.subspan(used);
    char next = client_decoder_.next_type(rest);
    // Transaction and statement mode: the message that starts a transaction takes a server
    // connection first, and is decoded once it has one.
    if (!session_mode && server_ == nullptr && needs_server(next) && !answers_parse_here(rest)) {
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
    ByteView raw = whole ? consumed : ByteView{};
    if (route(f, raw) && replayable_) record(f, raw);
  }
  if (draining_) close_if_at_rest();  // a Sync answered here can end what was in flight
  return used;
}

void SessionCore::record(const protocol::Frame& f, ByteView raw) {
  std::size_t size = f.kind == FrameKind::Message ? 5 + f.body_length : 0;
  if (f.kind != FrameKind::Message || replay_.size() + size > kMaxReplay) {
    replayable_ = false;  // streamed or large: not kept, so not retried
    replay_.clear();
    return;
  }
  if (!raw.empty()) {
    replay_.insert(replay_.end(), raw.begin(), raw.end());
  } else {
    frames::append_header(replay_, f.type, f.body_length);
    replay_.insert(replay_.end(), f.data.begin(), f.data.end());
  }
}

void SessionCore::observe_request(const protocol::Frame& f) {
  if (f.kind != FrameKind::Message) return;
  note_request(f.type);
  auto tag = track_request(f);
  if (frames::answered(f.type)) ledger_.push(f.type, Handling::Pass, {}, tag);
}

bool SessionCore::route(const protocol::Frame& f, ByteView raw) {
  if (f.kind == FrameKind::StreamChunk) {
    if (skip_until_sync_ || server_ == nullptr) return false;
    to_server_.pass(f.data);
    return true;
  }
  if (drop_next_) {  // refused already: its answer is out
    drop_next_ = false;
    return false;
  }
  if (skip_until_sync_) {
    // After an error here the client's batch is skipped and, at its Sync, answered with
    // ReadyForQuery: as the server would after an error.
    if (f.type == 'S') {
      skip_until_sync_ = local_batch_ = false;
      to_client_.own([](Bytes& b) { protocol::ReadyForQuery{'I'}.encode(b); });
    }
    return false;
  }
  if (server_ == nullptr) {
    if (f.type == 'P') {
      answer_parse(f);
    } else if (f.type == 'S' && local_batch_) {
      local_batch_ = false;
      to_client_.own([](Bytes& b) { protocol::ReadyForQuery{'I'}.encode(b); });
    }
    return false;  // else a Flush or COPY message needs_server() let go
  }
  waiting_type_ = 0;  // the request the connection was taken for is on its way
  local_batch_ = false;
  note_request(f.type);
  auto tag = track_request(f);
  if (f.kind == FrameKind::StreamStart) {  // a large CopyData: its chunks follow
    forward(to_server_, f, raw);
    return true;
  }
  switch (f.type) {
    case 'P':
      if (!rewrite_parse(f.data)) forward(to_server_, f, raw);
      break;
    case 'B':
      rewrite_with_statement(f, raw, true);
      break;
    case 'D':
      rewrite_with_statement(f, raw, false, tag);
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
  return true;
}

// A client's blocking prepare (libpq's PQprepare: Parse, Sync) waits for no server connection:
// the statement is checked here and prepared on whichever connection runs it later.
void SessionCore::answer_parse(const protocol::Frame& f) {
  track_request(f);
  auto parse = protocol::Parse::decode(f.data);
  auto error = !parse ? std::optional(protocol::make_error(
                            "08P01", "pglens: invalid Parse message from client"))
                      : settings_.check_syntax(parse->query);
  if (error) {
    to_client_.own([&](Bytes& b) { error->encode(b); });
    skip_until_sync_ = true;  // as the server would: the rest of the batch is skipped
    return;
  }
  auto name = server_statement_name(parse->query, parse->param_types);
  client_statements_[parse->statement] = ClientStatement{
      parse->query, parse->param_types, std::move(name), session_state_left_by(parse->query)};
  to_client_.own([](Bytes& b) { protocol::ParseComplete{}.encode(b); });
  local_batch_ = true;
}

void SessionCore::forward(Output& out, const protocol::Frame& f, ByteView raw) {
  if (!raw.empty()) {
    out.pass(raw);
    return;
  }
  // Gathered across reads (or its header was): the decoder's copy goes out as a whole message.
  out.own([&](Bytes& b) {
    frames::append_header(b, f.type, f.body_length);
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

// Feeds the analysis; returns the tag an Execute or Query goes by in the ledger. A replay
// takes the tags the first attempt got: the analysis saw those requests already.
std::uint64_t SessionCore::track_request(const protocol::Frame& f) {
  if (!tracker_ || f.kind != FrameKind::Message) return 0;
  if (retrying_) {
    if ((f.type == 'E' || f.type == 'Q') && next_replay_tag_ < replay_tags_.size())
      return replay_tags_[next_replay_tag_++];
    return 0;
  }
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
    case 'D':
      return tracker_->on_describe(f.data);
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
    // The unnamed statement runs right behind its Parse: what it leaves is known now.
    if (parse && state_left_.empty()) state_left_ = session_state_left_by(parse->query);
    ledger_.push('P');
    return false;
  }
  auto name = server_statement_name(parse->query, parse->param_types);
  // A named one leaves its state when a Bind runs it (rewrite_with_statement).
  client_statements_[parse->statement] =
      ClientStatement{parse->query, parse->param_types, name, session_state_left_by(parse->query)};
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
void SessionCore::rewrite_with_statement(const protocol::Frame& f, ByteView raw, bool is_bind,
                                         std::uint64_t tag) {
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
    ledger_.push(f.type, Handling::Pass, {}, tag);
    forward(to_server_, f, raw);
    return;
  }
  if (!server_->statements.touch(known->server_name))
    prepare_on_server(known->server_name, known->query, known->param_types, Handling::Skip);
  if (is_bind && state_left_.empty()) state_left_ = known->state_left;
  ledger_.push(f.type, Handling::Pass, {}, tag);
  // The same message with the server-side name.
  auto rest = in.rest();
  const auto& name = known->server_name;
  std::size_t head = is_bind ? portal.size() + 1 : 1;
  to_server_.own([&](Bytes& out) {
    frames::append_header(out, f.type,
                          static_cast<std::uint32_t>(head + name.size() + 1 + rest.size()));
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
  auto sql = query_text(f.data);
  if (auto target = deallocate_target(sql)) {
    if (target->empty())
      client_statements_.clear();
    else
      client_statements_.erase(*target);
    to_server_.own([](Bytes& b) { protocol::Query{""}.encode(b); });
    ledger_.push('Q', Handling::EmptyAsDeallocate, {}, tag);
    return;
  }
  if (state_left_.empty()) state_left_ = session_state_left_by(sql);
  ledger_.push('Q', Handling::Pass, {}, tag);
  forward(to_server_, f, raw);
}

// The requests of a connection lost before any answer reached the client, sent again on the
// one taken for the retry: through the same routing, so statements are prepared there.
void SessionCore::replay() {
  replay_decoder_.reset();
  next_replay_tag_ = 0;
  ByteView in(replay_);
  while (!in.empty()) {
    auto r = replay_decoder_.next(in);
    if (r.status != DecodeStatus::Frame) break;  // it held whole messages only
    route(r.frame, in.first(r.consumed));
    in = in.subspan(r.consumed);
  }
  retrying_ = false;
  replay_tags_.clear();
}

}  // namespace pglens::session
