#include "session/request_ledger.hpp"

namespace pglens::session {

void RequestLedger::push(char request, Handling handling, std::string statement,
                         std::uint64_t tag) {
  pending_.push_back({request, handling, std::move(statement), tag});
}

void RequestLedger::pop_front() {
  if (++head_ == pending_.size()) {
    pending_.clear();
    head_ = 0;
  } else if (head_ >= 64 && head_ * 2 >= pending_.size()) {  // a pipeline that never drains
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void RequestLedger::drop(const Entry& e) {
  if (e.request == 'P' && !e.statement.empty()) unprepared_.push_back(e.statement);
}

bool RequestLedger::extended(char request) {
  return request == 'P' || request == 'B' || request == 'D' || request == 'E' || request == 'C';
}

bool RequestLedger::completes(char request, char response) {
  switch (request) {
    case 'P':
      return response == '1';
    case 'B':
      return response == '2';
    case 'D':
      return response == 'T' || response == 'n';
    case 'E':
      return response == 'C' || response == 'I' || response == 's';
    case 'C':
      return response == '3';
    case 'S':
    case 'Q':
    case 'F':
      return response == 'Z';
    default:
      return false;
  }
}

std::vector<std::uint64_t> RequestLedger::abandon() {
  std::vector<std::uint64_t> tags;
  // The Executes' and Queries' tags, which a replay hands out again in order; a Describe's tag
  // (the tracker's, to learn its columns) is not replayed.
  for (std::size_t i = head_; i < pending_.size(); ++i)
    if (pending_[i].tag != 0 && (pending_[i].request == 'E' || pending_[i].request == 'Q'))
      tags.push_back(pending_[i].tag);
  pending_.clear();
  head_ = 0;
  unprepared_.clear();
  return tags;
}

RequestLedger::Outcome RequestLedger::on_response(char type) {
  // Asynchronous messages may come at any time and answer nothing.
  if (type == 'N' || type == 'A' || type == 'S' || empty()) return {};

  const Entry& head = front();
  const auto handling = head.handling;
  Outcome out{Verdict::Forward, head.request, head.tag, false};
  if (type == 'E') {
    if (extended(head.request)) {
      // After an error the server ignores extended-protocol messages until Sync: so do we.
      out.completes = true;
      drop(head);
      pop_front();
      while (!empty() && front().request != 'S') {
        drop(front());
        if (front().tag != 0) skipped_tags_.push_back(front().tag);
        pop_front();
      }
    }
    // A simple Query goes on to its ReadyForQuery; an error always reaches the client.
    return out;
  }
  if (!completes(head.request, type)) {
    if (handling == Handling::EmptyAsDeallocate && type == 'I')
      out.verdict = Verdict::AsDeallocate;
    else if (handling == Handling::Skip)
      out.verdict = Verdict::Drop;
    return out;
  }
  pop_front();  // head is gone from here on
  out.completes = true;
  switch (handling) {
    case Handling::Pass:
      break;
    case Handling::Skip:
      out.verdict = Verdict::Drop;
      break;
    case Handling::CloseAsParseComplete:
      out.verdict = Verdict::AsParseComplete;
      break;
    case Handling::EmptyAsDeallocate:
      break;
  }
  return out;
}

}  // namespace pglens::session
