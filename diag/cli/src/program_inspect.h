// What `leakscope run` needs to know about a program before it execs it:
// where it is (PATH lookup, as execvp does), whether LD_PRELOAD can reach it
// (a dynamic ELF with an interpreter, PT_INTERP) and which allocator it
// already links — the libraries its interpreter lists (`INTERP --list PROG`,
// which is what ldd does; the program itself does not run). Plain functions,
// thread-safe; errors name the program and what is wrong.
#pragma once

#include <string>
#include <vector>

#include "leakscope/core/result.h"

namespace leakscope::cli {

// `command` as execvp would find it: a path if it has a '/', else the first
// executable regular file of that name in $PATH. Errors: not found, not
// executable, not a regular file.
core::Result<std::string> resolveCommand(const std::string& command);

struct LinkedLibrary {
  std::string name;  // as DT_NEEDED says: libjemalloc.so.2
  std::string path;  // where the interpreter found it
};

struct ProgramInfo {
  std::string path;                      // the executable (for a #! script: its interpreter)
  std::string interpreter;               // PT_INTERP: /lib64/ld-linux-x86-64.so.2
  std::vector<LinkedLibrary> libraries;  // every library it loads, in order
};

// Reads the ELF (a #! script: its interpreter's) and lists its libraries.
// A static executable (no PT_INTERP) is an error that says LD_PRELOAD cannot
// reach it.
core::Result<ProgramInfo> inspectProgram(const std::string& path);

// An allocator that replaces malloc, found among `libs`: its entry, or null.
// tcmalloc_minimal, tcmalloc_debug ... count as other allocators: only the
// full libtcmalloc has the sampled heap profile.
const LinkedLibrary* linkedAllocator(const std::vector<LinkedLibrary>& libs);

}  // namespace leakscope::cli
