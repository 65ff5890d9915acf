// gperftools' text heap profile format ("heap_v2/R" sampled profiles and
// "heapprofile" full ones): the parser, unsampling, and which frames belong to
// the allocator. Shared by the runtime (which symbolizes what tcmalloc hands
// it), the analysis library (which reads raw .heap files) and the fuzzers; no
// dependency on tcmalloc. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "leakscope/core/result.h"

namespace leakscope::core {

// One stack of a gperftools profile. For sampled profiles the counts are the
// raw sampled figures; `unsample()` turns them into estimates.
struct HeapRecord {
  std::int64_t inuse_objects = 0;
  std::int64_t inuse_bytes = 0;
  std::int64_t alloc_objects = 0;
  std::int64_t alloc_bytes = 0;
  std::vector<std::uint64_t> stack;  // innermost first, as gperftools writes it
};

struct RawHeapProfile {
  std::string format;              // "heap_v2" (sampled) or "heapprofile" (full)
  std::int64_t sample_period = 0;  // heap_v2/R: R; 0 for full profiles
  HeapRecord totals;               // the header line
  std::vector<HeapRecord> records;
  std::string mapped_libraries;  // the MAPPED_LIBRARIES section, verbatim
};

// Parses gperftools' text heap profile. Errors name the line number and what
// was expected there.
Result<RawHeapProfile> parseHeapProfile(std::string_view text);

// Whether a stack frame lies inside the allocator (libtcmalloc, malloc and
// its siblings, operator new) rather than at the allocation site. Stacks are
// reported from the first frame outside it. `module` may be a path.
bool isAllocatorFrame(std::string_view module, std::string_view function);

// The demangled form of a C++ symbol; the name itself when it is not mangled.
std::string demangleSymbol(const char* name);

// heap_v2 unsampling, as pprof does: each sampled object of average size s
// stands for 1/(1-exp(-s/R)) objects. Returns {objects, bytes} estimates.
struct Estimate {
  double objects = 0;
  double bytes = 0;
};
Estimate unsample(std::int64_t objects, std::int64_t bytes, std::int64_t period);

}  // namespace leakscope::core
