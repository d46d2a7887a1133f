#include "config/upstream.hpp"

#include <gtest/gtest.h>

namespace pglens::config {
namespace {

TEST(Upstream, ParsesEveryPart) {
  auto u = Upstream::parse("postgresql://alice:s%40cret@db.local:6543/app");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->user, "alice");
  EXPECT_EQ(u->password, "s@cret");
  EXPECT_EQ(u->host, "db.local");
  EXPECT_EQ(u->port, 6543);
  EXPECT_EQ(u->dbname, "app");
  EXPECT_EQ(u->display(), "postgresql://alice@db.local:6543/app");
}

TEST(Upstream, DefaultsPortAndLeavesUserAndDatabaseToTheClient) {
  auto u = Upstream::parse("postgres://127.0.0.1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 5432);
  EXPECT_TRUE(u->user.empty());
  EXPECT_TRUE(u->dbname.empty());
}

TEST(Upstream, AcceptsBracketedIpv6) {
  auto u = Upstream::parse("postgresql://postgres@[::1]:5433");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 5433);
}

TEST(Upstream, RejectsBadInputWithAReason) {
  std::string error;
  EXPECT_FALSE(Upstream::parse("mysql://x", &error));
  EXPECT_NE(error.find("postgresql://"), std::string::npos);
  EXPECT_FALSE(Upstream::parse("postgresql://host:99999", &error));
  EXPECT_NE(error.find("port"), std::string::npos);
  EXPECT_FALSE(Upstream::parse("postgresql://host:", &error));
  EXPECT_FALSE(Upstream::parse("postgresql://:5432", &error));
  EXPECT_FALSE(Upstream::parse("postgresql://u%zz@host", &error));
}

}  // namespace
}  // namespace pglens::config
