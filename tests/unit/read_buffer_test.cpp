#include "proxy/read_buffer.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace pglens::proxy {
namespace {

// Reads n bytes of value v into the buffer, as a socket would.
void read_into(ReadBuffer& b, std::size_t n, std::uint8_t v = 'x') {
  auto space = b.space();
  ASSERT_LE(n, space.size());
  std::memset(space.data(), v, n);
  b.filled(n);
}

TEST(ReadBufferTest, StartsSmall) {
  ReadBuffer b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.space().size(), ReadBuffer::kInitial);
}

TEST(ReadBufferTest, GrowsFourfoldWhenAReadFillsItUpToTheLargest) {
  ReadBuffer b;
  std::size_t sizes[] = {2048, 8192, 32768, 65536, 65536};
  for (auto expected : sizes) {
    auto space = b.space();
    EXPECT_EQ(space.size(), expected);
    read_into(b, space.size());
    b.take(b.pending().size());
  }
}

TEST(ReadBufferTest, ShrinksWhenAReadWouldHaveFitTheFirstSize) {
  ReadBuffer b;
  read_into(b, ReadBuffer::kInitial);
  b.take(ReadBuffer::kInitial);
  read_into(b, 5000);  // into 8 KiB: stays
  b.take(5000);
  EXPECT_EQ(b.space().size(), 8192u);
  read_into(b, 100);
  b.take(100);
  EXPECT_EQ(b.space().size(), ReadBuffer::kInitial);
}

TEST(ReadBufferTest, KeepsWhatIsNotTakenYet) {
  ReadBuffer b;
  read_into(b, 10, 'a');
  b.take(4);
  ASSERT_EQ(b.pending().size(), 6u);
  EXPECT_EQ(b.pending()[0], 'a');
  b.take(6);
  EXPECT_TRUE(b.empty());
}

}  // namespace
}  // namespace pglens::proxy
