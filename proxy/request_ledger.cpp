#include "proxy/request_ledger.hpp"

namespace pglens::proxy {

void RequestLedger::push(char request, Handling handling, std::string statement) {
  pending_.push_back({request, handling, std::move(statement)});
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

RequestLedger::Verdict RequestLedger::on_response(char type) {
  // Asynchronous messages may come at any time and answer nothing.
  if (type == 'N' || type == 'A' || type == 'S' || pending_.empty()) return Verdict::Forward;

  Entry head = pending_.front();
  if (type == 'E') {
    if (extended(head.request)) {
      // After an error the server ignores extended-protocol messages until Sync: so do we.
      drop(head);
      pending_.pop_front();
      while (!pending_.empty() && pending_.front().request != 'S') {
        drop(pending_.front());
        pending_.pop_front();
      }
    }
    // A simple Query goes on to its ReadyForQuery; an error always reaches the client.
    return Verdict::Forward;
  }
  if (!completes(head.request, type)) {
    if (head.handling == Handling::EmptyAsDeallocate && type == 'I') return Verdict::AsDeallocate;
    return head.handling == Handling::Skip ? Verdict::Drop : Verdict::Forward;
  }
  pending_.pop_front();
  switch (head.handling) {
    case Handling::Pass:
      return Verdict::Forward;
    case Handling::Skip:
      return Verdict::Drop;
    case Handling::CloseAsParseComplete:
      return Verdict::AsParseComplete;
    case Handling::EmptyAsDeallocate:
      return Verdict::Forward;
  }
  return Verdict::Forward;
}

}  // namespace pglens::proxy
