// Big-endian readers and writers for PostgreSQL wire-protocol bodies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pglens::protocol {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline std::uint32_t load_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

// Reads fields from a message body. Any read past the end sets failed() and yields zeros, so a
// decoder can read every field and check once at the end.
class Reader {
 public:
  explicit Reader(ByteView body) : body_(body) {}

  std::uint8_t u8() {
    if (!need(1)) return 0;
    return body_[pos_++];
  }
  std::int16_t i16() {
    if (!need(2)) return 0;
    auto v = static_cast<std::uint16_t>((body_[pos_] << 8) | body_[pos_ + 1]);
    pos_ += 2;
    return static_cast<std::int16_t>(v);
  }
  std::int32_t i32() {
    if (!need(4)) return 0;
    auto v = load_be32(body_.data() + pos_);
    pos_ += 4;
    return static_cast<std::int32_t>(v);
  }
  // A NUL-terminated string; the terminator is consumed, not returned.
  std::string_view cstring() {
    // Nothing left: fail here, as memchr must not be given an empty view's null pointer.
    if (failed_ || pos_ == body_.size()) {
      failed_ = true;
      return {};
    }
    // The empty name (the unnamed statement and portal most drivers use) without a memchr call.
    if (body_[pos_] == 0) return {reinterpret_cast<const char*>(body_.data() + pos_++), 0};
    const void* nul = std::memchr(body_.data() + pos_, 0, body_.size() - pos_);
    if (nul == nullptr) {
      failed_ = true;
      return {};
    }
    auto end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - body_.data());
    std::string_view s(reinterpret_cast<const char*>(body_.data() + pos_), end - pos_);
    pos_ = end + 1;
    return s;
  }
  ByteView bytes(std::size_t n) {
    if (!need(n)) return {};
    auto v = body_.subspan(pos_, n);
    pos_ += n;
    return v;
  }
  ByteView rest() {
    auto v = body_.subspan(pos_);
    pos_ = body_.size();
    return v;
  }
  // An element count (unsigned 16 bits on the wire: a Bind carries up to 65,535 parameters) that
  // must be plausible given the bytes left, each element taking at least min_element_size bytes;
  // guards allocations against hostile counts.
  std::size_t count16(std::size_t min_element_size) {
    auto n = static_cast<std::uint16_t>(i16());
    if (static_cast<std::size_t>(n) * min_element_size > remaining()) failed_ = true;
    return failed_ ? 0 : static_cast<std::size_t>(n);
  }

  std::size_t remaining() const { return failed_ ? 0 : body_.size() - pos_; }
  bool at_end() const { return !failed_ && pos_ == body_.size(); }
  bool failed() const { return failed_; }
  // True when every field was read and nothing is left over.
  bool ok() const { return at_end(); }

 private:
  bool need(std::size_t n) {
    if (failed_ || body_.size() - pos_ < n) {
      failed_ = true;
      return false;
    }
    return true;
  }
  ByteView body_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

// Appends one message (type byte, length, body) to a buffer; the length is patched on finish().
class Writer {
 public:
  // type == 0 writes an untyped startup-phase packet (length first).
  Writer(Bytes& out, char type) : out_(out) {
    if (type != 0) out_.push_back(static_cast<std::uint8_t>(type));
    length_at_ = out_.size();
    i32(0);
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Writer& u8(std::uint8_t v) {
    out_.push_back(v);
    return *this;
  }
  Writer& i16(std::int16_t v) {
    auto u = static_cast<std::uint16_t>(v);
    out_.push_back(static_cast<std::uint8_t>(u >> 8));
    out_.push_back(static_cast<std::uint8_t>(u));
    return *this;
  }
  Writer& i32(std::int32_t v) {
    auto u = static_cast<std::uint32_t>(v);
    for (int shift = 24; shift >= 0; shift -= 8)
      out_.push_back(static_cast<std::uint8_t>(u >> shift));
    return *this;
  }
  // An element count; the protocol's counts are unsigned 16 bits.
  Writer& count16(std::size_t n) {
    return i16(static_cast<std::int16_t>(static_cast<std::uint16_t>(n)));
  }
  Writer& cstring(std::string_view s) {
    bytes(as_bytes(s));
    out_.push_back(0);
    return *this;
  }
  Writer& bytes(ByteView b) {
    out_.insert(out_.end(), b.begin(), b.end());
    return *this;
  }
  void finish() {
    auto len = static_cast<std::uint32_t>(out_.size() - length_at_);
    for (int i = 0; i < 4; ++i)
      out_[length_at_ + i] = static_cast<std::uint8_t>(len >> (24 - 8 * i));
  }

 private:
  Bytes& out_;
  std::size_t length_at_;
};

}  // namespace pglens::protocol
