// The admin console's side of a client connection (database pglens or pgbouncer, a user in
// admin_users), once ClientLogin let it in: simple queries in, AdminConsole's answers out.
#pragma once

#include <string>

#include "proxy/net.hpp"
#include "proxy/stream.hpp"

namespace pglens::proxy {

class AdminConsole;

// Serves console commands until the client leaves; returns why it left. `pending`: bytes the
// client sent right behind its login.
awaitable<std::string> serve_admin(Stream& client, AdminConsole& console,
                                   protocol::ByteView pending);

}  // namespace pglens::proxy
