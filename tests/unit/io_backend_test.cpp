// The start-up choice between pglens (epoll) and pglens-io_uring, for every setting, program and
// kernel answer.
#include "proxy/io_backend.hpp"

#include <gtest/gtest.h>

namespace pglens::proxy {
namespace {

const std::optional<std::string> kUsable = std::nullopt;
const std::optional<std::string> kRefused = std::string("io_uring_setup: Operation not permitted");

TEST(IoBackend, AutoHandsOverToIoUringWhereTheKernelHasIt) {
  auto c = choose_io_backend("auto", "epoll", kUsable, true);
  EXPECT_EQ(c.backend, "io_uring");
  EXPECT_EQ(c.exec, "pglens-io_uring");
  EXPECT_EQ(c.error, "");
  // ... and the io_uring program, started so, stays.
  c = choose_io_backend("auto", "io_uring", kUsable, true);
  EXPECT_EQ(c.backend, "io_uring");
  EXPECT_EQ(c.exec, "");
}

TEST(IoBackend, AutoFallsBackToEpollWhereTheKernelRefuses) {
  auto c = choose_io_backend("auto", "epoll", kRefused, true);
  EXPECT_EQ(c.backend, "epoll");
  EXPECT_EQ(c.exec, "");
  EXPECT_NE(c.why.find("Operation not permitted"), std::string::npos);
  c = choose_io_backend("auto", "io_uring", kRefused, true);
  EXPECT_EQ(c.backend, "epoll");
  EXPECT_EQ(c.exec, "pglens");
}

TEST(IoBackend, AutoStaysWithEpollWithoutTheOtherProgram) {
  auto c = choose_io_backend("auto", "epoll", kUsable, false);
  EXPECT_EQ(c.backend, "epoll");
  EXPECT_EQ(c.exec, "");
  EXPECT_EQ(c.error, "");
}

TEST(IoBackend, EpollIsHonouredFromEitherProgram) {
  EXPECT_EQ(choose_io_backend("epoll", "epoll", kUsable, true).exec, "");
  auto c = choose_io_backend("epoll", "io_uring", kUsable, true);
  EXPECT_EQ(c.backend, "epoll");
  EXPECT_EQ(c.exec, "pglens");
  EXPECT_NE(choose_io_backend("epoll", "io_uring", kUsable, false).error, "");
}

TEST(IoBackend, IoUringDemandedButRefusedIsAnError) {
  auto c = choose_io_backend("io_uring", "epoll", kRefused, true);
  EXPECT_NE(c.error.find("refuses"), std::string::npos);
  EXPECT_NE(choose_io_backend("io_uring", "epoll", kUsable, false).error, "");
  EXPECT_EQ(choose_io_backend("io_uring", "epoll", kUsable, true).exec, "pglens-io_uring");
}

TEST(IoBackend, NoChoiceHandsOverTwice) {
  // Whatever the first program decides, the program it hands over to decides to stay.
  for (auto wanted : {"auto", "io_uring", "epoll"})
    for (const auto& kernel : {kUsable, kRefused})
      for (auto compiled : {"epoll", "io_uring"}) {
        auto first = choose_io_backend(wanted, compiled, kernel, true);
        if (first.exec.empty()) continue;
        auto next = choose_io_backend(wanted, first.backend, kernel, true);
        EXPECT_EQ(next.exec, "") << wanted << " " << compiled;
        EXPECT_EQ(next.backend, first.backend);
      }
}

}  // namespace
}  // namespace pglens::proxy
