#include "leakscope/core/peer_name.h"

namespace leakscope::core {
namespace {
constexpr std::string_view kInboundPrefix = "inbound :";
}  // namespace

std::string peerName(const PeerFacts& facts) {
  if (!facts.has_remote) return std::string(kPeerNone);
  if (!facts.configured.empty()) return std::string(facts.configured);
  if (facts.listening_local_port) {
    return std::string(kInboundPrefix) + std::to_string(*facts.listening_local_port);
  }
  return std::string(kPeerOther);
}

bool isFallbackPeerName(std::string_view name) {
  return name.empty() || name == kPeerNone || name == kPeerOther ||
         name.substr(0, kInboundPrefix.size()) == kInboundPrefix;
}

}  // namespace leakscope::core
