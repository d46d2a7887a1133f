// Where pglens connects: postgresql://[user[:password]@]host[:port][/dbname]
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pglens::config {

struct Upstream {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5432;
  std::string user;      // empty: the client's user
  std::string password;  // used when the server asks for one
  std::string dbname;    // empty: the client's database and user are used as they are

  // Parses a libpq-style URL (postgresql:// or postgres://), percent-decoding its parts.
  static std::optional<Upstream> parse(std::string_view url, std::string* error = nullptr);
  // The URL again, without the password.
  std::string display() const;
};

}  // namespace pglens::config
