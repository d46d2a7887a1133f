#include "proxy/execution_tracker.hpp"

#include <algorithm>

#include <boost/container/small_vector.hpp>

#include "proxy/protocol/messages.hpp"

namespace pglens::proxy {

namespace {
using analyzer::hash_value;

std::string bounded_text(protocol::ByteView value, bool binary) {
  auto n = std::min(value.size(), analyzer::kMaxParameterBytes);
  if (!binary) return std::string(protocol::as_chars(value.first(n)));
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\\x";
  for (std::size_t i = 0; i < n / 2; ++i) {
    out.push_back(hex[value[i] >> 4]);
    out.push_back(hex[value[i] & 15]);
  }
  return out;
}
}  // namespace

void ExecutionTracker::on_parse(protocol::ByteView body) {
  protocol::Reader in(body);
  auto name = in.cstring();
  auto query = in.cstring();
  if (in.failed()) return;
  auto& text = statements_[std::string(name)];
  // Drivers re-Parse the unnamed statement with the same text again and again: keep the text.
  if (!text || *text != query) text = std::make_shared<const std::string>(query);
}

void ExecutionTracker::on_bind(protocol::ByteView body) {
  protocol::Reader in(body);
  std::string portal(in.cstring());
  std::string statement(in.cstring());
  if (in.failed()) return;
  auto it = statements_.find(statement);
  // Filled in place: its parameter vector keeps the capacity an earlier Bind left it.
  Portal& p = portals_[std::move(portal)];
  p.sql = it != statements_.end() ? it->second : nullptr;
  p.parameters.clear();
  auto nformats = in.count16(2);
  boost::container::small_vector<std::int16_t, 8> formats;
  for (std::size_t i = 0; i < nformats; ++i) formats.push_back(in.i16());
  auto nparams = in.count16(4);
  for (std::size_t i = 0; i < nparams && !in.failed(); ++i) {
    auto len = in.i32();
    protocol::ByteView value =
        len >= 0 ? in.bytes(static_cast<std::size_t>(len)) : protocol::ByteView{};
    if (i >= analyzer::kMaxParameters) continue;
    bool binary = formats.size() == 1 ? formats[0] == 1 : (i < formats.size() && formats[i] == 1);
    if (len < 0)
      p.parameters.emplace_back(std::nullopt);
    else
      p.parameters.emplace_back(bounded_text(value, binary));
  }
}

void ExecutionTracker::on_close(protocol::ByteView body) {
  auto close = protocol::Close::decode(body);
  if (!close) return;
  if (close->target == 'S')
    statements_.erase(close->name);
  else
    portals_.erase(close->name);
}

ExecutionTracker::Execution ExecutionTracker::start(std::shared_ptr<const std::string> sql,
                                                    Clock::time_point now) {
  Execution e;
  if (blanks_ != nullptr) e.event = blanks_->take_blank();
  e.event.session = session_;
  e.event.transaction = transaction_;
  e.event.sql = std::move(sql);
  e.event.pool_wait = std::exchange(pool_wait_, std::chrono::nanoseconds(0));
  e.started = now;
  return e;
}

std::uint64_t ExecutionTracker::on_execute(protocol::ByteView body, Clock::time_point now) {
  protocol::Reader in(body);
  std::string portal(in.cstring());
  auto max_rows = in.i32();
  auto it = portals_.find(portal);
  if (it == portals_.end() || !it->second.sql) return 0;
  auto e = start(it->second.sql, now);
  e.event.extended = true;
  // A portal suspended by a row limit is executed again for its next rows: it keeps its values.
  // One run to completion has no more rows to give, so they move (a repeated Execute of it, which
  // returns nothing, is recorded without them).
  if (max_rows > 0 || in.failed())
    e.event.parameters = it->second.parameters;
  else
    e.event.parameters.swap(it->second.parameters);  // the portal gets the blank's buffer
  auto tag = next_tag_++;
  e.tag = tag;
  // Several Executes before one Sync: the batch ran pipelined, each of its statements did.
  executes_since_sync_.push_back(tag);
  if (executes_since_sync_.size() > 1) {
    e.event.pipelined = true;
    for (auto t : executes_since_sync_)
      if (auto* p = find(t)) p->event.pipelined = true;
  }
  executions_.push_back(std::move(e));
  return tag;
}

std::uint64_t ExecutionTracker::on_query(protocol::ByteView body, Clock::time_point now) {
  auto text = protocol::as_chars(body.empty() ? body : body.first(body.size() - 1));
  auto tag = next_tag_++;
  executions_.push_back(start(std::make_shared<const std::string>(text), now));
  executions_.back().tag = tag;
  return tag;
}

ExecutionTracker::Execution* ExecutionTracker::find(std::uint64_t tag) {
  auto begin = executions_.begin() + static_cast<std::ptrdiff_t>(first_);
  if (begin != executions_.end() && begin->tag == tag)  // the usual case: the oldest
    return begin->done ? nullptr : &*begin;
  auto it = std::lower_bound(begin, executions_.end(), tag,
                             [](const Execution& e, std::uint64_t t) { return e.tag < t; });
  if (it == executions_.end() || it->tag != tag || it->done) return nullptr;
  return &*it;
}

void ExecutionTracker::on_all_answered() {
  executions_.clear();
  first_ = 0;
}

std::size_t ExecutionTracker::in_flight() const {
  return static_cast<std::size_t>(
      std::count_if(executions_.begin() + static_cast<std::ptrdiff_t>(first_), executions_.end(),
                    [](const Execution& e) { return !e.done; }));
}

void ExecutionTracker::retire(Execution& e) {
  e.done = true;
  // One that never ran (skipped, never answered) lets go of its text and session now.
  e.event = {};
  e.next_sql.reset();
  while (first_ < executions_.size() && executions_[first_].done) ++first_;
  if (first_ == executions_.size()) {
    executions_.clear();
    first_ = 0;
  } else if (first_ >= 64 && first_ * 2 >= executions_.size()) {
    // A client that never lets its pipeline drain: drop the finished front now and then.
    executions_.erase(executions_.begin(),
                      executions_.begin() + static_cast<std::ptrdiff_t>(first_));
    first_ = 0;
  }
}

void ExecutionTracker::on_sync() {
  executes_since_sync_.clear();
}

void ExecutionTracker::on_ready(char status) {
  if (status == 'I') ++transaction_;
}

void ExecutionTracker::on_skipped(const std::vector<std::uint64_t>& tags) {
  for (auto t : tags)
    if (auto* e = find(t)) retire(*e);
}

void ExecutionTracker::finish(Execution& e, Clock::time_point now,
                              std::vector<analyzer::ExecutionEvent>& out) {
  e.event.latency = now - e.started;
  e.event.finished_at = std::chrono::system_clock::now();
  out.push_back(std::move(e.event));
}

void ExecutionTracker::start_next_statement(Execution& e) {
  // The last statement's event was moved out; its scalars are still there.
  auto transaction = e.event.transaction;
  auto index = e.event.statement_index + 1;
  e.event = blanks_ != nullptr ? blanks_->take_blank() : analyzer::ExecutionEvent{};
  e.event.session = session_;
  e.event.transaction = transaction;
  e.event.sql = std::move(e.next_sql);
  e.event.statement_index = index;
  e.between_statements = false;
}

void ExecutionTracker::on_response(const protocol::Frame& frame,
                                   const RequestLedger::Outcome& outcome, Clock::time_point now,
                                   std::vector<analyzer::ExecutionEvent>& out) {
  if (outcome.tag == 0) return;
  Execution* found = find(outcome.tag);
  if (found == nullptr) return;
  Execution& e = *found;
  bool simple = outcome.request == 'Q';
  if (frame.kind != protocol::FrameKind::Message) return;  // streamed rows are not sampled
  if (e.between_statements &&
      (frame.type == 'T' || frame.type == 'D' || frame.type == 'C' || frame.type == 'E'))
    start_next_statement(e);
  switch (frame.type) {
    case 'T': {  // RowDescription: the names the sample's columns go by
      e.event.columns.clear();
      protocol::Reader in(frame.data);
      auto n = std::min<std::size_t>(in.count16(19), analyzer::kSampleColumns);
      for (std::size_t i = 0; i < n && !in.failed(); ++i) {
        e.event.columns.emplace_back(in.cstring());
        in.bytes(18);
      }
      break;
    }
    case 'D': {  // DataRow: hash the first rows' values
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
      std::shared_ptr<const std::string> sql = simple ? e.event.sql : nullptr;
      finish(e, now, out);
      if (simple) {
        // The next statement of the same query string starts now. Its event is taken only if
        // something of it arrives: most query strings hold one statement.
        e.next_sql = std::move(sql);
        e.between_statements = true;
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
      finish(e, now, out);  // after an error nothing more runs for it
      break;
    }
    default:
      break;
  }
  if (outcome.completes) retire(e);
}

}  // namespace pglens::proxy
