#include "leakscope/diag/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <thread>

namespace leakscope::diag {
namespace {

TEST(ProcessStats, ReadsOwnFiguresFromProc) {
  auto before = readProcessStats();
  ASSERT_TRUE(before.ok()) << before.error().message;
  EXPECT_EQ(before->pid, getpid());
  EXPECT_NE(before->exe.find("process_test"), std::string::npos) << before->exe;
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

}  // namespace
}  // namespace leakscope::diag
