// pglens --from-pgbouncer: PgBouncer's INI syntax, its connection strings, and the TOML made of
// them, which pglens' own reader must accept with the same meaning.
#include "config/pgbouncer_ini.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "config/config.hpp"

namespace pglens::config {
namespace {

using namespace std::chrono_literals;

// Files by name, as the callback reads them.
ReadTextFile files(std::map<std::string, std::string> texts) {
  return [texts = std::move(texts)](const std::string& path,
                                    std::string* error) -> std::optional<std::string> {
    auto it = texts.find(path);
    if (it == texts.end()) {
      *error = "No such file or directory";
      return std::nullopt;
    }
    return it->second;
  };
}

bool has_warning(const PgBouncerConversion& c, std::string_view needle) {
  for (const auto& w : c.warnings)
    if (w.find(needle) != std::string::npos) return true;
  return false;
}

// What Debian's /etc/pgbouncer/pgbouncer.ini sets (its comments left out).
constexpr const char* kDebianDefault = R"(;;; PgBouncer configuration file
[databases]
;foodb =
[users]
[pgbouncer]
logfile = /var/log/postgresql/pgbouncer.log
pidfile = /var/run/postgresql/pgbouncer.pid
listen_addr = localhost
listen_port = 6432
unix_socket_dir = /var/run/postgresql
auth_type = md5
auth_file = /etc/pgbouncer/userlist.txt
)";

TEST(PgBouncerIni, ReadsSectionsCommentsQuotedKeysAndIncludes) {
  auto read = files({{"main.ini",
                      "; comment\n# another\n[pgbouncer]\n  listen_port = 7000  \n"
                      "%include extra.ini\n"
                      "[databases]\n'odd name' = host=db1\n\"q\"\"x\" = host=db2\n"},
                     {"extra.ini", "listen_addr = 10.0.0.1\n"}});
  auto ini = read_pgbouncer_ini("main.ini", read);
  ASSERT_FALSE(ini.error) << *ini.error;
  ASSERT_EQ(ini.settings.size(), 4u);
  EXPECT_EQ(ini.settings[0].key, "listen_port");
  EXPECT_EQ(ini.settings[0].value, "7000");
  EXPECT_EQ(ini.settings[0].where, "main.ini:4");
  // The included file goes on in the section it was included from.
  EXPECT_EQ(ini.settings[1].section, "pgbouncer");
  EXPECT_EQ(ini.settings[1].where, "extra.ini:1");
  EXPECT_EQ(ini.settings[2].key, "odd name");
  EXPECT_EQ(ini.settings[3].key, "q\"x");
}

TEST(PgBouncerIni, SyntaxErrorsNameTheLine) {
  EXPECT_EQ(read_pgbouncer_ini("a", files({{"a", "[pgbouncer]\nlisten_port 6432\n"}})).error,
            "a:2: syntax error: expected key = value");
  EXPECT_EQ(read_pgbouncer_ini("a", files({{"a", "listen_port = 1\n"}})).error,
            "a:1: a value before any [section]");
  EXPECT_EQ(read_pgbouncer_ini("a", files({{"a", "[pgbouncer]\n%include b\n"}})).error,
            "a:2: cannot read b: No such file or directory");
  EXPECT_EQ(read_pgbouncer_ini("a", files({{"a", "%include a\n"}})).error,
            "a:1: %include nested too deep");
}

TEST(PgBouncerIni, ConnectionStrings) {
  auto pairs = parse_connstring("host=db port = 5433  dbname='my db' password='it''s'");
  ASSERT_TRUE(pairs);
  std::vector<std::pair<std::string, std::string>> want{
      {"host", "db"}, {"port", "5433"}, {"dbname", "my db"}, {"password", "it's"}};
  EXPECT_EQ(*pairs, want);
  EXPECT_TRUE(parse_connstring("")->empty());  // "foodb =": every default
  std::string error;
  EXPECT_FALSE(parse_connstring("host=", &error));
  EXPECT_EQ(error, "empty value for host=");
  EXPECT_FALSE(parse_connstring("dbname='x", &error));
  EXPECT_FALSE(parse_connstring("host", &error));
}

TEST(PgBouncerIni, DebianDefaultCarriesPgBouncersDefaultsAndWarnsOfTheRest) {
  auto c = convert_pgbouncer_ini("pgbouncer.ini", files({{"pgbouncer.ini", kDebianDefault}}), "/");
  ASSERT_FALSE(c.error);
  // Loaded as pglens reads it (the auth_file is not read: trust stands in for the check).
  auto text = c.toml;
  auto at = text.find("auth_type = \"md5\"");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 17, "auth_type = \"trust\"");
  auto loaded = load_config_text(text.replace(text.find("auth_file"), 9, "#auth_file"));
  ASSERT_TRUE(loaded.config) << loaded.error.message() << "\n" << c.toml;
  const auto& cfg = *loaded.config;
  EXPECT_EQ(cfg.listen_host, "127.0.0.1");
  EXPECT_EQ(cfg.listen_port, 6432);
  EXPECT_EQ(cfg.pool_mode, PoolMode::Session);  // PgBouncer's default, not pglens'
  EXPECT_EQ(cfg.pool.pool_size, 20);
  EXPECT_EQ(cfg.pool.max_overflow, 0);
  EXPECT_EQ(cfg.pool.pool_timeout, 120s);
  EXPECT_EQ(cfg.pool.pool_recycle, 3600s);
  EXPECT_TRUE(cfg.pool.pool_pre_ping);
  EXPECT_EQ(cfg.max_client_conn, 100);
  EXPECT_TRUE(cfg.databases.empty());
  EXPECT_NE(c.toml.find("auth_file = \"/etc/pgbouncer/userlist.txt\""), std::string::npos);
  for (auto key : {"logfile", "pidfile", "unix_socket_dir", "no database"})
    EXPECT_TRUE(has_warning(c, key)) << key;
  EXPECT_EQ(c.warnings.size(), 4u);
  // Each warning is in the file as a comment too.
  for (const auto& w : c.warnings) EXPECT_NE(c.toml.find("#   " + w), std::string::npos) << w;
}

TEST(PgBouncerIni, RoutesPoolsAuthAndTls) {
  auto read = files({{"/etc/pgb/pgbouncer.ini", R"([databases]
app = host=10.0.0.5 port=5433 dbname=app_production pool_size=40 reserve_pool=5 pool_mode=session
reports = host=db.internal user=reporter password='s3cr''t' min_pool_size=50 connect_query='SELECT 1'
sock = host=/var/run/postgresql
* = host=10.0.0.9 port=5434
pgbouncer = host=x
[users]
alice = pool_mode=statement
[pgbouncer]
listen_addr = *
listen_port = 6543
pool_mode = Transaction
default_pool_size = 10
min_pool_size = 2
reserve_pool_size = 3
reserve_pool_timeout = 2
query_wait_timeout = 0
server_lifetime = 1800
server_idle_timeout = 0
server_check_query =
auth_type = scram-sha-256
auth_file = users.txt
admin_users = admin, ops
stats_users = watcher
client_tls_sslmode = require
client_tls_key_file = /tls/key.pem
client_tls_cert_file = /tls/cert.pem
client_tls_ciphers = normal
server_tls_sslmode = verify-full
server_tls_ca_file = ca.pem
server_tls_protocols = legacy
max_prepared_statements = 100
ignore_startup_parameters = extra_float_digits
verbose = 1
no_such_key = 1
)"}});
  auto c = convert_pgbouncer_ini("/etc/pgb/pgbouncer.ini", read, "/var/lib/pgb");
  ASSERT_FALSE(c.error);
  // The password never appears in a comment or warning.
  auto secret_at = c.toml.find("s3cr");
  EXPECT_EQ(secret_at, c.toml.rfind("s3cr"));  // once: in the URL
  for (const auto& w : c.warnings) EXPECT_EQ(w.find("s3cr"), std::string::npos) << w;

  // Loaded by pglens, with the TLS files and userlist that do not exist here left out.
  auto text = c.toml;
  for (auto key : {"auth_file", "client_tls_sslmode", "client_tls_key_file", "client_tls_cert_file",
                   "server_tls_ca_file", "auth_type"}) {
    auto at = text.find(std::string("\n") + key + " = ");
    ASSERT_NE(at, std::string::npos) << key << "\n" << c.toml;
    text.insert(at + 1, "#");
  }
  auto loaded = load_config_text(text);
  ASSERT_TRUE(loaded.config) << loaded.error.message() << "\n" << c.toml;
  const auto& cfg = *loaded.config;
  EXPECT_EQ(cfg.listen_host, "0.0.0.0");
  EXPECT_EQ(cfg.listen_port, 6543);
  EXPECT_EQ(cfg.upstream.host, "10.0.0.9");  // '*'
  EXPECT_EQ(cfg.upstream.port, 5434);
  EXPECT_TRUE(cfg.upstream.dbname.empty());
  EXPECT_EQ(cfg.pool_mode, PoolMode::Transaction);
  EXPECT_EQ(cfg.pool.pool_size, 10);
  EXPECT_EQ(cfg.pool.min_pool_size, 2);
  EXPECT_EQ(cfg.pool.max_overflow, 3);
  EXPECT_EQ(cfg.pool.pool_timeout, 30s);  // 0 is not carried: pglens' default
  EXPECT_EQ(cfg.pool.pool_recycle, 1800s);
  EXPECT_EQ(cfg.pool.server_idle_timeout, 0s);
  EXPECT_EQ(cfg.pool.overflow_idle_timeout, 0s);
  EXPECT_FALSE(cfg.pool.pool_pre_ping);
  EXPECT_EQ(cfg.admin_users, (std::vector<std::string>{"admin", "ops"}));
  EXPECT_EQ(cfg.server_tls.mode, TlsMode::VerifyFull);
  EXPECT_EQ(cfg.server_tls.protocols, "all");
  EXPECT_EQ(cfg.max_prepared_statements, 100);
  EXPECT_EQ(cfg.log_level, "debug");

  ASSERT_EQ(cfg.databases.size(), 3u);
  const auto& app = cfg.databases.at("app");
  EXPECT_EQ(app.upstream.host, "10.0.0.5");
  EXPECT_EQ(app.upstream.port, 5433);
  EXPECT_EQ(app.upstream.dbname, "app_production");
  EXPECT_EQ(app.pool_size, 40);
  EXPECT_EQ(app.max_overflow, 5);
  EXPECT_EQ(app.pool_mode, PoolMode::Session);
  const auto& reports = cfg.databases.at("reports");
  EXPECT_EQ(reports.upstream.user, "reporter");
  EXPECT_EQ(reports.upstream.password, "s3cr't");
  EXPECT_EQ(reports.upstream.dbname, "reports");  // so that its user= applies
  EXPECT_EQ(reports.min_pool_size, 10);           // capped at the pool size
  EXPECT_EQ(cfg.databases.at("sock").upstream.host, "127.0.0.1");

  // Relative file names become absolute (PgBouncer read them from its working directory).
  EXPECT_NE(c.toml.find("auth_file = \"/var/lib/pgb/users.txt\""), std::string::npos);
  EXPECT_NE(c.toml.find("server_tls_ca_file = \"/var/lib/pgb/ca.pem\""), std::string::npos);
  EXPECT_NE(c.toml.find("auth_type = \"scram-sha-256\""), std::string::npos);
  EXPECT_NE(c.toml.find("client_tls_sslmode = \"require\""), std::string::npos);

  for (auto needle :
       {"connect_query", "alice", "stats_users", "reserve_pool_timeout", "query_wait_timeout",
        "client_tls_ciphers = normal", "host=/var/run/postgresql", "pgbouncer = host=x",
        "no_such_key = 1: unknown to pglens", "listen_addr = *", "ignore_startup_parameters"})
    EXPECT_TRUE(has_warning(c, needle)) << needle << "\n" << c.toml;
  EXPECT_FALSE(has_warning(c, "no '*'"));
  EXPECT_FALSE(has_warning(c, "server_lifetime"));
}

TEST(PgBouncerIni, WithoutAFallbackOtherDatabasesAreAWarning) {
  auto c = convert_pgbouncer_ini(
      "p.ini",
      files({{"p.ini", "[databases]\nonly = host=127.0.0.1\n[pgbouncer]\nauth_type = trust\n"}}),
      "/");
  ASSERT_FALSE(c.error);
  EXPECT_TRUE(has_warning(c, "no '*' in [databases]"));
  EXPECT_TRUE(has_warning(c, "requires the user in auth_file"));  // PgBouncer's trust
  auto loaded = load_config_text(c.toml);
  ASSERT_TRUE(loaded.config) << loaded.error.message() << "\n" << c.toml;
  EXPECT_EQ(loaded.config->databases.at("only").upstream.dbname, "only");
}

TEST(PgBouncerIni, UnreadableFileIsAnError) {
  auto c = convert_pgbouncer_ini("missing.ini", files({}), "/");
  ASSERT_TRUE(c.error);
  EXPECT_EQ(*c.error, "cannot read missing.ini: No such file or directory");
  EXPECT_TRUE(c.toml.empty());
}

}  // namespace
}  // namespace pglens::config
