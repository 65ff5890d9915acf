// The one rule that names a socket's peer for /metrics, snapshots and the CLI.
#include "leakscope/core/peer_name.h"

#include <gtest/gtest.h>

namespace leakscope::core {
namespace {

TEST(PeerName, NoneConfiguredInboundOrOther) {
  PeerFacts f;
  EXPECT_EQ(peerName(f), "none");  // listening, unconnected, unix
  f.listening_local_port = 8080;
  EXPECT_EQ(peerName(f), "none");  // a listener's own port is no peer
  f.has_remote = true;
  EXPECT_EQ(peerName(f), "inbound :8080");
  f.configured = "apns";
  EXPECT_EQ(peerName(f), "apns");  // a configured name wins
  f.configured = {};
  f.listening_local_port.reset();
  EXPECT_EQ(peerName(f), "other");
}

TEST(PeerName, FallbackNamesAreTheOnesNoRuleGave) {
  for (const char* name : {"", "none", "other", "inbound :8080"}) {
    EXPECT_TRUE(isFallbackPeerName(name)) << name;
  }
  for (const char* name : {"apns", "inbound", "others", "mysql"}) {
    EXPECT_FALSE(isFallbackPeerName(name)) << name;
  }
}

}  // namespace
}  // namespace leakscope::core
