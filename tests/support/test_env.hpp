// What integration tests share: the throwaway cluster started by the ctest fixture, a pglens
// process per test, libpq connections, and raw sockets for speaking bad protocol on purpose.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pglens::test {

// The cluster from tests/support/pg_cluster.sh (PGLENS_TEST_CLUSTER_DIR/env).
struct Cluster {
  std::string host;
  int port = 0;
  static const Cluster& get();
  std::string url(const std::string& credentials = "") const;  // postgresql://[cred@]host:port
};

std::uint16_t free_port();
// A new file under /tmp holding `text`; its path. The caller removes it.
std::string write_temp_file(const std::string& suffix, const std::string& text);
// The pglens binary the tests run: PGLENS_BIN, else the one this build made.
std::string pglens_bin();

// pglens started with the given arguments plus --listen on a free port; stopped on destruction.
class Proxy {
 public:
  explicit Proxy(std::vector<std::string> args);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  int port() const { return port_; }
  int pid() const { return pid_; }  // for signals (SIGHUP reload)
  // libpq conninfo for a client of this proxy.
  std::string conninfo(const std::string& user = "postgres", const std::string& db = "pglens_test",
                       const std::string& extra = "") const;
  std::string log() const;  // what pglens logged so far
  // Whether `text` shows up in the log within `timeout`: pglens logs a disconnect after it closed
  // the socket, so a client that saw the close may look before the line is there.
  bool log_shows(std::string_view text,
                 std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;
  bool running() const;

 private:
  int pid_ = -1;
  int port_ = 0;
  std::string log_path_;
};

struct PGconnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct PGresultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Connection = std::unique_ptr<PGconn, PGconnDeleter>;
using Result = std::unique_ptr<PGresult, PGresultDeleter>;

// Connects; the test fails (ADD_FAILURE) with libpq's message when it cannot.
Connection connect(const std::string& conninfo);
Result exec(PGconn* conn, const std::string& sql);
// The single value of a one-row, one-column query, or "<error: ...>".
std::string scalar(PGconn* conn, const std::string& sql);

// A plain TCP connection for sending arbitrary bytes.
class RawSocket {
 public:
  explicit RawSocket(int port);
  ~RawSocket();
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  void send(const std::vector<std::uint8_t>& bytes);
  void send(const std::string& bytes);
  // Everything received until the peer closes or `timeout` passes; closed() tells which.
  std::vector<std::uint8_t> read_until_closed(std::chrono::milliseconds timeout);
  // What one read returns within `timeout`: empty when nothing came or the peer closed.
  std::vector<std::uint8_t> read_some(std::chrono::milliseconds timeout);
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  bool closed_ = false;
};

// Runs a shell command; returns its exit status and combined output.
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult run(const std::string& command);

double seconds_since(std::chrono::steady_clock::time_point t);

// Polls `done` every 20 ms until it holds or `limit` passes.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit);

// What a query came to, waited for at most a given time so that a hang fails the test instead of
// stalling it.
struct Outcome {
  bool ok = false;         // every result succeeded
  bool timed_out = false;  // the connection is left busy: drop it
  std::string value;       // first value of the last result with rows
  std::string sqlstate, message;
};
Outcome exec_within(PGconn* c, const std::string& sql, std::chrono::milliseconds limit);

// Runs fn(i) on n threads at once and waits for all of them.
void in_parallel(int n, const std::function<void(int)>& fn);

std::string pg_bindir();
// Postgres refuses to run as root: the cluster's commands run as its owner.
std::string as_cluster_owner(const std::string& command);

// Certificates from tests/support/make_certs.sh in a fresh directory, removed on destruction.
class TestCertificates {
 public:
  TestCertificates();  // throws std::runtime_error when openssl fails
  ~TestCertificates();
  TestCertificates(const TestCertificates&) = delete;
  TestCertificates& operator=(const TestCertificates&) = delete;
  const std::string& dir() const { return dir_; }
  std::string operator()(const std::string& file) const { return dir_ + "/" + file; }

 private:
  std::string dir_;
};

// The TLS tests' shared cluster and certificates (tls_cluster.sh, started by ctest), when it runs:
// PGLENS_TEST_TLS_DIR, else the one this build's ctest starts. nullopt when it is not there
// (a test binary run by hand then makes its own).
struct SharedTls {
  std::string cert_dir;
  int port = 0;
};
std::optional<SharedTls> shared_tls();

// A cluster of a test's own (pg_cluster.sh), so stopping or restarting it disturbs no other test.
class OwnCluster {
 public:
  // tls_dir: certificates from make_certs.sh; the cluster then has ssl = on and hostssl lines
  // only. Throws std::runtime_error when it cannot start.
  explicit OwnCluster(const std::string& tls_dir = {});
  ~OwnCluster();
  OwnCluster(const OwnCluster&) = delete;
  OwnCluster& operator=(const OwnCluster&) = delete;

  const Cluster& cluster() const { return cluster_; }
  CommandResult stop();  // pg_ctl stop -m fast
  CommandResult start();
  CommandResult restart();  // pg_ctl restart -m fast

 private:
  std::string script_, dir_;
  Cluster cluster_;
};

}  // namespace pglens::test
