#include "leakscope/diag/sockets.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "test_support.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

namespace leakscope::diag {
namespace {

std::vector<std::string> dataLines(const std::string& name) {
  std::ifstream in(std::string(LEAKSCOPE_TEST_DATA) + "/proc/" + name);
  std::vector<std::string> lines;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

TEST(ProcNetTcp, DecodesIpv4LinesFromGoldenData) {
  const auto lines = dataLines("tcp");
  ASSERT_EQ(lines.size(), 4u);

  auto listen = parseProcNetInetLine(lines[0], false);
  ASSERT_TRUE(listen.has_value());
  EXPECT_EQ(listen->local.str(), "127.0.0.1:8080");
  EXPECT_EQ(listen->remote.str(), "0.0.0.0:0");
  EXPECT_EQ(tcpStateName(listen->state), "LISTEN");
  EXPECT_EQ(listen->inode, 12345u);

  // The seed's picture: an ESTABLISHED connection to Apple's 17.x:443.
  auto apns = parseProcNetInetLine(lines[1], false);
  ASSERT_TRUE(apns.has_value());
  EXPECT_EQ(apns->local.str(), "10.0.2.15:50000");
  EXPECT_EQ(apns->remote.str(), "17.188.16.44:443");
  EXPECT_EQ(tcpStateName(apns->state), "ESTABLISHED");
  EXPECT_EQ(apns->inode, 23456u);

  auto close_wait = parseProcNetInetLine(lines[2], false);
  ASSERT_TRUE(close_wait.has_value());
  EXPECT_EQ(close_wait->remote.str(), "10.10.10.10:3306");
  EXPECT_EQ(tcpStateName(close_wait->state), "CLOSE_WAIT");

  auto time_wait = parseProcNetInetLine(lines[3], false);
  ASSERT_TRUE(time_wait.has_value());
  EXPECT_EQ(tcpStateName(time_wait->state), "TIME_WAIT");
  EXPECT_EQ(time_wait->inode, 0u);  // TIME_WAIT sockets have no inode
}

TEST(ProcNetTcp, DecodesIpv6LinesFromGoldenData) {
  const auto lines = dataLines("tcp6");
  ASSERT_EQ(lines.size(), 3u);
  auto loop = parseProcNetInetLine(lines[0], true);
  ASSERT_TRUE(loop.has_value());
  EXPECT_EQ(loop->local.str(), "[::1]:8080");
  EXPECT_EQ(tcpStateName(loop->state), "LISTEN");

  auto mapped = parseProcNetInetLine(lines[1], true);
  ASSERT_TRUE(mapped.has_value());
  EXPECT_EQ(mapped->local.str(), "[::ffff:127.0.0.1]:42000");
  EXPECT_EQ(mapped->remote.str(), "[::ffff:127.0.0.1]:3306");
  EXPECT_EQ(mapped->inode, 56789u);

  auto global = parseProcNetInetLine(lines[2], true);
  ASSERT_TRUE(global.has_value());
  EXPECT_EQ(global->local.str(), "[2001:db8::1]:49152");
  EXPECT_EQ(global->remote.str(), "[2001:db8::2]:443");
  EXPECT_EQ(tcpStateName(global->state), "CLOSE_WAIT");
}

TEST(ProcNetUnix, DecodesLinesFromGoldenData) {
  const auto lines = dataLines("unix");
  ASSERT_EQ(lines.size(), 3u);
  auto listening = parseProcNetUnixLine(lines[0]);
  ASSERT_TRUE(listening.has_value());
  EXPECT_EQ(listening->inode, 78901u);
  EXPECT_EQ(unixStateName(*listening), "LISTEN");
  EXPECT_EQ(listening->path, "/run/leakscope test.sock");  // spaces kept

  auto connected = parseProcNetUnixLine(lines[1]);
  ASSERT_TRUE(connected.has_value());
  EXPECT_EQ(unixStateName(*connected), "CONNECTED");
  EXPECT_EQ(connected->path, "");

  auto abstract = parseProcNetUnixLine(lines[2]);
  ASSERT_TRUE(abstract.has_value());
  EXPECT_EQ(abstract->type, 2);
  EXPECT_EQ(abstract->path, "@leakscope-abstract");
}

TEST(ProcNetUnix, APathMadeOfDigitsOfTheInodeIsReadWhole) {
  auto row = parseProcNetUnixLine("0000000000000000: 00000002 00000000 00010000 0001 01 12345 45");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->inode, 12345u);
  EXPECT_EQ(row->path, "45");
}

TEST(ProcNetTcp, RejectsMalformedLines) {
  EXPECT_FALSE(parseProcNetInetLine("", false).has_value());
  EXPECT_FALSE(parseProcNetInetLine("   0: 0100007F:1F90", false).has_value());
  // An IPv6-width address read as IPv4 and the reverse.
  const auto v6 = dataLines("tcp6");
  EXPECT_FALSE(parseProcNetInetLine(v6[0], false).has_value());
  const auto v4 = dataLines("tcp");
  EXPECT_FALSE(parseProcNetInetLine(v4[0], true).has_value());
  EXPECT_FALSE(
      parseProcNetInetLine("   0: 0100007G:1F90 00000000:0000 0A 0:0 0:0 0 0 0 12345", false)
          .has_value());
  EXPECT_EQ(tcpStateName(42), "UNKNOWN(42)");
}

TEST(ListSockets, JoinsFdsWithTablesFromFixture) {
  const std::string dir = std::string(LEAKSCOPE_TEST_DATA) + "/proc";
  auto sockets = listSockets(dir + "/fd", dir);
  ASSERT_TRUE(sockets.ok()) << sockets.error().message;
  // fds 3..11 are sockets; 12 (/dev/null) and 13 (pipe) are not.
  ASSERT_EQ(sockets->size(), 9u);
  EXPECT_EQ((*sockets)[0].fd, 3);
  EXPECT_EQ((*sockets)[0].protocol, "tcp");
  EXPECT_EQ((*sockets)[0].state, "LISTEN");
  EXPECT_EQ((*sockets)[0].remote.str(), "");  // listening: no remote
  EXPECT_EQ((*sockets)[1].remote.str(), "17.188.16.44:443");
  EXPECT_EQ((*sockets)[1].state, "ESTABLISHED");
  EXPECT_EQ((*sockets)[4].protocol, "tcp6");
  EXPECT_EQ((*sockets)[6].protocol, "unix");
  EXPECT_EQ((*sockets)[6].state, "LISTEN");
  EXPECT_EQ((*sockets)[6].path, "/run/leakscope test.sock");
  EXPECT_EQ((*sockets)[8].fd, 11);
  EXPECT_EQ((*sockets)[8].protocol, "other");  // inode in no table
}

TEST(ListSockets, MissingFdDirectoryIsAnErrorNamingIt) {
  auto r = listSockets("/nonexistent/fd", "/proc/self/net");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/fd"), std::string::npos);
}

TEST(ListOwnSockets, SeesARealEstablishedConnection) {
  leakscope::testing::LoopbackConnection conn;
  ASSERT_TRUE(conn.ok());
  auto sockets = listOwnSockets();
  ASSERT_TRUE(sockets.ok()) << sockets.error().message;
  bool found_client = false;
  bool found_listener = false;
  bool found_server = false;
  for (const OwnSocket& s : *sockets) {
    if (s.fd == conn.client) {
      found_client = true;
      EXPECT_EQ(s.protocol, "tcp");
      EXPECT_EQ(s.state, "ESTABLISHED");
      EXPECT_EQ(s.remote.str(), conn.address());
    }
    if (s.fd == conn.server) {
      found_server = true;
      EXPECT_EQ(s.state, "ESTABLISHED");
      EXPECT_EQ(s.local.str(), conn.address());
    }
    if (s.fd == conn.listener) {
      found_listener = true;
      EXPECT_EQ(s.state, "LISTEN");
      EXPECT_EQ(s.local.str(), conn.address());
      EXPECT_EQ(s.remote.str(), "");
    }
  }
  EXPECT_TRUE(found_client);
  EXPECT_TRUE(found_server);
  EXPECT_TRUE(found_listener);
}

TEST(ListProcessSockets, SeesAnotherProcessesConnectionsByItsFds) {
  leakscope::testing::LoopbackConnection conn;
  ASSERT_TRUE(conn.ok());
  leakscope::testing::ForkedChild child;  // holds the same three socket fds
  ASSERT_GT(child.pid(), 0);
  auto sockets = listProcessSockets(child.pid());
  ASSERT_TRUE(sockets.ok()) << sockets.error().message;
  std::map<int, std::string> states;
  for (const OwnSocket& s : *sockets) states[s.fd] = s.state + " " + s.local.str();
  EXPECT_EQ(states[conn.listener], "LISTEN " + conn.address());
  EXPECT_EQ(states[conn.server], "ESTABLISHED " + conn.address());
  EXPECT_EQ(states[conn.client].substr(0, 12), "ESTABLISHED ");
}

TEST(ListProcessSockets, AnotherUsersProcessIsAPermissionErrorNamingItsFdDirectory) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  const int parent = getpid();
  const int pid = fork();
  if (pid == 0) {
    // As nobody, this (root's) process's /proc/PID/fd is not ours to read.
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    auto r = listProcessSockets(parent);
    if (r.ok()) _exit(4);
    const bool named =
        r.error().message.find("/proc/" + std::to_string(parent) + "/fd") != std::string::npos;
    _exit(r.error().code == Errc::kPermission && named ? 0 : 5);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: setuid failed, 4: read anyway, 5: wrong error";
}

TEST(ListProcessSockets, AMissingProcessIsAnIoError) {
  auto r = listProcessSockets(0x3fffffff);  // above any pid_max
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kIo);
  EXPECT_NE(r.error().message.find("/proc/1073741823/fd"), std::string::npos) << r.error().message;
}

TEST(PeerNames, MapsEndpointsToLowCardinalityNames) {
  auto names = PeerNames::parse("127.0.0.1:8443=apns,*:3306=mysql,17.188.16.44=apple");
  ASSERT_TRUE(names.ok()) << names.error().message;
  EXPECT_EQ(names->nameFor({"127.0.0.1", 8443}), "apns");
  EXPECT_EQ(names->nameFor({"127.0.0.1", 8444}), "other");
  EXPECT_EQ(names->nameFor({"10.1.2.3", 3306}), "mysql");
  EXPECT_EQ(names->nameFor({"::ffff:127.0.0.1", 8443}), "apns");  // v4-mapped
  EXPECT_EQ(names->nameFor({"17.188.16.44", 443}), "apple");
  EXPECT_EQ(names->nameFor({"", 0}), "none");
  auto bad = PeerNames::parse("127.0.0.1:8443");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("127.0.0.1:8443"), std::string::npos);
}

OwnSocket tcp(std::string state, Endpoint local, Endpoint remote) {
  OwnSocket s;
  s.protocol = "tcp";
  s.state = std::move(state);
  s.local = std::move(local);
  s.remote = std::move(remote);
  return s;
}

TEST(NamePeers, AcceptedConnectionsAreInboundOnTheirListeningPort) {
  auto names = PeerNames::parse("10.0.0.7:3306=mysql");
  ASSERT_TRUE(names.ok());
  std::vector<OwnSocket> sockets = {
      tcp("LISTEN", {"0.0.0.0", 8080}, {}),
      tcp("ESTABLISHED", {"10.0.0.1", 8080}, {"10.0.0.9", 51000}),   // accepted
      tcp("ESTABLISHED", {"10.0.0.1", 40000}, {"10.0.0.7", 3306}),   // named
      tcp("ESTABLISHED", {"10.0.0.1", 40001}, {"17.188.1.1", 443}),  // unnamed
  };
  OwnSocket unix_socket;
  unix_socket.protocol = "unix";
  sockets.push_back(unix_socket);
  namePeers(sockets, *names);
  EXPECT_EQ(sockets[0].peer, "none");
  EXPECT_EQ(sockets[1].peer, "inbound :8080");
  EXPECT_EQ(sockets[2].peer, "mysql");
  EXPECT_EQ(sockets[3].peer, "other");
  EXPECT_EQ(sockets[4].peer, "none");
}

}  // namespace
}  // namespace leakscope::diag
