#include "session/request_ledger.hpp"

namespace pglens::session {

void RequestLedger::push(char request, Handling handling, std::string statement,
                         std::uint64_t tag) {
  pending_.push_back({request, handling, std::move(statement), tag});
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
  for (const auto& e : pending_)
    if (e.tag != 0) tags.push_back(e.tag);
  pending_.clear();
  unprepared_.clear();
  return tags;
}

RequestLedger::Outcome RequestLedger::on_response(char type) {
  // Asynchronous messages may come at any time and answer nothing.
  if (type == 'N' || type == 'A' || type == 'S' || pending_.empty()) return {};

  Entry head = pending_.front();
  Outcome out{Verdict::Forward, head.request, head.tag, false};
  if (type == 'E') {
    if (extended(head.request)) {
      // After an error the server ignores extended-protocol messages until Sync: so do we.
      out.completes = true;
      drop(head);
      pending_.pop_front();
      while (!pending_.empty() && pending_.front().request != 'S') {
        drop(pending_.front());
        if (pending_.front().tag != 0) skipped_tags_.push_back(pending_.front().tag);
        pending_.pop_front();
      }
    }
    // A simple Query goes on to its ReadyForQuery; an error always reaches the client.
    return out;
  }
  if (!completes(head.request, type)) {
    if (head.handling == Handling::EmptyAsDeallocate && type == 'I')
      out.verdict = Verdict::AsDeallocate;
    else if (head.handling == Handling::Skip)
      out.verdict = Verdict::Drop;
    return out;
  }
  pending_.pop_front();
  out.completes = true;
  switch (head.handling) {
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
