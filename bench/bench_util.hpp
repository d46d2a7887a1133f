// Shared pieces of pglens-bench: libpq connections that throw, timing statistics, number
// formatting, a terminal progress bar, text tables, the machine description and child processes.
#pragma once

#include <libpq-fe.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pglens::bench {

// Every expected failure (bad argument, unreachable server, failed verification) is a BenchError;
// main prints its message and exits non-zero before any result is shown.
struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// One libpq connection; `what` names it in error messages ("direct", "via pglens").
class Connection {
 public:
  // Connects with a 10 s connect_timeout unless the DSN sets its own; throws BenchError.
  static Connection open(const std::string& dsn, const std::string& what);

  PGconn* get() const { return conn_.get(); }
  const std::string& what() const { return what_; }
  // Runs SQL that returns no rows (several statements allowed); throws on error.
  void exec(const std::string& sql);
  // Runs SQL that returns rows; throws on error.
  Result query(const std::string& sql);
  // Extended protocol, unnamed statement, text parameters; expects `status`.
  Result exec_params(const std::string& sql, const std::vector<const char*>& params,
                     ExecStatusType status);
  // Throws BenchError naming the connection and the SQL if `r` does not have `status`.
  void check(const Result& r, ExecStatusType status, std::string_view sql) const;
  std::string error_message() const;

 private:
  struct ConnDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  std::unique_ptr<PGconn, ConnDeleter> conn_;
  std::string what_;
};

// Throws unless `table` (just created through --dsn) is visible through `via_dsn`: both must
// reach the same database for the verification to mean anything.
void require_same_database(const std::string& via_dsn, const std::string& table);

// The DSN with any password replaced by "***", for messages and JSON.
std::string redact_dsn(const std::string& dsn);

// Incremental MD5, hex output (the same digest as Postgres' md5()).
class Md5 {
 public:
  Md5();
  ~Md5();
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void update(std::string_view data);
  std::string hex();

 private:
  void* ctx_;
};

// Timing samples of one measured thing, in seconds.
struct Samples {
  std::vector<double> values;
  double median() const;
  double min() const;
  double max() const;
};

struct MachineInfo {
  std::string hostname, os, kernel, cpu_model, date_utc;
  unsigned nproc = 0;
};
MachineInfo machine_info();
nlohmann::json to_json(const MachineInfo& m);
std::string describe(const MachineInfo& m);  // one line for the table header

// A one-line progress bar on stderr, drawn only when stderr is a terminal; redraws at most
// ten times a second, so advance() may be called per row.
class Progress {
 public:
  explicit Progress(std::uint64_t total);
  ~Progress();
  void label(std::string text);
  void advance(std::uint64_t n = 1);
  void finish();  // erases the bar

 private:
  void draw();
  bool enabled_;
  std::uint64_t total_, done_ = 0;
  std::uint32_t calls_ = 0;
  std::string label_;
  Clock::time_point last_draw_{};
};

// A plain-text table with a header row, columns right-aligned unless marked left.
class Table {
 public:
  Table(std::vector<std::string> headers, std::vector<bool> left_aligned);
  void add(std::vector<std::string> row);
  void separator();
  std::string render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<bool> left_;
  std::vector<std::vector<std::string>> rows_;  // an empty row is a separator
};

std::string fmt_count(double v);     // 12,345
std::string fmt_duration(double s);  // 1.23 s, 45.6 ms, 12.3 µs
std::string fmt_fixed(double v, int decimals);
std::vector<std::string> split_list(const std::string& s, char sep = ',');
void write_file(const std::string& path, const std::string& content);
std::string xml_escape(std::string_view s);

// ---- child processes (the proxy benchmark) ----

// A child process whose stdout and stderr go to `log_path`; terminated when destroyed. While it
// lives, SIGINT and SIGTERM to pglens-bench terminate it too.
class Child {
 public:
  Child() = default;
  // With run_as_user (when root), the child switches to that user before exec, so the
  // parent-death signal survives (a program's own setuid would clear it).
  Child(const std::vector<std::string>& argv, const std::string& log_path,
        const std::vector<std::string>& extra_env = {}, const std::string& run_as_user = "");
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  ~Child();

  pid_t pid() const { return pid_; }
  bool running();
  // Waits up to `timeout_s`; returns the exit status (128+signal if killed), or -1 on timeout,
  // in which case the child has been killed.
  int wait(double timeout_s);
  void terminate();  // SIGTERM, then SIGKILL after 5 s

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// utime+stime of a process (all its threads) in seconds, from /proc/PID/stat.
double process_cpu_seconds(pid_t pid);
// A free TCP port on 127.0.0.1.
int free_port();
// The first executable named `name` on PATH, then in `fallback_dirs`; "" if none.
std::string find_program(const std::string& name, const std::vector<std::string>& fallback_dirs);
std::string read_file_tail(const std::string& path, std::size_t max_bytes);

}  // namespace pglens::bench
