#include "symbolizer.h"

#include "leakscope/diag/heap_profile.h"

#include <elfutils/libdwfl.h>
#include <unistd.h>

#include <cstdlib>

namespace leakscope::diag {

using core::demangleSymbol;

namespace {

// Separate debug files (/usr/lib/debug, e.g. libc6-dbg) are never read: their
// DWARF is compressed, and looking up one libc line decompresses ~12 MB into
// the heap of a process that may be near its memory limit. Modules that carry
// their own debug sections (the daemon, built with -g) still get file:line;
// the others get function names from their symbol tables.
int noSeparateDebuginfo(Dwfl_Module*, void**, const char*, Dwarf_Addr, const char*, const char*,
                        GElf_Word, char**) {
  return -1;
}

}  // namespace

struct Symbolizer::Impl {
  Dwfl* dwfl = nullptr;
  char* debuginfo_path = nullptr;
  Dwfl_Callbacks callbacks{};
  std::unordered_map<std::uint64_t, Frame> cache;

  Impl() {
    callbacks.find_elf = dwfl_linux_proc_find_elf;
    callbacks.find_debuginfo = noSeparateDebuginfo;
    callbacks.debuginfo_path = &debuginfo_path;
  }
  ~Impl() { close(); }
  void open() {
    if (dwfl != nullptr) return;
    dwfl = dwfl_begin(&callbacks);
    report();
  }
  void close() {
    if (dwfl != nullptr) dwfl_end(dwfl);
    dwfl = nullptr;
  }
  // (Re)reads /proc/self/maps: modules loaded with dlopen after the last
  // report are found on the next miss.
  void report() {
    if (dwfl == nullptr) return;
    dwfl_report_begin(dwfl);
    dwfl_linux_proc_report(dwfl, getpid());
    dwfl_report_end(dwfl, nullptr, nullptr);
  }
  Dwfl_Module* module(Dwarf_Addr pc) {
    open();
    if (dwfl == nullptr) return nullptr;
    Dwfl_Module* m = dwfl_addrmodule(dwfl, pc);
    if (m == nullptr) {
      report();
      m = dwfl_addrmodule(dwfl, pc);
    }
    return m;
  }
};

Symbolizer::Symbolizer() : impl_(std::make_unique<Impl>()) {}
Symbolizer::~Symbolizer() = default;

void Symbolizer::releaseDebugData() { impl_->close(); }

const Frame& Symbolizer::lookup(std::uint64_t address, bool is_return_address) {
  const std::uint64_t key = address * 2 + (is_return_address ? 1 : 0);
  if (auto it = impl_->cache.find(key); it != impl_->cache.end()) return it->second;
  Frame f;
  f.address = address;
  const Dwarf_Addr pc = is_return_address && address > 0 ? address - 1 : address;
  if (Dwfl_Module* m = impl_->module(pc)) {
    Dwarf_Addr start = 0;
    const char* name =
        dwfl_module_info(m, nullptr, &start, nullptr, nullptr, nullptr, nullptr, nullptr);
    if (name != nullptr) f.module = name;
    f.module_offset = address - start;
    GElf_Off offset = 0;
    GElf_Sym sym{};
    const char* fn = dwfl_module_addrinfo(m, pc, &offset, &sym, nullptr, nullptr, nullptr);
    // Stripped libraries keep only exported symbols; an address past the end
    // of the nearest one belongs to an unnamed internal function. Naming it
    // after its neighbour would send a reader to the wrong code.
    if (fn != nullptr && (sym.st_size == 0 || offset < sym.st_size))
      f.function = demangleSymbol(fn);
    if (Dwfl_Line* line = dwfl_module_getsrc(m, pc)) {
      int lineno = 0;
      const char* src = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr);
      if (src != nullptr) {
        f.file = src;
        f.line = lineno;
      }
    }
  }
  return impl_->cache.emplace(key, std::move(f)).first->second;
}

}  // namespace leakscope::diag
