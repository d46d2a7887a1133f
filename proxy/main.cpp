// pglens: a PostgreSQL wire-protocol proxy.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>

#include "config/command_line.hpp"
#include "config/pgbouncer_ini.hpp"

#include "proxy/io_backend.hpp"
#include "proxy/proxy_server.hpp"
#include "proxy/report.hpp"

using namespace pglens::proxy;
namespace config = pglens::config;

namespace {
// pglens --from-pgbouncer: the TOML on stdout, each setting not carried on stderr.
int convert_pgbouncer(const std::string& path) {
  auto read = [](const std::string& file, std::string* error) -> std::optional<std::string> {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      *error = std::strerror(errno);
      return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  };
  std::error_code ec;
  auto cwd = std::filesystem::current_path(ec);
  auto out = config::convert_pgbouncer_ini(path, read, ec ? std::string() : cwd.string());
  if (out.error) {
    std::cerr << "pglens --from-pgbouncer: " << *out.error << "\n";
    return 1;
  }
  for (const auto& w : out.warnings)
    std::cerr << "pglens --from-pgbouncer: warning: not carried: " << w << "\n";
  std::cout << out.toml;
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pglens: a PostgreSQL proxy that pools connections and explains slow access patterns"};
  config::CommandLine flags(app);
  std::string report_format = "text", pgbouncer_ini;
  std::vector<std::string> report_from;
  app.add_option("--from-pgbouncer", pgbouncer_ini,
                 "print a pglens config (TOML) equivalent to this pgbouncer.ini, and exit")
      ->check(CLI::ExistingFile);
  auto* report =
      app.add_subcommand("report", "print the advice and top statements of a running pglens");
  report
      ->add_option("--from", report_from,
                   "its --http address, http://HOST:PORT; several (repeated or comma-separated): "
                   "one report of all the replicas")
      ->required()
      ->delimiter(',');
  report->add_option("--format", report_format, "text, markdown or json [text]")
      ->check(CLI::IsMember({"text", "markdown", "json"}));
  CLI11_PARSE(app, argc, argv);
  if (!pgbouncer_ini.empty()) return convert_pgbouncer(pgbouncer_ini);
  if (*report) {
    auto format = report_format == "json"       ? ReportFormat::Json
                  : report_format == "markdown" ? ReportFormat::Markdown
                                                : ReportFormat::Text;
    return run_report(report_from, format);
  }

  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  config::Config config;
  if (!flags.config_path().empty()) {
    auto loaded = config::load_config_file(flags.config_path(), config);
    if (!loaded.config) {
      spdlog::critical("{}: {}", flags.config_path(), loaded.error.message());
      return 2;
    }
    config = std::move(*loaded.config);
  }
  if (auto error = flags.apply(config)) {
    spdlog::critical("{}", error->message());
    return 2;
  }
  if (config.upstream.host.empty() || (!flags.given("upstream") && flags.config_path().empty())) {
    spdlog::critical(
        "no upstream: give --upstream postgresql://... or a --config file that names one");
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(config.log_level));

  // Before anything is opened: hand over to the program built for the backend to use.
  std::error_code ignored;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ignored);
  auto sibling = self.parent_path() / std::string(sibling_program(compiled_io_backend()));
  auto io = choose_io_backend(config.io_backend, compiled_io_backend(), io_uring_unavailable(),
                              !self.empty() && ::access(sibling.c_str(), X_OK) == 0);
  if (!io.error.empty()) {
    spdlog::critical("{}", io.error);
    return 2;
  }
  if (!io.exec.empty()) {
    ::execv(sibling.c_str(), argv);
    spdlog::critical("could not start {}: {}", sibling.string(), std::strerror(errno));
    return 2;
  }
  spdlog::info("I/O backend: {} ({})", io.backend, io.why);
  config.io_backend = io.backend;

  ProxyServer server(config, flags.config_path());
  server.set_reload_overrides([&flags](config::Config& c) {
    if (auto error = flags.apply(c)) spdlog::error("reload: {}", error->message());
  });
  try {
    server.bind();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  server.run();
  return 0;
}
