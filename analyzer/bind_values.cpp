#include "analyzer/bind_values.hpp"

#include <algorithm>

#include "analyzer/event.hpp"
#include "protocol/bytes.hpp"

namespace pglens::analyzer {

namespace {

void put_u16(std::string& out, std::size_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}
void put_i32(std::string& out, std::int32_t v) {
  auto u = static_cast<std::uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((u >> shift) & 0xff));
}
void append(std::string& out, protocol::ByteView bytes) {
  out.append(protocol::as_chars(bytes));
}

}  // namespace

bool capture_bind_values(std::span<const std::uint8_t> rest, std::string& captured) {
  captured.clear();
  protocol::Reader in(rest);
  // Format codes take 2 bytes each, values at least 4 (their length).
  std::size_t formats = in.count16(2);
  in.bytes(2 * formats);
  std::size_t values = in.count16(4);
  std::size_t values_at = rest.size() - in.remaining();
  std::size_t kept = std::min(values, kMaxParameters);
  // Walk the kept values: where they end, and whether they already fit the bounds.
  bool as_is = kept == values && formats <= kMaxParameters;
  for (std::size_t i = 0; i < kept && !in.failed(); ++i) {
    std::int32_t len = in.i32();
    if (len <= 0) continue;  // NULL (-1) or empty
    if (static_cast<std::size_t>(len) > kMaxParameterBytes) as_is = false;
    in.bytes(static_cast<std::size_t>(len));
  }
  if (in.failed()) return false;
  if (as_is) {  // the usual case
    append(captured, rest.first(rest.size() - in.remaining()));
    return true;
  }
  // Cut to the bounds: one format code stands for every value, more are kept one per value.
  std::size_t kept_formats = formats == 1 ? 1 : std::min(formats, kMaxParameters);
  put_u16(captured, kept_formats);
  append(captured, rest.subspan(2, 2 * kept_formats));
  put_u16(captured, kept);
  protocol::Reader again(rest.subspan(values_at));
  for (std::size_t i = 0; i < kept; ++i) {
    std::int32_t len = again.i32();
    if (len < 0) {
      put_i32(captured, -1);
      continue;
    }
    auto value = again.bytes(static_cast<std::size_t>(len));
    auto n = std::min(value.size(), kMaxParameterBytes);
    put_i32(captured, static_cast<std::int32_t>(n));
    append(captured, value.first(n));
  }
  return true;
}

void decode_bind_values(std::string_view captured,
                        std::vector<std::optional<std::string>>& parameters) {
  static constexpr char kHex[] = "0123456789abcdef";
  // Written by capture_bind_values in this process; read with the same checks all the same.
  protocol::Reader in(protocol::as_bytes(captured));
  std::size_t formats = in.count16(2);
  protocol::ByteView codes = in.bytes(2 * formats);
  std::size_t values = std::min(in.count16(4), kMaxParameters);
  if (in.failed()) values = 0;
  auto binary = [&](std::size_t i) {
    if (formats == 1) i = 0;
    return i < formats && codes[2 * i] == 0 && codes[2 * i + 1] == 1;
  };
  parameters.resize(values);
  std::size_t i = 0;
  for (; i < values; ++i) {
    std::int32_t len = in.i32();
    auto bytes = len < 0 ? protocol::ByteView{} : in.bytes(static_cast<std::size_t>(len));
    if (in.failed()) break;
    auto& value = parameters[i];
    if (len < 0) {
      value.reset();
      continue;
    }
    if (!value) value.emplace();
    if (!binary(i)) {
      value->assign(protocol::as_chars(bytes.first(std::min(bytes.size(), kMaxParameterBytes))));
      continue;
    }
    value->assign("\\x");
    for (auto b : bytes.first(std::min(bytes.size(), kMaxParameterBytes / 2))) {
      value->push_back(kHex[b >> 4]);
      value->push_back(kHex[b & 15]);
    }
  }
  parameters.resize(i);
}

}  // namespace pglens::analyzer
