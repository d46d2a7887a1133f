#include "tests/support/relay.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <string>

namespace pglens::test {

namespace {
void close_with_reset(int fd) {
  linger l{1, 0};  // close() sends RST, not FIN
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Moves what `from` has to `to`; false when either side is done.
bool pump(int from, int to) {
  std::array<char, 16384> buf;
  ssize_t n = ::recv(from, buf.data(), buf.size(), 0);
  if (n <= 0) return false;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = ::send(to, buf.data() + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
    if (w <= 0) return false;
    off += w;
  }
  return true;
}
}  // namespace

Relay::Relay(int target_port) : target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 128) != 0)
    throw std::runtime_error("relay: cannot listen");
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  if (::pipe(wake_pipe_) != 0) throw std::runtime_error("relay: pipe");
  thread_ = std::thread([this] { run(); });
}

Relay::~Relay() {
  stop_ = true;
  wake();
  thread_.join();
  for (auto& p : pairs_) {
    ::close(p.client);
    ::close(p.server);
  }
  ::close(listen_fd_);
  ::close(wake_pipe_[0]);
  ::close(wake_pipe_[1]);
}

std::string Relay::url() const {
  return "postgresql://127.0.0.1:" + std::to_string(port_);
}

void Relay::wake() {
  char c = 1;
  [[maybe_unused]] auto n = ::write(wake_pipe_[1], &c, 1);
}

void Relay::cut() {
  cut_ = true;
  wake();
  // Done once the thread has reset them.
  for (int i = 0; i < 200 && cut_; ++i) ::usleep(5000);
}

void Relay::stall(bool on) {
  stalled_ = on;
  wake();
}

std::size_t Relay::connections() const {
  std::lock_guard lock(mutex_);
  return pairs_.size();
}

void Relay::run() {
  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back({wake_pipe_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    std::vector<Pair> pairs;
    {
      std::lock_guard lock(mutex_);
      pairs = pairs_;
    }
    short data = stalled_ ? 0 : POLLIN;  // stalled: bytes stay in the kernel's buffers
    for (const auto& p : pairs) {
      fds.push_back({p.client, data, 0});
      fds.push_back({p.server, data, 0});
    }
    ::poll(fds.data(), fds.size(), 200);
    if (fds[0].revents & POLLIN) {
      std::array<char, 64> drain;
      [[maybe_unused]] auto n = ::read(wake_pipe_[0], drain.data(), drain.size());
    }
    if (cut_) {
      std::lock_guard lock(mutex_);
      for (auto& p : pairs_) {
        close_with_reset(p.client);
        close_with_reset(p.server);
      }
      pairs_.clear();
      cut_ = false;
      continue;
    }
    if (fds[1].revents & POLLIN) {
      int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client >= 0) {
        int server = connect_to(target_port_);
        if (server < 0) {
          close_with_reset(client);
        } else {
          std::lock_guard lock(mutex_);
          pairs_.push_back({client, server});
        }
      }
    }
    std::vector<Pair> done;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      const auto& p = pairs[i];
      short c = fds[2 + 2 * i].revents, s = fds[3 + 2 * i].revents;
      bool ok = true;
      if (c & (POLLIN | POLLHUP | POLLERR)) ok = pump(p.client, p.server);
      if (ok && (s & (POLLIN | POLLHUP | POLLERR))) ok = pump(p.server, p.client);
      if (!ok) done.push_back(p);
    }
    if (!done.empty()) {
      std::lock_guard lock(mutex_);
      for (const auto& d : done) {
        ::close(d.client);  // a FIN each way: what one side closed, the other hears
        ::close(d.server);
        std::erase_if(pairs_, [&](const Pair& p) { return p.client == d.client; });
      }
    }
  }
}

}  // namespace pglens::test
