// Bind values captured on the proxy thread and decoded on the analyzer's (no I/O).
#include "analyzer/bind_values.hpp"

#include <gtest/gtest.h>

#include "analyzer/event.hpp"
#include "analyzer/event_batch.hpp"
#include "protocol/messages.hpp"

namespace pglens::analyzer {
namespace {

namespace pp = pglens::protocol;
using Values = std::vector<std::optional<std::string>>;

// The body of `bind` after its two names (both empty here): what the tracker hands over.
pp::Bytes rest_of(const pp::Bind& bind) {
  pp::Bytes message;
  bind.encode(message);
  return pp::Bytes(message.begin() + 5 + 2, message.end());
}

pp::Bind bind_of(std::vector<std::int16_t> formats,
                 std::vector<std::optional<std::string>> values) {
  pp::Bind bind;
  bind.param_formats = std::move(formats);
  for (auto& v : values)
    bind.params.push_back(v ? std::optional<pp::Bytes>(pp::Bytes(v->begin(), v->end()))
                            : std::nullopt);
  bind.result_formats = {1, 1};
  return bind;
}

Values round_trip(const pp::Bind& bind) {
  std::string captured;
  EXPECT_TRUE(capture_bind_values(rest_of(bind), captured));
  Values out;
  decode_bind_values(captured, out);
  return out;
}

TEST(BindValues, TextBinaryNullAndEmptyValuesComeBackAsTheEventShowsThem) {
  auto bind = bind_of({0, 1, 0, 0}, {"42", std::string("\xbe\xef", 2), std::nullopt, ""});
  EXPECT_EQ(round_trip(bind), (Values{"42", "\\xbeef", std::nullopt, ""}));
  bind.param_formats = {1};  // one code for all
  EXPECT_EQ(round_trip(bind), (Values{"\\x3432", "\\xbeef", std::nullopt, "\\x"}));
  bind.param_formats = {};  // none: text
  EXPECT_EQ(round_trip(bind), (Values{"42", std::string("\xbe\xef", 2), std::nullopt, ""}));
}

TEST(BindValues, WithinTheBoundsTheCaptureIsTheValuesAsSentWithoutTheResultFormats) {
  auto bind = bind_of({0}, {"7", std::nullopt});
  auto rest = rest_of(bind);
  std::string captured;
  ASSERT_TRUE(capture_bind_values(rest, captured));
  std::size_t result_formats = 2 + 2 * 2;
  EXPECT_EQ(captured, std::string(rest.begin(), rest.end() - result_formats));
}

TEST(BindValues, CutToTheEventsBoundsInCountAndSize) {
  std::vector<std::optional<std::string>> values;
  std::vector<std::int16_t> formats;
  values.push_back(std::string(kMaxParameterBytes + 10, 't'));
  formats.push_back(0);
  values.push_back(std::string(kMaxParameterBytes, '\xab'));
  formats.push_back(1);
  values.push_back(std::nullopt);
  formats.push_back(0);
  for (std::size_t i = values.size(); i < kMaxParameters + 5; ++i) {
    values.push_back(std::to_string(i));
    formats.push_back(0);
  }
  auto out = round_trip(bind_of(formats, values));
  ASSERT_EQ(out.size(), kMaxParameters);
  EXPECT_EQ(out[0], std::string(kMaxParameterBytes, 't'));
  std::string hex = "\\x";
  for (std::size_t i = 0; i < kMaxParameterBytes / 2; ++i) hex += "ab";
  EXPECT_EQ(out[1], hex);
  EXPECT_EQ(out[2], std::nullopt);
  EXPECT_EQ(out.back(), std::to_string(kMaxParameters - 1));
}

TEST(BindValues, MalformedBindsCaptureNothing) {
  auto rest = rest_of(bind_of({0}, {"12345"}));
  std::string captured = "left over";
  const std::size_t values_end = 2 + 2 + 2 + 4 + 5;  // format count and code, count, length, value
  for (std::size_t cut = 0; cut < values_end; ++cut) {
    pp::Bytes shorter(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_FALSE(capture_bind_values(shorter, captured)) << cut;
    EXPECT_TRUE(captured.empty()) << cut;
  }
  pp::Bytes complete(rest.begin(), rest.begin() + values_end);
  EXPECT_TRUE(capture_bind_values(complete, captured));
  pp::Bytes hostile = {0xff, 0xff, 0, 1};  // 65,535 format codes announced, none there
  captured = "left over";
  EXPECT_FALSE(capture_bind_values(hostile, captured));
  EXPECT_TRUE(captured.empty());
  pp::Bytes huge = {0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 'x'};  // a 2 GB value, one byte there
  captured = "left over";
  EXPECT_FALSE(capture_bind_values(huge, captured));
  EXPECT_TRUE(captured.empty());
  Values out = {"stale"};
  decode_bind_values("", out);
  EXPECT_TRUE(out.empty());
}

TEST(BindValues, AnyNegativeLengthIsNull) {
  // Zero format codes, three values: lengths -1, -5 and INT32_MIN, no bytes after any.
  pp::Bytes rest = {0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb, 0x80, 0, 0, 0};
  std::string captured;
  ASSERT_TRUE(capture_bind_values(rest, captured));
  Values out;
  decode_bind_values(captured, out);
  EXPECT_EQ(out, (Values{std::nullopt, std::nullopt, std::nullopt}));
  // The same with a long value among them, so the values are cut and written again.
  pp::Bytes cut = {0, 0, 0, 2, 0x80, 0, 0, 0, 0, 0, 0, 200};
  cut.resize(cut.size() + 200, 'v');
  ASSERT_TRUE(capture_bind_values(cut, captured));
  decode_bind_values(captured, out);
  EXPECT_EQ(out, (Values{std::nullopt, std::string(kMaxParameterBytes, 'v')}));
}

TEST(BindValues, DecodingReusesTheStringsAndKeepsNothingOfTheLastValues) {
  Values out = {"a long value left from the last statement", std::nullopt, "x", "y"};
  std::string captured;
  ASSERT_TRUE(capture_bind_values(rest_of(bind_of({}, {std::nullopt, "b"})), captured));
  decode_bind_values(captured, out);
  EXPECT_EQ(out, (Values{std::nullopt, "b"}));
}

TEST(BindValues, TravelThroughABatchDecodedByTheReader) {
  std::string captured;
  ASSERT_TRUE(capture_bind_values(rest_of(bind_of({}, {"1", "two"})), captured));
  EventBatch batch;
  auto who = std::make_shared<SessionInfo>();
  who->session_id = 3;
  batch.start_session(who);
  ExecutionEvent event;
  event.sql = std::make_shared<const std::string>("SELECT $1, $2");
  event.parameters = {"ignored when Bind values are given"};
  event.rows = 1;
  batch.add(3, event, EventBatch::SteadyClock::now(), captured);
  event.parameters = {"as built", std::nullopt};  // an event built by hand (Analyzer::submit)
  batch.add(3, event, EventBatch::SteadyClock::now());
  EventReader reader;
  std::vector<Values> seen;
  reader.read(batch, [&](const ExecutionEvent& e) {
    seen.push_back(e.parameters);
    EXPECT_EQ(e.rows, 1u);
    EXPECT_EQ(*e.sql, "SELECT $1, $2");
  });
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], (Values{"1", "two"}));
  EXPECT_EQ(seen[1], (Values{"as built", std::nullopt}));
}

}  // namespace
}  // namespace pglens::analyzer
