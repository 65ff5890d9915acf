// In-process symbolization of code addresses with elfutils' libdwfl, so a
// snapshot names function, file:line and module and reads anywhere without
// the binary. Results are cached per address for the life of the object;
// libdw's own tables are dropped between snapshots (releaseDebugData).
// Not thread-safe: the snapshot writer owns one under its own lock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace leakscope::diag {

struct Frame {
  std::uint64_t address = 0;
  std::string module;               // path of the ELF file, "" if unknown
  std::uint64_t module_offset = 0;  // address - module load start
  std::string function;             // demangled; "" if no symbol covers it
  std::string file;                 // source file, "" without debug info
  int line = 0;
};

class Symbolizer {
 public:
  Symbolizer();
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // `is_return_address`: the address is the one after a call (every stack
  // frame but the innermost); the call instruction is looked up instead so
  // file:line names the call, not the line after it.
  const Frame& lookup(std::uint64_t address, bool is_return_address);

  // Frees libdw's state (symbol and line tables, ~3 MB for a mid-sized
  // binary) and keeps only the answers already found. Called after each
  // snapshot, so between snapshots leakscope holds no debug data; a later
  // snapshot reloads it only for addresses it has not seen before.
  void releaseDebugData();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace leakscope::diag
