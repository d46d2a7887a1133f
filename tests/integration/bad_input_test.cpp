// Clients that speak bad protocol: each gets a clear error or disconnect, and pglens keeps
// serving everybody else.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "protocol/decoder.hpp"
#include "protocol/messages.hpp"
#include "tests/support/test_env.hpp"

namespace pglens::test {
namespace {

using namespace std::chrono_literals;
namespace pp = pglens::protocol;

// The ErrorResponse in what pglens sent before closing, if any.
std::optional<pp::ErrorResponse> error_in(const std::vector<std::uint8_t>& bytes) {
  pp::MessageDecoder decoder(pp::Direction::Backend);
  pp::ByteView input(bytes);
  while (!input.empty()) {
    auto r = decoder.next(input);
    if (r.status != pp::DecodeStatus::Frame) return std::nullopt;
    input = input.subspan(r.consumed);
    if (r.frame.type == 'E') return pp::ErrorResponse::decode(r.frame.data);
  }
  return std::nullopt;
}

std::vector<std::uint8_t> startup_packet(const std::string& user = "postgres") {
  pp::StartupPacket p;
  p.protocol = pp::kProtocolV3;
  p.params = {{"user", user}, {"database", "pglens_test"}};
  pp::Bytes out;
  pp::encode(out, p);
  return out;
}

class BadInputTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // Whatever the bad client did, a well-behaved one is still served.
    auto c = connect(proxy.conninfo());
    EXPECT_EQ(scalar(c.get(), "SELECT 'fine'"), "fine");
    EXPECT_TRUE(proxy.running());
  }
  // A raw client that has completed its login.
  std::unique_ptr<RawSocket> logged_in() {
    auto s = std::make_unique<RawSocket>(proxy.port());
    s->send(startup_packet());
    // Drain AuthenticationOk ... ReadyForQuery.
    s->read_until_closed(500ms);
    return s;
  }
  Proxy proxy{{"--upstream", Cluster::get().url(), "--client-login-timeout", "1"}};
};

TEST_F(BadInputTest, StartupLengthBelowEight) {
  RawSocket s(proxy.port());
  s.send(std::vector<std::uint8_t>{0, 0, 0, 3, 0, 3, 0, 0});
  auto reply = s.read_until_closed(5s);
  EXPECT_TRUE(s.closed());
  auto e = error_in(reply);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate(), "08P01");
  EXPECT_NE(e->message().find("invalid startup packet length"), std::string_view::npos);
}

TEST_F(BadInputTest, StartupPacketTooLong) {
  RawSocket s(proxy.port());
  s.send(std::vector<std::uint8_t>{0, 0, 0x75, 0x31, 0, 3, 0, 0});  // 30,001 bytes announced
  auto e = error_in(s.read_until_closed(5s));
  EXPECT_TRUE(s.closed());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate(), "08P01");
}

TEST_F(BadInputTest, MalformedStartupPacket) {
  // Parameters without the final terminator, then no user at all.
  RawSocket s(proxy.port());
  s.send(std::vector<std::uint8_t>{0, 0, 0, 13, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0});
  auto e = error_in(s.read_until_closed(5s));
  ASSERT_TRUE(e);
  EXPECT_NE(e->message().find("startup packet"), std::string_view::npos) << e->message();
  RawSocket s2(proxy.port());
  s2.send(std::vector<std::uint8_t>{0, 0, 0, 9, 0, 3, 0, 0, 0});
  auto e2 = error_in(s2.read_until_closed(5s));
  ASSERT_TRUE(e2);
  EXPECT_NE(e2->message().find("no PostgreSQL user name"), std::string_view::npos) << e2->message();
}

TEST_F(BadInputTest, Protocol2IsRefused) {
  RawSocket s(proxy.port());
  s.send(std::vector<std::uint8_t>{0, 0, 0, 8, 0, 2, 0, 0});
  auto e = error_in(s.read_until_closed(5s));
  ASSERT_TRUE(e);
  EXPECT_NE(e->message().find("unsupported frontend protocol"), std::string_view::npos);
}

TEST_F(BadInputTest, SslAndGssRequestsAreAnsweredNo) {
  RawSocket s(proxy.port());
  s.send(std::vector<std::uint8_t>{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f});  // SSLRequest
  auto reply = s.read_until_closed(300ms);
  ASSERT_EQ(reply, std::vector<std::uint8_t>{'N'});
  s.send(std::vector<std::uint8_t>{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30});  // GSSENCRequest
  ASSERT_EQ(s.read_until_closed(300ms), std::vector<std::uint8_t>{'N'});
  // Then a normal startup on the same connection works.
  s.send(startup_packet());
  auto login = s.read_until_closed(500ms);
  ASSERT_FALSE(login.empty());
  EXPECT_EQ(login[0], 'R');
}

TEST_F(BadInputTest, SilentClientTimesOut) {
  RawSocket s(proxy.port());
  auto started = std::chrono::steady_clock::now();
  auto reply = s.read_until_closed(10s);
  EXPECT_TRUE(s.closed()) << "pglens kept a silent client past its login timeout";
  EXPECT_LT(std::chrono::steady_clock::now() - started, 8s);
  auto e = error_in(reply);
  ASSERT_TRUE(e);
  EXPECT_NE(e->message().find("login timeout"), std::string_view::npos);
  EXPECT_TRUE(proxy.log_shows("startup timeout")) << proxy.log();
}

TEST_F(BadInputTest, NegativeLengthAfterLogin) {
  auto s = logged_in();
  s->send(std::vector<std::uint8_t>{'Q', 0xff, 0xff, 0xff, 0xfe});
  auto e = error_in(s->read_until_closed(5s));
  EXPECT_TRUE(s->closed());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate(), "08P01");
  EXPECT_NE(e->message().find("exceeds the limit"), std::string_view::npos) << e->message();
}

TEST_F(BadInputTest, LengthBelowFourAfterLogin) {
  auto s = logged_in();
  s->send(std::vector<std::uint8_t>{'S', 0, 0, 0, 2});
  auto e = error_in(s->read_until_closed(5s));
  ASSERT_TRUE(e);
  EXPECT_NE(e->message().find("invalid length"), std::string_view::npos) << e->message();
}

TEST_F(BadInputTest, OversizedSmallMessage) {
  auto s = logged_in();
  s->send(std::vector<std::uint8_t>{'S', 0, 0x0f, 0x42, 0x40});  // a 1,000,000-byte Sync
  auto e = error_in(s->read_until_closed(5s));
  ASSERT_TRUE(e);
  EXPECT_NE(e->message().find("exceeds the limit"), std::string_view::npos) << e->message();
}

TEST_F(BadInputTest, UnknownMessageType) {
  auto s = logged_in();
  s->send(std::vector<std::uint8_t>{'!', 0, 0, 0, 4});
  auto e = error_in(s->read_until_closed(5s));
  ASSERT_TRUE(e);
  EXPECT_NE(e->message().find("unknown message type '!'"), std::string_view::npos) << e->message();
  EXPECT_TRUE(proxy.log_shows("protocol violation")) << proxy.log();
}

TEST_F(BadInputTest, GarbageBytes) {
  RawSocket s(proxy.port());
  s.send(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto e = error_in(s.read_until_closed(5s));
  EXPECT_TRUE(s.closed());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate(), "08P01");
}

TEST_F(BadInputTest, ClientVanishesMidQuery) {
  {
    auto s = logged_in();
    pp::Bytes q;
    pp::Query{"SELECT pg_sleep(0.2)"}.encode(q);
    s->send(std::vector<std::uint8_t>(q.begin(), q.end() - 3));  // half a message, then gone
  }
  EXPECT_TRUE(proxy.log_shows("client closed connection (mid-message)")) << proxy.log();
}

}  // namespace
}  // namespace pglens::test
