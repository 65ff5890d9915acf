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

}  // namespace leakscope::analysis
