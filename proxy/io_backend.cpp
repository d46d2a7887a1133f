#include "proxy/io_backend.hpp"

#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pglens::proxy {

std::string_view compiled_io_backend() {
#ifdef PGLENS_IO_BACKEND_IO_URING
  return "io_uring";
#else
  return "epoll";
#endif
}

std::string_view sibling_program(std::string_view compiled) {
  return compiled == "io_uring" ? "pglens" : "pglens-io_uring";
}

std::optional<std::string> io_uring_unavailable() {
#ifdef __NR_io_uring_setup
  // Containers often forbid it (seccomp: EPERM or ENOSYS); kernel.io_uring_disabled: EPERM.
  io_uring_params params;
  std::memset(&params, 0, sizeof params);
  long fd = ::syscall(__NR_io_uring_setup, 4, &params);
  if (fd < 0) return std::string("io_uring_setup: ") + std::strerror(errno);
  ::close(static_cast<int>(fd));
  return std::nullopt;
#else
  return std::string("io_uring is not known to this system's headers");
#endif
}

IoBackendChoice choose_io_backend(std::string_view wanted, std::string_view compiled,
                                  const std::optional<std::string>& unavailable,
                                  bool sibling_exists) {
  auto in = [&](std::string_view backend, std::string why) {
    IoBackendChoice c{std::string(backend), "", std::move(why), ""};
    if (backend != compiled) c.exec = std::string(sibling_program(compiled));
    return c;
  };
  if (wanted == "epoll") {
    if (compiled == "epoll" || sibling_exists) return in("epoll", "io_backend = epoll");
    return {"", "", "", "io_backend = epoll, but pglens is not installed beside pglens-io_uring"};
  }
  if (unavailable) {
    if (wanted == "io_uring")
      return {"", "", "",
              "io_backend = io_uring, but this kernel refuses it (" + *unavailable + ")"};
    if (compiled == "epoll" || sibling_exists)
      return in("epoll", "io_backend = auto, io_uring unavailable (" + *unavailable + ")");
    return {"", "", "",
            "io_uring unavailable (" + *unavailable + ") and pglens (epoll) is not installed"};
  }
  if (compiled == "io_uring" || sibling_exists)
    return in("io_uring", "io_backend = " + std::string(wanted));
  if (wanted == "io_uring")
    return {"", "", "",
            "io_backend = io_uring, but pglens-io_uring is not installed beside pglens"};
  return in("epoll", "io_backend = auto, pglens-io_uring not installed");
}

}  // namespace pglens::proxy
