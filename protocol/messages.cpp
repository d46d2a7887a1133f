#include "protocol/messages.hpp"

#include <charconv>

namespace pglens::protocol {

namespace {
template <typename T>
std::optional<T> finish(const Reader& in, T&& value) {
  if (!in.ok()) return std::nullopt;
  return std::forward<T>(value);
}

// A length-prefixed value (-1 for NULL), as in Bind parameters and DataRow columns. Any other
// negative length is malformed, as in Postgres; asking for more bytes than exist fails the reader.
std::optional<Bytes> read_value(Reader& in) {
  auto len = in.i32();
  if (len == -1) return std::nullopt;
  auto b = in.bytes(len < 0 ? SIZE_MAX : static_cast<std::size_t>(len));
  return Bytes(b.begin(), b.end());
}
void write_value(Writer& w, const std::optional<Bytes>& v) {
  if (!v) {
    w.i32(-1);
    return;
  }
  w.i32(static_cast<std::int32_t>(v->size())).bytes(*v);
}
}  // namespace

std::optional<Query> Query::decode(ByteView body) {
  Reader in(body);
  Query m{std::string(in.cstring())};
  return finish(in, std::move(m));
}
void Query::encode(Bytes& out) const {
  Writer(out, kType).cstring(sql).finish();
}

std::optional<Parse> Parse::decode(ByteView body) {
  Reader in(body);
  Parse m;
  m.statement = in.cstring();
  m.query = in.cstring();
  auto n = in.count16(4);
  m.param_types.reserve(n);
  for (std::size_t i = 0; i < n; ++i) m.param_types.push_back(static_cast<std::uint32_t>(in.i32()));
  return finish(in, std::move(m));
}
void Parse::encode(Bytes& out) const {
  Writer w(out, kType);
  w.cstring(statement).cstring(query).count16(param_types.size());
  for (auto t : param_types) w.i32(static_cast<std::int32_t>(t));
  w.finish();
}

std::optional<Bind> Bind::decode(ByteView body) {
  Reader in(body);
  Bind m;
  m.portal = in.cstring();
  m.statement = in.cstring();
  auto nf = in.count16(2);
  for (std::size_t i = 0; i < nf; ++i) m.param_formats.push_back(in.i16());
  auto np = in.count16(4);
  for (std::size_t i = 0; i < np && !in.failed(); ++i) m.params.push_back(read_value(in));
  auto nr = in.count16(2);
  for (std::size_t i = 0; i < nr; ++i) m.result_formats.push_back(in.i16());
  return finish(in, std::move(m));
}
void Bind::encode(Bytes& out) const {
  Writer w(out, kType);
  w.cstring(portal).cstring(statement).count16(param_formats.size());
  for (auto f : param_formats) w.i16(f);
  w.count16(params.size());
  for (const auto& p : params) write_value(w, p);
  w.count16(result_formats.size());
  for (auto f : result_formats) w.i16(f);
  w.finish();
}

std::optional<Describe> Describe::decode(ByteView body) {
  Reader in(body);
  Describe m{static_cast<char>(in.u8()), std::string(in.cstring())};
  if (m.target != 'S' && m.target != 'P') return std::nullopt;
  return finish(in, std::move(m));
}
void Describe::encode(Bytes& out) const {
  Writer(out, kType).u8(static_cast<std::uint8_t>(target)).cstring(name).finish();
}

std::optional<Execute> Execute::decode(ByteView body) {
  Reader in(body);
  Execute m;
  m.portal = in.cstring();
  m.max_rows = in.i32();
  return finish(in, std::move(m));
}
void Execute::encode(Bytes& out) const {
  Writer(out, kType).cstring(portal).i32(max_rows).finish();
}

std::optional<Close> Close::decode(ByteView body) {
  Reader in(body);
  Close m{static_cast<char>(in.u8()), std::string(in.cstring())};
  if (m.target != 'S' && m.target != 'P') return std::nullopt;
  return finish(in, std::move(m));
}
void Close::encode(Bytes& out) const {
  Writer(out, kType).u8(static_cast<std::uint8_t>(target)).cstring(name).finish();
}

std::optional<CopyFail> CopyFail::decode(ByteView body) {
  Reader in(body);
  CopyFail m{std::string(in.cstring())};
  return finish(in, std::move(m));
}
void CopyFail::encode(Bytes& out) const {
  Writer(out, kType).cstring(message).finish();
}

std::optional<PasswordMessage> PasswordMessage::decode(ByteView body) {
  Reader in(body);
  PasswordMessage m{std::string(in.cstring())};
  return finish(in, std::move(m));
}
void PasswordMessage::encode(Bytes& out) const {
  Writer(out, kType).cstring(password).finish();
}

std::optional<SASLInitialResponse> SASLInitialResponse::decode(ByteView body) {
  Reader in(body);
  SASLInitialResponse m;
  m.mechanism = in.cstring();
  m.data = read_value(in);
  return finish(in, std::move(m));
}
void SASLInitialResponse::encode(Bytes& out) const {
  Writer w(out, kType);
  w.cstring(mechanism);
  write_value(w, data);
  w.finish();
}

std::optional<SASLResponse> SASLResponse::decode(ByteView body) {
  return SASLResponse{Bytes(body.begin(), body.end())};
}
void SASLResponse::encode(Bytes& out) const {
  Writer(out, kType).bytes(data).finish();
}

std::optional<Authentication> Authentication::decode(ByteView body) {
  Reader in(body);
  Authentication m;
  m.code = in.i32();
  auto rest = in.rest();
  m.data.assign(rest.begin(), rest.end());
  if (in.failed()) return std::nullopt;
  if (m.code == kMD5Password && m.data.size() != 4) return std::nullopt;
  if ((m.code == kOk || m.code == kCleartextPassword) && !m.data.empty()) return std::nullopt;
  return m;
}
void Authentication::encode(Bytes& out) const {
  Writer(out, kType).i32(code).bytes(data).finish();
}

std::vector<std::string> Authentication::mechanisms() const {
  std::vector<std::string> names;
  Reader in(data);
  while (in.remaining() > 0) {
    auto name = in.cstring();
    if (in.failed() || name.empty()) break;
    names.emplace_back(name);
  }
  return names;
}

std::optional<ParameterStatus> ParameterStatus::decode(ByteView body) {
  Reader in(body);
  ParameterStatus m;
  m.name = in.cstring();
  m.value = in.cstring();
  return finish(in, std::move(m));
}
void ParameterStatus::encode(Bytes& out) const {
  Writer(out, kType).cstring(name).cstring(value).finish();
}

std::optional<BackendKeyData> BackendKeyData::decode(ByteView body) {
  Reader in(body);
  BackendKeyData m;
  m.process_id = in.i32();
  m.secret_key = in.i32();
  return finish(in, std::move(m));
}
void BackendKeyData::encode(Bytes& out) const {
  Writer(out, kType).i32(process_id).i32(secret_key).finish();
}

std::optional<ReadyForQuery> ReadyForQuery::decode(ByteView body) {
  Reader in(body);
  ReadyForQuery m{static_cast<char>(in.u8())};
  if (m.status != 'I' && m.status != 'T' && m.status != 'E') return std::nullopt;
  return finish(in, std::move(m));
}
void ReadyForQuery::encode(Bytes& out) const {
  Writer(out, kType).u8(static_cast<std::uint8_t>(status)).finish();
}

std::optional<RowDescription> RowDescription::decode(ByteView body) {
  Reader in(body);
  RowDescription m;
  auto n = in.count16(19);  // NUL + 18 bytes of fixed fields at least
  m.fields.reserve(n);
  for (std::size_t i = 0; i < n && !in.failed(); ++i) {
    FieldDescription f;
    f.name = in.cstring();
    f.table_oid = static_cast<std::uint32_t>(in.i32());
    f.column = in.i16();
    f.type_oid = static_cast<std::uint32_t>(in.i32());
    f.type_size = in.i16();
    f.type_modifier = in.i32();
    f.format = in.i16();
    m.fields.push_back(std::move(f));
  }
  return finish(in, std::move(m));
}
void RowDescription::encode(Bytes& out) const {
  Writer w(out, kType);
  w.count16(fields.size());
  for (const auto& f : fields) {
    w.cstring(f.name).i32(static_cast<std::int32_t>(f.table_oid)).i16(f.column);
    w.i32(static_cast<std::int32_t>(f.type_oid))
        .i16(f.type_size)
        .i32(f.type_modifier)
        .i16(f.format);
  }
  w.finish();
}

std::optional<DataRow> DataRow::decode(ByteView body) {
  Reader in(body);
  DataRow m;
  auto n = in.count16(4);
  m.values.reserve(n);
  for (std::size_t i = 0; i < n && !in.failed(); ++i) m.values.push_back(read_value(in));
  return finish(in, std::move(m));
}
void DataRow::encode(Bytes& out) const {
  Writer w(out, kType);
  w.count16(values.size());
  for (const auto& v : values) write_value(w, v);
  w.finish();
}

std::optional<CommandComplete> CommandComplete::decode(ByteView body) {
  Reader in(body);
  CommandComplete m{std::string(in.cstring())};
  return finish(in, std::move(m));
}
void CommandComplete::encode(Bytes& out) const {
  Writer(out, kType).cstring(tag).finish();
}

std::optional<std::uint64_t> CommandComplete::rows_in(std::string_view tag) {
  if (!tag.empty() && tag.back() == '\0') tag.remove_suffix(1);
  auto space = tag.rfind(' ');
  if (space == std::string_view::npos) return std::nullopt;
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(tag.data() + space + 1, tag.data() + tag.size(), n);
  if (ec != std::errc() || ptr != tag.data() + tag.size()) return std::nullopt;
  return n;
}

template <char Type>
std::optional<FieldMessage<Type>> FieldMessage<Type>::decode(ByteView body) {
  Reader in(body);
  FieldMessage m;
  while (true) {
    auto code = static_cast<char>(in.u8());
    if (in.failed() || code == 0) break;
    m.fields.emplace_back(code, std::string(in.cstring()));
  }
  return finish(in, std::move(m));
}
template <char Type>
void FieldMessage<Type>::encode(Bytes& out) const {
  Writer w(out, Type);
  for (const auto& [code, value] : fields) w.u8(static_cast<std::uint8_t>(code)).cstring(value);
  w.u8(0).finish();
}
template struct FieldMessage<'E'>;
template struct FieldMessage<'N'>;

ErrorResponse make_error(std::string_view sqlstate, std::string_view message,
                         std::string_view severity) {
  ErrorResponse e;
  e.fields = {{'S', std::string(severity)},
              {'V', std::string(severity)},
              {'C', std::string(sqlstate)},
              {'M', std::string(message)}};
  return e;
}

std::optional<NotificationResponse> NotificationResponse::decode(ByteView body) {
  Reader in(body);
  NotificationResponse m;
  m.process_id = in.i32();
  m.channel = in.cstring();
  m.payload = in.cstring();
  return finish(in, std::move(m));
}
void NotificationResponse::encode(Bytes& out) const {
  Writer(out, kType).i32(process_id).cstring(channel).cstring(payload).finish();
}

template <char Type>
std::optional<CopyResponse<Type>> CopyResponse<Type>::decode(ByteView body) {
  Reader in(body);
  CopyResponse m;
  m.format = static_cast<std::int8_t>(in.u8());
  auto n = in.count16(2);
  for (std::size_t i = 0; i < n; ++i) m.column_formats.push_back(in.i16());
  return finish(in, std::move(m));
}
template <char Type>
void CopyResponse<Type>::encode(Bytes& out) const {
  Writer w(out, Type);
  w.u8(static_cast<std::uint8_t>(format)).count16(column_formats.size());
  for (auto f : column_formats) w.i16(f);
  w.finish();
}
template struct CopyResponse<'G'>;
template struct CopyResponse<'H'>;
template struct CopyResponse<'W'>;

std::optional<ParameterDescription> ParameterDescription::decode(ByteView body) {
  Reader in(body);
  ParameterDescription m;
  auto n = in.count16(4);
  for (std::size_t i = 0; i < n; ++i) m.types.push_back(static_cast<std::uint32_t>(in.i32()));
  return finish(in, std::move(m));
}
void ParameterDescription::encode(Bytes& out) const {
  Writer w(out, kType);
  w.count16(types.size());
  for (auto t : types) w.i32(static_cast<std::int32_t>(t));
  w.finish();
}

std::optional<NegotiateProtocolVersion> NegotiateProtocolVersion::decode(ByteView body) {
  Reader in(body);
  NegotiateProtocolVersion m;
  m.newest_minor = in.i32();
  auto n = in.i32();
  if (n < 0 || static_cast<std::size_t>(n) > in.remaining()) return std::nullopt;
  for (std::int32_t i = 0; i < n; ++i) m.unrecognized.emplace_back(in.cstring());
  return finish(in, std::move(m));
}
void NegotiateProtocolVersion::encode(Bytes& out) const {
  Writer w(out, kType);
  w.i32(newest_minor).i32(static_cast<std::int32_t>(unrecognized.size()));
  for (const auto& s : unrecognized) w.cstring(s);
  w.finish();
}

}  // namespace pglens::protocol
