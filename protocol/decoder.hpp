// Incremental decoders for the PostgreSQL v3 wire protocol: bytes in, frames out.
// No I/O here: the proxy feeds what it read and acts on the frames.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/bytes.hpp"

namespace pglens::protocol {

enum class Direction { Frontend, Backend };

// Postgres refuses a startup packet above 10,000 bytes (MAX_STARTUP_PACKET_LENGTH).
inline constexpr std::uint32_t kMaxStartupPacket = 10'000;
// Postgres' PQ_LARGE_MESSAGE_LIMIT: the largest message it accepts (1 GiB - 1).
inline constexpr std::uint32_t kMaxLargeMessage = 0x3fffffff;
// Postgres' PQ_SMALL_MESSAGE_LIMIT, for frontend messages that carry only names.
inline constexpr std::uint32_t kMaxSmallMessage = 10'000;

struct DecoderLimits {
  // DataRow and CopyData larger than this are streamed in chunks instead of being buffered whole.
  std::uint32_t stream_threshold = 64 * 1024;
};

// Largest body length (including the 4-byte length field, as on the wire) accepted for a type.
// Unknown types get 0, which makes them a protocol error.
std::uint32_t max_message_length(Direction dir, char type);

enum class FrameKind {
  Message,      // a whole message; data is its body
  StreamStart,  // the header of a streamed message; data is empty
  StreamChunk,  // a piece of a streamed message's body; last is set on the final piece
};

struct Frame {
  FrameKind kind = FrameKind::Message;
  char type = 0;
  std::uint32_t body_length = 0;  // body bytes, without type and length field
  ByteView data;                  // valid until the next call into the decoder
  bool last = true;
};

enum class DecodeStatus { Frame, NeedMore, Error };

struct DecodeResult {
  DecodeStatus status = DecodeStatus::NeedMore;
  std::size_t consumed = 0;  // bytes of the input this call used; the caller drops them
  Frame frame;
  std::string error;  // set when status == Error
};

// Decodes typed messages ('Q', 'D', ...). Call next() with the unconsumed input until it says
// NeedMore (all input absorbed) or Error (the stream is unusable from here on). Small messages are
// returned as views into the input when whole, else buffered (bounded by the per-type maximum);
// large DataRow and CopyData bodies are streamed through without being held whole.
class MessageDecoder {
 public:
  explicit MessageDecoder(Direction dir, DecoderLimits limits = {}) : dir_(dir), limits_(limits) {}

  DecodeResult next(ByteView input);

  // Back to the start of a stream (a new connection), keeping the body buffer's capacity.
  void reset() {
    state_ = State::Header;
    header_have_ = 0;
    body_.clear();
    error_.clear();
  }

  // True between messages: no partial header or body is held.
  bool at_boundary() const { return state_ == State::Header && header_have_ == 0; }
  // The type of the next message next() will return, before it is consumed: from a header or body
  // already held, else the first byte of `input`. 0 in the middle of a streamed message (its
  // chunks follow), with no input, or after an error. Lets a caller decide what a message needs
  // before taking it.
  char next_type(ByteView input) const {
    if (state_ == State::Body) return type_;
    if (state_ != State::Header) return 0;
    if (header_have_ > 0) return static_cast<char>(header_[0]);
    return input.empty() ? 0 : static_cast<char>(input[0]);
  }

 private:
  enum class State { Header, Body, Stream, Failed };
  DecodeResult fail(std::string why);

  Direction dir_;
  DecoderLimits limits_;
  State state_ = State::Header;
  std::uint8_t header_[5]{};
  std::size_t header_have_ = 0;
  char type_ = 0;
  std::uint32_t body_length_ = 0;
  std::uint32_t remaining_ = 0;  // Stream: body bytes still to pass through
  Bytes body_;                   // Body: bytes gathered so far
  std::string error_;
};

// The untyped first packet of a connection.
struct StartupPacket {
  enum class Kind { Startup, SSLRequest, GSSENCRequest, CancelRequest };
  Kind kind = Kind::Startup;
  std::uint32_t protocol = 0;                               // Startup: e.g. 196608 for 3.0
  std::vector<std::pair<std::string, std::string>> params;  // Startup: user, database, ...
  std::int32_t process_id = 0;                              // CancelRequest
  std::int32_t secret_key = 0;                              // CancelRequest

  std::string_view param(std::string_view name) const;
  bool operator==(const StartupPacket&) const = default;
};

inline constexpr std::uint32_t kProtocolV3 = 196608;
inline constexpr std::uint32_t kSSLRequestCode = 80877103;
inline constexpr std::uint32_t kGSSENCRequestCode = 80877104;
inline constexpr std::uint32_t kCancelRequestCode = 80877102;

struct StartupDecodeResult {
  DecodeStatus status = DecodeStatus::NeedMore;
  std::size_t consumed = 0;
  StartupPacket packet;
  std::string error;
};

// Decodes one startup-phase packet from the bytes gathered so far (a client sends at most a few
// before the typed phase, so the caller keeps them; at most kMaxStartupPacket are ever needed).
StartupDecodeResult decode_startup(ByteView input);

void encode(Bytes& out, const StartupPacket& packet);

}  // namespace pglens::protocol
