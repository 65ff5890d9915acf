// Reading the CLI's inputs: leakscope snapshots, raw gperftools heap
// profiles and V8 heap snapshots (.heapsnapshot, docs/node.md), plain or gzip-compressed, with or
// without a UTF-8 byte order mark, told apart by their content (never by file name); other known
// formats are named in the error. Snapshots are streamed (a SAX parse that
// keeps one object at a time, inflating gzip on the fly), so a file of any
// size is read in memory proportional to what the model keeps. The path "-"
// is standard input, read once into memory (at most 1 GiB).
//
// Every error is one line naming the file and the position: a byte offset and
// line for syntax errors, a JSON path for values of the wrong type, a line
// number for profiles.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "leakscope/analysis/model.h"
#include "leakscope/core/result.h"
#include "leakscope/core/snapshot_format.h"

namespace leakscope::analysis {

using core::Errc;
using core::Error;
using core::Result;
using core::Status;

struct LoadOptions {
  // For raw profiles whose MAPPED_LIBRARIES name files that do not exist here:
  // the executable to symbolize the main program's addresses with.
  std::string binary;
  // Called with (bytes read, total bytes) while reading; may be empty.
  std::function<void(std::uint64_t, std::uint64_t)> progress;
  // V8 heap snapshots: keep the graph (about 30 bytes per node and 9 per
  // edge) so that retaining paths can be printed (classRetainers).
  // Otherwise only the classes and their objects are kept.
  bool keep_graph = false;
  // Called when a long step after reading starts (V8 heap snapshots:
  // "distances", "dominators", "classes"); may be empty.
  std::function<void(const char*)> phase;
};

// What a series needs to order its files, read without loading them.
struct InputHeader {
  std::string path;
  SourceKind source = SourceKind::kSnapshot;
  std::int64_t taken_unix_ns = 0;
  std::int64_t sequence = 0;
};

// The inputs named on a command line, resolved to files.
struct ResolvedInputs {
  std::vector<std::string> paths;
  bool from_directory = false;  // some came from a directory
};

// A directory stands for its snapshot files (`*.lsnap`, `*.heapsnapshot`,
// plain or `.gz`; regular files, not hidden), in sequence order; "-" for standard input. Names that
// cannot be stat()ed pass through (reading them names the error). Refuses a
// file named twice (same device and inode: also through a link or a
// directory) and "-" twice.
Result<ResolvedInputs> resolveInputs(const std::vector<std::string>& names);

Result<InputHeader> readHeader(const std::string& path);
Result<Snapshot> load(const std::string& path, SymbolTable& symbols, const LoadOptions& options);

// Parsers over bytes already in memory (the fuzzers' entry points; `load`
// uses the same code). `path` only names the input in messages. parseInput
// reads what `load` reads (either format, gzip); the other two one format,
// uncompressed.
Result<Snapshot> parseInput(std::string_view bytes, const std::string& path, SymbolTable& symbols,
                            const LoadOptions& options);
Result<Snapshot> parseSnapshotText(std::string_view text, const std::string& path,
                                   SymbolTable& symbols);
Result<Snapshot> parseProfileText(std::string_view text, const std::string& path,
                                  SymbolTable& symbols, const LoadOptions& options);

}  // namespace leakscope::analysis
