#include "protocol/decoder.hpp"
#include "protocol/messages.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <new>
#include <optional>
#include <ostream>
#include <random>
#include <source_location>
#include <string>
#include <string_view>
#include <vector>

// ---- Allocation probe ----
// The codec must never size an allocation from an untrusted length or count. These replacements
// of the global allocation functions record the largest single request made while a probe is
// alive (every form is replaced so that new and delete always pair up, also under ASan).
namespace {
std::atomic<bool> g_probing{false};
std::atomic<std::size_t> g_largest_request{0};

void* probed_malloc(std::size_t n) noexcept {
  if (g_probing.load(std::memory_order_relaxed)) {
    std::size_t seen = g_largest_request.load(std::memory_order_relaxed);
    while (n > seen && !g_largest_request.compare_exchange_weak(seen, n)) {
    }
  }
  return std::malloc(n == 0 ? 1 : n);
}

// Out of line so that GCC does not mistake inlined delete for free() on operator new's memory.
[[gnu::noinline]] void probed_free(void* p) noexcept {
  std::free(p);
}
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = probed_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return ::operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return probed_malloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return probed_malloc(n);
}
void operator delete(void* p) noexcept {
  probed_free(p);
}
void operator delete[](void* p) noexcept {
  probed_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  probed_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  probed_free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  probed_free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  probed_free(p);
}

namespace pglens::protocol {
namespace {

using namespace std::string_view_literals;

constexpr Direction kFe = Direction::Frontend;
constexpr Direction kBe = Direction::Backend;
constexpr std::size_t kMiB = 1 << 20;

// Records the largest single allocation made during its lifetime.
class AllocationProbe {
 public:
  AllocationProbe() {
    g_largest_request = 0;
    g_probing = true;
  }
  ~AllocationProbe() { g_probing = false; }
  AllocationProbe(const AllocationProbe&) = delete;
  AllocationProbe& operator=(const AllocationProbe&) = delete;
  std::size_t largest() const { return g_largest_request; }
};

// ---- Byte helpers ----

Bytes bytes_of(std::string_view s) {
  ByteView b = as_bytes(s);
  return {b.begin(), b.end()};
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes be16(std::uint16_t v) {
  return {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

Bytes be32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

// A message header with an arbitrary, possibly bogus, length field.
Bytes header(char type, std::uint32_t length) {
  return concat({Bytes{static_cast<std::uint8_t>(type)}, be32(length)});
}

// A whole typed message with a correct length field.
Bytes wire_of(char type, ByteView body) {
  Bytes out;
  Writer w(out, type);
  w.bytes(body);
  w.finish();
  return out;
}

ByteView body_of(const Bytes& wire) {
  return ByteView(wire).subspan(5);
}

// A startup-phase packet: computed length, then the code and payload.
Bytes startup_packet(std::uint32_t code, std::string_view payload) {
  Bytes out;
  Writer w(out, 0);
  w.i32(static_cast<std::int32_t>(code)).bytes(as_bytes(payload));
  w.finish();
  return out;
}

// True when part lies inside whole, i.e. the decoder handed out a view instead of a copy.
bool within(ByteView part, ByteView whole) {
  std::less_equal<const std::uint8_t*> le;
  return le(whole.data(), part.data()) &&
         le(part.data() + part.size(), whole.data() + whole.size());
}

// ---- Reassembly: frames back into whole (type, body) messages ----

struct Decoded {
  char type = 0;
  Bytes body;
  bool operator==(const Decoded&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const Decoded& d) {
    return os << "'" << d.type << "' with " << d.body.size() << " body bytes";
  }
};

std::vector<Decoded> as_decoded(const std::vector<Bytes>& wires) {
  std::vector<Decoded> out;
  for (const Bytes& w : wires)
    out.push_back({static_cast<char>(w[0]), Bytes(w.begin() + 5, w.end())});
  return out;
}

Bytes joined(const std::vector<Bytes>& wires) {
  Bytes out;
  for (const Bytes& w : wires) out.insert(out.end(), w.begin(), w.end());
  return out;
}

// Message frames are kept as they are; StreamStart + StreamChunk pieces are concatenated.
struct Reassembly {
  std::vector<Decoded> messages;
  std::optional<Decoded> open;  // a streamed message still arriving
  int streamed = 0;
  bool failed = false;
  bool at_boundary = false;

  void add(const Frame& f) {
    switch (f.kind) {
      case FrameKind::Message:
        ASSERT_FALSE(open) << "a whole message inside a streamed one";
        ASSERT_EQ(f.data.size(), f.body_length);
        messages.push_back({f.type, Bytes(f.data.begin(), f.data.end())});
        break;
      case FrameKind::StreamStart:
        ASSERT_FALSE(open) << "a stream started inside another";
        EXPECT_TRUE(f.data.empty());
        open = Decoded{f.type, {}};
        ++streamed;
        break;
      case FrameKind::StreamChunk:
        ASSERT_TRUE(open) << "a chunk without StreamStart";
        ASSERT_EQ(f.type, open->type);
        ASSERT_FALSE(f.data.empty());
        open->body.insert(open->body.end(), f.data.begin(), f.data.end());
        ASSERT_LE(open->body.size(), f.body_length);
        EXPECT_EQ(f.last, open->body.size() == f.body_length);
        if (f.last) {
          messages.push_back(std::move(*open));
          open.reset();
        }
        break;
    }
  }
};

// Feeds one read's worth of input until the decoder absorbed it; false once it reports an error.
// Checks that every call makes progress and that streamed chunks are views of the input.
bool feed(MessageDecoder& d, ByteView in, Reassembly& out) {
  while (true) {
    DecodeResult r = d.next(in);
    if (r.status == DecodeStatus::Error) {
      EXPECT_FALSE(r.error.empty());
      EXPECT_EQ(d.next(in).status, DecodeStatus::Error) << "the error must be sticky";
      return false;
    }
    if (r.status == DecodeStatus::NeedMore) {
      EXPECT_EQ(r.consumed, in.size()) << "NeedMore must absorb all input";
      return true;
    }
    if (r.consumed == 0 || r.consumed > in.size()) {
      ADD_FAILURE() << "a frame consumed " << r.consumed << " of " << in.size() << " bytes";
      return false;
    }
    if (r.frame.kind == FrameKind::StreamChunk) {
      EXPECT_TRUE(within(r.frame.data, in)) << "streamed chunks must not be held";
    }
    out.add(r.frame);
    in = in.subspan(r.consumed);
  }
}

// Decodes input delivered as the pieces between the given (ascending) cut offsets.
Reassembly decode_pieces(Direction dir, DecoderLimits limits, ByteView input,
                         const std::vector<std::size_t>& cuts) {
  MessageDecoder d(dir, limits);
  Reassembly out;
  std::size_t from = 0;
  for (std::size_t to : cuts) {
    if (!feed(d, input.subspan(from, to - from), out)) {
      out.failed = true;
      return out;
    }
    from = to;
  }
  out.failed = !feed(d, input.subspan(from), out);
  out.at_boundary = d.at_boundary();
  return out;
}

// ---- Sample messages ----

Bind sample_bind() {
  Bind b;
  b.portal = "p1";
  b.statement = "s1";
  b.param_formats = {0, 1, 1};
  b.params = {bytes_of("42"), std::nullopt, Bytes{0, 0, 0, 7}};
  b.result_formats = {1};
  return b;
}

RowDescription sample_row_description() {
  RowDescription m;
  m.fields = {{"id", 16384, 1, 23, 4, -1, 0}, {"name", 16384, 2, 25, -1, -1, 1}};
  return m;
}

// One of each frontend message. Describe's name and CopyData exceed a 16-byte stream threshold.
const std::vector<Bytes>& frontend_samples() {
  static const std::vector<Bytes> samples = {
      encoded(Query{"SELECT 1"}),
      encoded(Parse{"s1", "SELECT $1::int", {23}}),
      encoded(sample_bind()),
      encoded(Describe{'P', "a_portal_name_longer_than_16"}),
      encoded(Execute{"p1", 100}),
      encoded(Close{'S', "s1"}),
      encoded(Sync{}),
      encoded(Flush{}),
      encoded(CopyData{Bytes(100, 'x')}),
      encoded(CopyDone{}),
      encoded(CopyFail{"disk full"}),
      encoded(PasswordMessage{"secret"}),
      encoded(SASLInitialResponse{"SCRAM-SHA-256", bytes_of("n,,n=,r=abc")}),
      encoded(SASLResponse{bytes_of("c=biws,r=abcdef,p=xyz")}),
      encoded(Terminate{}),
  };
  return samples;
}

// One of each backend message. One DataRow and the CopyData exceed a 16-byte stream threshold.
const std::vector<Bytes>& backend_samples() {
  static const std::vector<Bytes> samples = {
      encoded(Authentication{Authentication::kSASL, bytes_of("SCRAM-SHA-256\0\0"sv)}),
      encoded(Authentication{Authentication::kMD5Password, {1, 2, 3, 4}}),
      encoded(Authentication{Authentication::kOk, {}}),
      encoded(ParameterStatus{"server_version", "16.2"}),
      encoded(BackendKeyData{1234, 5678}),
      encoded(ReadyForQuery{'I'}),
      encoded(sample_row_description()),
      encoded(DataRow{{bytes_of("1")}}),
      encoded(DataRow{{Bytes(40, 'a'), std::nullopt, bytes_of("z")}}),
      encoded(CommandComplete{"SELECT 2"}),
      encoded(ParseComplete{}),
      encoded(BindComplete{}),
      encoded(ParameterDescription{{23, 25}}),
      encoded(NoData{}),
      encoded(PortalSuspended{}),
      encoded(CopyInResponse{0, {0}}),
      encoded(CopyBothResponse{1, {}}),
      encoded(CopyOutResponse{0, {0, 0}}),
      encoded(CopyData{Bytes(50, 'c')}),
      encoded(CopyDone{}),
      encoded(NoticeResponse{{{'S', "NOTICE"}, {'M', "hello"}}}),
      encoded(make_error("42P01", "relation \"t\" does not exist")),
      encoded(NotificationResponse{42, "chan", "payload"}),
      encoded(EmptyQueryResponse{}),
      encoded(CloseComplete{}),
      encoded(NegotiateProtocolVersion{0, {"_pq_.compression"}}),
      encoded(ReadyForQuery{'T'}),
  };
  return samples;
}

const std::vector<Bytes>& samples(Direction dir) {
  return dir == kFe ? frontend_samples() : backend_samples();
}

// ---- Round-trip helper ----

// PrefixFree: no proper prefix of a valid body decodes and no trailing byte is accepted.
// OpenEnded: the body ends in free-form bytes (CopyData, SASL data), so neither holds.
enum class Shape { PrefixFree, OpenEnded };

// encode → MessageDecoder → one Message frame with the right type and body → M::decode gives the
// original back → re-encoding gives identical bytes.
template <typename M>
void expect_round_trip(Direction dir, const M& m, Shape shape = Shape::PrefixFree,
                       std::source_location loc = std::source_location::current()) {
  ::testing::ScopedTrace trace(loc.file_name(), static_cast<int>(loc.line()), "round trip");
  const Bytes wire = encoded(m);
  MessageDecoder d(dir);
  DecodeResult r = d.next(wire);
  ASSERT_EQ(r.status, DecodeStatus::Frame) << r.error;
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(r.frame.kind, FrameKind::Message);
  EXPECT_EQ(r.frame.type, M::kType);
  EXPECT_EQ(r.frame.body_length, wire.size() - 5);
  EXPECT_TRUE(std::ranges::equal(r.frame.data, body_of(wire)));
  EXPECT_TRUE(d.at_boundary());

  std::optional<M> back = M::decode(r.frame.data);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, m);
  EXPECT_EQ(encoded(*back), wire);

  if (shape == Shape::OpenEnded) return;
  ByteView body = body_of(wire);
  for (std::size_t n = 0; n < body.size(); ++n) {
    EXPECT_FALSE(M::decode(body.first(n))) << "a prefix of " << n << " bytes decoded";
  }
  Bytes longer(body.begin(), body.end());
  longer.push_back(0);
  EXPECT_FALSE(M::decode(longer)) << "a trailing byte was accepted";
}

// An SSLRequest, GSSENCRequest or CancelRequest.
StartupPacket request(StartupPacket::Kind kind, std::int32_t process_id = 0,
                      std::int32_t secret_key = 0) {
  StartupPacket p;
  p.kind = kind;
  p.process_id = process_id;
  p.secret_key = secret_key;
  return p;
}

// ---- Exact wire layouts, checked by hand against the protocol documentation ----

// next_type: what the next message is before it is taken, wherever its first bytes are.
TEST(NextType, FromTheInputTheHeldHeaderOrTheHeldBody) {
  MessageDecoder d(kFe);
  Bytes q = encoded(Query{"SELECT 1"});
  EXPECT_EQ(d.next_type({}), 0);
  EXPECT_EQ(d.next_type(q), 'Q');  // in the input
  EXPECT_EQ(d.next(ByteView(q).first(2)).status, DecodeStatus::NeedMore);
  EXPECT_EQ(d.next_type({}), 'Q');  // a header begun
  EXPECT_EQ(d.next(ByteView(q).subspan(2, 6)).status, DecodeStatus::NeedMore);
  EXPECT_EQ(d.next_type({}), 'Q');  // a body begun
  auto r = d.next(ByteView(q).subspan(8));
  EXPECT_EQ(r.status, DecodeStatus::Frame);
  EXPECT_EQ(d.next_type({}), 0);  // between messages again
}

TEST(NextType, NoneInsideAStreamedMessage) {
  MessageDecoder d(kBe);
  Bytes row = encoded(DataRow{{Bytes(100'000, 'x')}});
  auto r = d.next(ByteView(row).first(1000));
  EXPECT_EQ(r.frame.kind, FrameKind::StreamStart);
  EXPECT_EQ(d.next_type(ByteView(row).subspan(r.consumed)), 0);  // its chunks follow
  d.reset();
  EXPECT_TRUE(d.at_boundary());
  EXPECT_EQ(d.next_type(row), 'D');
}

TEST(WireLayout, Query) {
  EXPECT_EQ(encoded(Query{"SELECT 1"}),
            concat({Bytes{'Q', 0, 0, 0, 0x0d}, bytes_of("SELECT 1\0"sv)}));
}

TEST(WireLayout, ReadyForQuery) {
  EXPECT_EQ(encoded(ReadyForQuery{'I'}), (Bytes{'Z', 0, 0, 0, 5, 'I'}));
}

TEST(WireLayout, EmptyMessagesAreJustAHeader) {
  EXPECT_EQ(encoded(Sync{}), (Bytes{'S', 0, 0, 0, 4}));
  EXPECT_EQ(encoded(Terminate{}), (Bytes{'X', 0, 0, 0, 4}));
  EXPECT_EQ(encoded(ParseComplete{}), (Bytes{'1', 0, 0, 0, 4}));
}

TEST(WireLayout, DataRowWithNull) {
  DataRow row{{std::nullopt, bytes_of("ab")}};
  EXPECT_EQ(encoded(row),
            (Bytes{'D', 0, 0, 0, 16, 0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 'a', 'b'}));
}

TEST(WireLayout, ExecuteAndMD5Request) {
  EXPECT_EQ(encoded(Execute{"p", 5}), (Bytes{'E', 0, 0, 0, 10, 'p', 0, 0, 0, 0, 5}));
  Authentication md5{Authentication::kMD5Password, {1, 2, 3, 4}};
  EXPECT_EQ(encoded(md5), (Bytes{'R', 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4}));
}

TEST(WireLayout, StartupPacketCodes) {
  Bytes ssl, gss, cancel;
  encode(ssl, request(StartupPacket::Kind::SSLRequest));
  encode(gss, request(StartupPacket::Kind::GSSENCRequest));
  encode(cancel, request(StartupPacket::Kind::CancelRequest, 7, 9));
  EXPECT_EQ(ssl, (Bytes{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}));
  EXPECT_EQ(gss, (Bytes{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30}));
  EXPECT_EQ(cancel, (Bytes{0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 7, 0, 0, 0, 9}));
}

// ---- Frontend messages round-trip ----

TEST(FrontendRoundTrip, Query) {
  expect_round_trip(kFe, Query{"SELECT 1"});
  expect_round_trip(kFe, Query{""});
  expect_round_trip(kFe, Query{"SELECT 'é'; SELECT 2"});
}

TEST(FrontendRoundTrip, Parse) {
  expect_round_trip(kFe, Parse{"", "SELECT 1", {}});
  expect_round_trip(kFe, Parse{"stmt", "SELECT $1, $2", {23, 0xffffffff}});
}

TEST(FrontendRoundTrip, Bind) {
  expect_round_trip(kFe, sample_bind());
  expect_round_trip(kFe, Bind{});
  // An empty value is not NULL; one format code applies to every parameter.
  expect_round_trip(kFe, Bind{"", "", {1}, {Bytes{}, std::nullopt, Bytes{0xff, 0}}, {1, 0, 1}});
}

TEST(FrontendRoundTrip, DescribeAndClose) {
  expect_round_trip(kFe, Describe{'S', "stmt"});
  expect_round_trip(kFe, Describe{'P', ""});
  expect_round_trip(kFe, Close{'S', ""});
  expect_round_trip(kFe, Close{'P', "portal"});
  // Only 'S' and 'P' are targets.
  EXPECT_FALSE(Describe::decode(bytes_of("X\0"sv)));
  EXPECT_FALSE(Close::decode(bytes_of("X\0"sv)));
}

TEST(FrontendRoundTrip, Execute) {
  expect_round_trip(kFe, Execute{"", 0});
  expect_round_trip(kFe, Execute{"portal", 500});
}

TEST(FrontendRoundTrip, CopyFailAndPassword) {
  expect_round_trip(kFe, CopyFail{"aborted by user"});
  expect_round_trip(kFe, PasswordMessage{"md5abcdef"});
  expect_round_trip(kFe, PasswordMessage{""});
}

TEST(FrontendRoundTrip, SASLMessages) {
  expect_round_trip(kFe, SASLInitialResponse{"SCRAM-SHA-256", bytes_of("n,,n=,r=nonce")});
  expect_round_trip(kFe, SASLInitialResponse{"SCRAM-SHA-256", std::nullopt});  // length -1
  expect_round_trip(kFe, SASLResponse{bytes_of("c=biws,r=nonce,p=proof")}, Shape::OpenEnded);
  expect_round_trip(kFe, SASLResponse{}, Shape::OpenEnded);
}

TEST(FrontendRoundTrip, EmptyMessages) {
  expect_round_trip(kFe, Sync{});
  expect_round_trip(kFe, Flush{});
  expect_round_trip(kFe, Terminate{});
  expect_round_trip(kFe, CopyDone{});
}

TEST(FrontendRoundTrip, CopyData) {
  expect_round_trip(kFe, CopyData{bytes_of("1\tone\n")}, Shape::OpenEnded);
  expect_round_trip(kFe, CopyData{}, Shape::OpenEnded);
}

// ---- Backend messages round-trip ----

TEST(BackendRoundTrip, AuthenticationRequests) {
  expect_round_trip(kBe, Authentication{Authentication::kOk, {}});
  expect_round_trip(kBe, Authentication{Authentication::kCleartextPassword, {}});
  expect_round_trip(kBe, Authentication{Authentication::kMD5Password, {0xde, 0xad, 0xbe, 0xef}});
  expect_round_trip(
      kBe, Authentication{Authentication::kSASLContinue, bytes_of("r=abc,s=c2FsdA==,i=4096")},
      Shape::OpenEnded);
  expect_round_trip(kBe, Authentication{Authentication::kSASLFinal, bytes_of("v=c2lnbmF0dXJl")},
                    Shape::OpenEnded);
  // The salt is exactly 4 bytes; Ok and cleartext carry nothing.
  EXPECT_FALSE(Authentication::decode(concat({be32(5), Bytes{1, 2, 3}})));
  EXPECT_FALSE(Authentication::decode(concat({be32(0), Bytes{0}})));
}

TEST(BackendRoundTrip, AuthenticationSASLMechanisms) {
  Authentication sasl{Authentication::kSASL, bytes_of("SCRAM-SHA-256\0SCRAM-SHA-256-PLUS\0\0"sv)};
  expect_round_trip(kBe, sasl, Shape::OpenEnded);
  EXPECT_EQ(sasl.mechanisms(), (std::vector<std::string>{"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"}));
  EXPECT_TRUE(Authentication{}.mechanisms().empty());
}

TEST(BackendRoundTrip, ParameterStatusAndBackendKeyData) {
  expect_round_trip(kBe, ParameterStatus{"client_encoding", "UTF8"});
  expect_round_trip(kBe, ParameterStatus{"application_name", ""});
  expect_round_trip(kBe, BackendKeyData{4242, -123456789});
}

TEST(BackendRoundTrip, ReadyForQuery) {
  for (char status : {'I', 'T', 'E'}) expect_round_trip(kBe, ReadyForQuery{status});
  EXPECT_FALSE(ReadyForQuery::decode(Bytes{'X'}));
}

TEST(BackendRoundTrip, RowDescription) {
  expect_round_trip(kBe, sample_row_description());
  expect_round_trip(kBe, RowDescription{});
}

TEST(BackendRoundTrip, DataRowWithNulls) {
  expect_round_trip(kBe, DataRow{{bytes_of("1"), std::nullopt, Bytes{}, bytes_of("text")}});
  expect_round_trip(kBe, DataRow{{std::nullopt}});
  expect_round_trip(kBe, DataRow{});
}

TEST(BackendRoundTrip, CommandCompleteAndRows) {
  expect_round_trip(kBe, CommandComplete{"SELECT 3"});
  EXPECT_EQ(CommandComplete{"SELECT 3"}.rows(), 3u);
  EXPECT_EQ(CommandComplete{"INSERT 0 1"}.rows(), 1u);
  EXPECT_EQ(CommandComplete{"UPDATE 0"}.rows(), 0u);
  EXPECT_EQ(CommandComplete{"BEGIN"}.rows(), std::nullopt);
  EXPECT_EQ(CommandComplete{"SELECT "}.rows(), std::nullopt);
  EXPECT_EQ(CommandComplete{"SELECT -1"}.rows(), std::nullopt);
}

TEST(BackendRoundTrip, ErrorAndNoticeResponse) {
  ErrorResponse e = make_error("57P01", "terminating connection", "FATAL");
  expect_round_trip(kBe, e);
  EXPECT_EQ(e.severity(), "FATAL");
  EXPECT_EQ(e.sqlstate(), "57P01");
  EXPECT_EQ(e.message(), "terminating connection");
  EXPECT_EQ(e.field('V'), "FATAL");
  EXPECT_EQ(e.field('D'), "");
  EXPECT_EQ(make_error("42601", "syntax error").severity(), "ERROR");
  expect_round_trip(kBe, ErrorResponse{});
  expect_round_trip(kBe, NoticeResponse{{{'S', "WARNING"}, {'C', "01000"}, {'M', "careful"}}});
}

TEST(BackendRoundTrip, NotificationResponse) {
  expect_round_trip(kBe, NotificationResponse{77, "jobs", "{\"id\":1}"});
  expect_round_trip(kBe, NotificationResponse{1, "c", ""});
}

TEST(BackendRoundTrip, CopyResponses) {
  expect_round_trip(kBe, CopyInResponse{0, {0, 0, 0}});
  expect_round_trip(kBe, CopyOutResponse{1, {1}});
  expect_round_trip(kBe, CopyBothResponse{0, {}});
}

TEST(BackendRoundTrip, ParameterDescriptionAndNegotiate) {
  expect_round_trip(kBe, ParameterDescription{{23, 25, 0xffffffff}});
  expect_round_trip(kBe, ParameterDescription{});
  expect_round_trip(kBe, NegotiateProtocolVersion{0, {"_pq_.a", "_pq_.b"}});
  expect_round_trip(kBe, NegotiateProtocolVersion{2, {}});
}

TEST(BackendRoundTrip, EmptyMessages) {
  expect_round_trip(kBe, ParseComplete{});
  expect_round_trip(kBe, BindComplete{});
  expect_round_trip(kBe, CloseComplete{});
  expect_round_trip(kBe, NoData{});
  expect_round_trip(kBe, PortalSuspended{});
  expect_round_trip(kBe, EmptyQueryResponse{});
  expect_round_trip(kBe, CopyDone{});
}

TEST(BackendRoundTrip, CopyData) {
  expect_round_trip(kBe, CopyData{Bytes{0, 1, 2, 0xff}}, Shape::OpenEnded);
}

// ---- Startup-phase packets ----

StartupPacket startup_v3() {
  StartupPacket p;
  p.protocol = kProtocolV3;
  p.params = {{"user", "alice"}, {"database", "shop"}, {"application_name", "psql"}};
  return p;
}

// encode → decode_startup gives the packet back, and every proper prefix asks for more.
void expect_startup_round_trip(const StartupPacket& p,
                               std::source_location loc = std::source_location::current()) {
  ::testing::ScopedTrace trace(loc.file_name(), static_cast<int>(loc.line()), "startup round trip");
  Bytes wire;
  encode(wire, p);
  StartupDecodeResult r = decode_startup(wire);
  ASSERT_EQ(r.status, DecodeStatus::Frame) << r.error;
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(r.packet, p);
  Bytes again;
  encode(again, r.packet);
  EXPECT_EQ(again, wire);
  for (std::size_t n = 0; n < wire.size(); ++n) {
    StartupDecodeResult partial = decode_startup(ByteView(wire).first(n));
    EXPECT_EQ(partial.status, DecodeStatus::NeedMore) << n << " bytes";
    EXPECT_EQ(partial.consumed, 0u);
  }
}

// decode_startup's error for input that must be rejected.
std::string startup_error(const Bytes& input) {
  StartupDecodeResult r = decode_startup(input);
  EXPECT_EQ(r.status, DecodeStatus::Error);
  EXPECT_FALSE(r.error.empty());
  return r.error;
}

TEST(Startup, V3WithParams) {
  expect_startup_round_trip(startup_v3());
  Bytes wire;
  encode(wire, startup_v3());
  StartupPacket p = decode_startup(wire).packet;
  EXPECT_EQ(p.param("user"), "alice");
  EXPECT_EQ(p.param("database"), "shop");
  EXPECT_EQ(p.param("options"), "");
}

TEST(Startup, EncryptionAndCancelRequests) {
  expect_startup_round_trip(request(StartupPacket::Kind::SSLRequest));
  expect_startup_round_trip(request(StartupPacket::Kind::GSSENCRequest));
  expect_startup_round_trip(request(StartupPacket::Kind::CancelRequest, 4242, -7));
}

TEST(Startup, ConsumesOnlyThePacket) {
  // A client may send SSLRequest and, after 'N', the StartupMessage; both can sit in one buffer.
  Bytes input;
  encode(input, request(StartupPacket::Kind::SSLRequest));
  encode(input, startup_v3());
  StartupDecodeResult first = decode_startup(input);
  ASSERT_EQ(first.status, DecodeStatus::Frame);
  EXPECT_EQ(first.consumed, 8u);
  EXPECT_EQ(first.packet.kind, StartupPacket::Kind::SSLRequest);
  StartupDecodeResult second = decode_startup(ByteView(input).subspan(first.consumed));
  ASSERT_EQ(second.status, DecodeStatus::Frame);
  EXPECT_EQ(second.packet, startup_v3());
}

TEST(Startup, LargestPacketIsAccepted) {
  StartupPacket p;
  p.protocol = kProtocolV3;
  // 8 header + "user\0alice\0" 11 + "options\0" 8 + value + NUL + terminator = 10000.
  p.params = {{"user", "alice"}, {"options", std::string(10'000 - 29, 'o')}};
  Bytes wire;
  encode(wire, p);
  ASSERT_EQ(wire.size(), kMaxStartupPacket);
  EXPECT_EQ(decode_startup(wire).status, DecodeStatus::Frame);
}

TEST(Startup, LengthOutOfRangeIsAnError) {
  // Rejected on the length alone, without waiting for the announced bytes.
  for (std::uint32_t length : {0u, 4u, 7u, kMaxStartupPacket + 1, 0xffffffffu}) {
    SCOPED_TRACE(length);
    EXPECT_NE(startup_error(be32(length)).find("length"), std::string::npos);
  }
}

TEST(Startup, MalformedParamsAreAnError) {
  startup_error(startup_packet(kProtocolV3, "user\0alice\0"sv));     // no terminator
  startup_error(startup_packet(kProtocolV3, "user\0alice"sv));       // unterminated value
  startup_error(startup_packet(kProtocolV3, ""sv));                  // nothing at all
  startup_error(startup_packet(kProtocolV3, "user\0alice\0\0x"sv));  // bytes after terminator
}

TEST(Startup, MissingUserIsAnError) {
  EXPECT_NE(startup_error(startup_packet(kProtocolV3, "database\0shop\0\0"sv)).find("user"),
            std::string::npos);
  startup_error(startup_packet(kProtocolV3, "user\0\0\0"sv));  // empty user name
}

TEST(Startup, Protocol2IsAnError) {
  EXPECT_NE(startup_error(startup_packet(0x00020000, "user\0alice\0\0"sv)).find("2.0"),
            std::string::npos);
}

TEST(Startup, NewerMinorVersionIsPassedOn) {
  // 3.2 clients are valid; the proxy may answer with NegotiateProtocolVersion.
  StartupDecodeResult r = decode_startup(startup_packet(kProtocolV3 + 2, "user\0alice\0\0"sv));
  ASSERT_EQ(r.status, DecodeStatus::Frame) << r.error;
  EXPECT_EQ(r.packet.protocol, kProtocolV3 + 2);
}

TEST(Startup, FixedSizeRequestsWithWrongLengthAreAnError) {
  startup_error(startup_packet(kSSLRequestCode, "\0\0\0\0"sv));
  startup_error(startup_packet(kGSSENCRequestCode, "x"sv));
  startup_error(startup_packet(kCancelRequestCode, "\0\0\0\1"sv));            // no secret key
  startup_error(startup_packet(kCancelRequestCode, "\0\0\0\1\0\0\0\2\0"sv));  // one byte too many
}

// ---- Messages split at every byte boundary ----

// The whole buffer, every two-piece split and byte-at-a-time feeding all give the same messages.
void expect_same_at_every_split(Direction dir, DecoderLimits limits, int streamed) {
  const Bytes input = joined(samples(dir));
  const std::vector<Decoded> expected = as_decoded(samples(dir));

  Reassembly whole = decode_pieces(dir, limits, input, {});
  EXPECT_FALSE(whole.failed);
  EXPECT_EQ(whole.messages, expected);
  EXPECT_EQ(whole.streamed, streamed);

  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    Reassembly split = decode_pieces(dir, limits, input, {cut});
    ASSERT_FALSE(split.failed) << "split at " << cut;
    ASSERT_EQ(split.messages, expected) << "split at " << cut;
    ASSERT_EQ(split.streamed, streamed) << "split at " << cut;
    ASSERT_TRUE(split.at_boundary) << "split at " << cut;
  }

  std::vector<std::size_t> every_byte;
  for (std::size_t i = 1; i < input.size(); ++i) every_byte.push_back(i);
  Reassembly bytewise = decode_pieces(dir, limits, input, every_byte);
  EXPECT_FALSE(bytewise.failed);
  EXPECT_EQ(bytewise.messages, expected);
  EXPECT_EQ(bytewise.streamed, streamed);
  EXPECT_TRUE(bytewise.at_boundary);
}

TEST(Splitting, FrontendBuffered) {
  expect_same_at_every_split(kFe, {}, 0);
}

// Only CopyData streams: a frontend 'D' is Describe, not DataRow.
TEST(Splitting, FrontendStreamed) {
  expect_same_at_every_split(kFe, {.stream_threshold = 16}, 1);
}

TEST(Splitting, BackendBuffered) {
  expect_same_at_every_split(kBe, {}, 0);
}

// The large DataRow and CopyData stream; the small DataRow stays whole.
TEST(Splitting, BackendStreamed) {
  expect_same_at_every_split(kBe, {.stream_threshold = 16}, 2);
}

TEST(Splitting, RandomMultiwaySplits) {
  std::mt19937 rng(7);
  for (Direction dir : {kFe, kBe}) {
    const Bytes input = joined(samples(dir));
    const std::vector<Decoded> expected = as_decoded(samples(dir));
    for (int i = 0; i < 300; ++i) {
      std::vector<std::size_t> cuts(1 + rng() % 8);
      for (std::size_t& c : cuts) c = rng() % (input.size() + 1);
      std::ranges::sort(cuts);
      Reassembly got = decode_pieces(
          dir, {.stream_threshold = static_cast<std::uint32_t>(rng() % 32)}, input, cuts);
      ASSERT_FALSE(got.failed);
      ASSERT_EQ(got.messages, expected) << "iteration " << i;
    }
  }
}

// ---- Streaming ----

TEST(Streaming, ChunksAreViewsOfTheInput) {
  const Bytes row = encoded(DataRow{{Bytes(100, 'v')}});  // body of 106 bytes
  const ByteView input(row);
  MessageDecoder d(kBe, {.stream_threshold = 16});

  DecodeResult start = d.next(input.first(15));
  ASSERT_EQ(start.status, DecodeStatus::Frame);
  EXPECT_EQ(start.frame.kind, FrameKind::StreamStart);
  EXPECT_EQ(start.frame.body_length, 106u);
  EXPECT_EQ(start.consumed, 5u);

  DecodeResult chunk = d.next(input.subspan(5, 10));
  ASSERT_EQ(chunk.status, DecodeStatus::Frame);
  EXPECT_EQ(chunk.frame.kind, FrameKind::StreamChunk);
  EXPECT_EQ(chunk.frame.data.data(), input.data() + 5);
  EXPECT_EQ(chunk.frame.data.size(), 10u);
  EXPECT_FALSE(chunk.frame.last);
  EXPECT_FALSE(d.at_boundary());

  DecodeResult rest = d.next(input.subspan(15));
  ASSERT_EQ(rest.status, DecodeStatus::Frame);
  EXPECT_EQ(rest.frame.data.data(), input.data() + 15);
  EXPECT_EQ(rest.consumed, 96u);
  EXPECT_TRUE(rest.frame.last);
  EXPECT_TRUE(d.at_boundary());
}

TEST(Streaming, BodyAtThresholdIsNotStreamed) {
  const Bytes at = wire_of('d', Bytes(16, 'x'));
  const Bytes above = wire_of('d', Bytes(17, 'x'));
  EXPECT_EQ(MessageDecoder(kBe, {.stream_threshold = 16}).next(at).frame.kind, FrameKind::Message);
  EXPECT_EQ(MessageDecoder(kBe, {.stream_threshold = 16}).next(above).frame.kind,
            FrameKind::StreamStart);
}

TEST(Streaming, FrontendDescribeIsNeverStreamed) {
  const Bytes describe = encoded(Describe{'S', std::string(100, 'n')});
  DecodeResult r = MessageDecoder(kFe, {.stream_threshold = 16}).next(describe);
  ASSERT_EQ(r.status, DecodeStatus::Frame);
  EXPECT_EQ(r.frame.kind, FrameKind::Message);
}

// ---- Many messages in one buffer ----

DataRow numbered_row(int i) {
  return DataRow{{bytes_of(std::to_string(i)),
                  i % 7 == 0 ? std::nullopt : std::optional(bytes_of("v")), Bytes{}}};
}

TEST(ManyMessages, ThousandDataRowsDecodeInOrder) {
  Bytes input;
  for (int i = 0; i < 1000; ++i) numbered_row(i).encode(input);
  CommandComplete{"SELECT 1000"}.encode(input);
  ReadyForQuery{'I'}.encode(input);

  MessageDecoder d(kBe);
  ByteView rest(input);
  std::vector<Frame> frames;
  while (!rest.empty()) {
    DecodeResult r = d.next(rest);
    ASSERT_EQ(r.status, DecodeStatus::Frame) << r.error;
    ASSERT_EQ(r.frame.kind, FrameKind::Message);
    EXPECT_TRUE(within(r.frame.data, rest)) << "whole messages are views, not copies";
    frames.push_back(r.frame);
    rest = rest.subspan(r.consumed);
  }
  EXPECT_EQ(d.next(rest).status, DecodeStatus::NeedMore);
  ASSERT_EQ(frames.size(), 1002u);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(frames[i].type, 'D');
    ASSERT_EQ(DataRow::decode(frames[i].data), numbered_row(i)) << "row " << i;
  }
  EXPECT_EQ(CommandComplete::decode(frames[1000].data)->rows(), 1000u);
  EXPECT_EQ(ReadyForQuery::decode(frames[1001].data), ReadyForQuery{'I'});
}

// ---- Length edge cases ----

DecodeResult decode_once(Direction dir, const Bytes& input) {
  return MessageDecoder(dir).next(input);
}

TEST(MessageLength, BelowFourIsAnError) {
  for (std::uint32_t length = 0; length < 4; ++length) {
    DecodeResult r = decode_once(kFe, header('Q', length));
    ASSERT_EQ(r.status, DecodeStatus::Error) << length;
    EXPECT_NE(r.error.find("invalid length"), std::string::npos) << r.error;
  }
}

TEST(MessageLength, FourIsAnEmptyBody) {
  const Bytes input = concat({header('S', 4), header('H', 4)});
  Reassembly got = decode_pieces(kFe, {}, input, {});
  EXPECT_FALSE(got.failed);
  EXPECT_EQ(got.messages, (std::vector<Decoded>{{'S', {}}, {'H', {}}}));
}

TEST(MessageLength, NegativeIsAnError) {
  EXPECT_EQ(decode_once(kFe, header('Q', 0xffffffff)).status, DecodeStatus::Error);
  EXPECT_EQ(decode_once(kBe, header('D', 0xffffffff)).status, DecodeStatus::Error);
  EXPECT_EQ(decode_once(kBe, header('D', 0x80000000)).status, DecodeStatus::Error);
}

TEST(MessageLength, SmallFrontendTypesAreCapped) {
  DecodeResult sync = decode_once(kFe, header('S', kMaxSmallMessage + 1));
  ASSERT_EQ(sync.status, DecodeStatus::Error);
  EXPECT_NE(sync.error.find("exceeds"), std::string::npos) << sync.error;
  EXPECT_EQ(decode_once(kFe, header('E', 20'000)).status, DecodeStatus::Error);
  // At the cap the header is accepted and the decoder waits for the body.
  DecodeResult at_cap = decode_once(kFe, header('E', kMaxSmallMessage));
  EXPECT_EQ(at_cap.status, DecodeStatus::NeedMore);
  EXPECT_EQ(at_cap.consumed, 5u);
}

TEST(MessageLength, SmallBackendTypesAreCapped) {
  EXPECT_EQ(decode_once(kBe, header('Z', kMiB + 1)).status, DecodeStatus::Error);
  EXPECT_EQ(decode_once(kBe, header('C', kMiB)).status, DecodeStatus::NeedMore);
}

TEST(MessageLength, LargeTypesAcceptUpToTheLimitWithoutAllocatingIt) {
  const Bytes input = concat({header('Q', kMaxLargeMessage), bytes_of("SEL")});
  AllocationProbe probe;
  MessageDecoder d(kFe);
  DecodeResult r = d.next(input);
  EXPECT_EQ(r.status, DecodeStatus::NeedMore) << r.error;
  EXPECT_EQ(r.consumed, input.size());
  EXPECT_FALSE(d.at_boundary());
  EXPECT_LE(probe.largest(), kMiB) << "the decoder reserves at most 1 MiB up front";

  EXPECT_EQ(decode_once(kFe, header('Q', kMaxLargeMessage + 1)).status, DecodeStatus::Error);
}

TEST(MessageLength, HugeDataRowStreamsInsteadOfBuffering) {
  const Bytes input = concat({header('D', kMaxLargeMessage), Bytes{0, 1}});
  AllocationProbe probe;
  Reassembly got = decode_pieces(kBe, {}, input, {});
  EXPECT_FALSE(got.failed);
  EXPECT_EQ(got.streamed, 1);
  ASSERT_TRUE(got.open);
  EXPECT_EQ(got.open->body, (Bytes{0, 1}));
  EXPECT_LE(probe.largest(), 1024u);
}

TEST(MessageLength, PerTypeLimits) {
  EXPECT_EQ(max_message_length(kFe, 'Q'), kMaxLargeMessage);
  EXPECT_EQ(max_message_length(kFe, 'd'), kMaxLargeMessage);
  EXPECT_EQ(max_message_length(kFe, 'S'), kMaxSmallMessage);
  EXPECT_EQ(max_message_length(kFe, 'Z'), 0u);
  EXPECT_EQ(max_message_length(kBe, 'D'), kMaxLargeMessage);
  EXPECT_EQ(max_message_length(kBe, 'Z'), kMiB);
  EXPECT_EQ(max_message_length(kBe, 'Q'), 0u);
}

TEST(MessageLength, UnknownTypeIsNamedInTheError) {
  DecodeResult fe = decode_once(kFe, header('Z', 5));  // a backend type from a client
  ASSERT_EQ(fe.status, DecodeStatus::Error);
  EXPECT_NE(fe.error.find("'Z'"), std::string::npos) << fe.error;
  DecodeResult be = decode_once(kBe, header('Q', 5));
  EXPECT_NE(be.error.find("'Q'"), std::string::npos) << be.error;
  DecodeResult binary = decode_once(kFe, header('\xff', 5));
  EXPECT_NE(binary.error.find("0xff"), std::string::npos) << binary.error;
  DecodeResult nul = decode_once(kBe, header('\0', 5));
  EXPECT_NE(nul.error.find("0x00"), std::string::npos) << nul.error;
}

TEST(MessageLength, ErrorIsSticky) {
  MessageDecoder d(kFe);
  DecodeResult bad = d.next(header('Q', 2));
  ASSERT_EQ(bad.status, DecodeStatus::Error);
  const Bytes sync = encoded(Sync{});
  for (int i = 0; i < 3; ++i) {
    DecodeResult again = d.next(sync);
    EXPECT_EQ(again.status, DecodeStatus::Error);
    EXPECT_EQ(again.error, bad.error);
    EXPECT_EQ(again.consumed, 0u);
  }
}

TEST(MessageLength, HeaderSplitAcrossReads) {
  const Bytes query = encoded(Query{"SELECT 1"});
  MessageDecoder d(kFe);
  DecodeResult partial = d.next(ByteView(query).first(3));
  EXPECT_EQ(partial.status, DecodeStatus::NeedMore);
  EXPECT_EQ(partial.consumed, 3u);
  EXPECT_FALSE(d.at_boundary());
  DecodeResult r = d.next(ByteView(query).subspan(3));
  ASSERT_EQ(r.status, DecodeStatus::Frame);
  EXPECT_EQ(Query::decode(r.frame.data), Query{"SELECT 1"});
}

// ---- Reader guards: hostile counts and lengths fail instead of allocating ----

TEST(ReaderGuards, HostileCountsAreRejected) {
  const Bytes few(8, 0);
  AllocationProbe probe;
  // Bind: parameter formats, parameters, result formats.
  EXPECT_FALSE(Bind::decode(concat({bytes_of("p\0s\0"sv), be16(32767), few})));
  EXPECT_FALSE(Bind::decode(concat({bytes_of("p\0s\0"sv), be16(0), be16(32767), few})));
  EXPECT_FALSE(Bind::decode(concat({bytes_of("p\0s\0"sv), be16(0), be16(0), be16(32767), few})));
  EXPECT_FALSE(Bind::decode(concat({bytes_of("p\0s\0"sv), be16(0), be16(0x8000), few})));
  EXPECT_FALSE(DataRow::decode(concat({be16(32767), few})));
  EXPECT_FALSE(DataRow::decode(concat({be16(0xffff), few})));
  EXPECT_FALSE(RowDescription::decode(concat({be16(32767), Bytes(19, 'a')})));
  EXPECT_FALSE(Parse::decode(concat({bytes_of("\0q\0"sv), be16(32767), few})));
  EXPECT_FALSE(ParameterDescription::decode(concat({be16(32767), few})));
  EXPECT_FALSE(CopyOutResponse::decode(concat({Bytes{0}, be16(32767), few})));
  EXPECT_FALSE(NegotiateProtocolVersion::decode(concat({be32(0), be32(0x7fffffff), few})));
  EXPECT_FALSE(NegotiateProtocolVersion::decode(concat({be32(0), be32(0xffffffff)})));
  EXPECT_LE(probe.largest(), 1024u);
}

TEST(ReaderGuards, HostileValueLengthsAreRejected) {
  AllocationProbe probe;
  EXPECT_FALSE(DataRow::decode(concat({be16(1), be32(0x7fffffff), Bytes{1}})));
  EXPECT_FALSE(
      Bind::decode(concat({bytes_of("\0\0"sv), be16(0), be16(1), be32(0x7fffffff), be16(0)})));
  EXPECT_FALSE(SASLInitialResponse::decode(concat({bytes_of("M\0"sv), be32(0x7fffffff)})));
  EXPECT_LE(probe.largest(), 1024u);
}

TEST(ReaderGuards, OnlyMinusOneIsNull) {
  // Any other negative length is malformed (Postgres: "insufficient data left in message"), and
  // reading it as NULL would not re-encode to the same bytes.
  EXPECT_FALSE(DataRow::decode(concat({be16(1), be32(0xfffffffe)})));
  EXPECT_FALSE(
      Bind::decode(concat({bytes_of("\0\0"sv), be16(0), be16(1), be32(0x80000000), be16(0)})));
  EXPECT_FALSE(SASLInitialResponse::decode(concat({bytes_of("M\0"sv), be32(0xfffffffe)})));
}

TEST(ReaderGuards, EmptyBodyWithoutStorage) {
  // A default ByteView has a null data pointer; the readers must not hand it to memchr.
  const ByteView none;
  EXPECT_FALSE(Query::decode(none));
  EXPECT_FALSE(Parse::decode(none));
  EXPECT_FALSE(Bind::decode(none));
  EXPECT_FALSE(Describe::decode(none));
  EXPECT_FALSE(Execute::decode(none));
  EXPECT_FALSE(CopyFail::decode(none));
  EXPECT_FALSE(PasswordMessage::decode(none));
  EXPECT_FALSE(SASLInitialResponse::decode(none));
  EXPECT_FALSE(ParameterStatus::decode(none));
  EXPECT_FALSE(CommandComplete::decode(none));
  EXPECT_FALSE(ErrorResponse::decode(none));
  EXPECT_FALSE(NotificationResponse::decode(none));
  EXPECT_FALSE(Authentication::decode(none));
  EXPECT_TRUE(Sync::decode(none));
  EXPECT_TRUE(CopyData::decode(none));
  EXPECT_TRUE(SASLResponse::decode(none));
}

// ---- Fuzz-style robustness (deterministic) ----

using Rng = std::mt19937;

std::size_t pick(Rng& rng, std::size_t n) {
  return n == 0 ? 0 : rng() % n;
}

Bytes random_bytes(Rng& rng, std::size_t max_size) {
  Bytes b(pick(rng, max_size + 1));
  for (std::uint8_t& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

// Overwrites, flips, inserts or erases bytes, truncates, or plants a boundary value where a
// length or count might sit.
Bytes mutate(Rng& rng, Bytes b) {
  static constexpr std::uint32_t kBoundary[] = {
      0,      1,      3,      4,       5,          0x7f,       0x80,      0xff,
      0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0xfffffffe, 0xffffffff};
  for (std::size_t edits = 1 + pick(rng, 3); edits > 0; --edits) {
    std::size_t at = pick(rng, b.size());
    switch (pick(rng, 6)) {
      case 0:
        if (!b.empty()) b[at] = static_cast<std::uint8_t>(rng());
        break;
      case 1:
        if (!b.empty()) b[at] ^= static_cast<std::uint8_t>(1u << pick(rng, 8));
        break;
      case 2:
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(pick(rng, b.size() + 1)),
                 static_cast<std::uint8_t>(rng()));
        break;
      case 3:
        if (!b.empty()) b.erase(b.begin() + static_cast<std::ptrdiff_t>(at));
        break;
      case 4:
        b.resize(pick(rng, b.size() + 1));
        break;
      case 5: {
        Bytes v =
            pick(rng, 2)
                ? be32(kBoundary[pick(rng, std::size(kBoundary))])
                : be16(static_cast<std::uint16_t>(kBoundary[pick(rng, std::size(kBoundary))]));
        for (std::size_t i = 0; i < v.size() && at + i < b.size(); ++i) b[at + i] = v[i];
        break;
      }
    }
  }
  return b;
}

// A stream of valid, mutated and made-up messages plus noise.
Bytes random_stream(Rng& rng, Direction dir) {
  const std::vector<Bytes>& pool = samples(dir);
  Bytes out;
  for (std::size_t n = 1 + pick(rng, 6); n > 0; --n) {
    const Bytes& sample = pool[pick(rng, pool.size())];
    Bytes piece;
    switch (pick(rng, 4)) {
      case 0:
        piece = sample;
        break;
      case 1:
        piece = mutate(rng, sample);
        break;
      case 2:  // a known type with a random body, so T::decode sees garbage
        piece = wire_of(static_cast<char>(sample[0]), random_bytes(rng, 48));
        break;
      default:
        piece = random_bytes(rng, 16);
        break;
    }
    out.insert(out.end(), piece.begin(), piece.end());
  }
  return out;
}

std::vector<std::size_t> random_cuts(Rng& rng, std::size_t size) {
  std::vector<std::size_t> cuts;
  if (pick(rng, 8) == 0) {  // byte at a time
    for (std::size_t i = 1; i < size; ++i) cuts.push_back(i);
    return cuts;
  }
  for (std::size_t n = pick(rng, 6); n > 0; --n) cuts.push_back(pick(rng, size + 1));
  std::ranges::sort(cuts);
  return cuts;
}

// Whatever decodes must re-encode to the very same bytes; the accessors must not crash.
template <typename M>
void check_decode(ByteView body) {
  std::optional<M> m = M::decode(body);
  if (!m) return;
  EXPECT_EQ(encoded(*m), wire_of(M::kType, body)) << "type '" << M::kType << "'";
  if constexpr (requires { m->mechanisms(); }) (void)m->mechanisms();
  if constexpr (requires { m->rows(); }) (void)m->rows();
  if constexpr (requires { m->sqlstate(); }) (void)m->sqlstate();
}

template <typename... Ms>
struct MessageSet {
  // Decodes the body as every message type sharing its type byte.
  static void check_type(char type, ByteView body) {
    ((Ms::kType == type ? check_decode<Ms>(body) : void()), ...);
  }
  static void check_every_type(ByteView body) { (check_decode<Ms>(body), ...); }
};

using FrontendMessages =
    MessageSet<Query, Parse, Bind, Describe, Execute, Close, CopyFail, PasswordMessage,
               SASLInitialResponse, SASLResponse, Sync, Flush, Terminate, CopyDone, CopyData>;
using BackendMessages =
    MessageSet<Authentication, ParameterStatus, BackendKeyData, ReadyForQuery, RowDescription,
               DataRow, CommandComplete, ErrorResponse, NoticeResponse, NotificationResponse,
               CopyInResponse, CopyOutResponse, CopyBothResponse, ParameterDescription,
               NegotiateProtocolVersion, ParseComplete, BindComplete, CloseComplete, NoData,
               PortalSuspended, EmptyQueryResponse, CopyDone, CopyData>;

TEST(Fuzz, MessageDecoderSurvivesRandomStreams) {
  Rng rng(20240601);
  AllocationProbe probe;
  for (int i = 0; i < 20000; ++i) {
    SCOPED_TRACE(i);
    const Direction dir = i % 2 == 0 ? kFe : kBe;
    const DecoderLimits limits{.stream_threshold = static_cast<std::uint32_t>(
                                   std::array{0, 1, 16, 64 * 1024}[pick(rng, 4)])};
    const Bytes input = random_stream(rng, dir);
    Reassembly got = decode_pieces(dir, limits, input, random_cuts(rng, input.size()));
    for (const Decoded& m : got.messages) {
      if (dir == kFe) FrontendMessages::check_type(m.type, m.body);
      if (dir == kBe) BackendMessages::check_type(m.type, m.body);
    }
    if (HasFailure()) return;
  }
  EXPECT_LE(probe.largest(), kMiB) << "the decoder reserves at most 1 MiB for a claimed length";
}

TEST(Fuzz, MessageDecodersSurviveRandomBodies) {
  Rng rng(424242);
  AllocationProbe probe;
  for (int i = 0; i < 10000; ++i) {
    SCOPED_TRACE(i);
    const Direction dir = i % 2 == 0 ? kFe : kBe;
    const Bytes& sample = samples(dir)[pick(rng, samples(dir).size())];
    const Bytes body =
        pick(rng, 2) ? random_bytes(rng, 48) : mutate(rng, Bytes(sample.begin() + 5, sample.end()));
    FrontendMessages::check_every_type(body);
    BackendMessages::check_every_type(body);
    if (HasFailure()) return;
  }
  EXPECT_LE(probe.largest(), 1024u);
}

Bytes random_startup_input(Rng& rng) {
  static const std::vector<Bytes> pool = [] {
    std::vector<Bytes> out(4);
    encode(out[0], startup_v3());
    encode(out[1], request(StartupPacket::Kind::SSLRequest));
    encode(out[2], request(StartupPacket::Kind::GSSENCRequest));
    encode(out[3], request(StartupPacket::Kind::CancelRequest, 1, 2));
    return out;
  }();
  static constexpr std::uint32_t kCodes[] = {kProtocolV3, kSSLRequestCode, kGSSENCRequestCode,
                                             kCancelRequestCode, 0x00020000};
  Bytes out;
  for (std::size_t n = 1 + pick(rng, 2); n > 0; --n) {
    Bytes piece;
    switch (pick(rng, 4)) {
      case 0:
        piece = pool[pick(rng, pool.size())];
        break;
      case 1:
        piece = mutate(rng, pool[pick(rng, pool.size())]);
        break;
      case 2: {  // a plausible code with a random payload, NULs likely
        Bytes payload = random_bytes(rng, 24);
        for (std::uint8_t& b : payload) b = pick(rng, 3) == 0 ? 0 : b;
        piece = startup_packet(kCodes[pick(rng, std::size(kCodes))], as_chars(payload));
        break;
      }
      default:
        piece = random_bytes(rng, 24);
        break;
    }
    out.insert(out.end(), piece.begin(), piece.end());
  }
  return out;
}

TEST(Fuzz, DecodeStartupSurvivesRandomInput) {
  Rng rng(1999);
  AllocationProbe probe;
  for (int i = 0; i < 10000; ++i) {
    SCOPED_TRACE(i);
    const Bytes input = random_startup_input(rng);
    ByteView rest(input);
    while (!rest.empty()) {
      StartupDecodeResult r = decode_startup(rest);
      // A caller gathering bytes sees NeedMore until it has enough, then this same verdict.
      for (std::size_t n = 0; n < rest.size(); ++n) {
        StartupDecodeResult early = decode_startup(rest.first(n));
        if (early.status == DecodeStatus::NeedMore) continue;
        ASSERT_EQ(early.status, r.status) << n;
        ASSERT_EQ(early.consumed, r.consumed) << n;
        ASSERT_EQ(early.packet, r.packet) << n;
      }
      if (r.status != DecodeStatus::Frame) break;
      ASSERT_GE(r.consumed, 8u);
      ASSERT_LE(r.consumed, rest.size());
      Bytes again;
      encode(again, r.packet);
      EXPECT_TRUE(std::ranges::equal(again, rest.first(r.consumed)));
      rest = rest.subspan(r.consumed);
    }
  }
  EXPECT_LE(probe.largest(), 1024u);
}

}  // namespace
}  // namespace pglens::protocol

namespace pglens::protocol {
namespace {
// Counts are unsigned 16 bits: a Bind may carry up to 65,535 parameters (multi-row INSERTs use
// that much), which a signed reading would refuse.
TEST(FrontendRoundTrip, BindWithMoreThan32767Parameters) {
  Bind bind;
  bind.statement = "many";
  for (int i = 0; i < 65535; ++i) bind.params.push_back(Bytes{static_cast<std::uint8_t>(i)});
  auto bytes = encoded(bind);
  auto decoded = Bind::decode(ByteView(bytes).subspan(5));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->params.size(), 65535u);
  EXPECT_EQ(*decoded, bind);
}
}  // namespace
}  // namespace pglens::protocol
