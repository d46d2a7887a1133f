#include "proxy/stream.hpp"

#include <openssl/x509v3.h>

namespace pglens::proxy {

awaitable<error_code> Stream::accept_tls(std::shared_ptr<ssl::context> context,
                                         protocol::ByteView already_read) {
  context_ = std::move(context);
  tls_ = std::make_unique<ssl::stream<tcp::socket&>>(socket_, *context_);
  auto [ec, used] = co_await tls_->async_handshake(
      ssl::stream_base::server, asio::buffer(already_read.data(), already_read.size()),
      use_nothrow);
  if (!ec) description_ = describe_tls(ssl());
  co_return ec;
}

awaitable<error_code> Stream::connect_tls(std::shared_ptr<ssl::context> context,
                                          const std::string& host, bool verify_host) {
  context_ = std::move(context);
  tls_ = std::make_unique<ssl::stream<tcp::socket&>>(socket_, *context_);
  error_code ec;
  asio::ip::make_address(host, ec);
  bool is_name = static_cast<bool>(ec);  // SNI carries host names, never addresses
  if (is_name) SSL_set_tlsext_host_name(ssl(), host.c_str());
  // OpenSSL's own check, so that a mismatch is reported as one ("hostname mismatch").
  if (verify_host) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl());
    if (is_name)
      SSL_set1_host(ssl(), host.c_str());
    else
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  }
  auto [handshake_ec] = co_await tls_->async_handshake(ssl::stream_base::client, use_nothrow);
  if (!handshake_ec) description_ = describe_tls(ssl());
  co_return handshake_ec;
}

awaitable<void> Stream::shutdown_tls() {
  if (!tls_) co_return;
  co_await tls_->async_shutdown(use_nothrow);
}

awaitable<bool> write_all(Stream& stream, protocol::ByteView bytes) {
  if (!stream.encrypted()) co_return co_await write_all(stream.socket(), bytes);
  auto [ec, n] =
      co_await asio::async_write(stream, asio::buffer(bytes.data(), bytes.size()), use_nothrow);
  co_return !ec;
}

}  // namespace pglens::proxy
