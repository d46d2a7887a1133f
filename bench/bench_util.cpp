#include "bench/bench_util.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

extern char** environ;

namespace pglens::bench {

// ---- Connection ----

Connection Connection::open(const std::string& dsn, const std::string& what) {
  // Keywords before "dbname" are overridden by the DSN's own; expand_dbname parses the URL.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "pglens-bench", dsn.c_str(), nullptr};
  Connection c;
  c.what_ = what;
  c.conn_.reset(PQconnectdbParams(keys, values, 1));
  if (!c.conn_) throw BenchError(what + ": out of memory connecting");
  if (PQstatus(c.conn_.get()) != CONNECTION_OK) {
    throw BenchError("cannot connect to " + what + " (" + redact_dsn(dsn) +
                     "): " + c.error_message());
  }
  // NOTICEs ("table ... does not exist, skipping") are not results: keep stderr for errors.
  PQsetNoticeProcessor(
      c.conn_.get(), [](void*, const char*) {}, nullptr);
  return c;
}

std::string Connection::error_message() const {
  std::string m = conn_ ? PQerrorMessage(conn_.get()) : "no connection";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

void Connection::check(const Result& r, ExecStatusType status, std::string_view sql) const {
  if (r && PQresultStatus(r.get()) == status) return;
  std::string m = r ? PQresultErrorMessage(r.get()) : error_message();
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  std::string shown(sql.substr(0, 120));
  if (sql.size() > 120) shown += "...";
  throw BenchError(what_ + ": \"" + shown + "\" failed: " + m);
}

void Connection::exec(const std::string& sql) {
  Result r(PQexec(conn_.get(), sql.c_str()));
  check(r, PGRES_COMMAND_OK, sql);
}

Result Connection::query(const std::string& sql) {
  Result r(PQexec(conn_.get(), sql.c_str()));
  check(r, PGRES_TUPLES_OK, sql);
  return r;
}

Result Connection::exec_params(const std::string& sql, const std::vector<const char*>& params,
                               ExecStatusType status) {
  Result r(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(params.size()), nullptr,
                        params.data(), nullptr, nullptr, 0));
  check(r, status, sql);
  return r;
}

void require_same_database(const std::string& via_dsn, const std::string& table) {
  Connection via = Connection::open(via_dsn, "--via");
  Result r = via.query("SELECT to_regclass('" + table + "') IS NOT NULL");
  if (std::string(PQgetvalue(r.get(), 0, 0)) != "t") {
    throw BenchError("--via does not reach the database of --dsn: table " + table +
                     ", just created through --dsn, is not visible through --via (" +
                     redact_dsn(via_dsn) + ")");
  }
}

std::string redact_dsn(const std::string& dsn) {
  std::string out = dsn;
  // URL form: scheme://user:password@host
  auto scheme = out.find("://");
  if (scheme != std::string::npos) {
    auto start = scheme + 3;
    auto at = out.find('@', start);
    auto slash = out.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      auto colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // Key/value form or URL query: password=...
  for (std::size_t pos = 0; (pos = out.find("password=", pos)) != std::string::npos;) {
    auto v = pos + 9;
    auto end = out.find_first_of(" &", v);
    if (end == std::string::npos) end = out.size();
    out.replace(v, end - v, "***");
    pos = v + 3;
  }
  return out;
}

// ---- Md5 ----

Md5::Md5() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_md5(), nullptr);
}
Md5::~Md5() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}
void Md5::update(std::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}
std::string Md5::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), digest, &n);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

// ---- Samples ----

double Samples::median() const {
  if (values.empty()) return 0;
  auto v = values;
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double Samples::min() const {
  return values.empty() ? 0 : *std::min_element(values.begin(), values.end());
}
double Samples::max() const {
  return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
}

// ---- machine ----

MachineInfo machine_info() {
  MachineInfo m;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) m.hostname = host;
  m.nproc = std::thread::hardware_concurrency();
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  if (online > 0) m.nproc = static_cast<unsigned>(online);
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos)
        m.cpu_model = line.substr(line.find_first_not_of(" ", colon + 1));
      break;
    }
  }
  std::ifstream os("/etc/os-release");
  for (std::string line; std::getline(os, line);) {
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      m.os = line.substr(12);
      if (m.os.size() >= 2 && m.os.front() == '"') m.os = m.os.substr(1, m.os.size() - 2);
    }
  }
  utsname u{};
  if (uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
  std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  m.date_utc = date;
  return m;
}

nlohmann::json to_json(const MachineInfo& m) {
  return {{"hostname", m.hostname},   {"os", m.os},       {"kernel", m.kernel},
          {"cpu_model", m.cpu_model}, {"nproc", m.nproc}, {"date_utc", m.date_utc}};
}

std::string describe(const MachineInfo& m) {
  return m.os + ", " + std::to_string(m.nproc) + " cores (" + m.cpu_model + "), " + m.date_utc;
}

// ---- Progress ----

Progress::Progress(std::uint64_t total) : enabled_(isatty(STDERR_FILENO) == 1), total_(total) {}
Progress::~Progress() {
  finish();
}

void Progress::label(std::string text) {
  label_ = std::move(text);
  if (enabled_) draw();
}

void Progress::advance(std::uint64_t n) {
  done_ += n;
  if (!enabled_ || (++calls_ & 63) != 0) return;
  auto now = Clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  draw();
}

void Progress::draw() {
  last_draw_ = Clock::now();
  constexpr int kWidth = 30;
  double f = total_ ? std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_)) : 0;
  int full = static_cast<int>(f * kWidth);
  std::string bar;
  for (int i = 0; i < kWidth; ++i) bar += i < full ? "#" : "-";
  std::fprintf(stderr, "\r\033[K[%s] %3d%%  %s", bar.c_str(), static_cast<int>(f * 100),
               label_.c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  if (!enabled_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  enabled_ = false;
}

// ---- Table ----

Table::Table(std::vector<std::string> headers, std::vector<bool> left_aligned)
    : headers_(std::move(headers)), left_(std::move(left_aligned)) {
  left_.resize(headers_.size(), false);
}

void Table::add(std::vector<std::string> row) {
  row.resize(headers_.size());
  rows_.push_back(std::move(row));
}

void Table::separator() {
  rows_.emplace_back();
}

namespace {
// Display width: counts UTF-8 code points, not bytes ("µ", "×", "–").
std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char ch : s)
    if ((ch & 0xC0) != 0x80) ++n;
  return n;
}
}  // namespace

std::string Table::render() const {
  std::vector<std::size_t> width(headers_.size());
  for (std::size_t i = 0; i < headers_.size(); ++i) width[i] = display_width(headers_[i]);
  for (const auto& row : rows_)
    for (std::size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], display_width(row[i]));
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      std::string pad(width[i] - display_width(cells[i]), ' ');
      if (i) out += "  ";
      out += left_[i] ? cells[i] + pad : pad + cells[i];
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string rule;
  for (std::size_t i = 0; i < width.size(); ++i) {
    if (i) rule += "  ";
    rule += std::string(width[i], '-');
  }
  std::string out = line(headers_) + rule + "\n";
  for (const auto& row : rows_) out += row.empty() ? "\n" : line(row);
  return out;
}

// ---- formatting ----

std::string fmt_count(double v) {
  if (!std::isfinite(v)) return "-";
  auto n = static_cast<long long>(std::llround(v));
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string fmt_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string fmt_duration(double s) {
  auto three = [](double v, const char* unit) {
    int decimals = v >= 100 ? 0 : v >= 10 ? 1 : 2;
    return fmt_fixed(v, decimals) + " " + unit;
  };
  if (s >= 1) return three(s, "s");
  if (s >= 1e-3) return three(s * 1e3, "ms");
  if (s >= 1e-6) return three(s * 1e6, "µs");
  return three(s * 1e9, "ns");
}

std::vector<std::string> split_list(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, sep);) {
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw BenchError("cannot write " + path + ": " + std::strerror(errno));
  f << content;
  f.close();
  if (!f) throw BenchError("cannot write " + path + ": " + std::strerror(errno));
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

// ---- child processes ----

namespace {
// Live children, for the signal handler (async-signal-safe: a fixed array of pids).
constexpr int kMaxChildren = 16;
volatile sig_atomic_t g_children[kMaxChildren] = {};

void on_fatal_signal(int sig) {
  for (int i = 0; i < kMaxChildren; ++i)
    if (g_children[i] > 0) kill(static_cast<pid_t>(g_children[i]), SIGTERM);
  signal(sig, SIG_DFL);
  raise(sig);
}

void register_child(pid_t pid) {
  static bool installed = false;
  if (!installed) {
    installed = true;
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
  }
  for (int i = 0; i < kMaxChildren; ++i) {
    if (g_children[i] <= 0) {
      g_children[i] = pid;
      return;
    }
  }
}

void unregister_child(pid_t pid) {
  for (int i = 0; i < kMaxChildren; ++i)
    if (g_children[i] == pid) g_children[i] = 0;
}
}  // namespace

Child::Child(const std::vector<std::string>& argv, const std::string& log_path,
             const std::vector<std::string>& extra_env, const std::string& run_as_user) {
  uid_t uid = 0;
  gid_t gid = 0;
  if (!run_as_user.empty()) {
    passwd* pw = getpwnam(run_as_user.c_str());
    if (!pw) throw BenchError("no such user: " + run_as_user);
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw BenchError("cannot open " + log_path + ": " + std::strerror(errno));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) env_storage.emplace_back(*e);
  for (const auto& e : extra_env) env_storage.push_back(e);
  std::vector<char*> env;
  for (auto& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);

  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    throw BenchError(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    if (!run_as_user.empty() &&
        (initgroups(run_as_user.c_str(), gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) {
      dprintf(log_fd, "cannot switch to user %s: %s\n", run_as_user.c_str(), std::strerror(errno));
      _exit(127);
    }
    // The child dies with pglens-bench, however that ends (set after the user switch, which
    // would clear it).
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execve(args[0], args.data(), env.data());
    dprintf(STDERR_FILENO, "exec %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(log_fd);
  pid_ = pid;
  register_child(pid_);
}

Child::Child(Child&& o) noexcept : pid_(o.pid_), status_(o.status_) {
  o.pid_ = -1;
}
Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    terminate();
    pid_ = o.pid_;
    status_ = o.status_;
    o.pid_ = -1;
  }
  return *this;
}
Child::~Child() {
  terminate();
}

bool Child::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == 0) return true;
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  unregister_child(pid_);
  pid_ = -1;
  return false;
}

int Child::wait(double timeout_s) {
  auto t0 = Clock::now();
  while (running()) {
    if (seconds_since(t0) > timeout_s) {
      terminate();
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

void Child::terminate() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 250 && running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
    unregister_child(pid_);
    pid_ = -1;
  }
}

double process_cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  if (paren == std::string::npos)
    throw BenchError("cannot read /proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(paren + 2));
  // Fields from 3 (state) on; utime and stime are fields 14 and 15.
  std::vector<std::string> v;
  for (std::string s; fields >> s && v.size() < 13;) v.push_back(s);
  if (v.size() < 13) throw BenchError("short /proc/" + std::to_string(pid) + "/stat");
  double ticks = std::stod(v[11]) + std::stod(v[12]);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw BenchError("socket: " + std::string(std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw BenchError("cannot find a free port: " + std::string(std::strerror(errno)));
  }
  close(fd);
  return ntohs(a.sin_port);
}

std::string find_program(const std::string& name, const std::vector<std::string>& fallback_dirs) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) dirs = split_list(path, ':');
  dirs.insert(dirs.end(), fallback_dirs.begin(), fallback_dirs.end());
  for (const auto& d : dirs) {
    std::string p = d + "/" + name;
    struct stat st {};
    if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

std::string read_file_tail(const std::string& path, std::size_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s.size() > max_bytes ? s.substr(s.size() - max_bytes) : s;
}

}  // namespace pglens::bench
