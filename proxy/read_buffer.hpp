// The bytes read from a client and not yet taken, in a buffer sized to the traffic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "protocol/bytes.hpp"

namespace pglens::proxy {

// Every idle client has a read outstanding, so its buffer is what an idle client costs: it starts
// small and grows fourfold when a read fills it (a large query, a COPY stream: one read per 64 KiB
// at most), and goes back to its first size when a read would have fit in that.
class ReadBuffer {
 public:
  static constexpr std::size_t kInitial = 2 * 1024;
  static constexpr std::size_t kLargest = 64 * 1024;

  // Where the next read goes; only when every byte has been taken (pending() is empty).
  std::span<std::uint8_t> space() {
    if (!data_ || wanted_ != capacity_) {
      data_.reset(new std::uint8_t[wanted_]);
      capacity_ = wanted_;
    }
    return {data_.get(), capacity_};
  }

  // A read of n bytes into space() came back.
  void filled(std::size_t n) {
    begin_ = 0;
    end_ = n;
    wanted_ = next_capacity(capacity_, n);
  }
  protocol::ByteView pending() const { return {data_.get() + begin_, end_ - begin_}; }
  bool empty() const { return begin_ == end_; }
  void take(std::size_t n) { begin_ += n; }

  static std::size_t next_capacity(std::size_t capacity, std::size_t read) {
    if (read == capacity && capacity < kLargest)
      return capacity * 4 > kLargest ? kLargest : capacity * 4;
    if (read <= kInitial) return kInitial;
    return capacity;
  }

 private:
  std::unique_ptr<std::uint8_t[]> data_;
  std::size_t capacity_ = 0;
  std::size_t wanted_ = kInitial;
  std::size_t begin_ = 0, end_ = 0;
};

}  // namespace pglens::proxy
