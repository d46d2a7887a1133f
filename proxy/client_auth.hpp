// Client authentication against the auth_file (trust, md5, scram-sha-256), as PostgreSQL does it.
#pragma once

#include <string>

#include "config/config.hpp"
#include "proxy/net.hpp"

namespace pglens::proxy {

struct ClientAuthResult {
  bool ok = false;
  std::string sqlstate = "28P01";
  std::string message;
};

// Runs the exchange auth_type asks for on a client that sent its startup packet. On failure the
// caller sends the error.
awaitable<ClientAuthResult> authenticate_client(tcp::socket& client, const config::Config& config,
                                                const std::string& user);

}  // namespace pglens::proxy
