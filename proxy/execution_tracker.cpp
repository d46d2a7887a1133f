#include "proxy/execution_tracker.hpp"

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
  Portal p;
  if (it != statements_.end()) p.sql = it->second;
  auto nformats = in.count16(2);
  std::vector<std::int16_t> formats;
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
  portals_[portal] = std::move(p);
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
  auto it = portals_.find(portal);
  if (it == portals_.end() || !it->second.sql) return 0;
  auto e = start(it->second.sql, now);
  e.event.extended = true;
  // Copied, not moved: a portal suspended by a row limit is executed again for its next rows.
  e.event.parameters = it->second.parameters;
  auto tag = next_tag_++;
  // Several Executes before one Sync: the batch ran pipelined, each of its statements did.
  executes_since_sync_.push_back(tag);
  if (executes_since_sync_.size() > 1) {
    e.event.pipelined = true;
    for (auto t : executes_since_sync_)
      if (auto p = executions_.find(t); p != executions_.end()) p->second.event.pipelined = true;
  }
  executions_.emplace(tag, std::move(e));
  return tag;
}

std::uint64_t ExecutionTracker::on_query(protocol::ByteView body, Clock::time_point now) {
  auto text = protocol::as_chars(body.empty() ? body : body.first(body.size() - 1));
  auto tag = next_tag_++;
  executions_.emplace(tag, start(std::make_shared<const std::string>(text), now));
  return tag;
}

void ExecutionTracker::on_sync() {
  executes_since_sync_.clear();
}

void ExecutionTracker::on_ready(char status) {
  if (status == 'I') ++transaction_;
}

void ExecutionTracker::on_skipped(const std::vector<std::uint64_t>& tags) {
  for (auto t : tags) executions_.erase(t);
}

void ExecutionTracker::finish(Execution& e, Clock::time_point now,
                              std::vector<analyzer::ExecutionEvent>& out, bool last) {
  e.event.latency = now - e.started;
  e.event.finished_at = std::chrono::system_clock::now();
  if (last)
    out.push_back(std::move(e.event));
  else
    out.push_back(e.event);
}

void ExecutionTracker::on_response(const protocol::Frame& frame,
                                   const RequestLedger::Outcome& outcome, Clock::time_point now,
                                   std::vector<analyzer::ExecutionEvent>& out) {
  if (outcome.tag == 0) return;
  auto it = executions_.find(outcome.tag);
  if (it == executions_.end()) return;
  Execution& e = it->second;
  bool simple = outcome.request == 'Q';
  if (frame.kind != protocol::FrameKind::Message) return;  // streamed rows are not sampled
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
      finish(e, now, out, !simple);  // a simple query's next statement reuses the event
      if (simple) {
        // The next statement of the same query string starts now.
        ++e.event.statement_index;
        e.event.rows = 0;
        e.event.columns.clear();
        e.event.result_sample.clear();
        e.event.pool_wait = std::chrono::nanoseconds(0);
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
      finish(e, now, out, true);  // after an error nothing more runs for it
      break;
    }
    default:
      break;
  }
  if (outcome.completes) executions_.erase(it);
}

}  // namespace pglens::proxy
