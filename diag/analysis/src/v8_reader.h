// The streaming reader of V8 heap snapshots (.heapsnapshot): one pass over
// the file, never holding more of it than one buffer. The header (`snapshot`,
// with `meta` naming every field) is parsed with nlohmann::json; the number
// arrays by a hand-written scanner straight into the graph's columns,
// pre-sized from the header's node_count and edge_count; `strings` (last in
// the file) decoded leniently into one arena.
//
// JSON validity is enforced on the whole file; counts are checked against
// the header (a truncated file is an error, not a smaller graph); every
// field position is read through `meta`, so files with 5, 6 or 7 node fields
// read alike. Sections the analyses do not use (trace_function_infos,
// trace_tree, samples, locations) are checked and skipped.
//
// Errors are one line without the file's name (the caller prefixes it):
// "byte N (line L): what was expected and found".
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "byte_reader.h"
#include "leakscope/core/result.h"
#include "v8_graph.h"

namespace leakscope::analysis::v8 {

struct ReadOptions {
  // Called with (bytes consumed, total) now and then; may be empty.
  std::function<void(std::uint64_t, std::uint64_t)> progress;
  std::uint64_t total_bytes = 0;  // the file's size, for progress
};

core::Result<Graph> readGraph(ByteReader& reader, const ReadOptions& options);

}  // namespace leakscope::analysis::v8
