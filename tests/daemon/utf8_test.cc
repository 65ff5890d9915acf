// Unit tests of daemon/src/utf8.h: a cut to a byte budget never ends inside
// a UTF-8 sequence, and drops nothing it does not have to.
#include "utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using pushdaemon::utf8Prefix;

TEST(Utf8Prefix, ShortTextIsKeptWhole) {
  EXPECT_EQ(utf8Prefix("BadDeviceToken", 64), "BadDeviceToken");
  EXPECT_EQ(utf8Prefix("", 0), "");
  EXPECT_EQ(utf8Prefix("\xC3\xA9", 2), "\xC3\xA9");
}

TEST(Utf8Prefix, ACutInsideASequenceDropsTheWholeSequence) {
  const std::string x63(63, 'x');
  // 2-byte é (C3 A9) across the 64-byte cut.
  EXPECT_EQ(utf8Prefix(x63 + "\xC3\xA9zz", 64), x63);
  // 3-byte € (E2 82 AC) cut after its first and after its second byte.
  EXPECT_EQ(utf8Prefix(x63 + "\xE2\x82\xAC", 64), x63);
  EXPECT_EQ(utf8Prefix(std::string(62, 'x') + "\xE2\x82\xAC", 64), std::string(62, 'x'));
  // 4-byte 😀 (F0 9F 98 80) cut after 1, 2 and 3 of its bytes.
  for (std::size_t before = 61; before <= 63; ++before) {
    const std::string prefix(before, 'x');
    EXPECT_EQ(utf8Prefix(prefix + "\xF0\x9F\x98\x80", 64), prefix) << before;
  }
}

TEST(Utf8Prefix, ACutBetweenSequencesKeepsEverythingBeforeIt) {
  const std::string x62(62, 'x');
  EXPECT_EQ(utf8Prefix(x62 + "\xC3\xA9\xC3\xA9", 64), x62 + "\xC3\xA9");
  EXPECT_EQ(utf8Prefix(std::string(64, 'x') + "\xC3\xA9", 64), std::string(64, 'x'));
  // All multibyte: "ééé" (6 bytes) to 5 bytes keeps two characters.
  EXPECT_EQ(utf8Prefix("\xC3\xA9\xC3\xA9\xC3\xA9", 5), "\xC3\xA9\xC3\xA9");
}

TEST(Utf8Prefix, InvalidInputNeverMakesItBackUpMoreThanOneSequence) {
  // A run of stray continuation bytes: at most 3 are backed over.
  const std::string s = "ab" + std::string(10, '\x80');
  EXPECT_EQ(utf8Prefix(s, 8).size(), 5u);
}

}  // namespace
