// A small program with three allocation patterns, writing a real gperftools
// heap profile after each round (tests/cli/heap_profile_test.cc reads them):
//   leakyRemember   leaks kLeakPerRound bytes every round (never freed)
//   transientSpike  holds one 48 MiB buffer during round 2 only
//   boundedCache    an LRU cache that fills to 4 MiB, then only churns
// Usage: leakscope-heap-fixture --mode full|sampled --out DIR [--rounds N]
// Prints {"leaked_bytes": N, "rounds": R, "profiles": [...]} on stdout.
#include <gperftools/heap-profiler.h>
#include <gperftools/malloc_extension.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "leakscope/diag/heap_profile.h"

namespace {

constexpr std::size_t kLeakBlock = 16 * 1024;
constexpr std::size_t kLeakBlocksPerRound = 64;  // 1 MiB per round
constexpr std::size_t kSpikeBytes = 48u << 20;
constexpr std::size_t kCacheEntry = 16 * 1024;
constexpr std::size_t kCacheMax = 256;  // 4 MiB
constexpr std::size_t kCacheInsertsPerRound = 100;

std::vector<char*> g_leaked;                  // what leakyRemember never frees
std::unique_ptr<char[]> g_spike;              // transientSpike's buffer
std::deque<std::unique_ptr<char[]>> g_cache;  // boundedCache's entries

// volatile stores: the allocations must not be optimised away.
void touch(char* p, std::size_t n) {
  volatile char* v = p;
  v[0] = 1;
  v[n - 1] = 1;
}

__attribute__((noinline)) void leakyRemember() {
  for (std::size_t i = 0; i < kLeakBlocksPerRound; ++i) {
    char* p = static_cast<char*>(std::malloc(kLeakBlock));
    touch(p, kLeakBlock);
    g_leaked.push_back(p);
  }
}

__attribute__((noinline)) void transientSpike(int round) {
  if (round == 2) {
    g_spike.reset(new char[kSpikeBytes]);
    touch(g_spike.get(), kSpikeBytes);
  } else {
    g_spike.reset();
  }
}

__attribute__((noinline)) void boundedCache() {
  for (std::size_t i = 0; i < kCacheInsertsPerRound; ++i) {
    g_cache.emplace_back(new char[kCacheEntry]);
    touch(g_cache.back().get(), kCacheEntry);
    if (g_cache.size() > kCacheMax) g_cache.pop_front();
  }
}

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode, out;
  int rounds = 6;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--mode") == 0) mode = argv[i + 1];
    if (std::strcmp(argv[i], "--out") == 0) out = argv[i + 1];
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
  }
  if ((mode != "full" && mode != "sampled") || out.empty() || rounds < 3) {
    std::fprintf(stderr, "usage: %s --mode full|sampled --out DIR [--rounds N>=3]\n", argv[0]);
    return 2;
  }
  if (mode == "sampled") {
    // Samples every 16 KiB on average from the first allocation (re-execs
    // with TCMALLOC_SAMPLE_PARAMETER set when it is not): about 60% of the
    // 16 KiB blocks are sampled, enough for the estimate to be within a few
    // percent and for the cache's wobble to stay inside its error bars.
    if (auto s = leakscope::diag::ensureHeapSampling(argv, 16384); !s) {
      std::fprintf(stderr, "%s\n", s.error().message.c_str());
      return 1;
    }
  } else {
    HeapProfilerStart((out + "/.gperftools").c_str());
  }
  g_leaked.reserve(kLeakBlocksPerRound * static_cast<std::size_t>(rounds));
  std::string profiles;
  for (int round = 1; round <= rounds; ++round) {
    leakyRemember();
    transientSpike(round);
    boundedCache();
    std::string text;
    if (mode == "full") {
      char* p = GetHeapProfile();
      text = p;
      std::free(p);
    } else {
      MallocExtension::instance()->GetHeapSample(&text);
    }
    char name[64];
    std::snprintf(name, sizeof name, "/%s.%04d.heap", mode.c_str(), round);
    if (!writeFile(out + name, text)) {
      std::fprintf(stderr, "cannot write %s%s\n", out.c_str(), name);
      return 1;
    }
    profiles += std::string(round > 1 ? "," : "") + "\"" + out + name + "\"";
    // Distinct modification times order the series.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (mode == "full") HeapProfilerStop();
  std::printf("{\"leaked_bytes\": %zu, \"rounds\": %d, \"profiles\": [%s]}\n",
              kLeakBlock * kLeakBlocksPerRound * static_cast<std::size_t>(rounds), rounds,
              profiles.c_str());
  return 0;
}
