#include "proxy/peer_writer.hpp"

#include <boost/container/small_vector.hpp>

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
    auto& socket = stream.socket();
    error_code ec;
    if (!socket.non_blocking()) socket.non_blocking(true, ec);
    if (!ec && out.pieces() == 1) {
      out.for_each([&](const std::uint8_t* data, std::size_t size) {
        sent = socket.write_some(asio::buffer(data, size), ec);
      });
    } else if (!ec && out.pieces() <= kMaxGather) {
      boost::container::small_vector<asio::const_buffer, kMaxGather> buffers;
      out.for_each(
          [&](const std::uint8_t* data, std::size_t size) { buffers.emplace_back(data, size); });
      sent = socket.write_some(buffers, ec);
    } else if (!ec) {
      in_flight_.clear();
      out.copy_to(in_flight_);
      sent = socket.write_some(asio::buffer(in_flight_), ec);
    }
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec.clear();
      sent = 0;
    }
    if (ec) {
      failed_ = true;
      out.clear();
      return false;
    }
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
