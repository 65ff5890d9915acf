// Reading the CLI's inputs: leakscope snapshots and raw gperftools heap
// profiles, told apart by their content (never by file name). Snapshots are
// streamed (a SAX parse that keeps one object at a time), so a file of any
// size is read in memory proportional to what the model keeps.
//
// Every error is one line naming the file and the position: a byte offset and
// line for syntax errors, a JSON path for values of the wrong type, a line
// number for profiles.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "leakscope/analysis/model.h"
#include "leakscope/core/result.h"
#include "leakscope/core/snapshot_format.h"

namespace leakscope::analysis {

using core::Errc;
using core::Error;
using core::Result;

struct LoadOptions {
  // For raw profiles whose MAPPED_LIBRARIES name files that do not exist here:
  // the executable to symbolize the main program's addresses with.
  std::string binary;
  // Called with (bytes read, total bytes) while reading; may be empty.
  std::function<void(std::uint64_t, std::uint64_t)> progress;
};

// What a series needs to order its files, read without loading them.
struct InputHeader {
  std::string path;
  SourceKind source = SourceKind::kSnapshot;
  std::int64_t taken_unix_ns = 0;
  std::int64_t sequence = 0;
};

Result<InputHeader> readHeader(const std::string& path);
Result<Snapshot> load(const std::string& path, SymbolTable& symbols, const LoadOptions& options);

// Parsers over bytes already in memory (the fuzzers' entry points; `load`
// uses the same code). `path` only names the input in messages.
Result<Snapshot> parseSnapshotText(std::string_view text, const std::string& path,
                                   SymbolTable& symbols);
Result<Snapshot> parseProfileText(std::string_view text, const std::string& path,
                                  SymbolTable& symbols, const LoadOptions& options);

}  // namespace leakscope::analysis
