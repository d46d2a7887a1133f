// Small helpers the session core's files share for writing and classifying messages.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/bytes.hpp"
#include "protocol/messages.hpp"

namespace pglens::session::frames {

inline void append_header(protocol::Bytes& out, char type, std::uint32_t body_length) {
  std::uint32_t len = body_length + 4;
  const std::uint8_t header[5] = {
      static_cast<std::uint8_t>(type), static_cast<std::uint8_t>(len >> 24),
      static_cast<std::uint8_t>(len >> 16), static_cast<std::uint8_t>(len >> 8),
      static_cast<std::uint8_t>(len)};
  out.insert(out.end(), header, header + 5);
}

// The same error at another severity: FATAL while logging in, ERROR once the client can go on.
inline void set_severity(protocol::ErrorResponse& e, std::string_view severity) {
  std::erase_if(e.fields, [](const auto& f) { return f.first == 'S' || f.first == 'V'; });
  e.fields.insert(e.fields.begin(), {{'S', std::string(severity)}, {'V', std::string(severity)}});
}

// Requests the server answers (and the ledger records); Flush and COPY data are not.
inline bool answered(char type) {
  return type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C' || type == 'S' ||
         type == 'Q' || type == 'F';
}

// An ErrorResponse body whose severity is FATAL (or PANIC): the backend ends after it.
// V is the severity never translated (Postgres 9.6+); S, maybe translated, otherwise.
inline bool is_fatal(protocol::ByteView error_body) {
  protocol::Reader in(error_body);
  std::string_view severity;
  while (!in.failed()) {
    auto code = in.u8();
    if (code == 0 || in.failed()) break;
    auto value = in.cstring();
    if (code == 'V') {
      severity = value;
      break;
    }
    if (code == 'S') severity = value;
  }
  return severity == "FATAL" || severity == "PANIC";
}

}  // namespace pglens::session::frames
