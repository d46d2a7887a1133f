#include "proxy/peer_writer.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/container/small_vector.hpp>

#include <cerrno>

namespace pglens::proxy {

namespace {
// Beyond this many pieces (a long pipeline of renamed statements) one contiguous copy is cheaper
// than the kernel walking the iovec, and stays far below IOV_MAX.
constexpr std::size_t kMaxGather = 16;
}  // namespace

bool PeerWriter::send_now(Stream& stream, session::Output& out) {
  if (out.empty()) return !failed_;
  if (failed_) {
    out.clear();
    return false;
  }
  std::size_t total = out.size();
  std::size_t sent = 0;
  if (idle() && !stream.encrypted()) {
    // One sendmsg with MSG_DONTWAIT on the descriptor: the socket's own mode is left as Asio set
    // it. Under io_uring that keeps it blocking, so Asio submits its reads to the ring instead
    // of first trying a read that ends in EAGAIN (one syscall per read saved).
    boost::container::small_vector<iovec, kMaxGather> pieces;
    if (out.pieces() <= kMaxGather) {
      out.for_each([&](const std::uint8_t* data, std::size_t size) {
        pieces.push_back({const_cast<std::uint8_t*>(data), size});
      });
    } else {
      in_flight_.clear();
      out.copy_to(in_flight_);
      pieces.push_back({in_flight_.data(), in_flight_.size()});
    }
    msghdr message{};
    message.msg_iov = pieces.data();
    message.msg_iovlen = pieces.size();
    ssize_t n;
    do {
      n = ::sendmsg(stream.socket().native_handle(), &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      failed_ = true;
      out.clear();
      return false;
    }
    sent = n < 0 ? 0 : static_cast<std::size_t>(n);
    sent_ += sent;
  }
  if (sent < total) out.copy_to(queued_, sent);  // the input it points into is reused next
  out.clear();
  return sent == total;
}

awaitable<bool> PeerWriter::drain(Stream& stream) {
  while (writing_ && !failed_) {  // the other coroutine writes: wait for it to finish
    waiting_ = true;
    auto ec = co_await done_.wait();
    waiting_ = false;
    if (ec) co_return false;
  }
  while (!queued_.empty() && !failed_) {
    writing_ = true;
    in_flight_.swap(queued_);
    queued_.clear();
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(in_flight_), use_nothrow);
    writing_ = false;
    sent_ += n;
    if (ec) failed_ = true;
  }
  if (waiting_) done_.wake();
  co_return !failed_;
}

}  // namespace pglens::proxy
