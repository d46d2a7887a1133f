// The scripted-exchange harness for SessionCore's tests: messages as wire bytes, and a fixture
// that drives the core the way the proxy's coroutines do (feed, take the outputs, take the
// actions), with a fake clock and no sockets.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "analyzer/event_batch.hpp"
#include "analyzer/event_queue.hpp"
#include "protocol/messages.hpp"
#include "session/session_core.hpp"

namespace pglens::session {

inline void PrintTo(const Action& a, std::ostream* os) {
  static const char* const kinds[] = {"Acquire",      "ReadServer",  "ResumeClient", "Release",
                                      "CancelServer", "CloseClient", "Log",          "Warn"};
  *os << kinds[static_cast<int>(a.kind)];
  if (a.kind == Action::Kind::Release) *os << (a.reusable ? "(reusable)" : "(close)");
  if (!a.reason.empty()) *os << " \"" << a.reason << "\"";
}

namespace {

using namespace std::chrono_literals;
using pool::PoolMode;
using protocol::Bytes;
using protocol::ByteView;
using Kind = Action::Kind;

// ---- messages, as bytes on the wire ----

template <typename M>
inline Bytes wire(const M& m) {
  Bytes out;
  m.encode(out);
  return out;
}
inline Bytes raw(char type, std::string_view body = {}) {
  Bytes out{static_cast<std::uint8_t>(type)};
  auto len = static_cast<std::uint32_t>(body.size() + 4);
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::uint8_t>(len >> shift));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}
inline Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Frontend
inline Bytes Q(const std::string& sql) {
  return wire(protocol::Query{sql});
}
inline Bytes P(const std::string& name, const std::string& sql) {
  return wire(protocol::Parse{name, sql, {}});
}
inline Bytes B(const std::string& statement, std::vector<std::string> params = {},
               const std::string& portal = "") {
  protocol::Bind b;
  b.portal = portal;
  b.statement = statement;
  for (auto& p : params) b.params.emplace_back(Bytes(p.begin(), p.end()));
  return wire(b);
}
inline Bytes Ds(const std::string& name) {
  return wire(protocol::Describe{'S', name});
}
inline Bytes Dp(const std::string& name = "") {
  return wire(protocol::Describe{'P', name});
}
inline Bytes E(const std::string& portal = "") {
  return wire(protocol::Execute{portal, 0});
}
inline Bytes Cs(const std::string& name) {
  return wire(protocol::Close{'S', name});
}
inline Bytes S() {
  return wire(protocol::Sync{});
}
inline Bytes H() {
  return wire(protocol::Flush{});
}
inline Bytes X() {
  return wire(protocol::Terminate{});
}
inline Bytes d(const std::string& data) {
  return wire(protocol::CopyData{Bytes(data.begin(), data.end())});
}
inline Bytes c() {
  return wire(protocol::CopyDone{});
}

// Backend
inline Bytes Z(char status = 'I') {
  return wire(protocol::ReadyForQuery{status});
}
inline Bytes CC(const std::string& tag) {
  return wire(protocol::CommandComplete{tag});
}
inline Bytes T(const std::string& column) {
  protocol::RowDescription r;
  r.fields.push_back(protocol::FieldDescription{column});
  return wire(r);
}
inline Bytes DR(const std::string& value) {
  protocol::DataRow r;
  r.values.emplace_back(Bytes(value.begin(), value.end()));
  return wire(r);
}
inline Bytes Err(const std::string& sqlstate, const std::string& message) {
  return wire(protocol::make_error(sqlstate, message));
}
inline Bytes PS(const std::string& name, const std::string& value) {
  return wire(protocol::ParameterStatus{name, value});
}
// What pg_terminate_backend makes a backend send before it closes.
inline Bytes terminated() {
  return wire(protocol::make_error("57P01", "terminating connection due to administrator command",
                                   "FATAL"));
}
inline Bytes ParseOk() {
  return wire(protocol::ParseComplete{});
}
inline Bytes BindOk() {
  return wire(protocol::BindComplete{});
}
inline Bytes CloseOk() {
  return wire(protocol::CloseComplete{});
}
inline Bytes EmptyOk() {
  return wire(protocol::EmptyQueryResponse{});
}
inline Bytes CopyIn() {
  return raw('G', std::string("\0\0\0", 3));
}  // text, no columns
inline Bytes CopyOut() {
  return raw('H', std::string("\0\0\0", 3));
}  // text, no columns

inline Bytes login_answer(const std::vector<protocol::ParameterStatus>& parameters,
                          protocol::BackendKeyData key) {
  Bytes out = wire(protocol::Authentication{});
  for (const auto& p : parameters) out = out + wire(p);
  return out + wire(key) + Z();
}

inline std::string named(const std::string& sql) {
  return server_statement_name(sql, {});
}

// ---- the harness ----

class CoreTest : public ::testing::Test {
 protected:
  static constexpr protocol::BackendKeyData kClientKey{4242, 777};

  CoreTest() {
    for (auto* s : {&server1, &server2, &server3}) {
      s->parameters = {{"server_version", "15.4"}, {"TimeZone", "UTC"}, {"application_name", ""}};
    }
    server1.id = 1;
    server2.id = 2;
    server3.id = 3;
  }

  void make(PoolMode mode, std::map<std::string, std::string> params = {},
            std::unique_ptr<ExecutionTracker> tracker = nullptr) {
    SessionSettings s;
    s.mode = mode;
    s.server_reset_query = "DISCARD ALL";
    s.client_parameters = std::move(params);
    s.client_key = kClientKey;
    if (configure) configure(s);
    core = std::make_unique<SessionCore>(std::move(s), std::move(tracker), &traffic);
  }

  // The login as the proxy runs it, ending Running; in transaction and statement mode the first
  // server connection has gone back.
  void log_in(PoolMode mode, ServerState& server) {
    make(mode);
    core->start(now);
    EXPECT_EQ(take_actions(), (Actions{{Kind::Acquire}}));
    core->on_server_acquired(server, 0ns, now);
    EXPECT_EQ(to_client(), login_answer(server.parameters, kClientKey));
    auto actions = take_actions();
    if (mode == PoolMode::Session)
      EXPECT_EQ(actions, (Actions{{Kind::ReadServer}, {Kind::ResumeClient}}));
    else
      EXPECT_EQ(actions, (Actions{{Kind::Release, true}, {Kind::ResumeClient}}));
    EXPECT_FALSE(core->client_paused());
  }

  // Client bytes: the count the core took.
  std::size_t client(const Bytes& bytes) {
    // Kept: the outputs may point into it until they are taken, as into the proxy's read buffer.
    return core->on_client_bytes(inputs_.emplace_back(bytes), now);
  }
  // Client bytes that need a server connection: the core asks for one first, takes nothing,
  // and takes all once it has `server`.
  void client_acquiring(const Bytes& bytes, ServerState& server) {
    EXPECT_EQ(client(bytes), 0u);
    EXPECT_EQ(take_actions(), (Actions{{Kind::Acquire}}));
    core->on_server_acquired(server, 1ms, now);
    auto actions = take_actions();
    EXPECT_EQ(actions, (Actions{{Kind::ReadServer}}));
    EXPECT_EQ(client(bytes), bytes.size());
  }
  void server(const Bytes& bytes) { core->on_server_bytes(inputs_.emplace_back(bytes), now); }

  Bytes to_server() {
    auto b = core->server_output().bytes();
    core->server_output().clear();
    return b;
  }
  Bytes to_client() {
    auto b = core->client_output().bytes();
    core->client_output().clear();
    return b;
  }
  Actions take_actions() { return core->take_actions(); }

  // Set before make() or log_in() to change the core's settings.
  std::function<void(SessionSettings&)> configure;
  ServerState server1, server2, server3;
  Traffic traffic;
  analyzer::EventQueue queue{100};  // before the core: its tracker ends its session there
  std::unique_ptr<SessionCore> core;
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::time_point{} + 1h;

 private:
  std::deque<Bytes> inputs_;
};

constexpr protocol::BackendKeyData CoreTest::kClientKey;

const Actions kNone{};
const Actions kReleased{{Kind::Release, true}};

}  // namespace
}  // namespace pglens::session
