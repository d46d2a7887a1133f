// pglens: a PostgreSQL wire-protocol proxy.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <thread>

#include "proxy/proxy_server.hpp"

int main(int argc, char** argv) {
  using namespace pglens::proxy;
  CLI::App app{
      "pglens: a PostgreSQL proxy that pools connections and explains slow access patterns"};
  Settings settings;
  std::string listen = "127.0.0.1:6432";
  std::string upstream_url;
  std::string pool_mode = "session";
  std::string log_level = "info";
  double login_timeout_s = 60, connect_timeout_s = 15;
  settings.threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));

  app.add_option("--listen", listen, "HOST:PORT to accept clients on")->capture_default_str();
  app.add_option("--upstream", upstream_url, "postgresql://[user[:password]@]host[:port][/dbname]")
      ->required();
  app.add_option("--pool-mode", pool_mode, "session")
      ->check(CLI::IsMember({"session"}))
      ->capture_default_str();
  app.add_option("--threads", settings.threads, "I/O threads")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  app.add_option("--client-login-timeout", login_timeout_s,
                 "seconds a client has to send its startup packet")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--server-connect-timeout", connect_timeout_s,
                 "seconds to connect and log in upstream")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

  std::string error;
  auto upstream = Upstream::parse(upstream_url, &error);
  if (!upstream) {
    spdlog::critical("--upstream: {}", error);
    return 2;
  }
  settings.upstream = *upstream;
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    spdlog::critical("--listen: expected HOST:PORT, got \"{}\"", listen);
    return 2;
  }
  settings.listen_host = listen.substr(0, colon);
  try {
    settings.listen_port = static_cast<std::uint16_t>(std::stoul(listen.substr(colon + 1)));
  } catch (const std::exception&) {
    spdlog::critical("--listen: invalid port in \"{}\"", listen);
    return 2;
  }
  settings.client_login_timeout =
      std::chrono::milliseconds(static_cast<long>(login_timeout_s * 1000));
  settings.server_connect_timeout =
      std::chrono::milliseconds(static_cast<long>(connect_timeout_s * 1000));

  ProxyServer server(settings);
  try {
    server.bind();
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen on {}: {}", listen, e.what());
    return 1;
  }
  server.run();
  return 0;
}
