#include "proxy/admin_session.hpp"

#include <array>

#include "proxy/admin_console.hpp"

namespace pglens::proxy {

namespace {
// One message of the client's: a Query runs, Terminate ends, anything else is refused.
// Returns false when the client asked to leave.
bool answer(AdminConsole& console, const protocol::Frame& f, protocol::Bytes& out) {
  if (f.kind == protocol::FrameKind::Message && f.type == 'X') return false;
  if (f.kind == protocol::FrameKind::StreamChunk)
    return true;  // of a CopyData refused at its start
  if (f.kind != protocol::FrameKind::Message || f.type != 'Q') {
    protocol::make_error("08P01",
                         "pglens admin console: only the simple query protocol is supported")
        .encode(out);
  } else {
    auto query = protocol::Query::decode(f.data);
    auto result = console.execute(query ? query->sql : std::string());
    out.insert(out.end(), result.response.begin(), result.response.end());
  }
  protocol::ReadyForQuery{'I'}.encode(out);
  return true;
}
}  // namespace

awaitable<std::string> serve_admin(Stream& client, AdminConsole& console,
                                   protocol::ByteView pending) {
  protocol::Bytes out;
  protocol::Authentication{}.encode(out);
  for (auto& p : AdminConsole::parameters()) p.encode(out);
  protocol::BackendKeyData{0, 0}.encode(out);
  protocol::ReadyForQuery{'I'}.encode(out);
  if (!co_await write_all(client, out)) co_return "client closed connection";
  protocol::MessageDecoder decoder(protocol::Direction::Frontend);
  std::array<std::uint8_t, 8192> buffer;
  protocol::Bytes input(pending.begin(), pending.end());
  while (true) {
    protocol::ByteView in(input);
    out.clear();
    while (!in.empty()) {
      auto r = decoder.next(in);
      if (r.status == protocol::DecodeStatus::Error) co_return "protocol violation: " + r.error;
      in = in.subspan(r.consumed);
      if (r.status == protocol::DecodeStatus::NeedMore) break;
      if (!answer(console, r.frame, out)) co_return "client sent Terminate";
    }
    if (!out.empty() && !co_await write_all(client, out)) co_return "client closed connection";
    auto [ec, n] = co_await client.async_read_some(asio::buffer(buffer), use_nothrow);
    if (ec) co_return ec == asio::error::eof ? "client closed connection" : ec.message();
    input.assign(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
  }
}

}  // namespace pglens::proxy
