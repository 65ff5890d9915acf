// How a socket's peer is named: the one rule behind the `peer` label of
// /metrics (`leakscope_sockets`), the `peer` field the runtime writes beside
// each socket of a snapshot, and the socket groups of the `leakscope` CLI.
// Both sides take it from here so that a scrape and `leakscope sockets` call
// the same socket by the same name (docs/metrics.md, docs/snapshot-format.md).
//
// Names stay low-cardinality, as metric labels must: a configured name, the
// port of an accepted connection, or `other` — never a remote address.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace leakscope::core {

inline constexpr std::string_view kPeerNone = "none";    // no remote end
inline constexpr std::string_view kPeerOther = "other";  // a remote no rule names

// What the rule needs to know of one socket.
struct PeerFacts {
  // False for listening, unconnected and unix sockets: they have no remote.
  bool has_remote = false;
  // The name the first matching `peer_names` rule gives the remote; empty when
  // none matches.
  std::string_view configured;
  // The socket's local port when this process has a TCP socket listening on
  // it: the connection was accepted there, and its remote is a client's
  // ephemeral port, useless as a name.
  std::optional<std::uint16_t> listening_local_port;
};

// `none` without a remote; else the configured name; else `inbound :PORT` for
// a connection accepted on a listening port; else `other`.
std::string peerName(const PeerFacts& facts);

// True for the names peerName gives when no rule named the remote (`none`,
// `other`, `inbound :PORT`): a reader of an older snapshot, whose runtime
// wrote `other` for accepted connections, names those again by the rule.
bool isFallbackPeerName(std::string_view name);

}  // namespace leakscope::core
