// One client connection, from its startup packet to its disconnect.
#pragma once

#include <cstdint>

#include "proxy/net.hpp"

namespace pglens::proxy {

class ProxyServer;

// Runs a client's session: startup (SSL/GSSENC refusal, cancel requests), server acquisition,
// then two forwarding coroutines, one per direction, until either side leaves.
awaitable<void> serve_client(tcp::socket client, ProxyServer& server, std::uint64_t session_id);

}  // namespace pglens::proxy
