#include "session/execution_tracker.hpp"

#include <algorithm>

#include "analyzer/bind_values.hpp"
#include "protocol/messages.hpp"

namespace pglens::session {

namespace {
using analyzer::hash_value;

// A RowDescription's first column names, assigned in place: their buffers are reused.
void read_column_names(protocol::ByteView body, std::vector<std::string>& columns) {
  protocol::Reader in(body);
  auto n = std::min<std::size_t>(in.count16(19), analyzer::kSampleColumns);
  columns.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    columns[i].assign(in.cstring());
    in.bytes(18);
    if (in.failed()) {
      columns.resize(i);
      break;
    }
  }
}
}  // namespace

ExecutionTracker::ExecutionTracker(std::shared_ptr<const analyzer::SessionInfo> session,
                                   analyzer::EventQueue& sink)
    : session_id_(session->session_id), sink_(sink) {
  sink_.start_session(std::move(session));
}

ExecutionTracker::~ExecutionTracker() {
  sink_.end_session(session_id_);
}

void ExecutionTracker::on_parse(protocol::ByteView body) {
  protocol::Reader in(body);
  auto name = in.cstring();
  auto query = in.cstring();
  if (in.failed()) return;
  auto& text = statement(name);
  // Drivers re-Parse the unnamed statement with the same text again and again: keep the text.
  if (!text || *text != query) {
    text = std::make_shared<const std::string>(query);
    if (!statement_columns_.empty()) statement_columns_.erase(std::string(name));
  }
}

std::uint64_t ExecutionTracker::on_describe(protocol::ByteView body) {
  protocol::Reader in(body);
  auto target = in.u8();
  auto name = in.cstring();
  if (in.failed()) return 0;
  bool portal = target == 'P';
  if (portal ? find_portal(name) == nullptr : target != 'S' || find_statement(name) == nullptr)
    return 0;
  if (describes_.size() >= 64) describes_.erase(describes_.begin());  // never answered
  describes_.push_back({next_tag_++, std::string(name), portal});
  return describes_.back().tag;
}

void ExecutionTracker::on_bind(protocol::ByteView body) {
  protocol::Reader in(body);
  auto portal_name = in.cstring();
  auto statement_name = in.cstring();
  if (in.failed()) return;
  // Filled in place: its buffer keeps the capacity an earlier Bind left it. The values are
  // copied as they came; the analyzer's thread turns them into text.
  Portal& p = portal(portal_name);
  auto* text = find_statement(statement_name);
  p.sql = text ? *text : nullptr;
  if (statement_columns_.empty()) {
    p.described.reset();
  } else {
    auto found = statement_columns_.find(statement_name);
    p.described = found != statement_columns_.end() ? found->second : nullptr;
  }
  analyzer::capture_bind_values(in.rest(), p.bind_values);
}

void ExecutionTracker::on_close(protocol::ByteView body) {
  auto close = protocol::Close::decode(body);
  if (!close) return;
  if (close->target == 'S') {
    statement_columns_.erase(close->name);
    if (close->name.empty())
      unnamed_statement_.reset();
    else
      statements_.erase(close->name);
  } else {
    if (close->name.empty())
      unnamed_portal_ = {};
    else
      portals_.erase(close->name);
  }
}

std::shared_ptr<const std::string>* ExecutionTracker::find_statement(std::string_view name) {
  if (name.empty()) return &unnamed_statement_;
  auto it = statements_.find(name);
  return it != statements_.end() ? &it->second : nullptr;
}

ExecutionTracker::Portal* ExecutionTracker::find_portal(std::string_view name) {
  if (name.empty()) return &unnamed_portal_;
  auto it = portals_.find(name);
  return it != portals_.end() ? &it->second : nullptr;
}

std::shared_ptr<const std::string>& ExecutionTracker::statement(std::string_view name) {
  if (auto* found = find_statement(name)) return *found;
  return statements_.emplace(std::string(name), nullptr).first->second;
}

ExecutionTracker::Portal& ExecutionTracker::portal(std::string_view name) {
  if (auto* found = find_portal(name)) return *found;
  return portals_.emplace(std::string(name), Portal{}).first->second;
}

ExecutionTracker::Execution& ExecutionTracker::start(std::shared_ptr<const std::string> sql,
                                                     Clock::time_point now) {
  if (end_ == executions_.size()) executions_.emplace_back();
  Execution& e = executions_[end_++];
  e.tag = next_tag_++;
  e.done = false;
  e.started = now;
  e.sampled_rows = 0;
  e.bind_values.clear();
  e.described.reset();
  e.event.clear_keeping_capacity();
  e.event.transaction = transaction_;
  e.event.request = request_;
  e.event.sql = std::move(sql);
  e.event.pool_wait = std::exchange(pool_wait_, std::chrono::nanoseconds(0));
  return e;
}

std::uint64_t ExecutionTracker::on_execute(protocol::ByteView body, Clock::time_point now) {
  protocol::Reader in(body);
  auto name = in.cstring();
  auto max_rows = in.i32();
  Portal* p = find_portal(name);
  if (p == nullptr || !p->sql) return 0;
  Execution& e = start(p->sql, now);
  e.event.extended = true;
  e.described = p->described;
  // A portal suspended by a row limit is executed again for its next rows: it keeps its values.
  // One run to completion has no more rows to give, so they move (a repeated Execute of it, which
  // returns nothing, is recorded without them).
  if (max_rows > 0 || in.failed())
    e.bind_values = p->bind_values;
  else
    e.bind_values.swap(p->bind_values);  // the portal gets the slot's buffer
  auto tag = e.tag;
  // Several Executes before one Sync: the batch ran pipelined, each of its statements did.
  // Those before it were marked as they came, but for the first.
  if (executes_since_sync_++ == 0) {
    first_execute_since_sync_ = tag;
  } else {
    e.event.pipelined = true;
    if (executes_since_sync_ == 2)
      if (auto* first = find(first_execute_since_sync_)) first->event.pipelined = true;
  }
  return tag;
}

std::uint64_t ExecutionTracker::on_query(protocol::ByteView body, Clock::time_point now) {
  auto text = protocol::as_chars(body.empty() ? body : body.first(body.size() - 1));
  Execution& e = start(nullptr, now);
  ++request_;  // a Query is a request of its own
  // A long text travels to the analyzer by reference: one of its own, not kept by the slot.
  if (text.size() > analyzer::EventBatch::kMaxCopiedText) {
    e.event.sql = std::make_shared<const std::string>(text);
    return e.tag;
  }
  // A short one is copied into the queue, so the slot's buffer is free again by the next query:
  // a client on the simple protocol allocates nothing per query once warm.
  if (!e.query_text || e.query_text.use_count() != 1)
    e.query_text = std::make_shared<std::string>();
  e.query_text->assign(text);
  e.event.sql = e.query_text;
  return e.tag;
}

ExecutionTracker::Execution* ExecutionTracker::find(std::uint64_t tag) {
  auto begin = executions_.begin() + static_cast<std::ptrdiff_t>(first_);
  auto end = executions_.begin() + static_cast<std::ptrdiff_t>(end_);
  if (begin != end && begin->tag == tag)  // the usual case: the oldest
    return begin->done ? nullptr : &*begin;
  auto it = std::lower_bound(begin, end, tag,
                             [](const Execution& e, std::uint64_t t) { return e.tag < t; });
  if (it == end || it->tag != tag || it->done) return nullptr;
  return &*it;
}

namespace {
// Slots kept for reuse once all are answered: a pipeline of thousands does not keep its memory.
constexpr std::size_t kKeptExecutions = 256;
}  // namespace

void ExecutionTracker::on_all_answered() {
  describes_.clear();  // nothing is outstanding: none of them will be answered
  for (std::size_t i = first_; i < end_; ++i) executions_[i].event.sql.reset();
  first_ = end_ = 0;
  trim_executions();
}

void ExecutionTracker::trim_executions() {
  if (executions_.size() <= kKeptExecutions) return;
  executions_.resize(kKeptExecutions);
  executions_.shrink_to_fit();
}

std::size_t ExecutionTracker::in_flight() const {
  return static_cast<std::size_t>(
      std::count_if(executions_.begin() + static_cast<std::ptrdiff_t>(first_),
                    executions_.begin() + static_cast<std::ptrdiff_t>(end_),
                    [](const Execution& e) { return !e.done; }));
}

void ExecutionTracker::retire(Execution& e) {
  e.done = true;
  e.event.sql.reset();  // the slot keeps its buffers, not the statement's text
  while (first_ < end_ && executions_[first_].done) ++first_;
  if (first_ == end_) {
    first_ = end_ = 0;
    trim_executions();
  } else if (first_ >= 64 && first_ * 2 >= end_) {
    // A client that never lets its pipeline drain: the finished front goes behind the live ones
    // now and then, for reuse.
    auto begin = executions_.begin();
    std::rotate(begin, begin + static_cast<std::ptrdiff_t>(first_),
                begin + static_cast<std::ptrdiff_t>(end_));
    end_ -= first_;
    first_ = 0;
  }
}

void ExecutionTracker::on_sync() {
  executes_since_sync_ = 0;
  ++request_;
}

void ExecutionTracker::on_ready(char status) {
  if (status == 'I') ++transaction_;
}

void ExecutionTracker::on_skipped(const std::vector<std::uint64_t>& tags) {
  for (auto t : tags) {
    if (auto* e = find(t)) retire(*e);
    std::erase_if(describes_, [t](const PendingDescribe& d) { return d.tag == t; });
  }
}

void ExecutionTracker::finish(Execution& e, Clock::time_point now) {
  e.event.latency = now - e.started;
  sink_.push(session_id_, e.event, now, e.bind_values);
}

void ExecutionTracker::on_response(const protocol::Frame& frame,
                                   const RequestLedger::Outcome& outcome, Clock::time_point now) {
  if (outcome.tag == 0) return;
  if (outcome.request == 'D') {
    auto d = std::find_if(describes_.begin(), describes_.end(),
                          [&](const PendingDescribe& p) { return p.tag == outcome.tag; });
    if (d == describes_.end() || frame.kind != protocol::FrameKind::Message) return;
    if (frame.type == 'T' && d->portal) {
      // A portal's RowDescription answers its Describe, not the Execute that follows it (sent
      // before this answer came, as libpq's PQexecParams does): that statement's names, read
      // into its own buffers as its own RowDescription would be.
      for (std::size_t i = first_; i < end_; ++i)
        if (!executions_[i].done && executions_[i].tag > d->tag) {
          read_column_names(frame.data, executions_[i].event.columns);
          break;
        }
    } else if (frame.type == 'T') {
      protocol::Reader in(frame.data);
      auto n = std::min<std::size_t>(in.count16(19), analyzer::kSampleColumns);
      auto columns = std::make_shared<std::vector<std::string>>();
      for (std::size_t i = 0; i < n && !in.failed(); ++i) {
        columns->emplace_back(in.cstring());
        in.bytes(18);
      }
      if (!in.failed()) statement_columns_[d->statement] = std::move(columns);
    }
    if (frame.type == 'T' || frame.type == 'n') describes_.erase(d);
    return;
  }
  Execution* found = find(outcome.tag);
  if (found == nullptr) return;
  Execution& e = *found;
  bool simple = outcome.request == 'Q';
  if (frame.kind != protocol::FrameKind::Message) return;  // streamed rows are not sampled
  switch (frame.type) {
    case 'T':  // RowDescription: the names the sample's columns go by
      read_column_names(frame.data, e.event.columns);
      break;
    case 'D': {  // DataRow: hash the first rows' values
      // No RowDescription came for it: the statement's, from its Describe.
      if (e.event.columns.empty() && e.described && e.sampled_rows == 0)
        e.event.columns.assign(e.described->begin(), e.described->end());
      if (e.sampled_rows >= analyzer::kSampleRows || e.event.columns.empty()) break;
      protocol::Reader in(frame.data);
      auto n = in.count16(4);
      for (std::size_t i = 0; i < e.event.columns.size(); ++i) {
        std::uint64_t h = 0;
        if (i < n) {
          auto len = in.i32();
          if (len >= 0) h = hash_value(protocol::as_chars(in.bytes(static_cast<std::size_t>(len))));
        }
        e.event.result_sample.push_back(h);
      }
      ++e.sampled_rows;
      break;
    }
    case 'C': {
      e.event.rows = protocol::CommandComplete::rows_in(protocol::as_chars(frame.data)).value_or(0);
      finish(e, now);
      if (simple) {
        // The next statement of the same query string, if there is one, starts now.
        auto& next = e.event;
        ++next.statement_index;
        next.rows = 0;
        next.columns.clear();
        next.result_sample.clear();
        next.pool_wait = std::chrono::nanoseconds(0);
        e.sampled_rows = 0;
        e.started = now;
      }
      break;
    }
    case 'I':  // EmptyQueryResponse: nothing ran
      if (simple) e.started = now;
      break;
    case 'E': {
      if (auto err = protocol::ErrorResponse::decode(frame.data))
        e.event.sqlstate = std::string(err->sqlstate());
      finish(e, now);  // after an error nothing more runs for it
      break;
    }
    default:
      break;
  }
  if (outcome.completes) retire(e);
}

}  // namespace pglens::session
