// libFuzzer: the codec. The client's bytes through decode_startup and then a frontend
// MessageDecoder, the server's through a backend one, in the pieces they came in; every whole
// frame through the typed decoder of its type. Nothing may crash, hang or read out of bounds,
// and every consumed count must stay within its input.
#include <cstdlib>

#include "protocol/decoder.hpp"
#include "protocol/messages.hpp"
#include "tests/fuzz/exchange.hpp"

namespace {
using namespace pglens::protocol;

void decode_typed(Direction dir, const Frame& f) {
  if (f.kind != FrameKind::Message) return;
  if (dir == Direction::Frontend) {
    switch (f.type) {
      case 'Q':
        (void)Query::decode(f.data);
        break;
      case 'P':
        (void)Parse::decode(f.data);
        break;
      case 'B':
        (void)Bind::decode(f.data);
        break;
      case 'D':
        (void)Describe::decode(f.data);
        break;
      case 'E':
        (void)Execute::decode(f.data);
        break;
      case 'C':
        (void)Close::decode(f.data);
        break;
      case 'f':
        (void)CopyFail::decode(f.data);
        break;
      case 'p':
        (void)PasswordMessage::decode(f.data);
        (void)SASLInitialResponse::decode(f.data);
        (void)SASLResponse::decode(f.data);
        break;
      default:
        break;
    }
    return;
  }
  switch (f.type) {
    case 'R':
      if (auto a = Authentication::decode(f.data)) (void)a->mechanisms();
      break;
    case 'S':
      (void)ParameterStatus::decode(f.data);
      break;
    case 'K':
      (void)BackendKeyData::decode(f.data);
      break;
    case 'Z':
      (void)ReadyForQuery::decode(f.data);
      break;
    case 'T':
      (void)RowDescription::decode(f.data);
      break;
    case 'D':
      (void)DataRow::decode(f.data);
      break;
    case 'C':
      if (auto c = CommandComplete::decode(f.data)) (void)c->rows();
      (void)CommandComplete::rows_in(as_chars(f.data));
      break;
    case 'E':
      (void)ErrorResponse::decode(f.data);
      break;
    case 'N':
      (void)NoticeResponse::decode(f.data);
      break;
    default:
      break;
  }
}

void feed(MessageDecoder& d, Direction dir, ByteView in) {
  while (!in.empty()) {
    auto r = d.next(in);
    if (r.consumed > in.size()) std::abort();
    if (r.status == DecodeStatus::Error) return;
    if (r.status == DecodeStatus::Frame) decode_typed(dir, r.frame);
    in = in.subspan(r.consumed);
    if (r.status == DecodeStatus::NeedMore && !in.empty()) std::abort();  // it takes it all
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  MessageDecoder frontend(Direction::Frontend, DecoderLimits{256});  // small: streaming too
  MessageDecoder backend(Direction::Backend, DecoderLimits{256});
  Bytes startup;
  bool typed = false;
  for (const auto& r : pglens::fuzz::records(data, size)) {
    if (r.tag == 'S') {
      feed(backend, Direction::Backend, r.bytes);
      continue;
    }
    ByteView in = r.bytes;
    if (!typed) {
      startup.insert(startup.end(), in.begin(), in.end());
      in = {};
      while (!startup.empty()) {
        auto s = decode_startup(startup);
        if (s.status != DecodeStatus::Frame) break;
        if (s.consumed > startup.size()) std::abort();
        startup.erase(startup.begin(), startup.begin() + static_cast<std::ptrdiff_t>(s.consumed));
        if (s.packet.kind == StartupPacket::Kind::Startup) {
          typed = true;
          Bytes again;
          encode(again, s.packet);  // what was decoded encodes again
          break;
        }
      }
      if (typed) {
        feed(frontend, Direction::Frontend, startup);
        startup.clear();
      }
      continue;
    }
    feed(frontend, Direction::Frontend, in);
  }
  return 0;
}
