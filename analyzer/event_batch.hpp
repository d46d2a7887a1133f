// Finished statements on their way from a proxy thread to the analyzer, encoded back to back in
// one buffer. Handing a batch over moves a few contiguous bytes per statement from one core to the
// other; ExecutionEvent objects carried half a dozen separately allocated buffers each, and the
// cache misses on them cost the proxy thread more than the analysis itself (README,
// "Benchmarks"). The records also say when a session starts and ends, so a statement's record
// carries only the session's id and the reader knows who ran it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/container/vector.hpp>

#include "analyzer/event.hpp"

namespace pglens::analyzer {

class EventBatch {
 public:
  using SteadyClock = std::chrono::steady_clock;

  // ---- writing (a proxy thread) ----
  // Before the session's first statement: the reader keeps `who` until end_session.
  void start_session(std::shared_ptr<const SessionInfo> who);
  void end_session(std::uint64_t session_id);
  // One finished statement of session `session_id` (event.session is not read). Its text is
  // copied, unless it is long: then the batch holds a reference to it instead. `finished`
  // becomes event.finished_at on the reader's side, converted from the steady clock there, so the
  // proxy thread reads one clock per statement, not two. `bind_values`, when not empty, are
  // its parameters as capture_bind_values kept them (event.parameters is then not read): the
  // reader decodes them.
  void add(std::uint64_t session_id, const ExecutionEvent& event, SteadyClock::time_point finished,
           std::string_view bind_values = {});

  // Appends everything of `other` (statements only when `with_events`), and empties it.
  void append(EventBatch& other, bool with_events);
  // Empty, its buffer kept for the next batch; let go of it if a burst made it large.
  void clear();

  std::size_t events() const { return events_; }
  bool empty() const { return bytes_.empty(); }
  std::size_t size_bytes() const { return bytes_.size(); }
  std::size_t capacity_bytes() const { return bytes_.capacity(); }

  // Texts longer than this travel by reference: copying a 1 MB INSERT would cost the proxy more
  // than the reference count does.
  static constexpr std::size_t kMaxCopiedText = 1024;

 private:
  friend class EventReader;
  // Grown without zero-filling (default_init): every byte a record adds is written right after.
  boost::container::vector<std::byte> bytes_;
  std::vector<std::shared_ptr<const SessionInfo>> sessions_;  // one per session-start record
  std::vector<std::shared_ptr<const std::string>> texts_;     // one per long text, in order
  std::size_t events_ = 0;
};

// The analyzer's side: decodes batches in order, keeping the sessions that have started.
class EventReader {
 public:
  // Calls on_event(const ExecutionEvent&) for each statement of `batch`, in order. The event is
  // the same object from call to call; whoever keeps a part of it copies it (its session and sql
  // are shared pointers: safe to keep). A statement whose session never started (its start was
  // lost with a closed queue) comes with a null session.
  template <typename F>
  void read(const EventBatch& batch, F&& on_event) {
    Cursor cursor = begin(batch);
    while (next(cursor)) on_event(static_cast<const ExecutionEvent&>(event_));
  }

  std::size_t sessions() const { return sessions_.size(); }

 private:
  struct Cursor {
    const EventBatch& batch;
    std::size_t offset, session, text;
    std::chrono::nanoseconds steady_to_system;  // read once per batch
  };
  static Cursor begin(const EventBatch& batch);
  // Handles records up to the next statement and decodes it into event_; false at the end.
  bool next(Cursor& cursor);

  struct Started {
    std::shared_ptr<const SessionInfo> who;
    Identity identity;  // hashed once, at its start
  };
  std::unordered_map<std::uint64_t, Started> sessions_;
  ExecutionEvent event_;
  // The copied texts' home, reused while no consumer kept a reference to it.
  std::shared_ptr<std::string> text_;
};

}  // namespace pglens::analyzer
