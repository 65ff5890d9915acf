// readAllocatorStats(): apart from the /proc readers of process.cc because
// it alone needs tcmalloc, and process.cc is also in leakscope::collect,
// which the `leakscope` CLI links without tcmalloc.
#include "leakscope/diag/process.h"

#ifdef LEAKSCOPE_WITH_TCMALLOC
#include <gperftools/malloc_extension.h>
#endif

namespace leakscope::diag {

AllocatorStats readAllocatorStats() {
  AllocatorStats a;
#ifdef LEAKSCOPE_WITH_TCMALLOC
  MallocExtension* m = MallocExtension::instance();
  std::size_t v = 0;
  if (!m->GetNumericProperty("generic.current_allocated_bytes", &v)) return a;
  a.available = true;
  a.name = "tcmalloc";
  a.allocated_bytes = v;
  auto get = [m](const char* name) -> std::uint64_t {
    std::size_t x = 0;
    return m->GetNumericProperty(name, &x) ? x : 0;
  };
  a.heap_bytes = get("generic.heap_size");
  a.pageheap_free_bytes = get("tcmalloc.pageheap_free_bytes");
  a.pageheap_unmapped_bytes = get("tcmalloc.pageheap_unmapped_bytes");
  a.central_cache_free_bytes = get("tcmalloc.central_cache_free_bytes");
  a.transfer_cache_free_bytes = get("tcmalloc.transfer_cache_free_bytes");
  a.thread_cache_free_bytes = get("tcmalloc.thread_cache_free_bytes");
#endif
  return a;
}

}  // namespace leakscope::diag
