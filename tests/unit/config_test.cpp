#include "config/config.hpp"

#include <CLI/CLI.hpp>

#include "config/command_line.hpp"
#include "config/config_keys.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace pglens::config {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

#ifndef PGLENS_SOURCE_DIR
#error "tests/CMakeLists.txt defines PGLENS_SOURCE_DIR"
#endif

constexpr std::string_view kScramVerifier =
    "SCRAM-SHA-256$4096:14xgBKxruLYwQX/1S2iOOg==$f3oYbONEpJXdP3/2va6ABKcydqB/Weg7v0UzlZzsvHY=:"
    "iGAQ7uYey9cQ/5axD5e2RfdlgaDH0ebF9o3CG5oVF1Y=";

// A scratch directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("pglens-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return path_ / name;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

Config load_ok(const std::string& text, Config defaults = {}) {
  auto load = load_config_text(text, std::move(defaults));
  EXPECT_TRUE(load.config) << load.error.message() << "\n--- in ---\n" << text;
  return load.config.value_or(Config{});
}

ConfigError load_error(const std::string& text) {
  auto load = load_config_text(text);
  EXPECT_FALSE(load.config) << "accepted:\n" << text;
  return load.error;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Config, ParsesEveryKey) {
  TempDir dir;
  auto users = dir.write("users.txt", "\"alice\" \"" + std::string(kScramVerifier) + "\"\n");
  Config c = load_ok(R"(
[pglens]
listen = "0.0.0.0:7432"
upstream = "postgresql://app:pw@db.internal:5433/appdb"
threads = 8
pool_mode = "session"
pool_size = 40
min_pool_size = 4
max_overflow = 25
pool_timeout = 2.5
pool_recycle = 3600
pool_pre_ping = true
server_check_delay = 5
overflow_idle_timeout = 0.5
server_idle_timeout = 0
server_connect_timeout = 3
client_login_timeout = 0.25
server_reset_query = "RESET ALL"
max_client_conn = 5000
max_prepared_statements = 0
auth_type = "scram-sha-256"
auth_file = ")" + users.string() +
                     R"("
admin_users = ["admin", "ops"]
http = "127.0.0.1:9187"
log_level = "debug"
)");
  EXPECT_EQ(c.listen_host, "0.0.0.0");
  EXPECT_EQ(c.listen_port, 7432);
  EXPECT_EQ(c.upstream.host, "db.internal");
  EXPECT_EQ(c.upstream.port, 5433);
  EXPECT_EQ(c.upstream.user, "app");
  EXPECT_EQ(c.upstream.password, "pw");
  EXPECT_EQ(c.upstream.dbname, "appdb");
  EXPECT_EQ(c.threads, 8u);
  EXPECT_EQ(c.pool_mode, PoolMode::Session);
  EXPECT_EQ(c.pool.pool_size, 40);
  EXPECT_EQ(c.pool.min_pool_size, 4);
  EXPECT_EQ(c.pool.max_overflow, 25);
  EXPECT_EQ(c.pool.pool_timeout, 2500ms);
  EXPECT_EQ(c.pool.pool_recycle, 3600s);
  EXPECT_TRUE(c.pool.pool_pre_ping);
  EXPECT_EQ(c.pool.server_check_delay, 5s);
  EXPECT_EQ(c.pool.overflow_idle_timeout, 500ms);
  EXPECT_EQ(c.pool.server_idle_timeout, pool::Duration::zero());
  EXPECT_EQ(c.server_connect_timeout, 3000ms);
  EXPECT_EQ(c.client_login_timeout, 250ms);
  EXPECT_EQ(c.server_reset_query, "RESET ALL");
  EXPECT_EQ(c.max_client_conn, 5000);
  EXPECT_EQ(c.max_prepared_statements, 0);
  EXPECT_EQ(c.auth_type, AuthType::ScramSha256);
  EXPECT_EQ(c.auth_file, users.string());
  ASSERT_NE(c.userlist, nullptr);
  ASSERT_NE(c.userlist->find("alice"), nullptr);
  EXPECT_EQ(c.userlist->find("alice")->kind, auth::UserSecret::Kind::Scram);
  EXPECT_EQ(c.admin_users, (std::vector<std::string>{"admin", "ops"}));
  EXPECT_EQ(c.http_listen, "127.0.0.1:9187");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_TRUE(c.databases.empty());
}

TEST(Config, EmptyFileKeepsTheDefaults) {
  Config defaults;
  defaults.pool.pool_size = 7;
  defaults.threads = 3;
  defaults.databases["kept"].upstream.host = "kept.local";
  Config c = load_ok("", defaults);
  EXPECT_EQ(c.pool.pool_size, 7);
  EXPECT_EQ(c.threads, 3u);
  EXPECT_EQ(c.listen_port, 6432);
  EXPECT_EQ(c.server_reset_query, "DISCARD ALL");
  ASSERT_EQ(c.databases.count("kept"), 1u);
}

TEST(Config, MissingKeysKeepTheDefaults) {
  Config defaults;
  defaults.pool.pool_size = 7;
  defaults.log_level = "warn";
  Config c = load_ok("[pglens]\nmax_overflow = 3\n", defaults);
  EXPECT_EQ(c.pool.pool_size, 7);
  EXPECT_EQ(c.pool.max_overflow, 3);
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_EQ(c.pool.pool_timeout, 30s);
}

TEST(Config, PoolRecycleMinusOneAndZeroMeanOff) {
  EXPECT_EQ(load_ok("[pglens]\npool_recycle = -1").pool.pool_recycle, pool::Duration::zero());
  EXPECT_EQ(load_ok("[pglens]\npool_recycle = 0").pool.pool_recycle, pool::Duration::zero());
  EXPECT_EQ(load_ok("[pglens]\npool_recycle = 1.5").pool.pool_recycle, 1500ms);
  auto e = load_error("[pglens]\npool_recycle = -2");
  EXPECT_EQ(e.key, "pool_recycle");
  EXPECT_NE(e.reason.find("-1 or 0 for off"), std::string::npos) << e.reason;
}

TEST(Config, AdminUsersAsPgBouncerCommaString) {
  EXPECT_EQ(load_ok("[pglens]\nadmin_users = \"admin, ops ,,dba\"").admin_users,
            (std::vector<std::string>{"admin", "ops", "dba"}));
  EXPECT_TRUE(load_ok("[pglens]\nadmin_users = \"\"").admin_users.empty());
  EXPECT_TRUE(load_ok("[pglens]\nadmin_users = []").admin_users.empty());
}

TEST(Config, ListenAcceptsBracketedIpv6) {
  Config c = load_ok("[pglens]\nlisten = \"[::1]:6543\"");
  EXPECT_EQ(c.listen_host, "::1");
  EXPECT_EQ(c.listen_port, 6543);
}

TEST(Config, DatabasesRouteAndOverride) {
  Config c = load_ok(R"(
[pglens]
upstream = "postgresql://default.local"
pool_mode = "transaction"
pool_size = 10
min_pool_size = 2
max_overflow = 5
pool_pre_ping = true

[databases]
app = { upstream = "postgresql://app_user@10.0.0.5:6000/app_production", pool_size = 40, max_overflow = 20 }
reports = { upstream = "postgresql://10.0.0.6/reports", pool_mode = "session", min_pool_size = 3 }
"odd-name" = { upstream = "postgresql://odd.local" }

[databases.tiny]
upstream = "postgresql://tiny.local"
pool_size = 1
min_pool_size = 0
)");
  ASSERT_EQ(c.databases.size(), 4u);

  auto app = c.route_for("app");
  EXPECT_EQ(app.upstream.host, "10.0.0.5");
  EXPECT_EQ(app.upstream.port, 6000);
  EXPECT_EQ(app.upstream.user, "app_user");
  EXPECT_EQ(app.upstream.dbname, "app_production");
  auto app_pool = c.pool_settings_for(app);
  EXPECT_EQ(app_pool.pool_size, 40);
  EXPECT_EQ(app_pool.max_overflow, 20);
  EXPECT_EQ(app_pool.min_pool_size, 2);  // not overridden
  EXPECT_TRUE(app_pool.pool_pre_ping);   // never per database
  EXPECT_EQ(c.pool_mode_for(app), PoolMode::Transaction);

  auto reports = c.route_for("reports");
  EXPECT_EQ(c.pool_mode_for(reports), PoolMode::Session);
  EXPECT_EQ(c.pool_settings_for(reports).min_pool_size, 3);
  EXPECT_EQ(c.pool_settings_for(reports).pool_size, 10);

  EXPECT_EQ(c.route_for("odd-name").upstream.host, "odd.local");
  EXPECT_EQ(c.pool_settings_for(c.route_for("tiny")).pool_size, 1);
  EXPECT_EQ(c.pool_settings_for(c.route_for("tiny")).min_pool_size, 0);

  auto other = c.route_for("unlisted");
  EXPECT_EQ(other.upstream.host, "default.local");
  EXPECT_FALSE(other.pool_mode || other.pool_size || other.min_pool_size || other.max_overflow);
  EXPECT_EQ(c.pool_settings_for(other).pool_size, 10);
  EXPECT_EQ(c.pool_mode_for(other), PoolMode::Transaction);
}

TEST(Config, FileDatabasesReplaceTheDefaults) {
  Config defaults;
  defaults.databases["old"].upstream.host = "old.local";
  Config c = load_ok("[databases]\nnew = { upstream = \"postgresql://new.local\" }", defaults);
  EXPECT_EQ(c.databases.count("old"), 0u);
  EXPECT_EQ(c.databases.count("new"), 1u);
}

struct BadCase {
  std::string toml;
  std::string key;
  std::string reason_part;
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.toml;
}

class ConfigInvalid : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigInvalid, IsRefusedNamingTheKey) {
  const auto& c = GetParam();
  auto e = load_error(c.toml);
  EXPECT_EQ(e.key, c.key) << e.message();
  EXPECT_NE(e.reason.find(c.reason_part), std::string::npos) << e.message();
  EXPECT_NE(e.message().find(c.key), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Config, ConfigInvalid,
    ::testing::Values(
        // wrong types
        BadCase{"[pglens]\npool_size = \"20\"", "pool_size", "got \"20\""},
        BadCase{"[pglens]\npool_size = 2.5", "pool_size", "integer"},
        BadCase{"[pglens]\npool_pre_ping = \"yes\"", "pool_pre_ping", "true or false"},
        BadCase{"[pglens]\nlisten = 6432", "listen", "must be a string, got an integer"},
        BadCase{"[pglens]\npool_timeout = \"30s\"", "pool_timeout", "seconds"},
        BadCase{"[pglens]\nadmin_users = 3", "admin_users", "array of strings"},
        BadCase{"[pglens]\nadmin_users = [\"a\", 3]", "admin_users", "non-empty strings"},
        BadCase{"[pglens]\nserver_reset_query = false", "server_reset_query", "string"},
        // out of range
        BadCase{"[pglens]\npool_size = -3", "pool_size", "positive integer, got -3"},
        BadCase{"[pglens]\npool_size = 0", "pool_size", "positive"},
        BadCase{"[pglens]\nmin_pool_size = -1", "min_pool_size", "non-negative"},
        BadCase{"[pglens]\nmax_overflow = -1", "max_overflow", "non-negative"},
        BadCase{"[pglens]\npool_size = 3000000000", "pool_size", "positive integer"},
        BadCase{"[pglens]\nthreads = 0", "threads", "from 1 to 256"},
        BadCase{"[pglens]\nthreads = 1000", "threads", "from 1 to 256"},
        BadCase{"[pglens]\nmax_client_conn = 0", "max_client_conn", "positive"},
        BadCase{"[pglens]\nmax_prepared_statements = -1", "max_prepared_statements",
                "non-negative"},
        BadCase{"[pglens]\npool_timeout = 0", "pool_timeout", "positive"},
        BadCase{"[pglens]\npool_timeout = -1", "pool_timeout", "positive"},
        BadCase{"[pglens]\npool_timeout = nan", "pool_timeout", "seconds"},
        BadCase{"[pglens]\npool_timeout = inf", "pool_timeout", "seconds"},
        BadCase{"[pglens]\nserver_idle_timeout = -5", "server_idle_timeout", "0 or more"},
        BadCase{"[pglens]\nserver_check_delay = -1", "server_check_delay", "0 or more"},
        BadCase{"[pglens]\noverflow_idle_timeout = -1", "overflow_idle_timeout", "0 or more"},
        BadCase{"[pglens]\nserver_connect_timeout = 0", "server_connect_timeout", "positive"},
        BadCase{"[pglens]\nclient_login_timeout = 0.0001", "client_login_timeout", "0.001"},
        BadCase{"[pglens]\npool_size = 5\nmin_pool_size = 6", "min_pool_size",
                "must not exceed pool_size (5), got 6"},
        // bad strings
        BadCase{"[pglens]\nupstream = \"mysql://x\"", "upstream", "postgresql://"},
        BadCase{"[pglens]\nupstream = \"postgresql://h:99999\"", "upstream", "port"},
        BadCase{"[pglens]\npool_mode = \"sesion\"", "pool_mode", "got \"sesion\""},
        BadCase{"[pglens]\nauth_type = \"password\"", "auth_type", "scram-sha-256"},
        BadCase{"[pglens]\nlog_level = \"verbose\"", "log_level", "got \"verbose\""},
        BadCase{"[pglens]\nlisten = \"6432\"", "listen", "HOST:PORT"},
        BadCase{"[pglens]\nlisten = \"localhost:0\"", "listen", "HOST:PORT"},
        BadCase{"[pglens]\nlisten = \"::1:6432\"", "listen", "brackets"},
        BadCase{"[pglens]\nhttp = \"9187\"", "http", "HOST:PORT"},
        // authentication
        BadCase{"[pglens]\nauth_type = \"md5\"", "auth_file", "required when auth_type is \"md5\""},
        BadCase{"[pglens]\nauth_type = \"scram-sha-256\"", "auth_file", "scram-sha-256"},
        BadCase{"[pglens]\nauth_file = \"/nonexistent/pglens/users.txt\"", "auth_file",
                "cannot read"},
        // unknown keys and tables
        BadCase{"[pglens]\npool_szie = 5", "pool_szie", "unknown key (did you mean pool_size?)"},
        BadCase{"[pglens]\ndefault_pool_size = 5", "default_pool_size", "unknown key"},
        BadCase{"pool_size = 5", "pool_size", "unknown table or key"},
        BadCase{"[pgbouncer]\npool_size = 5", "pgbouncer", "unknown table"},
        BadCase{"pglens = 3", "pglens", "must be a table"},
        BadCase{"databases = \"x\"", "databases", "must be a table"},
        // [databases]
        BadCase{"[databases]\napp = \"postgresql://h\"", "databases.app", "must be a table"},
        BadCase{"[databases]\napp = { pool_size = 3 }", "databases.app.upstream", "required"},
        BadCase{"[databases]\napp = { upstream = \"http://h\" }", "databases.app.upstream",
                "postgresql://"},
        BadCase{"[databases]\napp = { upstream = \"postgresql://h\", pool_szie = 3 }",
                "databases.app.pool_szie", "did you mean pool_size?"},
        BadCase{"[databases]\napp = { upstream = \"postgresql://h\", pool_size = -1 }",
                "databases.app.pool_size", "positive"},
        BadCase{"[databases]\napp = { upstream = \"postgresql://h\", max_overflow = -1 }",
                "databases.app.max_overflow", "non-negative"},
        BadCase{"[databases]\napp = { upstream = \"postgresql://h\", pool_mode = \"x\" }",
                "databases.app.pool_mode", "transaction"},
        BadCase{"[databases]\napp = { upstream = \"postgresql://h\", min_pool_size = 21 }",
                "databases.app.min_pool_size", "must not exceed pool_size (20)"},
        BadCase{"[databases]\napp = { upstream = \"postgresql://h\", pool_size = 3 }\n"
                "[pglens]\nmin_pool_size = 4\npool_size = 10",
                "databases.app.pool_size", "min_pool_size (4) must not exceed pool_size (3)"},
        BadCase{"[databases]\npgbouncer = { upstream = \"postgresql://h\" }", "databases.pgbouncer",
                "admin console"},
        BadCase{"[databases]\n\"\" = { upstream = \"postgresql://h\" }", "databases.",
                "must not be empty"}));

TEST(Config, TomlSyntaxErrorNamesTheLine) {
  auto e = load_error("[pglens]\npool_size = 5\nlisten = \n");
  EXPECT_EQ(e.key, "");
  EXPECT_EQ(e.reason.rfind("line 3, column", 0), 0u) << e.reason;
  EXPECT_EQ(e.message(), e.reason);
}

TEST(Config, DuplicateKeyIsASyntaxError) {
  auto e = load_error("[pglens]\npool_size = 5\npool_size = 6\n");
  EXPECT_NE(e.reason.find("line 3"), std::string::npos) << e.reason;
}

TEST(Config, ErrorMessageJoinsKeyAndReason) {
  EXPECT_EQ((ConfigError{"pool_size", "must be a positive integer, got -3"}).message(),
            "pool_size: must be a positive integer, got -3");
}

TEST(Config, AuthFileIsParsedAtLoad) {
  TempDir dir;
  auto good = dir.write("good.txt", "\"alice\" \"secret\"\n");
  auto bad = dir.write("bad.txt", "\"alice\" \"secret\"\n\"bob\" unquoted\n");
  auto c = load_ok("[pglens]\nauth_type = \"md5\"\nauth_file = \"" + good.string() + "\"");
  EXPECT_EQ(c.auth_type, AuthType::Md5);
  ASSERT_NE(c.userlist, nullptr);
  ASSERT_NE(c.userlist->find("alice"), nullptr);
  EXPECT_EQ(c.userlist->find("alice")->text, "secret");
  EXPECT_EQ(load_ok("").userlist, nullptr);

  auto e = load_error("[pglens]\nauth_type = \"md5\"\nauth_file = \"" + bad.string() + "\"");
  EXPECT_EQ(e.key, "auth_file");
  EXPECT_NE(e.reason.find("line 2"), std::string::npos) << e.reason;
  EXPECT_NE(e.reason.find(bad.string()), std::string::npos) << e.reason;

  // An auth_file is checked even with auth_type trust: a bad one is a mistake either way.
  e = load_error("[pglens]\nauth_file = \"" + bad.string() + "\"");
  EXPECT_EQ(e.key, "auth_file");
}

TEST(Config, RelativeAuthFileIsRelativeToTheConfigFile) {
  TempDir dir;
  dir.write("users.txt", "\"alice\" \"secret\"\n");
  auto file =
      dir.write("pglens.toml", "[pglens]\nauth_type = \"md5\"\nauth_file = \"users.txt\"\n");
  auto load = load_config_file(file.string());
  ASSERT_TRUE(load.config) << load.error.message();
  EXPECT_EQ(fs::path(load.config->auth_file), dir.path() / "users.txt");
}

TEST(Config, UnreadableFileIsAnError) {
  auto load = load_config_file("/nonexistent/pglens.toml");
  ASSERT_FALSE(load.config);
  EXPECT_EQ(load.error.key, "");
  EXPECT_NE(load.error.reason.find("cannot read /nonexistent/pglens.toml"), std::string::npos);
}

TEST(Config, FileSyntaxErrorNamesFileAndLine) {
  TempDir dir;
  auto file = dir.write("broken.toml", "[pglens]\n\nthreads = = 2\n");
  auto load = load_config_file(file.string());
  ASSERT_FALSE(load.config);
  EXPECT_EQ(load.error.reason.rfind(file.string() + ":3:", 0), 0u) << load.error.reason;
}

const fs::path kExample = fs::path(PGLENS_SOURCE_DIR) / "pglens.example.toml";

// The example documents the defaults: loading it must give exactly what Config{} holds, so a
// changed default that the example does not follow fails here.
// pglens.example.toml documents exactly the keys of the table: each one set (uncommented) once
// under [pglens] with a comment above it, and no key the table does not have.
TEST(Config, ExampleDocumentsExactlyTheKeysOfTheTable) {
  std::istringstream in(slurp(kExample));
  std::vector<std::string> documented;
  bool in_pglens = false, commented = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("[")) in_pglens = line == "[pglens]";
    if (in_pglens && !line.empty() && line[0] != '#' && line[0] != '[') {
      auto name = line.substr(0, line.find(" = "));
      EXPECT_TRUE(commented) << name << " has no comment above it";
      documented.push_back(name);
    }
    commented = line.starts_with("#");
  }
  std::vector<std::string> table;
  for (const auto& key : config_keys()) table.emplace_back(key.name);
  EXPECT_EQ(documented, table);  // the same keys, in the same order
}

// Every key's value as the example sets it is the default (SHOW CONFIG shows both the same way).
TEST(Config, ExampleStatesEveryDefault) {
  auto load = load_config_file(kExample.string());
  ASSERT_TRUE(load.config) << load.error.message();
  const Config defaults;
  for (const auto& key : config_keys())
    EXPECT_EQ(key.show(*load.config), key.show(defaults)) << key.name;
  EXPECT_TRUE(load.config->databases.empty());
}

TEST(Config, EveryKeyHasAFlagADocAndAShownDefault) {
  const Config defaults;
  std::set<std::string> flags;
  for (const auto& key : config_keys()) {
    EXPECT_TRUE(key.flag.starts_with("--")) << key.name;
    EXPECT_TRUE(flags.insert(key.flag).second) << key.flag << " twice";
    EXPECT_FALSE(key.doc.empty()) << key.name;
    EXPECT_EQ(find_config_key(key.name), &key);
  }
  EXPECT_EQ(find_config_key("analysis")->flag, "--no-analysis");
  EXPECT_EQ(find_config_key("pool_pre_ping")->flag, "--pool-pre-ping");
  EXPECT_EQ(find_config_key("pool_recycle")->show(defaults), "-1");
  EXPECT_EQ(find_config_key("listen")->show(defaults), "127.0.0.1:6432");
  EXPECT_EQ(find_config_key("nonexistent"), nullptr);
}

// Flags are read through the same checks as the file's values, named by the flag.
class CommandLineTest : public ::testing::Test {
 protected:
  std::optional<ConfigError> parse(std::vector<std::string> args, Config& c) {
    CLI::App app;
    CommandLine flags(app);
    std::vector<const char*> argv{"pglens"};
    for (const auto& a : args) argv.push_back(a.c_str());
    app.parse(static_cast<int>(argv.size()), argv.data());
    return flags.apply(c);
  }
};

TEST_F(CommandLineTest, FlagsOverrideTheFile) {
  Config c = load_ok("[pglens]\npool_size = 40\nmax_overflow = 3\n");
  auto error = parse(
      {"--pool-size", "8", "--pool-timeout", "2.5", "--pool-pre-ping", "--no-analysis", "--listen",
       "[::1]:7000", "--admin-users", "a, b", "--pool-recycle", "-1", "--pool-mode", "session"},
      c);
  ASSERT_FALSE(error) << error->message();
  EXPECT_EQ(c.pool.pool_size, 8);
  EXPECT_EQ(c.pool.max_overflow, 3);  // from the file
  EXPECT_EQ(c.pool.pool_timeout, 2500ms);
  EXPECT_TRUE(c.pool.pool_pre_ping);
  EXPECT_FALSE(c.analysis);
  EXPECT_EQ(c.listen_host, "::1");
  EXPECT_EQ(c.listen_port, 7000);
  EXPECT_EQ(c.admin_users, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.pool.pool_recycle, pool::Duration::zero());
  EXPECT_EQ(c.pool_mode, PoolMode::Session);
}

TEST_F(CommandLineTest, BadValuesAreRefusedNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const auto& [args, message] : std::vector<Case>{
           {{"--pool-size", "-3"}, "--pool-size: must be a positive integer, got -3"},
           {{"--pool-size", "many"}, "--pool-size: must be a positive integer, got \"many\""},
           {{"--pool-timeout", "inf"}, "--pool-timeout: must be a positive number of seconds"},
           {{"--threads", "0"}, "--threads: must be an integer from 1 to 256, got 0"},
           {{"--listen", "6432"}, "--listen: must be HOST:PORT"},
           {{"--pool-mode", "sesion"}, "--pool-mode: must be \"session\""},
           {{"--pool-size", "3", "--min-pool-size", "5"},
            "--min-pool-size: must not exceed pool_size (3), got 5"},
           {{"--auth-type", "md5"}, "auth_file: is required when auth_type is \"md5\""},
       }) {
    Config c;
    auto error = parse(args, c);
    ASSERT_TRUE(error) << args[0];
    EXPECT_TRUE(error->message().starts_with(message)) << error->message();
  }
}

// The commented [databases] example is valid once uncommented.
TEST(Config, ExampleDatabasesSectionLoadsUncommented) {
  std::istringstream in(slurp(kExample));
  std::string line, text;
  bool in_databases = false;
  int routes = 0;
  while (std::getline(in, line)) {
    if (line == "[databases]") in_databases = true;
    if (in_databases && line.rfind("# ", 0) == 0 && line.find(" = {") != std::string::npos) {
      line = line.substr(2);
      ++routes;
    }
    text += line + "\n";
  }
  ASSERT_GE(routes, 2);
  Config c = load_ok(text);
  EXPECT_EQ(c.databases.size(), static_cast<std::size_t>(routes));
}

TEST(Config, ParseHostPort) {
  EXPECT_EQ(parse_host_port("127.0.0.1:6432"),
            (std::pair<std::string, std::uint16_t>{"127.0.0.1", 6432}));
  EXPECT_EQ(parse_host_port("[::]:1"), (std::pair<std::string, std::uint16_t>{"::", 1}));
  EXPECT_EQ(parse_host_port("db.local:65535"),
            (std::pair<std::string, std::uint16_t>{"db.local", 65535}));
  for (const char* bad : {"", "6432", ":6432", "host:", "host:0", "host:65536", "host:12a",
                          "host:-1", "::1:6432", "[::1]", "[::1:6432"}) {
    EXPECT_FALSE(parse_host_port(bad)) << bad;
  }
}

TEST(Config, ToString) {
  EXPECT_EQ(to_string(PoolMode::Session), "session");
  EXPECT_EQ(to_string(PoolMode::Transaction), "transaction");
  EXPECT_EQ(to_string(PoolMode::Statement), "statement");
  EXPECT_EQ(to_string(AuthType::Trust), "trust");
  EXPECT_EQ(to_string(AuthType::Md5), "md5");
  EXPECT_EQ(to_string(AuthType::ScramSha256), "scram-sha-256");
}

}  // namespace
}  // namespace pglens::config
