#include "analyzer/bind_values.hpp"

#include <algorithm>

#include "analyzer/event.hpp"

namespace pglens::analyzer {

namespace {

std::size_t load_u16(const std::uint8_t* p) {
  return static_cast<std::size_t>((p[0] << 8) | p[1]);
}
std::int32_t load_i32(const std::uint8_t* p) {
  return static_cast<std::int32_t>((std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                                   (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]});
}
void put_u16(std::string& out, std::size_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}
void put_i32(std::string& out, std::int32_t v) {
  auto u = static_cast<std::uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((u >> shift) & 0xff));
}
void append(std::string& out, const std::uint8_t* p, std::size_t n) {
  out.append(reinterpret_cast<const char*>(p), n);
}

}  // namespace

bool capture_bind_values(std::span<const std::uint8_t> in, std::string& captured) {
  captured.clear();
  const std::uint8_t* p = in.data();
  if (in.size() < 2) return false;
  std::size_t formats = load_u16(p);
  std::size_t values_at = 2 + 2 * formats;
  if (in.size() < values_at + 2) return false;
  std::size_t values = load_u16(p + values_at);
  std::size_t kept = std::min(values, kMaxParameters);
  // Walk the kept values: where they end, and whether they already fit the bounds.
  bool as_is = kept == values && formats <= kMaxParameters;
  std::size_t at = values_at + 2;
  for (std::size_t i = 0; i < kept; ++i) {
    if (in.size() - at < 4) return false;
    std::int32_t len = load_i32(p + at);
    at += 4;
    if (len <= 0) continue;  // NULL (-1) or empty
    if (static_cast<std::size_t>(len) > in.size() - at) return false;
    if (static_cast<std::size_t>(len) > kMaxParameterBytes) as_is = false;
    at += static_cast<std::size_t>(len);
  }
  if (as_is) {  // the usual case
    append(captured, p, at);
    return true;
  }
  // Cut to the bounds: one format code stands for every value, more are kept one per value.
  std::size_t kept_formats = formats == 1 ? 1 : std::min(formats, kMaxParameters);
  put_u16(captured, kept_formats);
  append(captured, p + 2, 2 * kept_formats);
  put_u16(captured, kept);
  at = values_at + 2;
  for (std::size_t i = 0; i < kept; ++i) {
    std::int32_t len = load_i32(p + at);
    at += 4;
    if (len < 0) {
      put_i32(captured, -1);
      continue;
    }
    auto n = std::min(static_cast<std::size_t>(len), kMaxParameterBytes);
    put_i32(captured, static_cast<std::int32_t>(n));
    append(captured, p + at, n);
    at += static_cast<std::size_t>(len);
  }
  return true;
}

void decode_bind_values(std::string_view captured,
                        std::vector<std::optional<std::string>>& parameters) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const std::uint8_t*>(captured.data());
  std::size_t size = captured.size();
  // Written by capture_bind_values in this process; checked all the same.
  std::size_t formats = size < 2 ? 0 : load_u16(p);
  std::size_t values_at = 2 + 2 * formats;
  if (size < values_at + 2) {
    parameters.clear();
    return;
  }
  auto binary = [&](std::size_t i) {
    std::size_t code_at = formats == 1 ? 2 : 2 + 2 * i;
    return (formats == 1 || i < formats) && load_u16(p + code_at) == 1;
  };
  std::size_t values = std::min(load_u16(p + values_at), kMaxParameters);
  parameters.resize(values);
  std::size_t at = values_at + 2, i = 0;
  for (; i < values && size - at >= 4; ++i) {
    std::int32_t len = load_i32(p + at);
    at += 4;
    auto& value = parameters[i];
    if (len < 0) {
      value.reset();
      continue;
    }
    auto n = std::min(static_cast<std::size_t>(len), size - at);
    const std::uint8_t* bytes = p + at;
    at += n;
    if (!value) value.emplace();
    if (!binary(i)) {
      value->assign(reinterpret_cast<const char*>(bytes), std::min(n, kMaxParameterBytes));
      continue;
    }
    value->assign("\\x");
    for (std::size_t b = 0; b < std::min(n, kMaxParameterBytes / 2); ++b) {
      value->push_back(kHex[bytes[b] >> 4]);
      value->push_back(kHex[bytes[b] & 15]);
    }
  }
  parameters.resize(i);
}

}  // namespace pglens::analyzer
