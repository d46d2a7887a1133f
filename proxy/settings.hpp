// What pglens was told to do: the command line (and, later, the config file) in one struct.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "proxy/upstream.hpp"

namespace pglens::proxy {

enum class PoolMode { Session, Transaction, Statement };

struct Settings {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 6432;
  Upstream upstream;
  PoolMode pool_mode = PoolMode::Session;
  unsigned threads = 2;
  // A client must finish its startup packet within this (PgBouncer's client_login_timeout).
  std::chrono::milliseconds client_login_timeout{60'000};
  std::chrono::milliseconds server_connect_timeout{15'000};
};

}  // namespace pglens::proxy
