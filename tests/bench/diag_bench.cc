// Track + untrack of one object, single-threaded and with two threads on the
// same kind; malloc + free of a small block is the anchor measured alongside.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "leakscope/diag/tracked.h"

namespace {

leakscope::diag::Kind& kBench = leakscope::diag::kind("bench.connection");

void BM_TrackUntrack(benchmark::State& state) {
  for (auto _ : state) {
    leakscope::diag::Tracked t(kBench, "api.push.apple.com", 4096);
    benchmark::DoNotOptimize(t.id());
  }
}
BENCHMARK(BM_TrackUntrack)->Threads(1)->Threads(2)->UseRealTime();

void BM_MallocFree(benchmark::State& state) {
  for (auto _ : state) {
    void* p = std::malloc(128);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
}
BENCHMARK(BM_MallocFree)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
