// Asio aliases and the small socket helpers the proxy's coroutines share.
#pragma once

#include <sys/socket.h>

#include <cerrno>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <chrono>
#include <optional>
#include <span>
#include <string>

#include "protocol/decoder.hpp"
#include "protocol/messages.hpp"

namespace pglens::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using boost::system::error_code;
// Expected failures (EOF, reset, cancellation) come back as values, not exceptions.
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
using Clock = std::chrono::steady_clock;

inline asio::mutable_buffer to_buffer(std::span<std::uint8_t> s) {
  return {s.data(), s.size()};
}

// "client closed connection" for EOF, else "client read error: <why>" (who: "client", "server").
std::string read_error(const error_code& ec, std::string_view who);

// TCP keepalive as configured (tcp_keepalive, tcp_keepidle, tcp_keepintvl, tcp_keepcnt).
struct KeepAlive {
  bool on = true;
  int idle_s = 0, interval_s = 0, count = 0;  // zero: the system's
  // Best effort: a socket option the system refuses is left as it was.
  void apply(tcp::socket& socket) const;
};

// A whole message read during a handshake (small, so owning its body is fine).
struct OwnedMessage {
  char type = 0;
  protocol::Bytes body;
};

// Reads whole messages from a socket through a MessageDecoder. Used only where messages are
// small and the peer waits for an answer (startup, authentication), never on the forwarding path.
class MessageReader {
 public:
  explicit MessageReader(protocol::Direction dir) : decoder_(dir) {}

  // nullopt with error() set on EOF, read error or protocol error. Any AsyncReadStream: a
  // socket, or a Stream that may be TLS.
  template <class AsyncReadStream>
  awaitable<std::optional<OwnedMessage>> read(AsyncReadStream& stream) {
    while (true) {
      if (auto message = take()) co_return message;
      if (failed_) co_return std::nullopt;
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(buffer_), use_nothrow);
      if (ec) {
        error_ = ec == asio::error::eof ? "connection closed" : ec.message();
        co_return std::nullopt;
      }
      end_ = n;
    }
  }
  const std::string& error() const { return error_; }
  // Bytes read past the last returned message (the forwarding loop takes them over).
  protocol::ByteView pending() const { return {buffer_.data() + begin_, end_ - begin_}; }

 private:
  // The next whole message from what was read, if there is one.
  std::optional<OwnedMessage> take();

  protocol::MessageDecoder decoder_;
  std::array<std::uint8_t, 8192> buffer_{};
  std::size_t begin_ = 0, end_ = 0;
  OwnedMessage partial_;  // a message whose body arrives in chunks
  bool have_header_ = false;
  bool failed_ = false;
  std::string error_;
};

// Sends what the socket takes right now, without waiting: the number of bytes sent (0 when it
// would block), or an error in `ec`. The socket almost always takes a whole message batch, so
// the forwarding path writes this way and waits in the reactor only for a remainder: that
// saves an asynchronous round trip through the scheduler per write.
inline std::size_t send_now(tcp::socket& socket, protocol::ByteView bytes, error_code& ec) {
  ec.clear();
  // MSG_DONTWAIT leaves the socket's mode as Asio set it (see PeerWriter::send_now).
  ssize_t n;
  do {
    n = ::send(socket.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return static_cast<std::size_t>(n);
  if (errno != EAGAIN && errno != EWOULDBLOCK)
    ec = error_code(errno, asio::error::get_system_category());
  return 0;
}

// Writes a whole buffer; false when the peer is gone.
inline awaitable<bool> write_all(tcp::socket& socket, protocol::ByteView bytes) {
  error_code ec;
  std::size_t sent = send_now(socket, bytes, ec);
  if (ec) co_return false;
  if (sent == bytes.size()) co_return true;
  auto [write_ec, n] = co_await asio::async_write(
      socket, asio::buffer(bytes.data() + sent, bytes.size() - sent), use_nothrow);
  co_return !write_ec;
}

}  // namespace pglens::proxy
