// Writes what a SessionCore's Output holds to one peer, in order, from either of a session's two
// coroutines. The usual case: the socket takes it all in one gathering send, with no copy and no
// wait. Otherwise the rest is copied and written by whichever coroutine awaits drain(), while the
// core goes on filling its Output; the other one, wanting to write meanwhile, queues behind it.
#pragma once

#include "proxy/net.hpp"
#include "proxy/parking.hpp"
#include "proxy/stream.hpp"
#include "session/output.hpp"

namespace pglens::proxy {

class PeerWriter {
 public:
  explicit PeerWriter(const asio::any_io_executor& executor) : done_(executor) {}

  // Sends what `out` holds (and clears it). True when all went; false when some waits for
  // drain(), or the peer is gone (failed()). Over TLS everything waits for drain(): OpenSSL
  // writes records, which a non-blocking send could leave half sent.
  bool send_now(Stream& stream, session::Output& out);
  // Writes what waits; false when the peer is gone.
  awaitable<bool> drain(Stream& stream);
  bool failed() const { return failed_; }
  // For a new connection (the server side changes between transactions): nothing waits, no
  // failure is remembered.
  void reset() {
    queued_.clear();
    failed_ = false;
  }
  // Nothing waits to be written (a failed writer has nothing left to write).
  bool idle() const { return failed_ || (queued_.empty() && !writing_); }
  // Bytes sent so far (for the pool's traffic counters).
  std::uint64_t sent() const { return sent_; }

 private:
  protocol::Bytes queued_;     // waiting, in order
  protocol::Bytes in_flight_;  // the asynchronous write's buffer
  bool writing_ = false;
  bool waiting_ = false;  // the other coroutine waits in drain()
  bool failed_ = false;
  std::uint64_t sent_ = 0;
  Parking done_;
};

}  // namespace pglens::proxy
