// Snapshot cost with 100,000 live tracked objects:
//   snapshot_first_ms_100k   first snapshot (includes loading symbol tables)
//   snapshot_ms_100k         median of the following snapshots
//   snapshot_stall_ms        longest gap seen by a thread busy tracking and
//                            untracking objects while snapshots run
//   baseline_stall_ms        the same thread's longest gap with no snapshot (anchor)
//   snapshot_extra_heap_bytes / _rss_bytes   peak growth during a snapshot
//   heap_bytes               heap in use before (the ratio's denominator)
//   snapshot_extra_mem_ratio max(extra heap, extra rss) / heap_bytes
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "leakscope/diag/heap_profile.h"
#include "leakscope/diag/process.h"
#include "leakscope/diag/snapshot_writer.h"
#include "leakscope/diag/tracked.h"

namespace diag = leakscope::diag;
using Clock = std::chrono::steady_clock;

namespace {

// A stand-in for a connection: a tracked handle plus a buffer it owns.
struct Conn {
  Conn(diag::Kind& k, int i)
      : buffer(256, static_cast<char>(i)), tracked(k, "peer-" + std::to_string(i % 50), 256) {
    tracked.setFd(-1);
  }
  std::vector<char> buffer;
  diag::Tracked tracked;
};

std::uint64_t statusKb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoull(line.substr(std::string(key).size()));
  }
  return 0;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  // Sampled heap profiling as in production (re-execs once to set the period).
  (void)diag::ensureHeapSampling(argv);
  const int objects = argc > 1 ? std::atoi(argv[1]) : 100000;
  // A fresh private directory (mkdtemp: 0700, unpredictable name): a fixed
  // name in /tmp could be taken first by another user.
  std::string dir = std::filesystem::temp_directory_path() / "leakscope-bench-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    std::perror("snapshot_bench: mkdtemp");
    return 1;
  }

  std::vector<diag::Kind*> kinds = {&diag::kind("bench.apns.connection"),
                                    &diag::kind("bench.fcm.connection"),
                                    &diag::kind("bench.stream"), &diag::kind("bench.provider")};
  std::vector<std::unique_ptr<Conn>> live;
  live.reserve(static_cast<std::size_t>(objects));
  for (int i = 0; i < objects; ++i)
    live.push_back(std::make_unique<Conn>(*kinds[static_cast<std::size_t>(i) % kinds.size()], i));

  diag::SnapshotOptions o;
  o.dir = dir;
  o.name = "bench";
  o.heap_mode = diag::HeapMode::kSampled;
  diag::SnapshotWriter writer(o);

  // Busy thread: churns tracked objects of the same kinds and records the
  // longest gap between two iterations.
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};
  std::atomic<double> max_gap_ms{0};
  std::thread busy([&] {
    auto last = Clock::now();
    int i = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      { diag::Tracked t(*kinds[static_cast<std::size_t>(i++) % kinds.size()], "busy", 64); }
      const auto now = Clock::now();
      const double gap = ms(now - last);
      last = now;
      if (measuring.load(std::memory_order_relaxed) && gap > max_gap_ms.load())
        max_gap_ms.store(gap);
    }
  });

  // Anchor: the busy thread's longest gap over a second with no snapshot.
  measuring = true;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const double baseline_stall = max_gap_ms.exchange(0);

  // Peak heap during a snapshot, polled by a third thread.
  std::atomic<bool> polling{false};
  std::atomic<std::uint64_t> peak_heap{0};
  std::thread poller([&] {
    while (!stop.load()) {
      if (polling.load()) {
        const std::uint64_t a = diag::readAllocatorStats().allocated_bytes;
        if (a > peak_heap.load()) peak_heap.store(a);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });

  const std::uint64_t heap_before = diag::readAllocatorStats().allocated_bytes;
  std::vector<double> times;
  std::vector<std::uint64_t> extra_heap_per;
  std::vector<std::uint64_t> extra_rss_per;
  std::uint64_t file_bytes = 0;
  bool failed = false;
  for (int round = 0; round < 6; ++round) {
    const std::uint64_t h0 = diag::readAllocatorStats().allocated_bytes;
    std::ofstream("/proc/self/clear_refs") << "5";  // reset VmHWM to the current RSS
    const std::uint64_t r0 = statusKb("VmRSS:") * 1024;
    peak_heap = h0;
    polling = true;
    const auto t0 = Clock::now();
    auto info = writer.write(diag::Trigger::kApi, "bench");
    times.push_back(ms(Clock::now() - t0));
    polling = false;
    const std::uint64_t hwm = statusKb("VmHWM:") * 1024;
    extra_heap_per.push_back(peak_heap > h0 ? peak_heap - h0 : 0);
    extra_rss_per.push_back(hwm > r0 ? hwm - r0 : 0);
    if (!info.ok()) {
      std::fprintf(stderr, "snapshot_bench: %s\n", info.error().message.c_str());
      failed = true;
      break;
    }
    file_bytes = info->bytes;
    if (info->objects < static_cast<std::uint64_t>(objects)) {
      std::fprintf(stderr, "snapshot_bench: snapshot listed %llu objects, expected >= %d\n",
                   static_cast<unsigned long long>(info->objects), objects);
      failed = true;
      break;
    }
  }
  const double stall = max_gap_ms.load();
  stop = true;
  busy.join();
  poller.join();
  std::filesystem::remove_all(dir);
  if (failed) return 1;

  std::vector<double> steady(times.begin() + 1, times.end());
  std::sort(steady.begin(), steady.end());
  for (std::size_t i = 0; i < times.size(); ++i) {
    std::fprintf(stderr, "snapshot %zu: %.1f ms, extra heap %llu, extra rss %llu\n", i + 1,
                 times[i], static_cast<unsigned long long>(extra_heap_per[i]),
                 static_cast<unsigned long long>(extra_rss_per[i]));
  }
  const std::uint64_t extra_heap = *std::max_element(extra_heap_per.begin(), extra_heap_per.end());
  const std::uint64_t extra_rss = *std::max_element(extra_rss_per.begin(), extra_rss_per.end());
  std::printf("objects=%d\n", objects);
  std::printf("heap_bytes=%llu\n", static_cast<unsigned long long>(heap_before));
  std::printf("snapshot_file_bytes=%llu\n", static_cast<unsigned long long>(file_bytes));
  std::printf("snapshot_first_ms_100k=%.2f\n", times[0]);
  std::printf("snapshot_ms_100k=%.2f\n", steady[steady.size() / 2]);
  std::printf("snapshot_stall_ms=%.3f\n", stall);
  std::printf("baseline_stall_ms=%.3f\n", baseline_stall);
  std::printf("snapshot_extra_heap_bytes=%llu\n", static_cast<unsigned long long>(extra_heap));
  std::printf("snapshot_extra_rss_bytes=%llu\n", static_cast<unsigned long long>(extra_rss));
  std::printf(
      "snapshot_extra_mem_ratio=%.4f\n",
      static_cast<double>(std::max(extra_heap, extra_rss)) / static_cast<double>(heap_before));
  return 0;
}
