// libFuzzer: a client's login (session::ClientLogin) under trust, md5 and SCRAM, with a userlist,
// the admin users and max_client_conn, fed the client's side of an exchange in its pieces.
// Nothing may crash; what it takes must be within what it was given; a login that ends stays
// ended; the deadline holds.
#include <cstdlib>

#include "auth/userlist.hpp"
#include "session/client_login.hpp"
#include "tests/fuzz/exchange.hpp"

using pglens::session::ClientLogin;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto users = [] {
    auto load = pglens::auth::parse_userlist(
        "\"postgres\" \"secret\"\n\"pglens_md5\" \"md5b8b7ab8fb0e4a2d3b53c4ec26b5bb7f4\"\n"
        "\"pglens_scram\" \"SCRAM-SHA-256$4096:14xgBKxruLYwQX/1S2iOOg==$f3oYbONEpJXdP3/2va6ABKc"
        "ydqB/Weg7v0UzlZzsvHY=:iGAQ7uYey9cQ/5axD5e2RfdlgaDH0ebF9o3CG5oVF1Y=\"\n");
    return std::make_shared<const pglens::auth::Userlist>(std::move(*load.userlist));
  }();
  if (size == 0) return 0;
  pglens::session::LoginSettings s;
  s.auth_type = static_cast<pglens::auth::AuthType>(data[0] % 3);
  s.userlist = users;
  s.admin_users = {"postgres"};
  s.max_client_conn = 100;
  s.clients = 1 + data[0] / 3 % 128;
  auto now = ClientLogin::Clock::time_point{} + std::chrono::hours(1);
  ClientLogin login(s, now);
  for (const auto& r : pglens::fuzz::records(data + 1, size - 1)) {
    if (r.tag != 'C') continue;
    std::size_t used = login.on_bytes(r.bytes, now);
    if (used > r.bytes.size()) std::abort();
    login.output().clear();
    if (login.status() != ClientLogin::Status::Reading) {
      // Ended: it takes nothing more.
      if (login.on_bytes(r.bytes, now) != 0) std::abort();
      break;
    }
  }
  login.on_timer(login.deadline());
  if (login.status() == ClientLogin::Status::Reading) std::abort();  // the deadline ends it
  return 0;
}
