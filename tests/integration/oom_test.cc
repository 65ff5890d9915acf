// Snapshots before the OOM kill, end to end: the example program, leaking,
// runs in a memory cgroup this test creates (cgroup v2, or v1's memory
// controller where that is what the machine has); the kernel OOM-kills it;
// the memory_pressure snapshots it wrote on the way are on disk, valid, taken
// at the fractions they claim, and `leakscope trend` over the directory names
// the leak. Needs root and a cgroup file system; skips with the reason
// otherwise.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "memory_cgroup.h"
#include "test_support.h"

namespace leakscope {
namespace {

using nlohmann::json;
using testing::Child;
using testing::eventually;
using testing::MemoryCgroup;
using testing::readFile;
using testing::TempDir;

const std::string kExample = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope-example";
const std::string kLeakscope = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope";
constexpr std::uint64_t kLimit = 128ull << 20;

std::vector<std::string> snapshotFiles(const std::string& dir) { return testing::lsnapFiles(dir); }

// RSS as recorded in a memory_pressure snapshot, as a share of the limit it
// recorded; -1 for any other snapshot.
double pressureShare(const json& snap) {
  if (snap["trigger"]["reason"] != "memory_pressure") return -1;
  return snap["process"]["rss_bytes"].get<double>() /
         snap["process"]["memory_limit_bytes"].get<double>();
}

TEST(OomKill, MemoryPressureSnapshotsBeforeTheKillNameTheLeak) {
  std::string why;
  const auto cgroup = MemoryCgroup::create(kLimit, why);
  if (cgroup == nullptr) GTEST_SKIP() << "no memory cgroup for this test: " << why;
  TempDir tmp;
  const std::string snaps = tmp.path() + "/snaps";
  // The shell puts itself into the cgroup and becomes the example (exec keeps
  // the pid), so the example runs under the limit from its first byte.
  // 512 KiB leaked every ~20 ms: ~20 MiB/s, a few seconds to the limit, and
  // ~0.6 s between 80 % and 90 % for the 80 % snapshot to finish. 0.5 and
  // 0.65 give `trend` its three points (and the first snapshot, which loads
  // the symbol tables, happens before memory is tight).
  Child child({"/bin/sh",
               "-c",
               "echo $$ > \"$0\" && exec \"$@\"",
               cgroup->dir() + "/cgroup.procs",
               kExample,
               "--snapshot-dir",
               snaps,
               "--metrics-address",
               "",
               "--sample-period",
               "65536",
               "--leak-every",
               "1",
               "--connections",
               "1",
               "--interval-ms",
               "20",
               "--buffer-bytes",
               "524288",
               "--memory-pressure",
               "0.5,0.65,0.8,0.9,0.95",
               "--memory-check-interval-ms",
               "20"});
  const int status = child.wait(30000);
  ASSERT_EQ(status, 128 + SIGKILL) << "expected the OOM killer's SIGKILL; stderr:\n" << child.err();
  EXPECT_GE(cgroup->oomKills(), 1u) << "killed, but not by the OOM killer";

  // Every file is a complete snapshot (written to a temp file and renamed),
  // and the pressure ones recorded the cgroup's limit and crossed what they say.
  double highest = 0;
  int at_80 = 0;
  int at_90 = 0;
  const auto files = snapshotFiles(snaps);
  for (const auto& f : files) {
    std::ifstream in(f);
    const json snap = json::parse(in, nullptr, false);
    ASSERT_FALSE(snap.is_discarded()) << f << " is not valid JSON";
    ASSERT_EQ(snap["format"], "leakscope-snapshot") << f;
    EXPECT_EQ(snap["process"]["memory_limit_bytes"], kLimit) << f;
    EXPECT_EQ(snap["process"]["memory_limit_source"], cgroup->v2() ? "cgroup2" : "cgroup1") << f;
    const double share = pressureShare(snap);
    highest = std::max(highest, share);
    if (share >= 0.8) ++at_80;
    if (share >= 0.9) ++at_90;
  }
  EXPECT_GE(at_80, 2) << "want one snapshot at >= 80 % and another at >= 90 %; highest " << highest
                      << " in " << files.size() << " files";
  EXPECT_GE(at_90, 1) << "highest memory_pressure snapshot at " << highest;

  // The leak is named from the snapshots the dead process left behind.
  Child trend({kLeakscope, "trend", snaps, "--json"});
  ASSERT_EQ(trend.wait(30000), 1) << trend.err();
  const json report = json::parse(trend.out(), nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << trend.out();
  bool named = false;
  for (const auto& s : report["suspects"]) {
    named = named || (s["group"] == "tracked" && s["name"] == "example.connection");
  }
  EXPECT_TRUE(named) << report["suspects"].dump(2);
}

}  // namespace
}  // namespace leakscope
