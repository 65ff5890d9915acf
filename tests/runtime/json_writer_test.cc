#include "json_writer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace leakscope::diag {
namespace {

TEST(JsonWriter, WritesNestedDocumentsThatParse) {
  std::string out;
  JsonWriter w(-1, &out);
  w.beginObject().field("a", 1).field("b", "x").key("c").beginArray();
  w.value(std::uint64_t{18446744073709551615u}).value(-5).value(1.5).value(true).null();
  w.endArray().key("d").beginObject().endObject().endObject();
  ASSERT_TRUE(w.flush());
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["a"], 1);
  EXPECT_EQ(j["b"], "x");
  EXPECT_EQ(j["c"][0].get<std::uint64_t>(), 18446744073709551615u);
  EXPECT_EQ(j["c"][1], -5);
  EXPECT_EQ(j["c"][2], 1.5);
  EXPECT_EQ(j["c"][3], true);
  EXPECT_TRUE(j["c"][4].is_null());
  EXPECT_TRUE(j["d"].is_object());
}

TEST(JsonWriter, EscapesControlCharactersQuotesAndBackslashes) {
  std::string out;
  JsonWriter w(-1, &out);
  const std::string nasty = std::string("a\"b\\c\n\t\x01") + '\0' + "end";
  w.beginObject().field("s", nasty).endObject();
  ASSERT_TRUE(w.flush());
  EXPECT_EQ(nlohmann::json::parse(out)["s"].get<std::string>(), nasty);
}

TEST(JsonWriter, ReplacesInvalidUtf8SoOutputAlwaysParses) {
  std::string out;
  JsonWriter w(-1, &out);
  // Valid 2/3/4-byte sequences are kept; a lone continuation byte, a
  // truncated sequence, an overlong '/', and a surrogate are replaced.
  const std::string label =
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x80 \xe2\x82 \xc0\xaf \xed\xa0\x80";
  w.beginObject().field("label", label).endObject();
  ASSERT_TRUE(w.flush());
  // nlohmann rejects raw invalid UTF-8, so parsing at all proves none got out.
  const auto s = nlohmann::json::parse(out)["label"].get<std::string>();
  const std::string r = "\xef\xbf\xbd";  // U+FFFD
  EXPECT_EQ(s, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 " + r + " " + r + r + " " + r + r + " " +
                   r + r + r);
}

TEST(JsonWriter, NonFiniteDoublesBecomeNull) {
  std::string out;
  JsonWriter w(-1, &out);
  w.beginArray().value(1.0 / 0.0).endArray();
  ASSERT_TRUE(w.flush());
  EXPECT_TRUE(nlohmann::json::parse(out)[0].is_null());
}

TEST(JsonWriter, KeepsTheFirstWriteError) {
  JsonWriter w(/*fd=*/1000000);  // not an open fd
  w.beginObject().field("x", std::string(100000, 'a')).endObject();
  EXPECT_FALSE(w.flush());
  EXPECT_EQ(w.error(), EBADF);
}

}  // namespace
}  // namespace leakscope::diag
