// Typed PostgreSQL v3 messages: decode(body) parses a body the MessageDecoder framed, encode(out)
// appends the whole message (type, length, body). Field names follow the protocol documentation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/bytes.hpp"

namespace pglens::protocol {

// ---- frontend (client → server) ----

struct Query {
  static constexpr char kType = 'Q';
  std::string sql;
  static std::optional<Query> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const Query&) const = default;
};

struct Parse {
  static constexpr char kType = 'P';
  std::string statement;  // "" is the unnamed statement
  std::string query;
  std::vector<std::uint32_t> param_types;
  static std::optional<Parse> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const Parse&) const = default;
};

struct Bind {
  static constexpr char kType = 'B';
  std::string portal;
  std::string statement;
  std::vector<std::int16_t> param_formats;
  std::vector<std::optional<Bytes>> params;  // nullopt is SQL NULL
  std::vector<std::int16_t> result_formats;
  static std::optional<Bind> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const Bind&) const = default;
};

struct Describe {
  static constexpr char kType = 'D';
  char target = 'S';  // 'S' statement or 'P' portal
  std::string name;
  static std::optional<Describe> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const Describe&) const = default;
};

struct Execute {
  static constexpr char kType = 'E';
  std::string portal;
  std::int32_t max_rows = 0;
  static std::optional<Execute> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const Execute&) const = default;
};

struct Close {
  static constexpr char kType = 'C';
  char target = 'S';
  std::string name;
  static std::optional<Close> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const Close&) const = default;
};

struct CopyFail {
  static constexpr char kType = 'f';
  std::string message;
  static std::optional<CopyFail> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const CopyFail&) const = default;
};

// PasswordMessage, SASLInitialResponse and SASLResponse share the type 'p'; which one it is
// depends on the authentication request it answers.
struct PasswordMessage {
  static constexpr char kType = 'p';
  std::string password;
  static std::optional<PasswordMessage> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const PasswordMessage&) const = default;
};

struct SASLInitialResponse {
  static constexpr char kType = 'p';
  std::string mechanism;
  std::optional<Bytes> data;
  static std::optional<SASLInitialResponse> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const SASLInitialResponse&) const = default;
};

struct SASLResponse {
  static constexpr char kType = 'p';
  Bytes data;
  static std::optional<SASLResponse> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const SASLResponse&) const = default;
};

// Messages with no body, parameterised by type byte: Sync 'S', Flush 'H', Terminate 'X',
// CopyDone 'c' (both directions), ParseComplete '1', BindComplete '2', CloseComplete '3',
// NoData 'n', PortalSuspended 's', EmptyQueryResponse 'I'.
template <char Type>
struct Empty {
  static constexpr char kType = Type;
  static std::optional<Empty> decode(ByteView body) {
    if (!body.empty()) return std::nullopt;
    return Empty{};
  }
  void encode(Bytes& out) const { Writer(out, Type).finish(); }
  bool operator==(const Empty&) const = default;
};
using Sync = Empty<'S'>;
using Flush = Empty<'H'>;
using Terminate = Empty<'X'>;
using CopyDone = Empty<'c'>;
using ParseComplete = Empty<'1'>;
using BindComplete = Empty<'2'>;
using CloseComplete = Empty<'3'>;
using NoData = Empty<'n'>;
using PortalSuspended = Empty<'s'>;
using EmptyQueryResponse = Empty<'I'>;

// CopyData 'd', in both directions: opaque bytes.
struct CopyData {
  static constexpr char kType = 'd';
  Bytes data;
  static std::optional<CopyData> decode(ByteView body) {
    return CopyData{Bytes(body.begin(), body.end())};
  }
  void encode(Bytes& out) const { Writer(out, kType).bytes(data).finish(); }
  bool operator==(const CopyData&) const = default;
};

// ---- backend (server → client) ----

struct Authentication {
  static constexpr char kType = 'R';
  enum Code : std::int32_t {
    kOk = 0,
    kCleartextPassword = 3,
    kMD5Password = 5,
    kSASL = 10,
    kSASLContinue = 11,
    kSASLFinal = 12,
  };
  std::int32_t code = kOk;
  Bytes data;  // MD5: 4-byte salt; SASL: mechanism list; SASLContinue/Final: server message
  static std::optional<Authentication> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const Authentication&) const = default;
  // For kSASL: the NUL-separated mechanism names.
  std::vector<std::string> mechanisms() const;
};

struct ParameterStatus {
  static constexpr char kType = 'S';
  std::string name;
  std::string value;
  static std::optional<ParameterStatus> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const ParameterStatus&) const = default;
};

struct BackendKeyData {
  static constexpr char kType = 'K';
  std::int32_t process_id = 0;
  std::int32_t secret_key = 0;
  static std::optional<BackendKeyData> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const BackendKeyData&) const = default;
};

struct ReadyForQuery {
  static constexpr char kType = 'Z';
  char status = 'I';  // 'I' idle, 'T' in transaction, 'E' failed transaction
  static std::optional<ReadyForQuery> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const ReadyForQuery&) const = default;
};

struct FieldDescription {
  std::string name;
  std::uint32_t table_oid = 0;
  std::int16_t column = 0;
  std::uint32_t type_oid = 0;
  std::int16_t type_size = 0;
  std::int32_t type_modifier = -1;
  std::int16_t format = 0;
  bool operator==(const FieldDescription&) const = default;
};

struct RowDescription {
  static constexpr char kType = 'T';
  std::vector<FieldDescription> fields;
  static std::optional<RowDescription> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const RowDescription&) const = default;
};

struct DataRow {
  static constexpr char kType = 'D';
  std::vector<std::optional<Bytes>> values;  // nullopt is SQL NULL
  static std::optional<DataRow> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const DataRow&) const = default;
};

struct CommandComplete {
  static constexpr char kType = 'C';
  std::string tag;  // "SELECT 3", "INSERT 0 1", ...
  static std::optional<CommandComplete> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const CommandComplete&) const = default;
  // The row count at the end of the tag, when there is one.
  std::optional<std::uint64_t> rows() const { return rows_in(tag); }
  // The same, read in place from a tag or an undecoded body (its terminating NUL is ignored).
  static std::optional<std::uint64_t> rows_in(std::string_view tag);
};

// ErrorResponse 'E' and NoticeResponse 'N' share a layout: (code, value) fields.
template <char Type>
struct FieldMessage {
  static constexpr char kType = Type;
  std::vector<std::pair<char, std::string>> fields;
  static std::optional<FieldMessage> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const FieldMessage&) const = default;
  std::string_view field(char code) const {
    for (const auto& [c, v] : fields)
      if (c == code) return v;
    return {};
  }
  std::string_view severity() const { return field('S'); }
  std::string_view sqlstate() const { return field('C'); }
  std::string_view message() const { return field('M'); }
};
using ErrorResponse = FieldMessage<'E'>;
using NoticeResponse = FieldMessage<'N'>;

// An ErrorResponse the proxy itself raises.
ErrorResponse make_error(std::string_view sqlstate, std::string_view message,
                         std::string_view severity = "ERROR");

struct NotificationResponse {
  static constexpr char kType = 'A';
  std::int32_t process_id = 0;
  std::string channel;
  std::string payload;
  static std::optional<NotificationResponse> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const NotificationResponse&) const = default;
};

// CopyInResponse 'G', CopyOutResponse 'H', CopyBothResponse 'W'.
template <char Type>
struct CopyResponse {
  static constexpr char kType = Type;
  std::int8_t format = 0;  // 0 text, 1 binary
  std::vector<std::int16_t> column_formats;
  static std::optional<CopyResponse> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const CopyResponse&) const = default;
};
using CopyInResponse = CopyResponse<'G'>;
using CopyOutResponse = CopyResponse<'H'>;
using CopyBothResponse = CopyResponse<'W'>;

struct ParameterDescription {
  static constexpr char kType = 't';
  std::vector<std::uint32_t> types;
  static std::optional<ParameterDescription> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const ParameterDescription&) const = default;
};

struct NegotiateProtocolVersion {
  static constexpr char kType = 'v';
  std::int32_t newest_minor = 0;
  std::vector<std::string> unrecognized;
  static std::optional<NegotiateProtocolVersion> decode(ByteView body);
  void encode(Bytes& out) const;
  bool operator==(const NegotiateProtocolVersion&) const = default;
};

// Encodes a message into a fresh buffer.
template <typename M>
Bytes encoded(const M& m) {
  Bytes out;
  m.encode(out);
  return out;
}

}  // namespace pglens::protocol
