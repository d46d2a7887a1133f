// Carries out a session::ClientLogin on a client's stream: reads what the client sends, answers
// it, performs the TLS handshake when the login asks for one, and forwards cancel requests. The
// login decides; this only does the I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "protocol/messages.hpp"
#include "proxy/net.hpp"

namespace pglens::proxy {

class ReadBuffer;
class Stream;
struct ClientInfo;
struct SessionContext;
struct TlsContexts;

// The client being logged in: its stream, the bytes read from it and not taken yet (the bytes
// behind the startup packet stay there for the session), and its entry in SHOW CLIENTS.
struct LoginClient {
  Stream& stream;
  ReadBuffer& bytes;
  ClientInfo& info;
  std::uint64_t id;
  const std::string& peer;  // address:port, for the log
};

struct LoginOutcome {
  std::optional<protocol::StartupPacket> startup;  // set when the client logged in
  bool admin = false;                              // to the admin console
  std::string reason;                              // why not, when it did not
  std::shared_ptr<const TlsContexts> tls;          // the contexts its handshake used
};

awaitable<LoginOutcome> log_in(LoginClient client, SessionContext& context,
                               const config::Config& config);

}  // namespace pglens::proxy
