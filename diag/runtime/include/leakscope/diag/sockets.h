// A process's kernel sockets: every fd that is a socket, joined by inode with
// the kernel's tables /proc/PID/net/{tcp,tcp6,udp,udp6,unix} — the tables of
// that process's network namespace.
//
// The line parsers are pure functions (tested against golden /proc lines);
// `listOwnSockets()` and `listProcessSockets()` read /proc at the time of the
// call. Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "leakscope/diag/result.h"

namespace leakscope::diag {

struct Endpoint {
  std::string address;  // "127.0.0.1", "::1", "::ffff:10.0.0.1"; empty for none
  std::uint16_t port = 0;
  // "127.0.0.1:443", "[::1]:443"; "" when the address is empty.
  std::string str() const;
};

// One row of /proc/net/tcp or tcp6 (also udp/udp6, which share the format).
struct InetRow {
  Endpoint local;
  Endpoint remote;
  int state = 0;  // kernel TCP state number (TCP_ESTABLISHED = 1, ...)
  std::uint64_t inode = 0;
};

// One row of /proc/net/unix.
struct UnixRow {
  std::uint64_t inode = 0;
  int type = 0;   // SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_SEQPACKET = 5
  int state = 0;  // SS_UNCONNECTED = 1, SS_CONNECTING, SS_CONNECTED, SS_DISCONNECTING
  bool listening = false;
  std::string path;  // "" for unnamed; "@name" for the abstract namespace
};

// Parses one data line (not the header). nullopt when the line is malformed.
std::optional<InetRow> parseProcNetInetLine(std::string_view line, bool ipv6);
std::optional<UnixRow> parseProcNetUnixLine(std::string_view line);

// "ESTABLISHED", "CLOSE_WAIT", ...; "UNKNOWN(n)" for numbers the kernel may add.
std::string tcpStateName(int state);
std::string unixStateName(const UnixRow& row);

// A socket fd of this process.
struct OwnSocket {
  int fd = -1;
  std::uint64_t inode = 0;
  std::string protocol;  // "tcp", "tcp6", "udp", "udp6", "unix" or "other"
  Endpoint local;
  Endpoint remote;
  std::string state;  // TCP state name; for unix "LISTEN"/"CONNECTED"/...; "" if unknown
  std::string path;   // unix sockets only
  std::string peer;   // filled by namePeers(): core::peerName of this socket
};

// Enumerates /proc/self/fd and joins with the kernel tables. Sorted by fd.
Result<std::vector<OwnSocket>> listOwnSockets();
// The same for process `pid`, from the outside. An unreadable /proc/PID/fd
// (another user's process) is Errc::kPermission, a missing one Errc::kIo;
// the message names the directory.
Result<std::vector<OwnSocket>> listProcessSockets(int pid);

// The same, with the /proc directory given (tests point it at a fixture).
Result<std::vector<OwnSocket>> listSockets(const std::string& fd_dir, const std::string& net_dir);

// Maps remote endpoints to low-cardinality names for metrics ("apns", "mysql").
// Patterns: "IP:PORT", "[IPv6]:PORT", "IP" (any port), "*:PORT" (any address).
// First match wins. Which name a socket gets when no rule matches is
// core::peerName's rule, applied by namePeers(). Not thread-safe to modify;
// concurrent reads are fine.
class PeerNames {
 public:
  void add(std::string pattern, std::string name);
  // Parses "pattern=name,pattern=name"; error names the bad entry.
  static Result<PeerNames> parse(std::string_view spec);
  // The first matching rule's name; "" when none matches or there is no remote.
  std::string match(const Endpoint& remote) const;
  // match(), or "other" when no rule matches and "none" without a remote
  // (ignores accepted connections: namePeers() names those `inbound :PORT`).
  std::string nameFor(const Endpoint& remote) const;
  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    std::string address;  // "" = any
    int port = -1;        // -1 = any
    std::string name;
  };
  std::vector<Rule> rules_;
};

// Sets `peer` of every socket by core::peerName: `none` without a remote, the
// configured name, `inbound :PORT` when the local port is one of the TCP ports
// listening in `sockets`, else `other`. /metrics and the snapshot writer both
// name peers through here, so they agree with each other and with the CLI.
void namePeers(std::vector<OwnSocket>& sockets, const PeerNames& names);

}  // namespace leakscope::diag
