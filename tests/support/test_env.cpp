#include "tests/support/test_env.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace pglens::test {

namespace {
std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}
std::string cluster_dir() {
  return env_or("PGLENS_TEST_CLUSTER_DIR", PGLENS_DEFAULT_CLUSTER_DIR);
}

bool port_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}
}  // namespace

const Cluster& Cluster::get() {
  static const Cluster cluster = [] {
    Cluster c;
    std::ifstream in(cluster_dir() + "/env");
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      auto key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key == "PGLENS_PGHOST") c.host = value;
      if (key == "PGLENS_PGPORT") c.port = std::stoi(value);
    }
    if (c.port == 0)
      throw std::runtime_error("no test cluster at " + cluster_dir() + " (ctest starts it)");
    return c;
  }();
  return cluster;
}

std::string Cluster::url(const std::string& credentials) const {
  return "postgresql://" + (credentials.empty() ? "" : credentials + "@") + host + ":" +
         std::to_string(port);
}

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string write_temp_file(const std::string& suffix, const std::string& text) {
  std::string tmpl = "/tmp/pglens-test-XXXXXX" + suffix;
  int fd = ::mkstemps(tmpl.data(), static_cast<int>(suffix.size()));
  ::close(fd);
  std::ofstream(tmpl) << text;
  return tmpl;
}

std::string pglens_bin() {
  return env_or("PGLENS_BIN", PGLENS_DEFAULT_BIN);
}

Proxy::Proxy(std::vector<std::string> args) {
  port_ = free_port();
  args.insert(args.begin(), {pglens_bin(), "--listen", "127.0.0.1:" + std::to_string(port_)});
  // PGLENS_TEST_ARGS: flags every test's pglens gets too (the TSan run: "--threads 2").
  if (const char* extra = std::getenv("PGLENS_TEST_ARGS")) {
    std::istringstream words(extra);
    for (std::string w; words >> w;) args.push_back(w);
  }
  char tmpl[] = "/tmp/pglens-test-log-XXXXXX";
  int log_fd = ::mkstemp(tmpl);
  log_path_ = tmpl;
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::perror("execv pglens");
    ::_exit(127);
  }
  ::close(log_fd);
  for (int i = 0; i < 200 && !port_accepts(port_); ++i) {
    if (!running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  if (!port_accepts(port_)) ADD_FAILURE() << "pglens did not start listening:\n" << log();
}

Proxy::~Proxy() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    if (pid_ > 0) {
      ADD_FAILURE() << "pglens did not exit within 5 s of SIGTERM";
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
  }
  if (::testing::Test::HasFailure())
    std::cerr << "---- pglens log ----\n" << log() << "--------------------\n";
  ::unlink(log_path_.c_str());
}

bool Proxy::running() const {
  int status = 0;
  return pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == 0;
}

std::string Proxy::conninfo(const std::string& user, const std::string& db,
                            const std::string& extra) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + user + " dbname=" + db +
         " connect_timeout=10 " + extra;
}

std::string Proxy::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Proxy::log_shows(std::string_view text, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (log().find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

Connection connect(const std::string& conninfo) {
  Connection c(PQconnectdb(conninfo.c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK)
    ADD_FAILURE() << "connect(" << conninfo << "): " << PQerrorMessage(c.get());
  return c;
}

Result exec(PGconn* conn, const std::string& sql) {
  return Result(PQexec(conn, sql.c_str()));
}

std::string scalar(PGconn* conn, const std::string& sql) {
  auto r = exec(conn, sql);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
    return std::string("<error: ") + PQerrorMessage(conn) + ">";
  if (PQntuples(r.get()) != 1 || PQnfields(r.get()) != 1) return "<not one value>";
  return PQgetisnull(r.get(), 0, 0) ? "<null>" : PQgetvalue(r.get(), 0, 0);
}

RawSocket::RawSocket(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("RawSocket: cannot connect to port " + std::to_string(port));
}

RawSocket::~RawSocket() {
  ::close(fd_);
}

void RawSocket::send(const std::vector<std::uint8_t>& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // the peer may already have closed: that is what some tests expect
    off += static_cast<std::size_t>(n);
  }
}

void RawSocket::send(const std::string& bytes) {
  send(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
}

std::vector<std::uint8_t> RawSocket::read_until_closed(std::chrono::milliseconds timeout) {
  std::vector<std::uint8_t> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return out;
    auto got = read_some(left);
    if (got.empty()) return out;
    out.insert(out.end(), got.begin(), got.end());
  }
}

std::vector<std::uint8_t> RawSocket::read_some(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
  std::uint8_t buf[8192];
  auto n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    closed_ = true;
    return {};
  }
  return std::vector<std::uint8_t>(buf, buf + n);
}

CommandResult run(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  while (auto n = std::fread(buf, 1, sizeof buf, pipe)) result.output.append(buf, n);
  int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

Outcome exec_within(PGconn* c, const std::string& sql, std::chrono::milliseconds limit) {
  using Clock = std::chrono::steady_clock;
  Outcome o;
  if (!PQsendQuery(c, sql.c_str())) {
    o.message = PQerrorMessage(c);
    return o;
  }
  auto deadline = Clock::now() + limit;
  bool failed = false;
  while (true) {
    while (PQisBusy(c)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        o.timed_out = true;
        o.message = "no answer within " + std::to_string(limit.count()) + " ms";
        return o;
      }
      pollfd p{PQsocket(c), POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(left.count()));
      if (!PQconsumeInput(c)) {
        o.ok = false;
        if (!failed) o.message = PQerrorMessage(c);
        return o;
      }
    }
    PGresult* r = PQgetResult(c);
    if (r == nullptr) break;
    auto status = PQresultStatus(r);
    if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE ||
        status == PGRES_NONFATAL_ERROR) {
      if (!failed) {
        failed = true;
        const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        o.sqlstate = state ? state : "";
        o.message = PQresultErrorMessage(r);
      }
    } else if (status == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0) {
      o.value = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
  }
  o.ok = !failed;
  return o;
}

void in_parallel(int n, const std::function<void(int)>& fn) {
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) threads.emplace_back(fn, i);
  for (auto& t : threads) t.join();
}

std::string pg_bindir() {
  const char* dir = std::getenv("PGLENS_PG_BINDIR");
  return dir != nullptr && *dir != '\0' ? dir : "/usr/lib/postgresql/15/bin";
}

std::string as_cluster_owner(const std::string& command) {
  return ::geteuid() == 0 ? "runuser -u postgres -- " + command : command;
}

std::optional<SharedTls> shared_tls() {
  std::string dir = env_or("PGLENS_TEST_TLS_DIR", PGLENS_DEFAULT_TLS_DIR);
  std::ifstream env(dir + "/pg/env");
  SharedTls shared{dir + "/certs", 0};
  for (std::string line; std::getline(env, line);)
    if (line.rfind("PGLENS_PGPORT=", 0) == 0) shared.port = std::stoi(line.substr(14));
  if (shared.port == 0 || !port_accepts(shared.port)) return std::nullopt;
  return shared;
}

TestCertificates::TestCertificates() {
  auto script =
      (std::filesystem::path(__FILE__).parent_path() / "make_certs.sh").lexically_normal().string();
  std::random_device rd;
  dir_ = "/tmp/pglens-certs-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 100000);
  auto r = run(script + " " + dir_);
  if (r.status != 0) throw std::runtime_error("make_certs.sh failed: " + r.output);
}

TestCertificates::~TestCertificates() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

OwnCluster::OwnCluster(const std::string& tls_dir) {
  script_ =
      (std::filesystem::path(__FILE__).parent_path() / "pg_cluster.sh").lexically_normal().string();
  std::random_device rd;
  dir_ = "/tmp/pglens-own-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 100000);
  auto r = run((tls_dir.empty() ? "" : "PGLENS_PG_TLS_DIR=" + tls_dir + " ") + script_ + " start " +
               dir_);
  if (r.status != 0) throw std::runtime_error("pg_cluster.sh start failed: " + r.output);
  std::ifstream env(dir_ + "/env");
  for (std::string line; std::getline(env, line);)
    if (line.rfind("PGLENS_PGPORT=", 0) == 0) cluster_.port = std::stoi(line.substr(14));
  cluster_.host = "127.0.0.1";
}

OwnCluster::~OwnCluster() {
  run(script_ + " stop " + dir_);
}

CommandResult OwnCluster::stop() {
  return run(as_cluster_owner(pg_bindir() + "/pg_ctl -D " + dir_ + "/data -m fast -w -t 20 stop"));
}

CommandResult OwnCluster::start() {
  return run(as_cluster_owner(pg_bindir() + "/pg_ctl -D " + dir_ + "/data -l " + dir_ +
                              "/server.log -w -t 20 start"));
}

CommandResult OwnCluster::restart() {
  return run(as_cluster_owner(pg_bindir() + "/pg_ctl -D " + dir_ + "/data -l " + dir_ +
                              "/server.log -m fast -w -t 30 restart"));
}

}  // namespace pglens::test
