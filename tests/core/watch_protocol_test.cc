#include "leakscope/core/watch_protocol.h"

#include <gtest/gtest.h>

namespace leakscope::core {
namespace {

TEST(WatchProtocol, AddressRoundTripsAndBadTextNamesTheVariable) {
  auto a = parseWatcherAddress(formatWatcherAddress({1234, 7}));
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->pid, 1234);
  EXPECT_EQ(a->fd, 7);
  for (const char* bad : {"", "1234", "1234:", ":7", "0:7", "12:-1", "12:7x", "x:7"}) {
    auto r = parseWatcherAddress(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("LEAKSCOPE_WATCHER='" + std::string(bad) + "'"),
              std::string::npos)
        << r.error().message;
  }
}

TEST(WatchProtocol, RequestsRoundTripAndOtherValuesAreNotOurs) {
  auto i = decodeWatchRequest(encodeWatchRequest({WatchKind::kInterval, 0}));
  ASSERT_TRUE(i.has_value());
  EXPECT_EQ(i->kind, WatchKind::kInterval);
  auto m = decodeWatchRequest(encodeWatchRequest({WatchKind::kMemoryPressure, 950}));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->kind, WatchKind::kMemoryPressure);
  EXPECT_EQ(m->permille, 950);
  for (int other : {0, 3, 0xff, -1, 1 | (5 << 8), 2, 2 | (1001 << 8)}) {
    EXPECT_FALSE(decodeWatchRequest(other).has_value()) << other;
  }
}

}  // namespace
}  // namespace leakscope::core
