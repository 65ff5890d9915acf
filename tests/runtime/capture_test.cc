// Capture: a snapshot of another process, from the outside (capture.h).
// The processes are forked copies of this test, so what they hold is known.
#include "leakscope/diag/capture.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace leakscope::diag {
namespace {

using nlohmann::json;
using testing::eventually;
using testing::ForkedChild;
using testing::LoopbackConnection;
using testing::TempDir;

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  return out;
}

TEST(Capture, RefusesWhatIsNotALiveProcess) {
  auto zero = Capture::open(0);
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.error().message.find("not a pid"), std::string::npos) << zero.error().message;

  auto missing = Capture::open(0x3fffffff);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "no process with pid 1073741823");

  ForkedChild gone(true);
  ASSERT_TRUE(eventually([&] { return gone.zombie(); }, 5000));
  auto zombie = Capture::open(gone.pid());
  ASSERT_FALSE(zombie.ok());
  EXPECT_NE(zombie.error().message.find("has exited"), std::string::npos) << zombie.error().message;
}

TEST(Capture, WritesASnapshotOfTheOtherProcess) {
  LoopbackConnection conn;
  ASSERT_TRUE(conn.ok());
  ForkedChild child;
  auto c = Capture::open(child.pid());
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->alive());
  const std::string comm = testing::readFile("/proc/" + std::to_string(child.pid()) + "/comm");
  EXPECT_EQ(c->name(), comm.substr(0, comm.find('\n')) + "." + std::to_string(child.pid()));

  TempDir tmp;
  const std::string dir = tmp.path() + "/captures";
  auto info = c->write(dir, "leakscope capture");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->path, dir + "/" + c->name() + ".000001.lsnap");
  struct stat st {};
  ASSERT_EQ(stat(info->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  std::ifstream in(info->path);
  const json doc = json::parse(in);
  EXPECT_EQ(doc["format"], "leakscope-snapshot");
  EXPECT_EQ(doc["name"], c->name());
  EXPECT_EQ(doc["trigger"]["reason"], "capture");
  EXPECT_EQ(doc["trigger"]["detail"], "leakscope capture");
  EXPECT_EQ(doc["process"]["pid"], child.pid());
  EXPECT_EQ(doc["process"]["threads"], 1);
  EXPECT_TRUE(doc["process"].contains("memory_limit_bytes"));
  EXPECT_EQ(doc["allocator"], json({{"available", false}}));
  EXPECT_EQ(doc["tracked"], json::array());
  EXPECT_EQ(doc["heap"]["available"], false);
  EXPECT_EQ(doc["heap"]["reason"], "captured from outside the process: no heap profile");
  std::map<int, std::string> states;
  for (const auto& s : doc["sockets"]) states[s["fd"]] = s["state"];
  EXPECT_EQ(states[conn.listener], "LISTEN");
  EXPECT_EQ(states[conn.client], "ESTABLISHED");
  EXPECT_EQ(states[conn.server], "ESTABLISHED");
  EXPECT_EQ(info->sockets, doc["sockets"].size());

  // The next capture of the same process continues the sequence.
  auto second = c->write(dir, "again");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->sequence, 2u);
}

TEST(Capture, AProcessThatExitsBeforeTheFileIsCompleteLeavesNothing) {
  auto child = std::make_unique<ForkedChild>();
  auto c = Capture::open(child->pid());
  ASSERT_TRUE(c.ok()) << c.error().message;
  kill(child->pid(), SIGKILL);
  ASSERT_TRUE(eventually([&] { return child->zombie(); }, 5000));
  EXPECT_FALSE(c->alive());
  TempDir tmp;
  auto info = c->write(tmp.path(), "leakscope capture");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().message, "process " + std::to_string(child->pid()) +
                                      " exited during the capture; nothing was written");
  EXPECT_TRUE(entries(tmp.path()).empty()) << "left behind: " << entries(tmp.path()).front();
}

TEST(Capture, HoldsOpenTellsAFileTheProcessHasOpenFromOneItHasNot) {
  TempDir tmp;
  const std::string open_file = tmp.path() + "/open";
  const std::string closed_file = tmp.path() + "/closed";
  testing::writeFile(open_file, "x");
  testing::writeFile(closed_file, "y");
  const int fd = ::open(open_file.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ForkedChild child;  // holds `fd` too
  ::close(fd);
  auto c = Capture::open(child.pid());
  ASSERT_TRUE(c.ok());
  auto held = c->holdsOpen(open_file);
  ASSERT_TRUE(held.ok()) << held.error().message;
  EXPECT_TRUE(*held);
  auto not_held = c->holdsOpen(closed_file);
  ASSERT_TRUE(not_held.ok());
  EXPECT_FALSE(*not_held);
  EXPECT_FALSE(c->holdsOpen(tmp.path() + "/missing").ok());
}

}  // namespace
}  // namespace leakscope::diag
