// The agent costs nothing until asked (issue #15): under `leakscope run` a
// program gets no thread of leakscope's until the first snapshot is asked
// for, and that first snapshot comes wherever the program is — parked in a
// system call, spinning in its own code, deep in malloc, or with its main
// thread in pthread_join (tests/run/programs/busy.c).
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <memory>
#include <regex>
#include <string>

#include "test_support.h"

namespace leakscope {
namespace {

using testing::Child;
using testing::eventually;
using testing::TempDir;

const std::string kLeakscope = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope";

int threadsOf(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("Threads:")) return std::stoi(line.substr(8));
  }
  return -1;
}

struct Busy {
  TempDir tmp;
  std::string dir = tmp.path() + "/snaps";
  std::unique_ptr<Child> child;
  int pid = -1;

  explicit Busy(const std::string& mode) {
    child = std::make_unique<Child>(
        std::vector<std::string>{kLeakscope, "run", "--snapshot-dir", dir, "--",
                                 std::string(LEAKSCOPE_RUN_PROGRAMS) + "/busy", mode});
    const auto line = child->waitForLine("busy pid=");
    std::smatch m;
    if (line && std::regex_search(*line, m, std::regex("pid=(\\d+)"))) pid = std::stoi(m[1]);
  }
};

TEST(OnDemand, ASingleThreadedProgramHasNoThreadOfOursUntilTheFirstSnapshot) {
  Busy busy("idle");
  ASSERT_GT(busy.pid, 0) << busy.child->err();
  // Long enough for the watcher's first memory checks to have come and gone.
  usleep(1500 * 1000);
  EXPECT_EQ(threadsOf(busy.pid), 1) << "the agent started a thread before any snapshot";
  EXPECT_TRUE(testing::lsnapFiles(busy.dir).empty());
  kill(busy.pid, SIGUSR2);
  ASSERT_TRUE(eventually([&] { return testing::lsnapFiles(busy.dir).size() == 1; }))
      << busy.child->err();
  EXPECT_EQ(threadsOf(busy.pid), 2) << "the snapshot thread, started by the request";
  // And it stays: the second request needs no start.
  kill(busy.pid, SIGUSR2);
  ASSERT_TRUE(eventually([&] { return testing::lsnapFiles(busy.dir).size() == 2; }))
      << busy.child->err();
  EXPECT_EQ(threadsOf(busy.pid), 2);
}

void expectFirstSnapshotComes(const std::string& mode, int program_threads) {
  Busy busy(mode);
  ASSERT_GT(busy.pid, 0) << busy.child->err();
  ASSERT_TRUE(eventually([&] { return threadsOf(busy.pid) == program_threads; }));
  kill(busy.pid, SIGUSR2);
  ASSERT_TRUE(eventually([&] { return testing::lsnapFiles(busy.dir).size() == 1; }))
      << mode << ": no snapshot\n"
      << busy.child->err();
  const auto files = testing::lsnapFiles(busy.dir);
  Child show({kLeakscope, "show", files[0]});
  EXPECT_EQ(show.wait(60000), 0) << show.err();
  EXPECT_EQ(threadsOf(busy.pid), program_threads + 1);
  EXPECT_TRUE(busy.child->alive()) << busy.child->err();
}

TEST(OnDemand, TheFirstSnapshotComesWhileTheProgramSpinsInItsOwnCode) {
  expectFirstSnapshotComes("spin", 1);
}
TEST(OnDemand, TheFirstSnapshotComesWhileTheProgramIsMostlyInsideMalloc) {
  expectFirstSnapshotComes("malloc", 1);
}
TEST(OnDemand, TheFirstSnapshotComesWhileTheMainThreadWaitsInPthreadJoin) {
  expectFirstSnapshotComes("join", 2);
}

}  // namespace
}  // namespace leakscope
