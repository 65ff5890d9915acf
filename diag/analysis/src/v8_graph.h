// A V8 heap snapshot (.heapsnapshot) as a graph in columns, and what is
// computed on it: distances from the GC roots, the dominator tree and
// retained sizes, DevTools' class names, and retaining paths.
//
// The reader (v8_reader.h) fills the columns straight from the file's number
// arrays, pre-sized from the header's counts: about 21 bytes per node and 9
// per edge. The analyses add their own arrays (reverse edges, dominators);
// `docs/v8-graph.md` lists what each costs and every rule they follow. Node
// ordinal 0 is the snapshot's root (a synthetic node, id 1). Not thread-safe.
//
// The analyses expect a Graph as readGraph returns it (first_edge ascending
// with nodes + 1 entries, every edge_to below the node count) and do not
// check it again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "v8_columns.h"

namespace leakscope::analysis::v8 {

// V8's node types, in the order of its serializer (HeapEntry::Type). Files
// name them in `meta.node_types[0]`; the reader maps each file's list onto
// these by name, so a file with fewer or reordered types reads the same.
enum class NodeType : std::uint8_t {
  kHidden,
  kArray,
  kString,
  kObject,
  kCode,
  kClosure,
  kRegExp,
  kNumber,
  kNative,
  kSynthetic,
  kConsString,    // "concatenated string"
  kSlicedString,  // "sliced string"
  kSymbol,
  kBigInt,
  kObjectShape,
  kUnknown,  // a type name this reader does not know
};

// V8's edge types (HeapGraphEdge::Type), mapped by name like NodeType.
enum class EdgeType : std::uint8_t {
  kContext,
  kElement,  // name is an index
  kProperty,
  kInternal,
  kHidden,  // name is an index
  kShortcut,
  kWeak,
  kUnknown,
};

// "hidden", "concatenated string" ... as V8 names them.
const char* nodeTypeName(NodeType t);
const char* edgeTypeName(EdgeType t);
// The type a file's `meta` names; kUnknown for names this reader does not know.
NodeType nodeTypeFromName(std::string_view name);
EdgeType edgeTypeFromName(std::string_view name);
// Whether an edge of this type names its target by an index rather than by
// a string.
inline bool edgeNameIsIndex(EdgeType t) {
  return t == EdgeType::kElement || t == EdgeType::kHidden;
}

constexpr std::uint32_t kNone = 0xffffffffu;

struct Graph {
  // ---- nodes, by ordinal (the file's order) ----
  std::vector<NodeType> type;
  std::vector<std::uint32_t> name;  // index into strings
  std::vector<std::uint32_t> id;    // V8's object id: stable across snapshots of one isolate
  std::vector<std::uint64_t> self_size;
  // Edges of node i are [first_edge[i], first_edge[i + 1]); size nodes + 1.
  std::vector<std::uint32_t> first_edge;

  // ---- edges, grouped by source node in node order ----
  std::vector<EdgeType> edge_type;
  // A string index, or the element/hidden index (edgeNameIsIndex).
  std::vector<std::uint32_t> edge_name;
  std::vector<std::uint32_t> edge_to;  // target ordinal (the file's to_node / node field count)

  // ---- strings: an arena, decoded from JSON (lone surrogates → U+FFFD) ----
  std::string string_data;
  std::vector<std::uint64_t> string_offset;  // size strings + 1

  std::size_t nodeCount() const { return type.size(); }
  std::size_t edgeCount() const { return edge_type.size(); }
  std::size_t stringCount() const { return string_offset.empty() ? 0 : string_offset.size() - 1; }
  std::string_view str(std::uint32_t i) const {
    if (i + 1 >= string_offset.size()) return {};
    return std::string_view(string_data)
        .substr(string_offset[i], string_offset[i + 1] - string_offset[i]);
  }
  // The largest odd (JS object) id: what a later snapshot of the same isolate
  // has at least, since ids only grow.
  std::uint32_t max_js_id = 0;
  // Whether the file had `trace_function_infos`/`trace_tree` (allocation
  // tracking), skipped by the reader.
  bool had_allocation_traces = false;
};

// ---- what is computed on a graph ----------------------------------------

// The edge rules of the dominator tree that need only the edge itself, as
// DevTools has them (HeapSnapshot.ts computeIsEssentialEdge): weak edges,
// self edges, shortcut edges except from the root, and a WeakMap's
// table -> value edge (the key -> value edge stays) do not retain.
// Retainers::retains adds the one rule that needs the whole graph.
// docs/v8-graph.md writes the rules down.
bool isEssentialEdge(const Graph& g, std::uint32_t from, std::uint32_t edge);

// Retainers: for each node, the edges pointing at it (reverse CSR over the
// edges that retain). `edge` holds edge indexes; `node` the source ordinal of
// each, by source ordinal ascending within a node.
struct Retainers {
  std::vector<std::uint32_t> first;  // size nodes + 1
  std::vector<std::uint32_t> edge;
  std::vector<std::uint32_t> node;
  // DevTools' "page-owned" nodes: what the root's shortcut edges (the user's global objects) reach
  // over non-weak edges. An edge from a node outside this set into it does
  // not retain, so a global handle or an internal cache does not take over
  // objects the program itself holds.
  NodeBits user_owned;
  // isEssentialEdge and that rule: whether the edge is in this index.
  bool retains(const Graph& g, std::uint32_t from, std::uint32_t e) const;
};
Retainers buildRetainers(const Graph& g);

// Breadth-first distances from the root's user roots, DevTools' way
// (calculateDistances): the root's non-synthetic children get distance 1,
// then BFS over every edge but weak ones and DevTools' three exceptions
// (docs/v8-graph.md); what that does not reach gets a second BFS from the
// root at kSystemDistance. Unreached: kNone. `parent_edge` is the edge a
// shortest path arrives by (kNone for the root and unreached nodes): the
// retaining paths follow it.
constexpr std::uint32_t kSystemDistance = 100000000;
struct Distances {
  std::vector<std::uint32_t> distance;
  std::vector<std::uint32_t> parent_edge;
};
Distances computeDistances(const Graph& g);

// The immediate dominator of each node (the root dominates itself) over the
// edges in `r`, by Semi-NCA (iterative DFS, near-linear), and retained
// sizes: self size plus the sizes of the dominated subtree. Nodes the root
// does not reach are hung under the root (`unreachable` counts them), as
// DevTools does, so every node has a retained size.
struct Dominators {
  std::vector<std::uint32_t> idom;
  std::vector<std::uint64_t> retained;
  std::size_t unreachable = 0;
};
Dominators computeDominators(const Graph& g, const Retainers& r);

// DevTools' class name of a node (HeapSnapshot.ts calculateObjectNames):
// object/native → its name; hidden → "(system)"; code → "(compiled code)";
// closure → "Function"; regexp → "RegExp"; the rest "(" + type + ")", e.g.
// "(array)", "(concatenated string)".
std::string className(const Graph& g, std::uint32_t node);

// Every node's class (an index into `names`, the distinct class names in
// order of first appearance).
struct Classes {
  std::vector<std::uint32_t> of;
  std::vector<std::string> names;
};
Classes classify(const Graph& g);
// Each class's retained size: the sum over its instances that no other
// instance of the same class dominates (DevTools calculateClassesRetainedSize),
// so nested instances are not counted twice. Indexed like Classes::names.
std::vector<std::uint64_t> classRetained(const Graph& g, const Dominators& d, const Classes& c);

// One retaining path from the root to a node, as DevTools writes it:
// "(GC roots) → … → Endpoint._socket → TLSSocket". `steps` are the edges
// from the outermost, each with the class of the node it leaves.
struct PathStep {
  std::string from_class;  // class of the retaining node
  std::string edge;        // ".name", "[3]", "->ctx", "{internal}" ...
};
struct RetainingPath {
  std::vector<PathStep> steps;
  std::string target_class;
  std::string text() const;   // "(GC roots) → Endpoint._socket → TLSSocket"
  std::string shape() const;  // text() with element indexes as [] (what clusters)
};
RetainingPath pathTo(const Graph& g, const Distances& d, std::uint32_t node);
// The edge as DevTools writes it in a path: ".name" for properties, "[i]" for
// elements, "->name" for context variables, "{name}" for internal ...
std::string edgeLabel(const Graph& g, std::uint32_t edge);

// Paths to `nodes`, clustered by shape, most shared first.
struct PathCluster {
  std::string shape;
  RetainingPath example;
  std::size_t count = 0;
};
std::vector<PathCluster> clusterPaths(const Graph& g, const Distances& d,
                                      const std::vector<std::uint32_t>& nodes,
                                      std::size_t max_clusters);

}  // namespace leakscope::analysis::v8
