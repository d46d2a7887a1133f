// Which socket I/O backend runs: io_uring (pglens-io_uring, Asio's io_uring service) or epoll
// (pglens, Asio's reactor). Asio fixes its backend when it is compiled, so the choice is made at
// start-up, before anything is opened: a program that is not the right one hands over to its
// sibling with exec. No Asio here: the decision is a plain function, tested on its own.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pglens::proxy {

// "io_uring" in pglens-io_uring, "epoll" in pglens.
std::string_view compiled_io_backend();

// Why io_uring cannot be used here ("io_uring_setup: Operation not permitted"), nullopt when
// it can: a ring is set up and closed again.
std::optional<std::string> io_uring_unavailable();

struct IoBackendChoice {
  std::string backend;  // the one that will run: "io_uring" or "epoll"
  std::string exec;     // "" to stay in this program; else the sibling to hand over to
  std::string why;      // for the log
  std::string error;    // set when pglens must not start (io_uring demanded, unavailable)
};

// wanted: the io_backend setting ("auto", "io_uring", "epoll"); compiled: this program's;
// unavailable: io_uring_unavailable(); sibling_exists: whether the other program is installed
// beside this one ("pglens-io_uring" next to "pglens" and the other way round).
IoBackendChoice choose_io_backend(std::string_view wanted, std::string_view compiled,
                                  const std::optional<std::string>& unavailable,
                                  bool sibling_exists);

// The other program's file name ("pglens-io_uring" for "epoll", "pglens" for "io_uring").
std::string_view sibling_program(std::string_view compiled);

}  // namespace pglens::proxy
