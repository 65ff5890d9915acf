#include "leakscope/diag/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "test_support.h"

namespace leakscope::diag {
namespace {

TEST(ProcessStats, ReadsOwnFiguresFromProc) {
  auto before = readProcessStats();
  ASSERT_TRUE(before.ok()) << before.error().message;
  EXPECT_EQ(before->pid, getpid());
  EXPECT_NE(before->exe.find("process_test"), std::string::npos) << before->exe;
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  EXPECT_EQ(before->host, host);
  EXPECT_GT(before->rss_bytes, 0u);
  EXPECT_GT(before->start_time_unix, 1.6e9);
  EXPECT_GE(before->max_fds, before->open_fds);

  // Open three fds and start a thread: the figures follow.
  const int a = open("/dev/null", O_RDONLY);
  const int b = open("/dev/null", O_RDONLY);
  const int c = open("/dev/null", O_RDONLY);
  std::atomic<bool> stop{false};
  std::thread t([&] {
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  auto after = readProcessStats();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->open_fds, before->open_fds + 3);
  EXPECT_EQ(after->threads, before->threads + 1);
  stop = true;
  t.join();
  close(a);
  close(b);
  close(c);
}

std::uint64_t countFds(int pid) {
  std::uint64_t n = 0;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

TEST(ProcessStats, ReadsAnotherProcessFromTheOutside) {
  const int extra = open("/dev/null", O_RDONLY);
  testing::ForkedChild child;
  ASSERT_GT(child.pid(), 0);
  auto other = readProcessStats(child.pid());
  auto self = readProcessStats();
  close(extra);
  ASSERT_TRUE(other.ok()) << other.error().message;
  ASSERT_TRUE(self.ok());
  EXPECT_EQ(other->pid, child.pid());
  EXPECT_EQ(other->exe, self->exe);
  // The build id read from the file /proc/PID/exe opens, not from memory.
  EXPECT_EQ(other->build_id, mainBuildId());
  EXPECT_FALSE(other->build_id.empty());
  // No fd of the reader is counted: exactly what /proc/PID/fd lists.
  EXPECT_EQ(other->open_fds, countFds(child.pid()));
  EXPECT_EQ(other->threads, 1u);  // fork copies only the calling thread
  EXPECT_GT(other->rss_bytes, 0u);
  EXPECT_GE(other->start_time_unix, self->start_time_unix);
  EXPECT_EQ(other->max_fds, self->max_fds);
}

TEST(ProcessStats, MaxFdsIsTheSoftNoFileLimit) {
  rlimit rl{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  auto s = readProcessStats();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->max_fds, rl.rlim_cur);
}

TEST(ProcessStats, AProcessThatIsGoneIsAnErrorNamingItsFile) {
  int pid = 0;
  {
    testing::ForkedChild child;
    pid = child.pid();
  }  // killed and reaped: the pid is free
  auto s = readProcessStats(pid);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("/proc/" + std::to_string(pid) + "/stat"), std::string::npos)
      << s.error().message;
}

TEST(ProcessLimits, ParsesTheSoftMaxOpenFiles) {
  const char* limits =
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max processes             127473               127473               processes \n"
      "Max open files            1024                 1048576              files     \n"
      "Max locked memory         8388608              8388608              bytes     \n";
  EXPECT_EQ(parseMaxOpenFiles(limits), 1024u);
  EXPECT_EQ(
      parseMaxOpenFiles("Max open files            unlimited            unlimited    files\n"),
      RLIM_INFINITY);
  EXPECT_EQ(parseMaxOpenFiles("Max processes  10  10  processes\n"), std::nullopt);
  EXPECT_EQ(parseMaxOpenFiles("Max open files            lots    1   files\n"), std::nullopt);
  EXPECT_EQ(parseMaxOpenFiles(""), std::nullopt);
}

TEST(BuildId, ReadFromTheFileEqualsTheLoadedOne) {
  EXPECT_EQ(fileBuildId("/proc/self/exe"), mainBuildId());
  EXPECT_EQ(fileBuildId("/dev/null"), "");
  EXPECT_EQ(fileBuildId("/nonexistent"), "");
  testing::TempDir dir;
  testing::writeFile(dir.path() + "/junk",
                     "\x7f"
                     "ELF but nothing after it");
  EXPECT_EQ(fileBuildId(dir.path() + "/junk"), "");
}

TEST(ProcStat, ParsesFieldsAfterACommandNameWithParensAndSpaces) {
  // Fields 14, 15 (utime, stime), 20 (threads), 22 (starttime), 23 (vsize), 24 (rss).
  auto st =
      parseProcStat("4242 (a) (b c) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22\n");
  ASSERT_TRUE(st.ok()) << st.error().message;
  // Field N holds N - 3 here.
  EXPECT_EQ(st->state, 'R');
  EXPECT_EQ(st->cpu_ticks, 11u + 12u);
  EXPECT_EQ(st->threads, 17u);
  EXPECT_EQ(st->start_ticks, 19u);
  EXPECT_EQ(st->virtual_bytes, 20u);
  EXPECT_EQ(st->rss_pages, 21u);
}

TEST(ProcStat, MalformedTextIsAnErrorNotAnException) {
  // The old parser threw std::out_of_range / std::invalid_argument on these.
  for (const char* bad :
       {"1 (x)", "1 (x", "", "1 (x) S 1 2 3 4 5 6 7 8 9 10 zz 12 13 14 15 16 17 18 19 20 21 22",
        "1 (x) S 1 2 3 4 5 6 7 8 9 10 -11 12 13 14 15 16 17 18 19 20 21 22",
        "1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 "
        "99999999999999999999999"}) {
    std::optional<Result<ProcStat>> r;
    ASSERT_NO_THROW(r.emplace(parseProcStat(bad))) << bad;
    EXPECT_FALSE(r->ok()) << bad;
  }
}

TEST(ProcStat, BootTimeFromProcStat) {
  EXPECT_EQ(parseBootTime("cpu 1 2\nbtime 1700000000\nprocesses 3\n"), 1700000000u);
  EXPECT_EQ(parseBootTime("cpu 1 2\n"), std::nullopt);
  EXPECT_EQ(parseBootTime("btime soon\n"), std::nullopt);
}

TEST(ProcStat, ResidentPagesFromStatm) {
  EXPECT_EQ(parseStatmResidentPages("5405 1234 600 10 0 900 0\n"), 1234u);
  EXPECT_EQ(parseStatmResidentPages("5405 1234"), 1234u);
  EXPECT_EQ(parseStatmResidentPages("5405\n"), std::nullopt);
  EXPECT_EQ(parseStatmResidentPages("5405 many 600\n"), std::nullopt);
  EXPECT_EQ(parseStatmResidentPages("5405  600\n"), std::nullopt);
  EXPECT_EQ(parseStatmResidentPages(""), std::nullopt);
}

TEST(ProcessStats, BuildIdIsTheGnuNoteOfTheExecutable) {
  const std::string id = mainBuildId();
  // Debian's toolchain links with --build-id (SHA1: 40 hex digits).
  ASSERT_EQ(id.size(), 40u) << id;
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(AllocatorStats, ReportTcmallocFiguresThatFollowAllocations) {
#ifndef LEAKSCOPE_WITH_TCMALLOC
  EXPECT_FALSE(readAllocatorStats().available);
#else
  const AllocatorStats before = readAllocatorStats();
  ASSERT_TRUE(before.available);
  EXPECT_EQ(before.name, "tcmalloc");
  EXPECT_GE(before.heap_bytes, before.allocated_bytes);
  auto block = std::make_unique<char[]>(32 << 20);
  block[0] = 1;
  const AllocatorStats after = readAllocatorStats();
  EXPECT_GE(after.allocated_bytes, before.allocated_bytes + (32u << 20));
#endif
}

TEST(MemoryLimit, ParsesCgroupLimitFiles) {
  EXPECT_EQ(parseCgroupMemoryLimit("536870912\n"), 536870912u);
  EXPECT_EQ(parseCgroupMemoryLimit("9223372036854771712\n"), 9223372036854771712u);
  EXPECT_EQ(parseCgroupMemoryLimit("max\n"), std::nullopt);
  EXPECT_EQ(parseCgroupMemoryLimit(""), std::nullopt);
  EXPECT_EQ(parseCgroupMemoryLimit("12ab\n"), std::nullopt);
  EXPECT_EQ(parseCgroupMemoryLimit("-1\n"), std::nullopt);
}

TEST(MemoryLimit, ParsesMemTotal) {
  EXPECT_EQ(parseMemTotal("MemTotal:       24684096 kB\nMemFree:  1 kB\n"), 24684096ull * 1024);
  EXPECT_EQ(parseMemTotal("MemFree:  1 kB\nMemTotal: 1024 kB\n"), 1024u * 1024);
  EXPECT_EQ(parseMemTotal("MemFree:  1 kB\n"), std::nullopt);
  EXPECT_EQ(parseMemTotal("MemTotal: lots\n"), std::nullopt);
}

// A fake /proc and /sys under a temp dir: meminfo with 4 GiB, the process's
// cgroup lines and mounts, and the cgroup files given.
class FakeRoot {
 public:
  explicit FakeRoot(const std::string& cgroup, const std::string& mountinfo) {
    write("/proc/meminfo", "MemTotal:        4194304 kB\nMemFree:  1024 kB\n");
    write("/proc/self/cgroup", cgroup);
    write("/proc/self/mountinfo", mountinfo);
  }
  void write(const std::string& path, const std::string& text) const {
    const std::filesystem::path p = dir_.path() + path;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  void mkdir(const std::string& path) const {
    std::filesystem::create_directories(dir_.path() + path);
  }
  const std::string& root() const { return dir_.path(); }

 private:
  testing::TempDir dir_;
};

constexpr std::uint64_t kMemTotal = 4ull << 30;
const char* kV2Mounts = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
const char* kHybridMounts =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(MemoryLimit, CgroupV2MemoryMaxOfTheProcessCgroup) {
  FakeRoot f("0::/system.slice/pushdaemon.service\n", kV2Mounts);
  f.write("/sys/fs/cgroup/system.slice/memory.max", "max\n");
  f.write("/sys/fs/cgroup/system.slice/pushdaemon.service/memory.max", "536870912\n");
  auto l = readMemoryLimit(f.root());
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->bytes, 536870912u);
  EXPECT_EQ(l->source, MemoryLimitSource::kCgroup2);
  EXPECT_STREQ(memoryLimitSourceName(l->source), "cgroup2");
}

TEST(MemoryLimit, AnAncestorsSmallerLimitWins) {
  FakeRoot f("0::/system.slice/pushdaemon.service\n", kV2Mounts);
  f.write("/sys/fs/cgroup/system.slice/memory.max", "1073741824\n");
  f.write("/sys/fs/cgroup/system.slice/pushdaemon.service/memory.max", "max\n");
  auto l = readMemoryLimit(f.root());
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->bytes, 1073741824u);
  EXPECT_EQ(l->source, MemoryLimitSource::kCgroup2);
}

TEST(MemoryLimit, NoCgroupLimitMeansMemTotal) {
  FakeRoot f("0::/user.slice\n", kV2Mounts);
  f.write("/sys/fs/cgroup/user.slice/memory.max", "max\n");
  auto l = readMemoryLimit(f.root());
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->bytes, kMemTotal);
  EXPECT_EQ(l->source, MemoryLimitSource::kMemTotal);
  EXPECT_STREQ(memoryLimitSourceName(l->source), "meminfo");
}

TEST(MemoryLimit, ALimitAboveMemTotalIsNoLimit) {
  FakeRoot f("0::/big\n", kV2Mounts);
  f.write("/sys/fs/cgroup/big/memory.max", std::to_string(kMemTotal * 2) + "\n");
  auto l = readMemoryLimit(f.root());
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->bytes, kMemTotal);
  EXPECT_EQ(l->source, MemoryLimitSource::kMemTotal);
}

TEST(MemoryLimit, CgroupV1LimitOnAHybridHost) {
  // The memory controller is on v1; the v2 hierarchy has none (no memory.max).
  FakeRoot f("4:memory:/process_api/abc\n1:cpu:/\n0::/\n", kHybridMounts);
  f.mkdir("/sys/fs/cgroup/unified");
  f.write("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  f.write("/sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes", "268435456\n");
  auto l = readMemoryLimit(f.root());
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->bytes, 268435456u);
  EXPECT_EQ(l->source, MemoryLimitSource::kCgroup1);
  EXPECT_STREQ(memoryLimitSourceName(l->source), "cgroup1");
}

TEST(MemoryLimit, CgroupV1UnlimitedMeansMemTotal) {
  FakeRoot f("4:memory:/process_api/abc\n0::/\n", kHybridMounts);
  f.write("/sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes", "9223372036854771712\n");
  auto l = readMemoryLimit(f.root());
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->bytes, kMemTotal);
  EXPECT_EQ(l->source, MemoryLimitSource::kMemTotal);
}

TEST(MemoryLimit, APathNotVisibleInThisNamespaceReadsTheMountItself) {
  // In a container with its own cgroup namespace the kernel may report a
  // path that does not exist under the mount: the mount is the cgroup.
  FakeRoot f("0::/../../outside\n", kV2Mounts);
  f.write("/sys/fs/cgroup/memory.max", "104857600\n");
  f.write("/outside/memory.max", "1\n");  // never read: out of the mount
  auto l = readMemoryLimit(f.root());
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->bytes, 104857600u);
  EXPECT_EQ(l->source, MemoryLimitSource::kCgroup2);
}

TEST(MemoryLimit, AnotherProcessIsReadFromItsOwnCgroup) {
  // This process is in /a (no limit); pid 4242 is in /b, limited.
  FakeRoot f("0::/a\n", kV2Mounts);
  f.write("/proc/4242/cgroup", "0::/b\n");
  f.write("/sys/fs/cgroup/a/memory.max", "max\n");
  f.write("/sys/fs/cgroup/b/memory.max", "268435456\n");
  auto self = readMemoryLimit(f.root());
  ASSERT_TRUE(self.ok());
  EXPECT_EQ(self->source, MemoryLimitSource::kMemTotal);
  auto other = readMemoryLimit(f.root(), 4242);
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_EQ(other->bytes, 268435456u);
  EXPECT_EQ(other->source, MemoryLimitSource::kCgroup2);
}

TEST(MemoryLimit, NoMemInfoIsAnErrorNamingTheFile) {
  testing::TempDir empty;
  auto l = readMemoryLimit(empty.path());
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, Errc::kIo);
  EXPECT_NE(l.error().message.find("/proc/meminfo"), std::string::npos) << l.error().message;
}

TEST(MemoryLimit, TheRealProcessHasOneAtMostMemTotal) {
  auto l = readMemoryLimit();
  ASSERT_TRUE(l.ok()) << l.error().message;
  std::ifstream in("/proc/meminfo");
  std::stringstream text;
  text << in.rdbuf();
  const auto total = parseMemTotal(text.str());
  ASSERT_TRUE(total.has_value());
  EXPECT_GT(l->bytes, 0u);
  EXPECT_LE(l->bytes, *total);
}

}  // namespace
}  // namespace leakscope::diag
