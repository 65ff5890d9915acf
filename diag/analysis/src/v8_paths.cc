// Retaining paths in DevTools' notation, and their clusters by shape.
// docs/v8-graph.md describes the notation.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "v8_graph.h"

namespace leakscope::analysis::v8 {
namespace {

using u32 = std::uint32_t;

// The node whose edge list holds `edge` (edges are grouped by source).
u32 sourceOf(const Graph& g, u32 edge) {
  const auto it = std::upper_bound(g.first_edge.begin(), g.first_edge.end(), edge);
  return static_cast<u32>(it - g.first_edge.begin()) - 1;
}

// Synthetic nodes ("(GC roots)", "(Global handles)" ...) are one of a kind:
// a path names them, where their class would say "(synthetic)".
std::string pathNodeName(const Graph& g, u32 node) {
  if (g.type[node] == NodeType::kSynthetic && !g.str(g.name[node]).empty()) {
    return std::string(g.str(g.name[node]));
  }
  return className(g, node);
}

// "[12]" → "[]" and "{3}" → "{}": index edges differ between instances that
// are held the same way.
std::string_view shapeOf(std::string_view label) {
  if (label.size() < 3) return label;
  const char open = label.front();
  const char close = label.back();
  if (!((open == '[' && close == ']') || (open == '{' && close == '}'))) return label;
  const std::string_view inner = label.substr(1, label.size() - 2);
  const bool digits =
      std::all_of(inner.begin(), inner.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) return label;
  return open == '[' ? "[]" : "{}";
}

std::string render(const RetainingPath& p, bool shape) {
  if (p.steps.empty()) return p.target_class;
  // The step out of the snapshot's root is what "(GC roots)" stands for.
  std::string out = "(GC roots)";
  for (std::size_t i = 1; i < p.steps.size(); ++i) {
    out += " → ";
    out += p.steps[i].from_class;
    out += shape ? shapeOf(p.steps[i].edge) : std::string_view(p.steps[i].edge);
  }
  out += " → ";
  out += p.target_class;
  return out;
}

}  // namespace

std::string edgeLabel(const Graph& g, std::uint32_t edge) {
  const EdgeType type = g.edge_type[edge];
  const std::string name = edgeNameIsIndex(type) ? std::to_string(g.edge_name[edge])
                                                 : std::string(g.str(g.edge_name[edge]));
  switch (type) {
    case EdgeType::kContext:
      return "->" + name;
    case EdgeType::kElement:
      return "[" + name + "]";
    case EdgeType::kWeak:
      return "[[" + name + "]]";
    case EdgeType::kProperty:
    case EdgeType::kShortcut:
      return name.find(' ') == std::string::npos ? "." + name : "[\"" + name + "\"]";
    case EdgeType::kInternal:
    case EdgeType::kHidden:
      return "{" + name + "}";
    default:
      return "?" + name + "?";
  }
}

std::string RetainingPath::text() const { return render(*this, false); }
std::string RetainingPath::shape() const { return render(*this, true); }

RetainingPath pathTo(const Graph& g, const Distances& d, std::uint32_t node) {
  RetainingPath p;
  p.target_class = pathNodeName(g, node);
  // parent_edge is a BFS tree, so the walk ends at the root; the bound only
  // guards against a Distances that does not belong to this graph.
  u32 v = node;
  for (std::size_t guard = 0; v != 0 && d.parent_edge[v] != kNone && guard < g.nodeCount();
       ++guard) {
    const u32 edge = d.parent_edge[v];
    const u32 from = sourceOf(g, edge);
    p.steps.push_back({pathNodeName(g, from), edgeLabel(g, edge)});
    v = from;
  }
  if (v != 0) p.steps.clear();  // not held from the root: no path
  std::reverse(p.steps.begin(), p.steps.end());
  return p;
}

std::vector<PathCluster> clusterPaths(const Graph& g, const Distances& d,
                                      const std::vector<std::uint32_t>& nodes,
                                      std::size_t max_clusters) {
  std::vector<PathCluster> clusters;
  std::unordered_map<std::string, std::size_t> by_shape;
  for (const u32 node : nodes) {
    RetainingPath path = pathTo(g, d, node);
    std::string shape = path.shape();
    const auto [it, added] = by_shape.try_emplace(shape, clusters.size());
    if (added) clusters.push_back({std::move(shape), std::move(path), 0});
    ++clusters[it->second].count;
  }
  std::stable_sort(clusters.begin(), clusters.end(),
                   [](const PathCluster& a, const PathCluster& b) {
                     if (a.count != b.count) return a.count > b.count;
                     return a.shape < b.shape;
                   });
  if (clusters.size() > max_clusters) clusters.resize(max_clusters);
  return clusters;
}

}  // namespace leakscope::analysis::v8
