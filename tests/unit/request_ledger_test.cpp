#include "session/request_ledger.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pglens::session {
namespace {

using H = RequestLedger::Handling;
using V = RequestLedger::Verdict;

// Feeds a string of backend message types; returns the verdicts.
std::vector<V> respond(RequestLedger& ledger, const std::string& types) {
  std::vector<V> out;
  for (char t : types) out.push_back(ledger.on_response(t).verdict);
  return out;
}

TEST(RequestLedger, ExtendedBatchCompletesAtReadyForQuery) {
  RequestLedger l;
  for (char r : std::string("PBDES")) l.push(r);
  // ParseComplete, BindComplete, RowDescription, 3 DataRows, CommandComplete, ReadyForQuery
  auto v = respond(l, "12TDDDCZ");
  EXPECT_EQ(v, std::vector<V>(8, V::Forward));
  EXPECT_TRUE(l.empty());
}

TEST(RequestLedger, InjectedParseIsHidden) {
  RequestLedger l;
  l.push('P', H::Skip);  // pglens prepares the statement on this server
  for (char r : std::string("BES")) l.push(r);
  auto v = respond(l, "12DCZ");
  EXPECT_EQ(v, (std::vector<V>{V::Drop, V::Forward, V::Forward, V::Forward, V::Forward}));
  EXPECT_TRUE(l.empty());
}

TEST(RequestLedger, CloseStandsInForAParse) {
  RequestLedger l;
  l.push('C', H::CloseAsParseComplete);
  l.push('S');
  EXPECT_EQ(respond(l, "3Z"), (std::vector<V>{V::AsParseComplete, V::Forward}));
}

TEST(RequestLedger, ErrorSkipsToSync) {
  RequestLedger l;
  l.push('P', H::Skip);
  l.push('B');
  l.push('C', H::CloseAsParseComplete);
  l.push('E');
  l.push('S');
  // The injected Parse fails: the client sees the error, then only ReadyForQuery.
  EXPECT_EQ(respond(l, "E"), std::vector<V>{V::Forward});
  EXPECT_EQ(l.size(), 1u);
  EXPECT_EQ(respond(l, "Z"), std::vector<V>{V::Forward});
  EXPECT_TRUE(l.empty());
}

TEST(RequestLedger, SimpleQueryErrorWaitsForReadyForQuery) {
  RequestLedger l;
  l.push('Q');
  EXPECT_EQ(respond(l, "TDCE"), std::vector<V>(4, V::Forward));
  EXPECT_FALSE(l.empty());
  respond(l, "Z");
  EXPECT_TRUE(l.empty());
}

TEST(RequestLedger, AsynchronousMessagesAnswerNothing) {
  RequestLedger l;
  l.push('S');
  EXPECT_EQ(respond(l, "NAS"), std::vector<V>(3, V::Forward));
  EXPECT_EQ(l.size(), 1u);
}

TEST(RequestLedger, DeallocateBecomesCommandComplete) {
  RequestLedger l;
  l.push('Q', H::EmptyAsDeallocate);
  EXPECT_EQ(respond(l, "IZ"), (std::vector<V>{V::AsDeallocate, V::Forward}));
}

TEST(RequestLedger, CopyInsideExtendedExecute) {
  RequestLedger l;
  for (char r : std::string("PBES")) l.push(r);
  // CopyInResponse does not complete the Execute; CommandComplete does.
  EXPECT_EQ(respond(l, "12G"), std::vector<V>(3, V::Forward));
  EXPECT_EQ(l.size(), 2u);
  respond(l, "CZ");
  EXPECT_TRUE(l.empty());
}

TEST(RequestLedger, DescribeStatementWithParameters) {
  RequestLedger l;
  l.push('D');
  l.push('S');
  respond(l, "t");
  EXPECT_EQ(l.size(), 2u);
  respond(l, "nZ");
  EXPECT_TRUE(l.empty());
}

}  // namespace
}  // namespace pglens::session

namespace pglens::session {
namespace {
TEST(RequestLedger, FailedAndSkippedParsesAreReported) {
  RequestLedger l;
  l.push('P', RequestLedger::Handling::Pass, "pglens_a");
  l.push('P', RequestLedger::Handling::Skip, "pglens_b");
  l.push('B');
  l.push('S');
  l.on_response('E');  // pglens_a fails; pglens_b is skipped by the server
  EXPECT_EQ(l.take_unprepared(), (std::vector<std::string>{"pglens_a", "pglens_b"}));
  EXPECT_TRUE(l.take_unprepared().empty());
}
}  // namespace
}  // namespace pglens::session

namespace pglens::session {
namespace {
TEST(RequestLedger, TagsNameTheRequestEachResponseFinishes) {
  RequestLedger l;
  l.push('B');
  l.push('E', RequestLedger::Handling::Pass, {}, 7);
  l.push('E', RequestLedger::Handling::Pass, {}, 8);
  l.push('S');
  EXPECT_EQ(l.on_response('2').request, 'B');
  auto row = l.on_response('D');
  EXPECT_EQ(row.tag, 7u);
  EXPECT_FALSE(row.completes);
  auto done = l.on_response('C');
  EXPECT_EQ(done.tag, 7u);
  EXPECT_TRUE(done.completes);
  // The second Execute fails; nothing is skipped since the Sync is next.
  auto failed = l.on_response('E');
  EXPECT_EQ(failed.tag, 8u);
  EXPECT_TRUE(l.take_skipped_tags().empty());
}

TEST(RequestLedger, SkippedExecutesAreReported) {
  RequestLedger l;
  l.push('B');
  l.push('E', RequestLedger::Handling::Pass, {}, 1);
  l.push('B');
  l.push('E', RequestLedger::Handling::Pass, {}, 2);
  l.push('S');
  l.on_response('E');  // the first Bind fails: both Executes are skipped
  EXPECT_EQ(l.take_skipped_tags(), (std::vector<std::uint64_t>{1, 2}));
}

TEST(RequestLedger, AbandonReturnsTheTagsAReplayHandsOutAgain) {
  // A replay gives these tags to its Executes and Queries in order: a Describe's tag among them
  // would shift every one after it.
  RequestLedger l;
  l.push('P');
  l.push('D', RequestLedger::Handling::Pass, {}, 5);
  l.push('B');
  l.push('E', RequestLedger::Handling::Pass, {}, 6);
  l.push('S');
  l.push('Q', RequestLedger::Handling::Pass, {}, 7);
  EXPECT_EQ(l.abandon(), (std::vector<std::uint64_t>{6, 7}));
}
}  // namespace
}  // namespace pglens::session
