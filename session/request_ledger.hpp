// Which request each server response answers, on a connection shared between clients.
//
// In transaction and statement mode pglens adds requests of its own to a client's stream (a Parse
// that prepares a statement on the server the client now uses, a Close that stands in for a Parse
// the server no longer needs) and must hide or reshape their answers. Responses arrive in request
// order, so a FIFO of forwarded requests tells, for each response, whose it is. No I/O here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pglens::session {

class RequestLedger {
 public:
  // How the client sees the responses to one forwarded request.
  enum class Handling {
    Pass,                  // as they are
    Skip,                  // not at all (pglens' own request); errors still reach the client
    CloseAsParseComplete,  // a Close sent in place of a Parse: its CloseComplete becomes
                           // ParseComplete
    EmptyAsDeallocate,     // an empty Query sent in place of DEALLOCATE: EmptyQueryResponse
                           // becomes CommandComplete "DEALLOCATE"
  };
  enum class Verdict { Forward, Drop, AsParseComplete, AsDeallocate };

  // A frontend request went to the server: Query 'Q', FunctionCall 'F', Parse 'P', Bind 'B',
  // Describe 'D', Execute 'E', Close 'C' or Sync 'S'. Flush and COPY data get no answer of their
  // own and are not recorded.
  // statement: for a Parse, the server-side name it prepares (empty for the unnamed statement).
  // tag: the caller's name for this request (an Execute or Query it watches), 0 for none.
  void push(char request, Handling handling = Handling::Pass, std::string statement = {},
            std::uint64_t tag = 0);

  struct Outcome {
    Verdict verdict = Verdict::Forward;
    char request = 0;        // the request this response belongs to (0: asynchronous or unexpected)
    std::uint64_t tag = 0;   // that request's tag
    bool completes = false;  // the response finished that request
  };
  // A backend message arrived: whose it is and what the client should get.
  Outcome on_response(char type);

  // No request is waiting for an answer.
  bool empty() const { return head_ == pending_.size(); }
  // The connection is gone: forgets every request, returning their tags in order (their
  // Executes and Queries go again elsewhere, or never get an answer).
  std::vector<std::uint64_t> abandon();
  // Server-side names of Parse requests that failed or that the server skipped after an error:
  // those statements do not exist on the server, whatever the cache believed.
  std::vector<std::string> take_unprepared() { return std::exchange(unprepared_, {}); }
  // Tags of requests the server skipped after an error: they will get no answer.
  bool has_skipped_tags() const { return !skipped_tags_.empty(); }
  std::vector<std::uint64_t> take_skipped_tags() { return std::exchange(skipped_tags_, {}); }
  std::size_t size() const { return pending_.size() - head_; }

 private:
  struct Entry {
    char request;
    Handling handling;
    std::string statement;
    std::uint64_t tag;
  };
  void drop(const Entry& e);
  const Entry& front() const { return pending_[head_]; }
  void pop_front();
  static bool completes(char request, char response);
  static bool extended(char request);
  // A FIFO in a vector, [head_, end) waiting: no allocation on an idle session (a deque takes
  // half a KiB at construction), none once warm.
  std::vector<Entry> pending_;
  std::size_t head_ = 0;
  std::vector<std::string> unprepared_;
  std::vector<std::uint64_t> skipped_tags_;
};

}  // namespace pglens::session
