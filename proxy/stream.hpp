// A peer's byte stream: its TCP socket, and TLS over it once a handshake succeeded. Reads and
// writes go to whichever is in use, with the caller's completion token (an AsyncReadStream and
// AsyncWriteStream for asio::async_write), so a plaintext session pays a branch, no more.
#pragma once

#include <memory>
#include <string>

#include "proxy/net.hpp"
#include "proxy/tls.hpp"

namespace pglens::proxy {

class Stream {
 public:
  using executor_type = tcp::socket::executor_type;

  explicit Stream(tcp::socket socket) : socket_(std::move(socket)) {}
  // The TLS layer refers to socket_: a Stream stays where it was made.
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  tcp::socket& socket() { return socket_; }
  bool encrypted() const { return tls_ != nullptr; }
  // The OpenSSL session, null in the clear.
  SSL* ssl() { return tls_ ? tls_->native_handle() : nullptr; }
  // "TLSv1.3/TLS_AES_256_GCM_SHA384", "" in the clear (set when a handshake succeeds).
  const std::string& tls_description() const { return description_; }

  // As the TLS server (a client of pglens asked for TLS). already_read: bytes of the handshake
  // read before TLS began (a direct TLS ClientHello).
  awaitable<error_code> accept_tls(std::shared_ptr<ssl::context> context,
                                   protocol::ByteView already_read = {});
  // As the TLS client of a server; host: for SNI and, when verify_host, the certificate's name.
  awaitable<error_code> connect_tls(std::shared_ptr<ssl::context> context, const std::string& host,
                                    bool verify_host);

  // Sends TLS close_notify (and reads the peer's, if it comes); nothing in the clear.
  awaitable<void> shutdown_tls();

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_)
            tls_->async_read_some(b, std::move(handler));
          else
            socket_.async_read_some(b, std::move(handler));
        },
        token, buffers);
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_)
            tls_->async_write_some(b, std::move(handler));
          else
            socket_.async_write_some(b, std::move(handler));
        },
        token, buffers);
  }

 private:
  tcp::socket socket_;
  std::shared_ptr<ssl::context> context_;  // before tls_: outlives it
  std::unique_ptr<ssl::stream<tcp::socket&>> tls_;
  std::string description_;
};

// Writes a whole buffer; false when the peer is gone. In the clear, what the socket takes at once
// goes without a wait (see send_now).
awaitable<bool> write_all(Stream& stream, protocol::ByteView bytes);

}  // namespace pglens::proxy
