#include "proxy/net.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>

namespace pglens::proxy {

std::string read_error(const error_code& ec, std::string_view who) {
  return ec == asio::error::eof ? std::string(who) + " closed connection"
                                : std::string(who) + " read error: " + ec.message();
}

void KeepAlive::apply(tcp::socket& socket) const {
  error_code ignored;
  socket.set_option(asio::socket_base::keep_alive(on), ignored);
  if (!on) return;
  using Idle = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPIDLE>;
  using Interval = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPINTVL>;
  using Count = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPCNT>;
  if (idle_s > 0) socket.set_option(Idle(idle_s), ignored);
  if (interval_s > 0) socket.set_option(Interval(interval_s), ignored);
  if (count > 0) socket.set_option(Count(count), ignored);
}

std::optional<OwnedMessage> MessageReader::take() {
  while (begin_ < end_) {
    auto r = decoder_.next({buffer_.data() + begin_, end_ - begin_});
    begin_ += r.consumed;
    if (r.status == protocol::DecodeStatus::Error) {
      error_ = r.error;
      failed_ = true;
      return std::nullopt;
    }
    if (r.status == protocol::DecodeStatus::NeedMore) break;
    const auto& f = r.frame;
    if (f.kind == protocol::FrameKind::StreamStart) {
      partial_.type = f.type;
      have_header_ = true;
      continue;
    }
    if (f.kind == protocol::FrameKind::StreamChunk && !have_header_) continue;
    partial_.type = f.type;
    partial_.body.insert(partial_.body.end(), f.data.begin(), f.data.end());
    if (f.last) {
      have_header_ = false;
      return std::exchange(partial_, {});
    }
  }
  begin_ = end_ = 0;
  return std::nullopt;
}

}  // namespace pglens::proxy
