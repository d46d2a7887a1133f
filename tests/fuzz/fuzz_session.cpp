// libFuzzer: the session core (session::SessionCore) driven the way the proxy drives it. The
// input's records are events: 'C' client bytes and 'S' server bytes (as captured; the login part
// of each side is skipped), and, where the fuzzer puts them, 'F' the pool failing an acquire,
// 'L' the server connection lost, 'G' the client gone, 'T' the clock moving on and a timer, 'M'
// a change of pool mode for the next session. The harness answers the core's Acquire with a
// server connection (or 'F'), honours client_paused(), and checks what the core promises:
// Acquire comes last, a Release only for a connection it holds, outputs only point into the
// buffers they were given while those are alive, and a session that ended stays ended.
#include <cstdlib>
#include <deque>
#include <memory>

#include "protocol/decoder.hpp"
#include "session/client_login.hpp"
#include "session/session_core.hpp"
#include "tests/fuzz/exchange.hpp"

namespace {
using namespace pglens;
using session::Action;

[[noreturn]] void broken(const char*) {
  std::abort();
}

struct Harness {
  explicit Harness(pool::PoolMode mode) {
    session::SessionSettings s;
    s.mode = mode;
    s.server_reset_query = "DISCARD ALL";
    s.client_parameters = {{"application_name", "fuzz"}};
    s.query_timeout = std::chrono::seconds(5);
    s.idle_transaction_timeout = std::chrono::seconds(7);
    s.client_idle_timeout = std::chrono::seconds(11);
    s.check_syntax = [](std::string_view sql) -> std::optional<protocol::ErrorResponse> {
      if (sql.find('!') != std::string_view::npos) return protocol::make_error("42601", "bang");
      return std::nullopt;
    };
    core = std::make_unique<session::SessionCore>(std::move(s), nullptr, &traffic);
    core->start(now);
    settle();
  }

  // Carries out the actions as the proxy does; answers an Acquire at once unless the next event
  // is the pool's failure (acquire_fails).
  void settle(bool acquire_fails = false) {
    for (int guard = 0; guard < 16; ++guard) {
      core->server_output().clear();
      core->client_output().clear();
      auto actions = core->take_actions();
      if (actions.empty()) {
        if (held != core->holds_server()) broken("holds_server disagrees");
        return;
      }
      for (std::size_t i = 0; i < actions.size(); ++i) {
        const Action& a = actions[i];
        switch (a.kind) {
          case Action::Kind::Acquire:
            if (i + 1 != actions.size()) broken("Acquire not last");
            if (held) broken("Acquire while holding a connection");
            if (acquire_fails) {
              core->on_acquire_failed(protocol::make_error("53300", "pool timeout"), now);
            } else {
              servers.emplace_back();
              servers.back().id = servers.size();
              servers.back().parameters = {{"application_name", ""}, {"TimeZone", "UTC"}};
              held = true;
              core->on_server_acquired(servers.back(), std::chrono::nanoseconds(0), now);
            }
            break;
          case Action::Kind::Release:
            if (!held) broken("Release of nothing");
            held = false;
            break;
          case Action::Kind::CloseClient:
            closed = true;
            break;
          default:
            break;
        }
      }
    }
  }

  void client(std::span<const std::uint8_t> bytes) {
    if (closed) return;
    input.assign(bytes.begin(), bytes.end());
    std::span<const std::uint8_t> rest(input);
    for (int guard = 0; guard < 64 && !rest.empty() && !closed && !core->client_paused(); ++guard) {
      std::size_t used = core->on_client_bytes(rest, now);
      if (used > rest.size()) broken("took more than given");
      rest = rest.subspan(used);
      settle();
    }
  }

  void server(std::span<const std::uint8_t> bytes) {
    if (!held) return;
    input.assign(bytes.begin(), bytes.end());
    core->on_server_bytes(input, now);
    settle();
  }

  void finish() {
    core->finish(now);
    settle();
    // A reset query's answer, as a server would send it.
    static const std::uint8_t answer[] = {'C', 0,   0,   0,   16, 'D', 'I', 'S', 'C', 'A', 'R', 'D',
                                          ' ', 'A', 'L', 'L', 0,  'Z', 0,   0,   0,   5,   'I'};
    if (held) server(answer);
    if (held) {
      core->on_server_lost("gone", now);
      settle();
    }
  }

  std::deque<session::ServerState> servers;  // stable addresses: the core keeps a pointer
  session::Traffic traffic;
  std::unique_ptr<session::SessionCore> core;
  protocol::Bytes input;
  session::TimePoint now = session::TimePoint{} + std::chrono::hours(1);
  bool held = false, closed = false;
};

// The part of a captured side that precedes the session: the client's startup and password
// messages, the server's authentication up to its first ReadyForQuery.
std::size_t server_login_length(std::span<const std::uint8_t> all) {
  protocol::MessageDecoder d(protocol::Direction::Backend);
  std::size_t used = 0;
  while (used < all.size()) {
    auto r = d.next(all.subspan(used));
    if (r.status != protocol::DecodeStatus::Frame) return 0;
    used += r.consumed;
    if (r.frame.kind == protocol::FrameKind::Message && r.frame.type == 'Z') return used;
  }
  return 0;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  auto mode = static_cast<pool::PoolMode>(data[0] % 3);
  auto records = fuzz::records(data + 1, size - 1);
  // Skip the login on both sides, as recorded.
  protocol::Bytes client_all, server_all;
  for (const auto& r : records) {
    auto& side = r.tag == 'C' ? client_all : server_all;
    if (r.tag == 'C' || r.tag == 'S') side.insert(side.end(), r.bytes.begin(), r.bytes.end());
  }
  session::LoginSettings login_settings;
  session::ClientLogin login(login_settings, session::TimePoint{});
  std::size_t client_skip = login.on_bytes(client_all, session::TimePoint{});
  std::size_t server_skip = server_login_length(server_all);

  Harness h(mode);
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    bool fail_next = i + 1 < records.size() && records[i + 1].tag == 'F';
    auto bytes = r.bytes;
    auto& skip = r.tag == 'C' ? client_skip : server_skip;
    if (r.tag == 'C' || r.tag == 'S') {
      std::size_t n = std::min(skip, bytes.size());
      skip -= n;
      bytes = bytes.subspan(n);
    }
    switch (r.tag) {
      case 'C':
        h.client(bytes);
        break;
      case 'S':
        h.server(bytes);
        break;
      case 'L':
        if (h.held) {
          h.core->on_server_lost("lost", h.now);
          h.settle(fail_next);
        }
        break;
      case 'G':
        h.core->on_client_gone("gone", h.now);
        h.settle();
        break;
      case 'T':
        h.now += std::chrono::seconds(1 + (bytes.empty() ? 0 : bytes[0] % 16));
        h.core->on_timer(h.now);
        h.settle(fail_next);
        break;
      default:
        break;
    }
    if (h.closed) break;
  }
  h.finish();
  if (!h.core->ended() && h.closed) broken("closed but not ended");
  return 0;
}
