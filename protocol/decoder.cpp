#include "protocol/decoder.hpp"

#include <algorithm>

namespace pglens::protocol {

std::uint32_t max_message_length(Direction dir, char type) {
  if (dir == Direction::Frontend) {
    switch (type) {
      case 'Q':  // Query
      case 'P':  // Parse
      case 'B':  // Bind
      case 'F':  // FunctionCall
      case 'd':  // CopyData
      case 'p':  // PasswordMessage / SASL responses
        return kMaxLargeMessage;
      case 'C':  // Close
      case 'D':  // Describe
      case 'E':  // Execute
      case 'H':  // Flush
      case 'S':  // Sync
      case 'X':  // Terminate
      case 'c':  // CopyDone
      case 'f':  // CopyFail
        return kMaxSmallMessage;
      default:
        return 0;
    }
  }
  switch (type) {
    case 'D':  // DataRow
    case 'd':  // CopyData
    case 'T':  // RowDescription
    case 'E':  // ErrorResponse
    case 'N':  // NoticeResponse
    case 'A':  // NotificationResponse
    case 'V':  // FunctionCallResponse
    case 't':  // ParameterDescription
    case 'R':  // Authentication (SASL data)
    case 'S':  // ParameterStatus
      return kMaxLargeMessage;
    case 'K':  // BackendKeyData
    case 'Z':  // ReadyForQuery
    case 'C':  // CommandComplete
    case 'G':  // CopyInResponse
    case 'H':  // CopyOutResponse
    case 'W':  // CopyBothResponse
    case '1':  // ParseComplete
    case '2':  // BindComplete
    case '3':  // CloseComplete
    case 'n':  // NoData
    case 's':  // PortalSuspended
    case 'I':  // EmptyQueryResponse
    case 'c':  // CopyDone
    case 'v':  // NegotiateProtocolVersion
      return 1024 * 1024;
    default:
      return 0;
  }
}

namespace {
// CopyData in either direction, DataRow from the backend ('D' from a client is Describe).
bool streamable(Direction dir, char type) {
  return type == 'd' || (dir == Direction::Backend && type == 'D');
}

std::string describe_type(char type) {
  if (type >= 0x20 && type < 0x7f) return std::string("'") + type + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  auto b = static_cast<std::uint8_t>(type);
  return std::string("0x") + kHex[b >> 4] + kHex[b & 0xf];
}
}  // namespace

DecodeResult MessageDecoder::fail(std::string why) {
  state_ = State::Failed;
  error_ = std::move(why);
  DecodeResult r;
  r.status = DecodeStatus::Error;
  r.error = error_;
  return r;
}

DecodeResult MessageDecoder::next(ByteView input) {
  DecodeResult r;
  switch (state_) {
    case State::Failed: {
      r.status = DecodeStatus::Error;
      r.error = error_;
      return r;
    }
    case State::Header: {
      // Fast path: a whole small message sits in the input, return a view of it.
      std::size_t used = 0;
      while (header_have_ < 5 && used < input.size()) header_[header_have_++] = input[used++];
      if (header_have_ < 5) {
        r.consumed = used;
        return r;
      }
      header_have_ = 0;
      type_ = static_cast<char>(header_[0]);
      std::uint32_t length = load_be32(header_ + 1);
      std::uint32_t max = max_message_length(dir_, type_);
      if (max == 0) return fail("unknown message type " + describe_type(type_));
      if (length < 4)
        return fail("invalid length " + std::to_string(length) + " for message " +
                    describe_type(type_));
      if (length > max) {
        return fail("message " + describe_type(type_) + " length " + std::to_string(length) +
                    " exceeds the limit of " + std::to_string(max));
      }
      body_length_ = length - 4;
      input = input.subspan(used);
      r.consumed = used;
      if (streamable(dir_, type_) && body_length_ > limits_.stream_threshold) {
        state_ = State::Stream;
        remaining_ = body_length_;
        r.status = DecodeStatus::Frame;
        r.frame = {FrameKind::StreamStart, type_, body_length_, {}, body_length_ == 0};
        return r;
      }
      if (input.size() >= body_length_) {
        r.consumed += body_length_;
        r.status = DecodeStatus::Frame;
        r.frame = {FrameKind::Message, type_, body_length_, input.first(body_length_), true};
        return r;
      }
      state_ = State::Body;
      body_.clear();
      body_.reserve(std::min<std::size_t>(body_length_, 1 << 20));
      body_.insert(body_.end(), input.begin(), input.end());
      r.consumed += input.size();
      return r;
    }
    case State::Body: {
      std::size_t take = std::min<std::size_t>(input.size(), body_length_ - body_.size());
      body_.insert(body_.end(), input.begin(), input.begin() + static_cast<std::ptrdiff_t>(take));
      r.consumed = take;
      if (body_.size() < body_length_) return r;
      state_ = State::Header;
      r.status = DecodeStatus::Frame;
      r.frame = {FrameKind::Message, type_, body_length_, ByteView(body_), true};
      return r;
    }
    case State::Stream: {
      if (input.empty()) return r;
      std::size_t take = std::min<std::size_t>(input.size(), remaining_);
      remaining_ -= static_cast<std::uint32_t>(take);
      r.consumed = take;
      r.status = DecodeStatus::Frame;
      r.frame = {FrameKind::StreamChunk, type_, body_length_, input.first(take), remaining_ == 0};
      if (remaining_ == 0) state_ = State::Header;
      return r;
    }
  }
  return r;
}

std::string_view StartupPacket::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

StartupDecodeResult decode_startup(ByteView input) {
  StartupDecodeResult r;
  if (input.size() < 4) return r;
  std::uint32_t length = load_be32(input.data());
  if (length < 8 || length > kMaxStartupPacket) {
    r.status = DecodeStatus::Error;
    r.error = "invalid startup packet length " + std::to_string(length);
    return r;
  }
  if (input.size() < length) return r;
  Reader in(input.subspan(4, length - 4));
  auto code = static_cast<std::uint32_t>(in.i32());
  StartupPacket& p = r.packet;
  r.consumed = length;
  r.status = DecodeStatus::Frame;
  if (code == kSSLRequestCode || code == kGSSENCRequestCode) {
    p.kind = code == kSSLRequestCode ? StartupPacket::Kind::SSLRequest
                                     : StartupPacket::Kind::GSSENCRequest;
    if (!in.at_end()) {
      r.status = DecodeStatus::Error;
      r.error = "invalid length for encryption request";
    }
    return r;
  }
  if (code == kCancelRequestCode) {
    p.kind = StartupPacket::Kind::CancelRequest;
    p.process_id = in.i32();
    p.secret_key = in.i32();
    if (!in.ok()) {
      r.status = DecodeStatus::Error;
      r.error = "invalid length for cancel request";
    }
    return r;
  }
  if (code >> 16 != 3) {
    r.status = DecodeStatus::Error;
    r.error = "unsupported frontend protocol " + std::to_string(code >> 16) + "." +
              std::to_string(code & 0xffff) + ": server supports 3.0";
    return r;
  }
  p.kind = StartupPacket::Kind::Startup;
  p.protocol = code;
  // Name/value pairs, then a lone terminator.
  while (true) {
    auto name = in.cstring();
    if (in.failed()) break;
    if (name.empty()) break;
    auto value = in.cstring();
    if (in.failed()) break;
    p.params.emplace_back(name, value);
  }
  if (!in.ok()) {
    r.status = DecodeStatus::Error;
    r.error = "invalid startup packet layout: expected terminator as last byte";
    return r;
  }
  if (p.param("user").empty()) {
    r.status = DecodeStatus::Error;
    r.error = "no PostgreSQL user name specified in startup packet";
  }
  return r;
}

void encode(Bytes& out, const StartupPacket& p) {
  Writer w(out, 0);
  switch (p.kind) {
    case StartupPacket::Kind::Startup:
      w.i32(static_cast<std::int32_t>(p.protocol));
      for (const auto& [k, v] : p.params) w.cstring(k).cstring(v);
      w.u8(0);
      break;
    case StartupPacket::Kind::SSLRequest:
      w.i32(static_cast<std::int32_t>(kSSLRequestCode));
      break;
    case StartupPacket::Kind::GSSENCRequest:
      w.i32(static_cast<std::int32_t>(kGSSENCRequestCode));
      break;
    case StartupPacket::Kind::CancelRequest:
      w.i32(static_cast<std::int32_t>(kCancelRequestCode)).i32(p.process_id).i32(p.secret_key);
      break;
  }
  w.finish();
}

}  // namespace pglens::protocol
