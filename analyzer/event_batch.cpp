#include "analyzer/event_batch.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "analyzer/bind_values.hpp"

namespace pglens::analyzer {

namespace {

enum class Record : std::uint8_t { SessionStart = 1, SessionEnd = 2, Statement = 3 };

enum Flags : std::uint8_t {
  kExtended = 1,
  kPipelined = 2,
  kSharedText = 4,
  kNoText = 8,
  kBindValues = 16,  // the parameters are captured Bind values (bind_values.hpp)
};

// Copied as is: both ends are this process. The variable parts follow it, in this order: the
// text (unless shared), each parameter (i32 length, -1 for NULL, then its bytes) or the captured
// Bind values, each column name (u32 length, bytes), the result sample (u64 each), the SQLSTATE.
struct StatementHeader {
  std::uint64_t session_id, transaction, request, rows;
  std::int64_t pool_wait_ns, latency_ns, finished_ns;
  std::uint32_t payload_size, statement_index, text_size, parameters, bind_values_size, columns,
      sample;
  std::uint8_t flags, sqlstate_size;
};

template <typename T>
void put(std::byte*& at, const T& value) {
  std::memcpy(at, &value, sizeof value);
  at += sizeof value;
}
void put_bytes(std::byte*& at, const void* data, std::size_t n) {
  if (n != 0) std::memcpy(at, data, n);
  at += n;
}

template <typename T>
T get(const std::byte*& at) {
  T value;
  std::memcpy(&value, at, sizeof value);
  at += sizeof value;
  return value;
}
std::string_view get_text(const std::byte*& at, std::size_t n) {
  std::string_view text(reinterpret_cast<const char*>(at), n);
  at += n;
  return text;
}

// A batch that a burst made large lets go of its buffer once it carries little again.
constexpr std::size_t kKeptBytes = 4 << 20;

}  // namespace

void EventBatch::start_session(std::shared_ptr<const SessionInfo> who) {
  bytes_.push_back(static_cast<std::byte>(Record::SessionStart));
  sessions_.push_back(std::move(who));
}

void EventBatch::end_session(std::uint64_t session_id) {
  auto at = bytes_.size();
  bytes_.resize(at + 1 + sizeof session_id, boost::container::default_init);
  auto* out = bytes_.data() + at;
  put(out, Record::SessionEnd);
  put(out, session_id);
}

void EventBatch::add(std::uint64_t session_id, const ExecutionEvent& event,
                     SteadyClock::time_point finished, std::string_view bind_values) {
  std::string_view text = event.sql ? std::string_view(*event.sql) : std::string_view();
  bool shared = text.size() > kMaxCopiedText;
  StatementHeader h{};
  h.session_id = session_id;
  h.transaction = event.transaction;
  h.request = event.request;
  h.rows = event.rows;
  h.pool_wait_ns = event.pool_wait.count();
  h.latency_ns = event.latency.count();
  h.finished_ns = std::chrono::nanoseconds(finished.time_since_epoch()).count();
  h.statement_index = event.statement_index;
  h.text_size = shared ? 0 : static_cast<std::uint32_t>(text.size());
  bool captured = !bind_values.empty();
  h.parameters = captured ? 0 : static_cast<std::uint32_t>(event.parameters.size());
  h.bind_values_size = static_cast<std::uint32_t>(bind_values.size());
  h.columns = static_cast<std::uint32_t>(event.columns.size());
  h.sample = static_cast<std::uint32_t>(event.result_sample.size());
  h.sqlstate_size = static_cast<std::uint8_t>(std::min<std::size_t>(event.sqlstate.size(), 255));
  h.flags = static_cast<std::uint8_t>(
      (event.extended ? kExtended : 0) | (event.pipelined ? kPipelined : 0) |
      (shared ? kSharedText : 0) | (event.sql ? 0 : kNoText) | (captured ? kBindValues : 0));
  std::size_t payload =
      h.text_size + h.bind_values_size + h.sample * sizeof(std::uint64_t) + h.sqlstate_size;
  if (!captured)
    for (const auto& p : event.parameters) payload += sizeof(std::int32_t) + (p ? p->size() : 0);
  for (const auto& c : event.columns) payload += sizeof(std::uint32_t) + c.size();
  h.payload_size = static_cast<std::uint32_t>(payload);

  // One resize per statement, then plain copies.
  auto at = bytes_.size();
  bytes_.resize(at + 1 + sizeof h + payload, boost::container::default_init);
  auto* out = bytes_.data() + at;
  put(out, Record::Statement);
  put(out, h);
  put_bytes(out, text.data(), h.text_size);
  put_bytes(out, bind_values.data(), h.bind_values_size);
  for (std::uint32_t i = 0; i < h.parameters; ++i) {
    const auto& p = event.parameters[i];
    put(out, p ? static_cast<std::int32_t>(p->size()) : std::int32_t{-1});
    if (p) put_bytes(out, p->data(), p->size());
  }
  for (const auto& c : event.columns) {
    put(out, static_cast<std::uint32_t>(c.size()));
    put_bytes(out, c.data(), c.size());
  }
  put_bytes(out, event.result_sample.data(), h.sample * sizeof(std::uint64_t));
  put_bytes(out, event.sqlstate.data(), h.sqlstate_size);
  if (shared) texts_.push_back(event.sql);
  ++events_;
}

void EventBatch::append(EventBatch& other, bool with_events) {
  if (with_events) {
    bytes_.insert(bytes_.end(), other.bytes_.begin(), other.bytes_.end());
    for (auto& t : other.texts_) texts_.push_back(std::move(t));
    events_ += other.events_;
  } else {
    // The session starts and ends still go: the reader must not keep a session for good, nor miss
    // one whose later statements get through.
    const std::byte* in = other.bytes_.data();
    const std::byte* end = in + other.bytes_.size();
    while (in < end) {
      auto kind = static_cast<Record>(*in);
      std::size_t size = 1;
      if (kind == Record::SessionEnd) {
        size += sizeof(std::uint64_t);
      } else if (kind == Record::Statement) {
        StatementHeader h;
        std::memcpy(&h, in + 1, sizeof h);
        in += 1 + sizeof h + h.payload_size;
        continue;
      }
      bytes_.insert(bytes_.end(), in, in + size);
      in += size;
    }
  }
  for (auto& s : other.sessions_) sessions_.push_back(std::move(s));
  other.clear();
}

void EventBatch::clear() {
  bool oversized = bytes_.capacity() > kKeptBytes && bytes_.size() < bytes_.capacity() / 4;
  bytes_.clear();
  if (oversized) bytes_.shrink_to_fit();
  sessions_.clear();
  texts_.clear();
  events_ = 0;
}

EventReader::Cursor EventReader::begin(const EventBatch& batch) {
  auto system = std::chrono::system_clock::now().time_since_epoch();
  auto steady = EventBatch::SteadyClock::now().time_since_epoch();
  return Cursor{batch, 0, 0, 0,
                std::chrono::duration_cast<std::chrono::nanoseconds>(system) -
                    std::chrono::duration_cast<std::chrono::nanoseconds>(steady)};
}

bool EventReader::next(Cursor& c) {
  const auto& bytes = c.batch.bytes_;
  while (c.offset < bytes.size()) {
    const std::byte* in = bytes.data() + c.offset;
    switch (get<Record>(in)) {
      case Record::SessionStart: {
        const auto& who = c.batch.sessions_.at(c.session++);
        sessions_[who->session_id] = Started{who, Identity::of(*who)};
        c.offset += 1;
        event_.session.reset();  // an id may start again with another SessionInfo (submit())
        continue;
      }
      case Record::SessionEnd:
        sessions_.erase(get<std::uint64_t>(in));
        c.offset += 1 + sizeof(std::uint64_t);
        event_.session.reset();
        continue;
      case Record::Statement:
        break;
      default:
        throw std::logic_error("EventReader: not a record");
    }
    auto h = get<StatementHeader>(in);
    c.offset += 1 + sizeof h + h.payload_size;
    auto& e = event_;
    if (!e.session || e.session->session_id != h.session_id) {
      auto found = sessions_.find(h.session_id);
      e.session = found != sessions_.end() ? found->second.who : nullptr;
      e.identity = found != sessions_.end() ? found->second.identity : Identity{};
    }
    e.transaction = h.transaction;
    e.request = h.request;
    e.statement_index = h.statement_index;
    e.extended = (h.flags & kExtended) != 0;
    e.pipelined = (h.flags & kPipelined) != 0;
    e.rows = h.rows;
    e.pool_wait = std::chrono::nanoseconds(h.pool_wait_ns);
    e.latency = std::chrono::nanoseconds(h.latency_ns);
    e.finished_at = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(h.finished_ns) + c.steady_to_system));

    e.sql.reset();
    if ((h.flags & kSharedText) != 0) {
      e.sql = c.batch.texts_.at(c.text++);
    } else if ((h.flags & kNoText) == 0) {
      // Reused unless a consumer kept the last one: then that one stays as it was.
      if (!text_ || text_.use_count() != 1) text_ = std::make_shared<std::string>();
      text_->assign(get_text(in, h.text_size));
      e.sql = text_;
    }
    if ((h.flags & kBindValues) != 0)
      decode_bind_values(get_text(in, h.bind_values_size), e.parameters);
    else
      e.parameters.resize(h.parameters);
    for (std::uint32_t i = 0; i < h.parameters; ++i) {
      auto& p = e.parameters[i];
      auto len = get<std::int32_t>(in);
      if (len < 0)
        p.reset();
      else if (p)
        p->assign(get_text(in, static_cast<std::size_t>(len)));
      else
        p.emplace(get_text(in, static_cast<std::size_t>(len)));
    }
    e.columns.resize(h.columns);
    for (auto& name : e.columns) {
      auto len = get<std::uint32_t>(in);
      name.assign(get_text(in, len));
    }
    e.result_sample.resize(h.sample);
    if (h.sample != 0) std::memcpy(e.result_sample.data(), in, h.sample * sizeof(std::uint64_t));
    in += h.sample * sizeof(std::uint64_t);
    e.sqlstate.assign(get_text(in, h.sqlstate_size));
    return true;
  }
  return false;
}

}  // namespace pglens::analyzer
