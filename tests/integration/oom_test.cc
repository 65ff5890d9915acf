// Snapshots before the OOM kill, end to end: the example program, leaking,
// runs in a memory cgroup this test creates (cgroup v2, or v1's memory
// controller where that is what the machine has); the kernel OOM-kills it;
// the memory_pressure snapshots it wrote on the way are on disk, valid, taken
// at the fractions they claim, and `leakscope trend` over the directory names
// the leak. Needs root and a cgroup file system; skips with the reason
// otherwise.
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
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

#include "test_support.h"

namespace leakscope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Child;
using testing::eventually;
using testing::readFile;
using testing::TempDir;

const std::string kExample = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope-example";
const std::string kLeakscope = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope";
constexpr std::uint64_t kLimit = 128ull << 20;

bool isFs(const std::string& path, long magic) {
  struct statfs s {};
  return ::statfs(path.c_str(), &s) == 0 && static_cast<long>(s.f_type) == magic;
}

// Writes `text` to a cgroup control file; false with errno's text in `why`.
bool writeControl(const std::string& path, const std::string& text, std::string& why) {
  std::ofstream out(path);
  out << text;
  out.flush();
  if (out) return true;
  why = "cannot write '" + text + "' to " + path + ": " + std::strerror(errno);
  return false;
}

// A memory cgroup of this test with a hard limit and no swap, removed by the
// destructor (after killing whatever is still in it), also when an assertion
// ends the test early.
class MemoryCgroup {
 public:
  // Null with the reason in `why` when this machine cannot give one.
  static std::unique_ptr<MemoryCgroup> create(std::uint64_t limit, std::string& why);
  ~MemoryCgroup();
  MemoryCgroup(const MemoryCgroup&) = delete;
  MemoryCgroup& operator=(const MemoryCgroup&) = delete;

  const std::string& dir() const { return dir_; }
  bool v2() const { return v2_; }
  // The kernel's count of OOM kills in this cgroup (v2 memory.events, v1
  // memory.oom_control).
  std::uint64_t oomKills() const;

 private:
  MemoryCgroup(std::string dir, bool v2) : dir_(std::move(dir)), v2_(v2) {}
  bool limit(std::uint64_t bytes, std::string& why) const;
  std::vector<int> pids() const;

  std::string dir_;
  bool v2_;
};

std::unique_ptr<MemoryCgroup> MemoryCgroup::create(std::uint64_t limit, std::string& why) {
  if (::geteuid() != 0) {
    why = "creating a cgroup needs root (euid " + std::to_string(::geteuid()) + ")";
    return nullptr;
  }
  std::string parent;
  bool v2 = false;
  if (isFs("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC)) {
    parent = "/sys/fs/cgroup";
    v2 = true;
    if (readFile(parent + "/cgroup.controllers").find("memory") == std::string::npos) {
      why = "cgroup v2 at /sys/fs/cgroup has no memory controller";
      return nullptr;
    }
    if (readFile(parent + "/cgroup.subtree_control").find("memory") == std::string::npos &&
        !writeControl(parent + "/cgroup.subtree_control", "+memory", why)) {
      return nullptr;
    }
  } else if (isFs("/sys/fs/cgroup/memory", CGROUP_SUPER_MAGIC)) {
    parent = "/sys/fs/cgroup/memory";
  } else {
    why = "neither cgroup v2 at /sys/fs/cgroup nor a v1 memory hierarchy at /sys/fs/cgroup/memory";
    return nullptr;
  }
  const std::string dir = parent + "/leakscope-oom-test-" + std::to_string(::getpid());
  if (::mkdir(dir.c_str(), 0755) != 0) {
    why = "cannot create " + dir + ": " + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<MemoryCgroup> g(new MemoryCgroup(dir, v2));
  if (!g->limit(limit, why)) return nullptr;  // the destructor removes it
  return g;
}

// A hard limit and no swap: with swap the leak would page out instead of
// meeting the OOM killer, and the test would take minutes.
bool MemoryCgroup::limit(std::uint64_t bytes, std::string& why) const {
  const std::string n = std::to_string(bytes);
  if (v2_) {
    if (!writeControl(dir_ + "/memory.max", n, why)) return false;
    return !fs::exists(dir_ + "/memory.swap.max") ||
           writeControl(dir_ + "/memory.swap.max", "0", why);
  }
  if (!writeControl(dir_ + "/memory.limit_in_bytes", n, why)) return false;
  // memory + swap, only where swap accounting is on; no swappiness either way.
  if (fs::exists(dir_ + "/memory.memsw.limit_in_bytes") &&
      !writeControl(dir_ + "/memory.memsw.limit_in_bytes", n, why)) {
    return false;
  }
  return writeControl(dir_ + "/memory.swappiness", "0", why);
}

std::vector<int> MemoryCgroup::pids() const {
  std::vector<int> out;
  std::istringstream in(readFile(dir_ + "/cgroup.procs"));
  int pid = 0;
  while (in >> pid) out.push_back(pid);
  return out;
}

std::uint64_t MemoryCgroup::oomKills() const {
  std::istringstream in(readFile(dir_ + (v2_ ? "/memory.events" : "/memory.oom_control")));
  std::string key;
  std::uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "oom_kill") return value;
  }
  return 0;
}

MemoryCgroup::~MemoryCgroup() {
  // Only processes this test started can be in it: the cgroup is its own.
  for (int pid : pids()) ::kill(pid, SIGKILL);
  eventually([&] { return pids().empty(); }, 5000);
  eventually([&] { return ::rmdir(dir_.c_str()) == 0 || errno == ENOENT; }, 5000);
}

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
