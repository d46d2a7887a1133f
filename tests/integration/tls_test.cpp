// TLS on both sides, against a Postgres that only accepts TLS (ssl = on, hostssl lines only, as
// managed services enforce) and certificates made by the test (tests/support/make_certs.sh):
// every server_tls_sslmode and libpq sslmode, verify-full, a wrong CA and a wrong host name,
// client certificates and cert auth, SCRAM channel binding, direct TLS with ALPN, cancel
// requests, reload of certificates, the admin console's tls column and the failure metric.
#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>
#include <thread>

#include "tests/support/test_env.hpp"

namespace pglens::test {
namespace {

using namespace std::chrono_literals;

class Tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (auto shared = shared_tls()) {  // ctest's, shared by every TLS test
      cert_dir_ = shared->cert_dir;
      port_ = shared->port;
      return;
    }
    certs_ = std::make_unique<TestCertificates>();
    cluster_ = std::make_unique<OwnCluster>(certs_->dir());
    cert_dir_ = certs_->dir();
    port_ = cluster_->cluster().port;
  }
  static void TearDownTestSuite() {
    cluster_.reset();
    certs_.reset();
  }

  static std::string cert(const std::string& file) { return cert_dir_ + "/" + file; }
  static int pg_port() { return port_; }
  // The upstream by the name its certificate carries (verify-full checks it).
  static std::string upstream(const std::string& credentials = "") {
    return "postgresql://" + (credentials.empty() ? "" : credentials + "@") +
           "localhost:" + std::to_string(pg_port());
  }
  // pglens' flags for TLS from clients.
  static std::vector<std::string> client_tls(const std::string& mode) {
    return {"--client-tls-sslmode",   mode,
            "--client-tls-key-file",  cert("pglens.key"),
            "--client-tls-cert-file", cert("pglens.crt"),
            "--client-tls-ca-file",   cert("ca.crt")};
  }
  static std::vector<std::string> args(std::vector<std::string> a,
                                       const std::vector<std::string>& more) {
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  // Whether this connection's server backend runs over TLS (asked of Postgres itself).
  static std::string backend_ssl(PGconn* c) {
    return scalar(c, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  }
  // Connects without failing the test; the error text when it did not work, "" when it did.
  static std::string connect_error(const std::string& conninfo) {
    Connection c(PQconnectdb(conninfo.c_str()));
    if (PQstatus(c.get()) == CONNECTION_OK) return "";
    std::string e = PQerrorMessage(c.get());
    return e.empty() ? "unknown error" : e;
  }

  static std::unique_ptr<TestCertificates> certs_;
  static std::unique_ptr<OwnCluster> cluster_;
  static std::string cert_dir_;
  static int port_;
};
std::unique_ptr<TestCertificates> Tls::certs_;
std::unique_ptr<OwnCluster> Tls::cluster_;
std::string Tls::cert_dir_;
int Tls::port_ = 0;

std::string admin(const Proxy& p, const std::string& extra = "sslmode=require") {
  return p.conninfo("postgres", "pgbouncer", extra);
}

// The tls column (index 16) of SHOW CLIENTS / SHOW SERVERS rows whose database is `database`.
std::vector<std::string> tls_column(PGconn* console, const std::string& show,
                                    const std::string& database) {
  std::vector<std::string> out;
  auto r = exec(console, show);
  for (int i = 0; i < PQntuples(r.get()); ++i)
    if (database == PQgetvalue(r.get(), i, 2)) out.emplace_back(PQgetvalue(r.get(), i, 16));
  return out;
}

// ---- pglens to Postgres ----

TEST_F(Tls, PostgresThatOnlyTakesTlsIsReachedWithVerifyFull) {
  ASSERT_NE(connect_error("host=127.0.0.1 port=" + std::to_string(pg_port()) +
                          " user=postgres dbname=pglens_test sslmode=disable"),
            "")
      << "the cluster must refuse plaintext";
  Proxy proxy(args({"--upstream", upstream(), "--server-tls-sslmode", "verify-full",
                    "--server-tls-ca-file", cert("ca.crt"), "--admin-users", "postgres"},
                   client_tls("prefer")));
  auto c = connect(proxy.conninfo("postgres", "pglens_test", "sslmode=disable"));
  EXPECT_EQ(backend_ssl(c.get()), "t");
  auto console = connect(admin(proxy));
  auto servers = tls_column(console.get(), "SHOW SERVERS", "pglens_test");
  ASSERT_EQ(servers.size(), 1u);
  EXPECT_EQ(servers[0].rfind("TLSv1.", 0), 0u) << servers[0];
}

TEST_F(Tls, EveryServerSslmode) {
  struct Case {
    std::string mode;
    bool works;
  };
  for (const auto& [mode, works] :
       {Case{"disable", false}, Case{"allow", true}, Case{"prefer", true}, Case{"require", true},
        Case{"verify-ca", true}, Case{"verify-full", true}}) {
    Proxy proxy({"--upstream", upstream(), "--server-tls-sslmode", mode, "--server-tls-ca-file",
                 cert("ca.crt"), "--pool-timeout", "5"});
    Connection c(PQconnectdb(proxy.conninfo().c_str()));
    if (works) {
      ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK) << mode << ": " << PQerrorMessage(c.get());
      EXPECT_EQ(backend_ssl(c.get()), "t") << mode;
    } else {
      // Postgres' own refusal reaches the client.
      EXPECT_NE(std::string(PQerrorMessage(c.get())).find("no encryption"), std::string::npos)
          << mode << ": " << PQerrorMessage(c.get());
    }
  }
}

TEST_F(Tls, WrongCaAndWrongHostFailAtOnceWithTheReason) {
  int http = free_port();
  {
    Proxy proxy({"--upstream", upstream(), "--server-tls-sslmode", "verify-ca",
                 "--server-tls-ca-file", cert("other_ca.crt"), "--pool-timeout", "20", "--http",
                 "127.0.0.1:" + std::to_string(http)});
    auto started = std::chrono::steady_clock::now();
    auto error = connect_error(proxy.conninfo());
    EXPECT_NE(error.find("certificate verify failed"), std::string::npos) << error;
    // A certificate that does not verify is configuration, not an outage: no retrying until
    // pool_timeout.
    EXPECT_LT(seconds_since(started), 10.0);
    auto m = run("curl -s http://127.0.0.1:" + std::to_string(http) + "/metrics").output;
    EXPECT_NE(m.find("pglens_tls_handshake_failures_total{side=\"server\"} 1"), std::string::npos)
        << m;
    EXPECT_TRUE(proxy.log_shows("certificate verify failed")) << proxy.log();
  }
  // Postgres' certificate names localhost, not 127.0.0.1.
  Proxy proxy({"--upstream", "postgresql://127.0.0.1:" + std::to_string(pg_port()),
               "--server-tls-sslmode", "verify-full", "--server-tls-ca-file", cert("ca.crt")});
  auto error = connect_error(proxy.conninfo());
  EXPECT_NE(error.find("IP address mismatch"), std::string::npos) << error;
}

TEST_F(Tls, RequireFailsWhereTheServerHasNoTls) {
  // The shared cluster runs without TLS.
  Proxy proxy({"--upstream", Cluster::get().url(), "--server-tls-sslmode", "require"});
  auto error = connect_error(proxy.conninfo());
  EXPECT_NE(error.find("the server does not support TLS"), std::string::npos) << error;
}

TEST_F(Tls, ScramOverTlsIsBoundToTheChannel) {
  Proxy proxy({"--upstream", upstream("pglens_scram:scram-secret") + "/pglens_test",
               "--server-tls-sslmode", "verify-full", "--server-tls-ca-file", cert("ca.crt")});
  auto c = connect(proxy.conninfo("pglens_scram"));
  EXPECT_EQ(scalar(c.get(), "SELECT current_user"), "pglens_scram");
  EXPECT_EQ(backend_ssl(c.get()), "t");
  // Postgres checked the binding (the hash of its own certificate): a wrong one fails the login.
  EXPECT_TRUE(proxy.log_shows("SCRAM-SHA-256-PLUS (channel bound)")) << proxy.log();
}

// ---- clients to pglens ----

TEST_F(Tls, ClientScramToPglensIsBoundToTheChannel) {
  // pglens offers SCRAM-SHA-256-PLUS over TLS, bound to its own certificate; libpq with
  // channel_binding=require fails the login unless the exchange really was channel-bound.
  auto userlist = write_temp_file(".txt", "\"pglens_scram\" \"scram-secret\"\n");
  Proxy proxy(args({"--upstream", upstream("pglens_scram:scram-secret"), "--server-tls-sslmode",
                    "require", "--auth-type", "scram-sha-256", "--auth-file", userlist.c_str()},
                   client_tls("require")));
  auto with = [&](const std::string& extra) {
    return proxy.conninfo("pglens_scram", "pglens_test", "password=scram-secret " + extra);
  };
  auto c = connect(with("sslmode=require channel_binding=require"));
  EXPECT_EQ(scalar(c.get(), "SELECT current_user"), "pglens_scram");
  EXPECT_EQ(connect_error(with("sslmode=require channel_binding=disable")), "");
  auto wrong = connect_error(proxy.conninfo(
      "pglens_scram", "pglens_test", "password=wrong sslmode=require channel_binding=require"));
  EXPECT_NE(wrong.find("password authentication failed"), std::string::npos) << wrong;
  ::unlink(userlist.c_str());
}

TEST_F(Tls, EveryLibpqSslmodeAgainstRequire) {
  int http = free_port();
  Proxy proxy(
      args({"--upstream", upstream(), "--server-tls-sslmode", "verify-full", "--server-tls-ca-file",
            cert("ca.crt"), "--http", "127.0.0.1:" + std::to_string(http)},
           client_tls("require")));
  auto with = [&](const std::string& extra) {
    return proxy.conninfo("postgres", "pglens_test", extra);
  };
  auto refused = connect_error(with("sslmode=disable"));
  EXPECT_NE(refused.find("TLS is required (client_tls_sslmode = require)"), std::string::npos)
      << refused;
  for (std::string mode : {"allow", "prefer", "require"})
    EXPECT_EQ(connect_error(with("sslmode=" + mode)), "") << mode;
  EXPECT_EQ(connect_error(with("sslmode=verify-ca sslrootcert=" + cert("ca.crt"))), "");
  EXPECT_EQ(connect_error(with("sslmode=verify-full sslrootcert=" + cert("ca.crt"))), "");
  // pglens' certificate names localhost and 127.0.0.1, not this.
  auto host = connect_error(
      "host=wrong.example hostaddr=127.0.0.1 port=" + std::to_string(proxy.port()) +
      " user=postgres dbname=pglens_test sslmode=verify-full sslrootcert=" + cert("ca.crt"));
  EXPECT_NE(host.find("does not match host name \"wrong.example\""), std::string::npos) << host;
  auto ca = connect_error(with("sslmode=verify-ca sslrootcert=" + cert("other_ca.crt")));
  EXPECT_NE(ca.find("certificate verify failed"), std::string::npos) << ca;
  EXPECT_TRUE(proxy.log_shows("TLS handshake with 127.0.0.1")) << proxy.log();
  auto m = run("curl -s http://127.0.0.1:" + std::to_string(http) + "/metrics").output;
  EXPECT_EQ(m.find("pglens_tls_handshake_failures_total{side=\"client\"} 0"), std::string::npos)
      << m;
}

TEST_F(Tls, PreferServesBothAndTheConsoleShowsWhich) {
  Proxy proxy(args(
      {"--upstream", upstream(), "--server-tls-sslmode", "require", "--admin-users", "postgres"},
      client_tls("prefer")));
  auto plain = connect(proxy.conninfo("postgres", "pglens_test", "sslmode=disable"));
  auto secure = connect(proxy.conninfo("postgres", "pglens_test", "sslmode=require"));
  EXPECT_EQ(PQsslInUse(plain.get()), 0);
  EXPECT_EQ(PQsslInUse(secure.get()), 1);
  auto console = connect(admin(proxy));
  auto clients = tls_column(console.get(), "SHOW CLIENTS", "pglens_test");
  ASSERT_EQ(clients.size(), 2u);
  std::sort(clients.begin(), clients.end());
  EXPECT_EQ(clients[0], "");
  EXPECT_EQ(clients[1].rfind("TLSv1.", 0), 0u) << clients[1];
}

TEST_F(Tls, VerifyCaWantsAClientCertificate) {
  Proxy proxy(
      args({"--upstream", upstream(), "--server-tls-sslmode", "require"}, client_tls("verify-ca")));
  EXPECT_EQ(connect_error(proxy.conninfo(
                "postgres", "pglens_test",
                "sslmode=require sslcert=" + cert("client.crt") + " sslkey=" + cert("client.key"))),
            "");
  // Without one the handshake fails (libpq: "certificate required" or a handshake failure).
  EXPECT_NE(connect_error(
                proxy.conninfo("postgres", "pglens_test", "sslmode=require sslcert=/nonexistent")),
            "");
  EXPECT_TRUE(proxy.log_shows("TLS handshake with")) << proxy.log();
}

TEST_F(Tls, VerifyFullWantsTheCertificateToNameTheUser) {
  Proxy proxy(args({"--upstream", upstream(), "--server-tls-sslmode", "require"},
                   client_tls("verify-full")));
  auto as = [&](const std::string& user, const std::string& certificate) {
    return connect_error(proxy.conninfo(user, "pglens_test",
                                        "sslmode=require sslcert=" + cert(certificate + ".crt") +
                                            " sslkey=" + cert(certificate + ".key")));
  };
  EXPECT_EQ(as("postgres", "client"), "");
  auto error = as("postgres", "tls_user");
  EXPECT_NE(error.find("certificate common name \"tls_user\" does not match user \"postgres\""),
            std::string::npos)
      << error;
}

TEST_F(Tls, CertAuthLogsInTheUserTheCertificateNames) {
  Proxy proxy(
      args({"--upstream", upstream(), "--server-tls-sslmode", "require", "--auth-type", "cert"},
           client_tls("verify-ca")));
  auto extra =
      "sslmode=require sslcert=" + cert("tls_user.crt") + " sslkey=" + cert("tls_user.key");
  auto c = connect(proxy.conninfo("tls_user", "pglens_test", extra));
  EXPECT_EQ(scalar(c.get(), "SELECT current_user"), "tls_user");
  auto error = connect_error(proxy.conninfo("postgres", "pglens_test", extra));
  EXPECT_NE(error.find("certificate authentication failed for user \"postgres\""),
            std::string::npos)
      << error;
}

TEST_F(Tls, PgbenchWithTlsOnBothSides) {
  Proxy proxy(args({"--upstream", upstream(), "--server-tls-sslmode", "verify-full",
                    "--server-tls-ca-file", cert("ca.crt"), "--pool-size", "2"},
                   client_tls("require")));
  auto init = run("PGSSLMODE=require pgbench -i -s 1 -q -h 127.0.0.1 -p " +
                  std::to_string(proxy.port()) + " -U postgres pglens_test 2>&1");
  ASSERT_EQ(init.status, 0) << init.output;
  for (std::string mode : {"simple", "extended", "prepared"}) {
    auto r = run("PGSSLMODE=require pgbench -n -c 4 -j 2 -t 50 -M " + mode + " -h 127.0.0.1 -p " +
                 std::to_string(proxy.port()) + " -U postgres pglens_test 2>&1");
    EXPECT_EQ(r.status, 0) << mode << ": " << r.output;
    EXPECT_NE(r.output.find("number of failed transactions: 0 (0.000%)"), std::string::npos)
        << mode << ": " << r.output;
  }
}

TEST_F(Tls, CancelReachesAQueryOfATlsClient) {
  Proxy proxy(
      args({"--upstream", upstream(), "--server-tls-sslmode", "require"}, client_tls("require")));
  auto c = connect(proxy.conninfo("postgres", "pglens_test", "sslmode=require"));
  ASSERT_EQ(PQsslInUse(c.get()), 1);
  ASSERT_EQ(PQsendQuery(c.get(), "SELECT pg_sleep(30)"), 1);
  std::this_thread::sleep_for(300ms);
  // libpq 15 sends the CancelRequest in the clear, on a connection of its own.
  PGcancel* cancel = PQgetCancel(c.get());
  char err[256];
  ASSERT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  auto started = std::chrono::steady_clock::now();
  std::string state;
  while (PGresult* r = PQgetResult(c.get())) {
    if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) state = s;
    PQclear(r);
  }
  EXPECT_EQ(state, "57014");  // query_canceled
  EXPECT_LT(seconds_since(started), 20.0);
}

TEST_F(Tls, GssEncRequestIsAnsweredNoThenTlsGoesOn) {
  Proxy proxy(
      args({"--upstream", upstream(), "--server-tls-sslmode", "require"}, client_tls("require")));
  RawSocket s(proxy.port());
  // GSSENCRequest (80877104), then SSLRequest (80877103): 'N', then 'S'.
  s.send(std::vector<std::uint8_t>{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30});
  EXPECT_EQ(s.read_some(2s), std::vector<std::uint8_t>{'N'});
  s.send(std::vector<std::uint8_t>{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f});
  EXPECT_EQ(s.read_some(2s), std::vector<std::uint8_t>{'S'});
}

// Postgres 17's sslnegotiation=direct: the ClientHello first, ALPN "postgresql". libpq 15 cannot,
// so Python's ssl module plays the client.
TEST_F(Tls, DirectTlsWithAlpn) {
  Proxy proxy(
      args({"--upstream", upstream(), "--server-tls-sslmode", "require"}, client_tls("require")));
  auto script = R"PY(
import socket, ssl, struct, sys
port, ca, alpn = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
if alpn != "none":
    ctx.set_alpn_protocols([alpn])
try:
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                        server_hostname="localhost")
    body = struct.pack(">I", 196608) + b"user\0postgres\0database\0pglens_test\0\0"
    s.sendall(struct.pack(">I", len(body) + 4) + body)
    data = b""
    while b"Z\0\0\0\5" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print("ready" if b"Z\0\0\0\5" in data else "closed", s.selected_alpn_protocol())
except (ssl.SSLError, OSError) as e:
    print("failed", type(e).__name__)
)PY";
  std::ofstream("/tmp/pglens-direct-tls.py") << script;
  auto run_with = [&](const std::string& alpn) {
    return run("/usr/bin/python3 /tmp/pglens-direct-tls.py " + std::to_string(proxy.port()) + " " +
               cert("ca.crt") + " " + alpn + " 2>&1")
        .output;
  };
  EXPECT_EQ(run_with("postgresql"), "ready postgresql\n");
  EXPECT_NE(run_with("none").find("closed"), std::string::npos);      // no ALPN: refused
  EXPECT_NE(run_with("http/1.1").find("failed"), std::string::npos);  // another protocol's TLS
}

TEST_F(Tls, ReloadSwapsCertificatesForNewHandshakesOnly) {
  std::string config = write_temp_file(".toml", "");
  auto write_config = [&](const std::string& name) {
    std::ofstream(config) << "[pglens]\nupstream = \"" << upstream()
                          << "\"\nserver_tls_sslmode = \"require\"\n"
                             "client_tls_sslmode = \"require\"\nclient_tls_key_file = \""
                          << cert(name + ".key") << "\"\nclient_tls_cert_file = \""
                          << cert(name + ".crt") << "\"\n";
  };
  // The serial of the certificate a new TLS client is shown (openssl speaks SSLRequest).
  auto shown_serial = [&](int port) {
    return run("openssl s_client -starttls postgres -connect 127.0.0.1:" + std::to_string(port) +
               " </dev/null 2>/dev/null | openssl x509 -noout -serial")
        .output;
  };
  auto serial_of = [&](const std::string& name) {
    return run("openssl x509 -noout -serial -in " + cert(name + ".crt")).output;
  };
  write_config("pglens");
  Proxy proxy({"--config", config});
  EXPECT_EQ(shown_serial(proxy.port()), serial_of("pglens"));
  auto before = connect(proxy.conninfo("postgres", "pglens_test", "sslmode=require"));
  write_config("pglens2");
  ::kill(proxy.pid(), SIGHUP);
  ASSERT_TRUE(proxy.log_shows("configuration reloaded")) << proxy.log();
  EXPECT_EQ(shown_serial(proxy.port()), serial_of("pglens2"));
  EXPECT_EQ(scalar(before.get(), "SELECT 'still here'"), "still here");
  // A key that cannot be read: the reload fails whole, the old files stay in use.
  std::ofstream(config) << "[pglens]\nupstream = \"" << upstream()
                        << "\"\nclient_tls_sslmode = \"require\"\nclient_tls_key_file = "
                           "\"/nonexistent.key\"\nclient_tls_cert_file = \""
                        << cert("pglens.crt") << "\"\n";
  ::kill(proxy.pid(), SIGHUP);
  ASSERT_TRUE(proxy.log_shows("reload on SIGHUP failed")) << proxy.log();
  EXPECT_TRUE(proxy.log_shows("client_tls_key_file")) << proxy.log();
  EXPECT_EQ(shown_serial(proxy.port()), serial_of("pglens2"));
  ::unlink(config.c_str());
}

}  // namespace
}  // namespace pglens::test
