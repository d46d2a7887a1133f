#include "proxy/admin_console.hpp"

#include "proxy/proxy_server.hpp"

namespace pglens::proxy {

std::vector<protocol::ParameterStatus> AdminConsole::parameters() {
  return {{"server_version", "15.0 (pglens 0.1.0)"},
          {"client_encoding", "UTF8"},
          {"server_encoding", "UTF8"},
          {"DateStyle", "ISO, MDY"},
          {"standard_conforming_strings", "on"}};
}

AdminConsole::Result AdminConsole::execute(const std::string& sql) {
  Result r;
  protocol::make_error("42601", "pglens admin console: unsupported command: " + sql)
      .encode(r.response);
  (void)server_;
  return r;
}

}  // namespace pglens::proxy
