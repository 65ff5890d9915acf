// A V8 heap snapshot's graph turned into the model's terms: one ObjectClass
// per DevTools class, with its instances by id, self and retained sizes and
// distance, and — when asked — the graph kept for retaining paths.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "leakscope/analysis/input.h"
#include "leakscope/analysis/model.h"
#include "v8_graph.h"

namespace leakscope::analysis {

// What LoadOptions::keep_graph keeps: the graph and the shortest paths from
// the roots.
struct V8Graph {
  v8::Graph graph;
  v8::Distances distances;
  // The nodes of objects `ids` (those found), in node order: one pass over
  // the graph, no index kept for it.
  std::vector<std::uint32_t> nodes(const std::vector<std::uint64_t>& ids) const;
};

// Computes distances, dominators and classes on `g` and returns the
// snapshot's classes and figures. The graph is released as soon as it is no
// longer needed, unless `options.keep_graph`; `options.phase` hears of
// each step.
Snapshot snapshotFromGraph(v8::Graph&& g, SymbolTable& symbols, const LoadOptions& options);

// The objects that hold a TCP connection's handle, per class, and the
// distinct handles (v8_sockets.cc has the rule), into `facts`.
void countSocketHolders(const v8::Graph& g, const v8::Classes& c, V8Facts& facts);

// What a Node.js file name says (Heap.YYYYMMDD.HHMMSS.PID.TID.SEQ.heapsnapshot,
// as --heapsnapshot-signal and v8.writeHeapSnapshot() name them): the pid,
// the sequence number and the local time the name was made (ns since the
// epoch). Unset fields when the name is another.
struct NodeFileName {
  std::int64_t pid = 0;
  std::int64_t sequence = 0;
  std::int64_t taken_unix_ns = 0;
};
NodeFileName parseNodeFileName(const std::string& path);

}  // namespace leakscope::analysis
