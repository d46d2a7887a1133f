// Bytes for one peer, gathered while the session core handles an event: runs of the input it was
// handed, passed on by reference (a forwarded message is not copied), and messages of the core's
// own. The I/O layer sends them in order with one gathering write, before it reads into that
// input buffer again.
#pragma once

#include <boost/container/small_vector.hpp>

#include <cstddef>
#include <cstdint>

#include "protocol/bytes.hpp"

namespace pglens::session {

class Output {
 public:
  // Bytes of the input being handled, as they are. Valid until the caller reuses its buffer,
  // which it does only after sending them; a run right behind the last one extends it.
  void pass(protocol::ByteView bytes) {
    if (bytes.empty()) return;
    if (!pieces_.empty()) {
      Piece& last = pieces_.back();
      if (last.data != nullptr && last.data + last.size == bytes.data()) {
        last.size += bytes.size();
        return;
      }
    }
    pieces_.push_back({bytes.data(), 0, bytes.size()});
  }

  // The core's own bytes: `encode(Bytes&)` appends them (protocol::X{...}.encode, say).
  template <class Encode>
  void own(Encode&& encode) {
    std::size_t before = owned_.size();
    encode(owned_);
    std::size_t added = owned_.size() - before;
    if (added == 0) return;
    if (!pieces_.empty()) {
      Piece& last = pieces_.back();
      if (last.data == nullptr && last.offset + last.size == before) {
        last.size += added;
        return;
      }
    }
    pieces_.push_back({nullptr, before, added});
  }
  void copy(protocol::ByteView bytes) {
    own([&](protocol::Bytes& b) { b.insert(b.end(), bytes.begin(), bytes.end()); });
  }

  bool empty() const { return pieces_.empty(); }
  std::size_t size() const {
    std::size_t n = 0;
    for (const auto& p : pieces_) n += p.size;
    return n;
  }
  // Each piece in order: f(const std::uint8_t* data, std::size_t size).
  template <class F>
  void for_each(F&& f) const {
    for (const auto& p : pieces_) f(p.data != nullptr ? p.data : owned_.data() + p.offset, p.size);
  }
  // Appends the bytes from `skip` on to `out` (what a partial send left).
  void copy_to(protocol::Bytes& out, std::size_t skip = 0) const {
    for_each([&](const std::uint8_t* data, std::size_t size) {
      if (skip >= size) {
        skip -= size;
        return;
      }
      out.insert(out.end(), data + skip, data + size);
      skip = 0;
    });
  }
  protocol::Bytes bytes() const {
    protocol::Bytes out;
    copy_to(out);
    return out;
  }
  std::size_t pieces() const { return pieces_.size(); }
  // Keeps the buffer's capacity: once warm, handling an event allocates nothing here.
  void clear() {
    pieces_.clear();
    owned_.clear();
  }

 private:
  struct Piece {
    const std::uint8_t* data;  // null: owned_, at offset (owned_ may move while it grows)
    std::size_t offset;
    std::size_t size;
  };
  boost::container::small_vector<Piece, 8> pieces_;
  protocol::Bytes owned_;
};

}  // namespace pglens::session
