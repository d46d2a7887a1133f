// The fuzzers' input: an exchange as tests/fuzz/capture.py records it, records of
// <tag byte><u16 big-endian length><bytes>. 'C' is what a client sent, 'S' what a server sent;
// the session fuzzer also reads other tags as events (fuzz_session.cpp). Whatever libFuzzer
// makes of it parses: a short last record is cut to what is there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace pglens::fuzz {

struct Record {
  char tag;
  std::span<const std::uint8_t> bytes;
};

inline std::vector<Record> records(const std::uint8_t* data, std::size_t size) {
  std::vector<Record> out;
  std::size_t i = 0;
  while (i < size) {
    char tag = static_cast<char>(data[i++]);
    std::size_t len = 0;
    if (i + 2 <= size) len = (std::size_t{data[i]} << 8) | data[i + 1];
    i = std::min(size, i + 2);
    len = std::min(len, size - i);
    out.push_back({tag, {data + i, len}});
    i += len;
  }
  return out;
}

}  // namespace pglens::fuzz
