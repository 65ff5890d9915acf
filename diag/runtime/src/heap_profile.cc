#include "leakscope/diag/heap_profile.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#ifdef LEAKSCOPE_WITH_TCMALLOC
#include <gperftools/heap-profiler.h>
#include <gperftools/malloc_extension.h>
#endif

namespace leakscope::diag {

const char* heapModeName(HeapMode mode) {
  switch (mode) {
    case HeapMode::kOff:
      return "off";
    case HeapMode::kSampled:
      return "sampled";
    case HeapMode::kFull:
      return "full";
  }
  return "?";
}

Result<HeapMode> parseHeapMode(std::string_view name) {
  if (name == "off") return HeapMode::kOff;
  if (name == "sampled") return HeapMode::kSampled;
  if (name == "full") return HeapMode::kFull;
  return Error{Errc::kInvalidArgument,
               "heap mode '" + std::string(name) + "' is not one of: sampled, full, off"};
}

namespace {

std::int64_t samplePeriodInEnvironment() {
#ifdef LEAKSCOPE_WITH_TCMALLOC
  const char* v = std::getenv("TCMALLOC_SAMPLE_PARAMETER");
  if (v == nullptr) return 0;
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(v, v + std::strlen(v), n);
  if (ec != std::errc() || n < 0) return 0;
  return n;
#else
  return 0;
#endif
}

}  // namespace

// Read once, as tcmalloc reads it: a program may clear its environment later
// (nginx's workers keep only TZ), and tcmalloc samples on with the period it
// started with.
std::int64_t activeSamplePeriod() {
  static const std::int64_t at_start = samplePeriodInEnvironment();
  return at_start;
}

namespace {
// ...and read at load time at the latest, before any main: whichever comes
// first, this or a constructor's call (the preload agent's), reads it.
[[maybe_unused]] const std::int64_t g_read_at_load = activeSamplePeriod();
}  // namespace

void primeHeapSampler() {
#ifdef LEAKSCOPE_WITH_TCMALLOC
  if (activeSamplePeriod() <= 0) return;
  // gperftools 2.x: a thread whose first malloc ran before libtcmalloc read
  // TCMALLOC_SAMPLE_PARAMETER (the main thread) starts with the "sampling off"
  // step of 16 MiB, so its first 16 MiB would go unsampled. One allocation
  // larger than that step makes it pick a real sampling point. The pages are
  // never touched, so this costs address space for a moment, not memory.
  // volatile: the compiler may not elide the malloc/free pair.
  void* volatile p = std::malloc((std::size_t{16} << 20) + 1);
  std::free(p);
  // Hand the span back to the OS so heap figures do not show 16 MiB "free".
  MallocExtension::instance()->ReleaseFreeMemory();
#endif
}

Status ensureHeapSampling(char** argv, std::int64_t period, bool override_environment) {
#ifdef LEAKSCOPE_WITH_TCMALLOC
  if (period <= 0) return Ok{};
  const char* current = std::getenv("TCMALLOC_SAMPLE_PARAMETER");
  if (current != nullptr && (!override_environment || activeSamplePeriod() == period)) {
    primeHeapSampler();
    return Ok{};
  }
  const std::string value = std::to_string(period);
  if (setenv("TCMALLOC_SAMPLE_PARAMETER", value.c_str(), 1) != 0) {
    return Error{Errc::kIo,
                 std::string("setenv TCMALLOC_SAMPLE_PARAMETER: ") + std::strerror(errno)};
  }
  execv("/proc/self/exe", argv);
  const int err = errno;
  unsetenv("TCMALLOC_SAMPLE_PARAMETER");
  return Error{Errc::kIo, std::string("re-exec for heap sampling failed: ") + std::strerror(err)};
#else
  (void)argv;
  (void)period;
  (void)override_environment;
  return Ok{};
#endif
}

HeapProfiler::HeapProfiler(HeapMode mode, std::string full_prefix) : mode_(mode) {
#ifdef LEAKSCOPE_WITH_TCMALLOC
  if (mode_ == HeapMode::kFull && IsHeapProfilerRunning() == 0) {
    HeapProfilerStart(full_prefix.c_str());
    started_full_ = true;
  }
#else
  (void)full_prefix;
#endif
}

HeapProfiler::~HeapProfiler() {
#ifdef LEAKSCOPE_WITH_TCMALLOC
  if (started_full_) HeapProfilerStop();
#endif
}

Result<std::string> HeapProfiler::captureText() const {
  if (mode_ == HeapMode::kOff) return Error{Errc::kUnavailable, "heap profiling is off"};
#ifdef LEAKSCOPE_WITH_TCMALLOC
  if (mode_ == HeapMode::kFull) {
    char* text = GetHeapProfile();
    if (text == nullptr) return Error{Errc::kUnavailable, "GetHeapProfile returned nothing"};
    std::string out(text);
    std::free(text);
    return out;
  }
  if (activeSamplePeriod() <= 0) {
    return Error{Errc::kUnavailable,
                 "heap sampling is off in this process: start it with "
                 "TCMALLOC_SAMPLE_PARAMETER=524288 (or call ensureHeapSampling)"};
  }
  std::string out;
  MallocExtension::instance()->GetHeapSample(&out);
  return out;
#else
  return Error{Errc::kUnavailable, "this build does not use tcmalloc"};
#endif
}

}  // namespace leakscope::diag
