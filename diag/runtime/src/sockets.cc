#include "leakscope/diag/sockets.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>
#include <unordered_map>

#include "leakscope/core/peer_name.h"
#include "leakscope/core/unique_fd.h"
#include "leakscope/diag/process.h"

namespace leakscope::diag {
namespace {

// Splits on runs of spaces.
std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\n') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

template <class T>
bool parseHex(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc() && p == s.data() + s.size();
}

template <class T>
bool parseDec(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 10);
  return ec == std::errc() && p == s.data() + s.size();
}

// The kernel prints each 32-bit word of the address with %08X of the value as
// it sits in memory (network order bytes read as a native integer). Copying
// the parsed native integer back to memory restores the network-order bytes,
// on little- and big-endian hosts alike.
bool parseInetEndpoint(std::string_view s, bool ipv6, Endpoint& out) {
  const std::size_t colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view addr = s.substr(0, colon);
  const std::string_view port = s.substr(colon + 1);
  if (port.size() != 4 || !parseHex(port, out.port)) return false;
  const std::size_t words = ipv6 ? 4 : 1;
  if (addr.size() != words * 8) return false;
  unsigned char bytes[16];
  for (std::size_t w = 0; w < words; ++w) {
    std::uint32_t v = 0;
    if (!parseHex(addr.substr(w * 8, 8), v)) return false;
    std::memcpy(bytes + w * 4, &v, 4);
  }
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(ipv6 ? AF_INET6 : AF_INET, bytes, buf, sizeof buf) == nullptr) return false;
  out.address = buf;
  return true;
}

bool isUnspecified(const Endpoint& e) {
  return e.address.empty() || e.address == "0.0.0.0" || e.address == "::";
}

std::string readLink(const std::string& path) {
  char buf[256];
  const ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<std::size_t>(n));
}

struct Tables {
  std::unordered_map<std::uint64_t, std::pair<std::string, InetRow>> inet;
  std::unordered_map<std::uint64_t, UnixRow> unix_rows;
};

void readInetTable(const std::string& path, const char* protocol, bool ipv6, Tables& t) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return;  // header; a missing table (no IPv6) is fine
  while (std::getline(in, line)) {
    if (auto row = parseProcNetInetLine(line, ipv6)) {
      if (row->inode != 0) t.inet.emplace(row->inode, std::make_pair(protocol, *row));
    }
  }
}

void readUnixTable(const std::string& path, Tables& t) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return;
  while (std::getline(in, line)) {
    if (auto row = parseProcNetUnixLine(line)) t.unix_rows.emplace(row->inode, *row);
  }
}

// The socket fds in `fd_dir` (a /proc/PID/fd), with their inodes; the rest
// of each OwnSocket is filled in from the /proc/net tables.
Result<std::vector<OwnSocket>> socketFds(const std::string& fd_dir) {
  std::vector<OwnSocket> out;
  const core::UniqueDir d(opendir(fd_dir.c_str()));
  if (d == nullptr) {
    const int err = errno;
    return Error{err == EACCES || err == EPERM ? Errc::kPermission : Errc::kIo,
                 fd_dir + ": " + std::strerror(err)};
  }
  while (dirent* e = readdir(d.get())) {
    int fd = 0;
    if (!parseDec(std::string_view(e->d_name), fd)) continue;
    const std::string target = readLink(fd_dir + "/" + e->d_name);
    // "socket:[12345]"
    if (target.rfind("socket:[", 0) != 0 || target.back() != ']') continue;
    OwnSocket s;
    s.fd = fd;
    if (!parseDec(std::string_view(target).substr(8, target.size() - 9), s.inode)) continue;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

std::string Endpoint::str() const {
  if (address.empty()) return {};
  if (address.find(':') != std::string::npos) {
    return "[" + address + "]:" + std::to_string(port);
  }
  return address + ":" + std::to_string(port);
}

std::optional<InetRow> parseProcNetInetLine(std::string_view line, bool ipv6) {
  // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
  const auto f = fields(line);
  if (f.size() < 10) return std::nullopt;
  if (f[0].empty() || f[0].back() != ':') return std::nullopt;
  InetRow row;
  if (!parseInetEndpoint(f[1], ipv6, row.local)) return std::nullopt;
  if (!parseInetEndpoint(f[2], ipv6, row.remote)) return std::nullopt;
  if (f[3].size() != 2 || !parseHex(f[3], row.state)) return std::nullopt;
  if (!parseDec(f[9], row.inode)) return std::nullopt;
  return row;
}

std::optional<UnixRow> parseProcNetUnixLine(std::string_view line) {
  // Num RefCount Protocol Flags Type St Inode Path
  const auto f = fields(line);
  if (f.size() < 7) return std::nullopt;
  if (f[0].empty() || f[0].back() != ':') return std::nullopt;
  UnixRow row;
  std::uint32_t flags = 0;
  if (!parseHex(f[3], flags)) return std::nullopt;
  if (!parseHex(f[4], row.type)) return std::nullopt;
  if (!parseHex(f[5], row.state)) return std::nullopt;
  if (!parseDec(f[6], row.inode)) return std::nullopt;
  row.listening = (flags & 0x10000u) != 0;  // __SO_ACCEPTCON
  if (f.size() >= 8) {
    // The path may contain spaces: take the rest of the line from its start.
    std::string_view rest = line.substr(static_cast<std::size_t>(f[7].data() - line.data()));
    while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
    row.path = std::string(rest);
  }
  return row;
}

std::string tcpStateName(int state) {
  static const char* const kNames[] = {
      nullptr, "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",   "TIME_WAIT",
      "CLOSE", "CLOSE_WAIT",  "LAST_ACK", "LISTEN",   "CLOSING",   "NEW_SYN_RECV"};
  if (state >= 1 && state <= 12) return kNames[state];
  return "UNKNOWN(" + std::to_string(state) + ")";
}

std::string unixStateName(const UnixRow& row) {
  if (row.listening) return "LISTEN";
  switch (row.state) {
    case 1:
      return "UNCONNECTED";
    case 2:
      return "CONNECTING";
    case 3:
      return "CONNECTED";
    case 4:
      return "DISCONNECTING";
    default:
      return "UNKNOWN(" + std::to_string(row.state) + ")";
  }
}

Result<std::vector<OwnSocket>> listSockets(const std::string& fd_dir, const std::string& net_dir) {
  auto fds = socketFds(fd_dir);
  if (!fds.ok() || fds->empty()) return fds;
  std::vector<OwnSocket>& out = *fds;

  Tables t;
  readInetTable(net_dir + "/tcp", "tcp", false, t);
  readInetTable(net_dir + "/tcp6", "tcp6", true, t);
  readInetTable(net_dir + "/udp", "udp", false, t);
  readInetTable(net_dir + "/udp6", "udp6", true, t);
  readUnixTable(net_dir + "/unix", t);

  for (OwnSocket& s : out) {
    if (auto it = t.inet.find(s.inode); it != t.inet.end()) {
      const auto& [protocol, row] = it->second;
      s.protocol = protocol;
      s.local = row.local;
      if (!isUnspecified(row.remote) || row.remote.port != 0) s.remote = row.remote;
      if (protocol[0] == 't') {
        s.state = tcpStateName(row.state);
      } else {
        s.state = s.remote.address.empty() ? "UNCONNECTED" : "CONNECTED";
      }
    } else if (auto u = t.unix_rows.find(s.inode); u != t.unix_rows.end()) {
      s.protocol = "unix";
      s.state = unixStateName(u->second);
      s.path = u->second.path;
    } else {
      s.protocol = "other";  // netlink, packet, or a socket in another namespace
    }
  }
  std::sort(out.begin(), out.end(),
            [](const OwnSocket& a, const OwnSocket& b) { return a.fd < b.fd; });
  return fds;
}

Result<std::vector<OwnSocket>> listOwnSockets() { return listProcessSockets(0); }

Result<std::vector<OwnSocket>> listProcessSockets(int pid) {
  const std::string dir = procDir(pid);
  return listSockets(dir + "/fd", dir + "/net");
}

void PeerNames::add(std::string pattern, std::string name) {
  Rule r;
  r.name = std::move(name);
  std::string_view p = pattern;
  if (!p.empty() && p.front() == '[') {
    const std::size_t close = p.find(']');
    r.address = std::string(p.substr(1, close - 1));
    p = close == std::string_view::npos ? std::string_view{} : p.substr(close + 1);
    if (!p.empty() && p.front() == ':') parseDec(p.substr(1), r.port);
  } else if (const std::size_t colon = p.rfind(':');
             colon != std::string_view::npos && p.find(':') == colon) {
    r.address = std::string(p.substr(0, colon));
    parseDec(p.substr(colon + 1), r.port);
  } else {
    r.address = std::string(p);
  }
  if (r.address == "*") r.address.clear();
  rules_.push_back(std::move(r));
}

Result<PeerNames> PeerNames::parse(std::string_view spec) {
  PeerNames names;
  std::size_t pos = 0;
  while (pos < spec.size()) {
    std::size_t comma = spec.find(',', pos);
    if (comma == std::string_view::npos) comma = spec.size();
    const std::string_view entry = spec.substr(pos, comma - pos);
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == entry.size()) {
      return Error{Errc::kInvalidArgument,
                   "peer name entry '" + std::string(entry) + "' is not PATTERN=NAME"};
    }
    names.add(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    pos = comma + 1;
  }
  return names;
}

std::string PeerNames::match(const Endpoint& remote) const {
  if (remote.address.empty()) return {};
  // An IPv4-mapped IPv6 address matches rules written for its IPv4 form.
  std::string_view v4;
  if (remote.address.rfind("::ffff:", 0) == 0 && remote.address.find('.') != std::string::npos) {
    v4 = std::string_view(remote.address).substr(7);
  }
  for (const Rule& r : rules_) {
    if (r.port >= 0 && r.port != remote.port) continue;
    if (!r.address.empty() && r.address != remote.address && r.address != v4) continue;
    return r.name;
  }
  return {};
}

std::string PeerNames::nameFor(const Endpoint& remote) const {
  core::PeerFacts facts;
  facts.has_remote = !remote.address.empty();
  const std::string configured = match(remote);
  facts.configured = configured;
  return core::peerName(facts);
}

void namePeers(std::vector<OwnSocket>& sockets, const PeerNames& names) {
  std::set<std::uint16_t> listening;
  for (const OwnSocket& s : sockets) {
    if (s.state == "LISTEN" && s.protocol.rfind("tcp", 0) == 0) listening.insert(s.local.port);
  }
  for (OwnSocket& s : sockets) {
    core::PeerFacts facts;
    facts.has_remote = s.protocol != "unix" && !s.remote.address.empty();
    const std::string configured = facts.has_remote ? names.match(s.remote) : std::string();
    facts.configured = configured;
    if (listening.count(s.local.port) != 0) facts.listening_local_port = s.local.port;
    s.peer = core::peerName(facts);
  }
}

}  // namespace leakscope::diag
