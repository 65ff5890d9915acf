// The readers behind input.h, over a CharSource.
#pragma once

#include <string>

#include "char_source.h"
#include "leakscope/analysis/input.h"

namespace leakscope::analysis {

Result<Snapshot> readSnapshot(CharSource& src, const std::string& path, SymbolTable& symbols);
Result<InputHeader> readSnapshotHeader(CharSource& src, const std::string& path);

// Sorts sites by in-use bytes (largest first) and sums the totals.
void finishHeap(Heap& heap);

// Moves the module mapped from `path` (the main executable) to the front of
// heap.modules and gives it `build_id` when it has none; no module: nothing.
void markMainModule(Heap& heap, std::string_view path, const std::string& build_id);

}  // namespace leakscope::analysis
