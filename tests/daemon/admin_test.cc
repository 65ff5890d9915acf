// The token-file parser behind pushdaemon-admin load-tokens: every bad line
// is reported as FILE:LINE with what is wrong, and a file with any bad line
// yields nothing to load.
#include "admin.h"

#include <sstream>

#include "gtest/gtest.h"

namespace pushdaemon {
namespace {

TEST(TokenFile, GoodLinesCommentsAndBlanks) {
  std::istringstream in("# tokens\n\napns 00ff\nfcm abc:DEF-1_2\r\n");
  auto r = parseTokenFile(in, "t.txt");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].platform, "apns");
  EXPECT_EQ((*r)[0].token, "00ff");
  EXPECT_EQ((*r)[1].token, "abc:DEF-1_2");
}

TEST(TokenFile, EveryBadLineIsNamedAndNothingIsLoaded) {
  std::istringstream in("apns 00ff\nblackberry 12\nfcm\napns xyz\nfcm a b\n");
  auto r = parseTokenFile(in, "t.txt");
  ASSERT_FALSE(r.ok());
  const std::string& e = r.error().message;
  EXPECT_NE(e.find("t.txt:2: unknown platform 'blackberry' (expected apns or fcm)"),
            std::string::npos);
  EXPECT_NE(e.find("t.txt:3: empty token"), std::string::npos);
  EXPECT_NE(e.find("t.txt:4: APNs token is not hexadecimal"), std::string::npos);
  EXPECT_NE(e.find("t.txt:5: expected 'PLATFORM TOKEN', found more fields"), std::string::npos);
  EXPECT_NE(e.find("4 bad line(s); nothing was loaded"), std::string::npos);
}

}  // namespace
}  // namespace pushdaemon
