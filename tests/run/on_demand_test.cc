// The agent costs nothing until asked (issue #15): under `leakscope run` a
// program gets no thread of leakscope's until the first snapshot is asked
// for, and that first snapshot comes wherever the program is — parked in a
// system call, spinning in its own code, deep in malloc, or with its main
// thread in pthread_join (tests/run/programs/busy.c). The jobs on a clock
// come from `leakscope-watch`, the watcher `run` starts: interval snapshots,
// and memory-pressure snapshots before the OOM kill.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "memory_cgroup.h"
#include "test_support.h"

namespace leakscope {
namespace {

using nlohmann::json;
using testing::Child;
using testing::eventually;
using testing::TempDir;

const std::string kLeakscope = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope";
const std::string kBusy = std::string(LEAKSCOPE_RUN_PROGRAMS) + "/busy";

json load(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in, nullptr, false);
}

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

TEST(OnDemand, IntervalSnapshotsComeFromTheWatcher) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/snaps";
  Child child({kLeakscope, "run", "--snapshot-dir", dir, "--interval", "300ms", "--", kBusy});
  ASSERT_TRUE(child.waitForLine("busy pid=")) << child.err();
  ASSERT_TRUE(eventually([&] { return testing::lsnapFiles(dir).size() >= 2; })) << child.err();
  for (const std::string& f : testing::lsnapFiles(dir)) {
    const json snap = load(f);
    ASSERT_FALSE(snap.is_discarded()) << f;
    EXPECT_EQ(snap["trigger"]["reason"], "interval") << f;
    EXPECT_EQ(snap["trigger"]["detail"], "interval (leakscope-watch)") << f;
  }
}

// The crossing the snapshot recorded: "...; crossed 90%" -> 90 (or -1).
int crossedPercent(const json& snap) {
  if (snap["trigger"]["reason"] != "memory_pressure") return -1;
  std::smatch m;
  const std::string detail = snap["trigger"]["detail"];
  return std::regex_search(detail, m, std::regex("crossed (\\d+)%")) ? std::stoi(m[1]) : -1;
}

TEST(OnDemand, TheWatcherAsksForMemoryPressureSnapshotsBeforeTheKill) {
  constexpr std::uint64_t kLimit = 160ull << 20;
  std::string why;
  const auto cgroup = testing::MemoryCgroup::create(kLimit, why);
  if (cgroup == nullptr) GTEST_SKIP() << "no memory cgroup for this test: " << why;
  TempDir tmp;
  const std::string dir = tmp.path() + "/snaps";
  // The shell joins the cgroup and becomes `run`, which becomes the program:
  // 10 MiB/s, so each 10 % of the limit takes longer than the watcher's
  // one-second check and both the 80 % and the 90 % crossings are seen; an
  // interval snapshot every 2 s gives `trend` evenly spaced points along the
  // way (it judges growth per interval: mixed with the pressure snapshots,
  // 1 s apart near the end, the series read as unsteady in one run of four).
  Child child({"/bin/sh", "-c", "echo $$ > \"$0\" && exec \"$@\"", cgroup->dir() + "/cgroup.procs",
               kLeakscope, "run", "--snapshot-dir", dir, "--interval", "2s", "--sample-period",
               "65536", "--", kBusy, "grow"});
  ASSERT_EQ(child.wait(60000), 128 + SIGKILL) << "expected the OOM kill; stderr:\n" << child.err();
  EXPECT_GE(cgroup->oomKills(), 1u);
  std::multiset<int> crossed;
  std::vector<std::string> intervals;
  for (const std::string& f : testing::lsnapFiles(dir)) {
    const json snap = load(f);
    ASSERT_FALSE(snap.is_discarded()) << f << " is not a complete snapshot";
    EXPECT_EQ(snap["process"]["memory_limit_bytes"], kLimit) << f;
    crossed.insert(crossedPercent(snap));
    if (snap["trigger"]["reason"] == "interval") intervals.push_back(f);
    // The detail is the process's own reading: "RSS 131.2 MiB = 82% of ...".
    if (snap["trigger"]["reason"] == "memory_pressure") {
      EXPECT_TRUE(snap["trigger"]["detail"].get<std::string>().starts_with("RSS "))
          << snap["trigger"].dump();
    }
  }
  // One reading may jump two fractions (it is then named by the higher), so:
  // two memory-pressure snapshots at >= 80 %, one of them at >= 90 %.
  const auto at80 = std::count_if(crossed.begin(), crossed.end(), [](int p) { return p >= 80; });
  EXPECT_TRUE(at80 >= 2 && *crossed.rbegin() >= 90)
      << "memory-pressure snapshots at >= 80 % and >= 90 % wanted; got "
      << ::testing::PrintToString(crossed);
  // What the dead program left names its leak.
  std::vector<std::string> argv = {kLeakscope, "trend", "--json"};
  argv.insert(argv.end(), intervals.begin(), intervals.end());
  ASSERT_GE(intervals.size(), 3u);
  Child trend(argv);
  ASSERT_EQ(trend.wait(60000), 1) << trend.err() << trend.out();
  EXPECT_NE(trend.out().find("grow_forever"), std::string::npos) << trend.out();
}

}  // namespace
}  // namespace leakscope
