// The graph analyses of a V8 heap snapshot: which edges retain, the reverse
// index, distances from the roots and the dominator tree. The rules follow
// DevTools' HeapSnapshot.ts so that a figure can be checked there;
// docs/v8-graph.md writes each one down with the DevTools function it follows
// and where this code departs from it.
//
// Memory is the constraint (graphs have tens of millions of nodes): every
// per-node array is a u32 column, node sets are bitmaps, and temporaries are
// freed before the next step allocates.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "v8_graph.h"

namespace leakscope::analysis::v8 {
namespace {

using u32 = std::uint32_t;
constexpr u32 kRoot = 0;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// The leading decimal number of `s` (JavaScript's parseInt, without sign or
// blanks): nothing when `s` does not start with a digit.
std::optional<std::uint64_t> leadingNumber(std::string_view s) {
  if (s.empty() || !isDigit(s.front())) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!isDigit(c) || v > (std::uint64_t{1} << 59)) break;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// V8 names each of the two edges to a WeakMap value
//   "<n> / part of key (<k> @<id>) -> value (<v> @<id>) pair in WeakMap (table @<id>)"
// one from the table, one from the key. `pair` is the name without its
// leading <n>, the same on both edges.
struct Ephemeron {
  std::string_view pair;
  std::uint64_t table_id = 0;
};

std::optional<Ephemeron> parseEphemeron(std::string_view name) {
  // Most internal edge names ("map", "elements" ...) fail on the first byte.
  if (name.empty() || !isDigit(name.front())) return std::nullopt;
  std::size_t digits = 0;
  while (digits < name.size() && isDigit(name[digits])) ++digits;
  const std::string_view pair = name.substr(digits);
  constexpr std::string_view kHead = " / part of key (";
  constexpr std::string_view kTable = " pair in WeakMap (table @";
  if (!pair.starts_with(kHead) || !pair.ends_with(")")) return std::nullopt;
  if (pair.find(") -> value (") == std::string_view::npos) return std::nullopt;
  const std::size_t table = pair.rfind(kTable);
  if (table == std::string_view::npos) return std::nullopt;
  const std::string_view id =
      pair.substr(table + kTable.size(), pair.size() - 1 - table - kTable.size());
  if (id.empty() || !std::all_of(id.begin(), id.end(), isDigit)) return std::nullopt;
  return Ephemeron{pair, *leadingNumber(id)};
}

std::string_view edgeNameText(const Graph& g, u32 edge) {
  return edgeNameIsIndex(g.edge_type[edge]) ? std::string_view{} : g.str(g.edge_name[edge]);
}

// DevTools' markPageOwnedNodes: the root's shortcut edges (the user's
// global objects) and `(Document DOM trees)`, and all they reach over
// non-weak edges.
NodeBits userOwnedNodes(const Graph& g) {
  const std::size_t n = g.nodeCount();
  NodeBits owned(n);
  if (n == 0) return owned;
  std::vector<u32> stack;
  auto mark = [&](u32 v) {
    if (owned.test(v)) return;
    owned.set(v);
    stack.push_back(v);
  };
  for (u32 e = g.first_edge[kRoot]; e < g.first_edge[kRoot + 1]; ++e) {
    const u32 to = g.edge_to[e];
    const bool dom_trees = g.edge_type[e] == EdgeType::kElement &&
                           g.type[to] == NodeType::kSynthetic &&
                           g.str(g.name[to]) == "(Document DOM trees)";
    if (g.edge_type[e] == EdgeType::kShortcut || dom_trees) mark(to);
  }
  while (!stack.empty()) {
    const u32 v = stack.back();
    stack.pop_back();
    for (u32 e = g.first_edge[v]; e < g.first_edge[v + 1]; ++e) {
      if (g.edge_type[e] != EdgeType::kWeak) mark(g.edge_to[e]);
    }
  }
  return owned;
}

}  // namespace

bool isEssentialEdge(const Graph& g, std::uint32_t from, std::uint32_t edge) {
  const EdgeType type = g.edge_type[edge];
  if (type == EdgeType::kWeak || g.edge_to[edge] == from) return false;
  // From the root, shortcuts mark the user's global objects; elsewhere they
  // duplicate a real reference (a bound function's "bound_this" ...).
  if (type == EdgeType::kShortcut && from != kRoot) return false;
  if (type == EdgeType::kInternal) {
    const auto ephemeron = parseEphemeron(g.str(g.edge_name[edge]));
    // The value is held by key and table together; DevTools keeps the key's
    // edge because it says more about why the value is alive.
    if (ephemeron && ephemeron->table_id == g.id[from]) return false;
  }
  return true;
}

bool Retainers::retains(const Graph& g, std::uint32_t from, std::uint32_t e) const {
  if (!isEssentialEdge(g, from, e)) return false;
  if (from == kRoot) return true;
  return !user_owned.test(g.edge_to[e]) || user_owned.test(from);
}

Retainers buildRetainers(const Graph& g) {
  const std::size_t n = g.nodeCount();
  Retainers r;
  r.user_owned = userOwnedNodes(g);
  // Which edges retain, decided once (a bit each): the rules read edge
  // names, and bucketIndex walks the edges twice.
  NodeBits kept(g.edgeCount());
  for (u32 from = 0; from < n; ++from) {
    for (u32 e = g.first_edge[from]; e < g.first_edge[from + 1]; ++e) {
      if (r.retains(g, from, e)) kept.set(e);
    }
  }
  // Sources in ordinal order, so each node's retainers come sorted.
  auto forEach = [&](auto emit) {
    for (u32 from = 0; from < n; ++from) {
      for (u32 e = g.first_edge[from]; e < g.first_edge[from + 1]; ++e) {
        if (kept.test(e)) emit(g.edge_to[e], e, from);
      }
    }
  };
  auto reserve = [&](u32 total) {
    r.edge.resize(total);
    r.node.resize(total);
  };
  auto place = [&](u32 slot, u32 e, u32 from) {
    r.edge[slot] = e;
    r.node[slot] = from;
  };
  r.first = bucketIndex(n, forEach, reserve, place);
  return r;
}

namespace {

// DevTools' calculateDistances with JSHeapSnapshot's edge filter: one BFS
// from the user roots, then one from the root for what is left.
class DistanceSearch {
 public:
  explicit DistanceSearch(const Graph& g) : g_(g), queue_(g.nodeCount()) {
    d_.distance.assign(g.nodeCount(), kNone);
    d_.parent_edge.assign(g.nodeCount(), kNone);
  }

  Distances run() {
    if (g_.nodeCount() == 0) return std::move(d_);
    // The root is settled first so that no path runs through it.
    d_.distance[kRoot] = 0;
    for (u32 e = g_.first_edge[kRoot]; e < g_.first_edge[kRoot + 1]; ++e) {
      const u32 to = g_.edge_to[e];
      if (isUserRoot(to) && d_.distance[to] == kNone) reach(to, 1, e);
    }
    const bool had_user_roots = tail_ > 0;
    bfs();
    d_.distance[kRoot] = had_user_roots ? kSystemDistance : 0;
    queue_[tail_++] = kRoot;
    bfs();
    queue_.clear();
    queue_.shrink_to_fit();
    return std::move(d_);
  }

 private:
  bool isUserRoot(u32 v) const {
    return g_.type[v] != NodeType::kSynthetic || g_.str(g_.name[v]) == "(Document DOM trees)";
  }

  void reach(u32 v, u32 distance, u32 edge) {
    d_.distance[v] = distance;
    d_.parent_edge[v] = edge;
    queue_[tail_++] = v;
  }

  void bfs() {
    while (head_ < tail_) {
      const u32 v = queue_[head_++];
      const u32 next = d_.distance[v] + 1;
      for (u32 e = g_.first_edge[v]; e < g_.first_edge[v + 1]; ++e) {
        if (g_.edge_type[e] == EdgeType::kWeak) continue;
        const u32 to = g_.edge_to[e];
        // Visited first, as DevTools does: the WeakMap rule below must see
        // only edges that would set a distance.
        if (d_.distance[to] != kNone || !follows(v, e)) continue;
        reach(to, next, e);
      }
    }
  }

  // JSHeapSnapshot.calculateDistances' filter.
  bool follows(u32 from, u32 edge) {
    const NodeType type = g_.type[from];
    if (type == NodeType::kHidden && edgeNameText(g_, edge) == "sloppy_function_map" &&
        g_.str(g_.name[from]) == "system / NativeContext") {
      return false;
    }
    if (type == NodeType::kArray && g_.str(g_.name[from]) == "(map descriptors)") {
      // Maps share descriptor arrays, so their descriptor slots
      // ([i * 3 + 3]) may not belong to this map (crbug.com/413608).
      const auto index = edgeNameIsIndex(g_.edge_type[edge])
                             ? std::optional<std::uint64_t>(g_.edge_name[edge])
                             : leadingNumber(edgeNameText(g_, edge));
      return !index || *index < 2 || *index % 3 != 1;
    }
    if (g_.edge_type[edge] == EdgeType::kInternal) {
      // A WeakMap value gets the later of its table's and its key's edge
      // (crbug.com/1290800): skip the first of the pair that BFS meets.
      const auto ephemeron = parseEphemeron(g_.str(g_.edge_name[edge]));
      if (ephemeron && pending_pairs_.erase(ephemeron->pair) == 0) {
        pending_pairs_.insert(ephemeron->pair);
        return false;
      }
    }
    return true;
  }

  const Graph& g_;
  Distances d_;
  std::vector<u32> queue_;  // every node enters it at most once
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
  std::unordered_set<std::string_view> pending_pairs_;  // views into g_.string_data
};

}  // namespace

Distances computeDistances(const Graph& g) { return DistanceSearch(g).run(); }

namespace {

// Semi-NCA (Georgiadis and Tarjan; the formulation of LLVM's
// GenericDomTreeConstruction): a DFS numbers the nodes, semidominators come
// from a path-compressed eval over the reverse index in decreasing DFS
// order, and each immediate dominator is the nearest common ancestor of the
// node's DFS parent and its semidominator. Arrays are indexed by DFS number
// unless named by ordinal; the root is number 0.
class SemiNca {
 public:
  SemiNca(const Graph& g, const Retainers& r) : g_(g), r_(r), n_(g.nodeCount()) {}

  Dominators run() {
    Dominators out;
    if (n_ == 0) return out;
    number();
    out.unreachable = n_ - reached_from_root_;
    semidominators();
    immediateDominators();
    retainedSizes(out);
    return out;
  }

 private:
  // What eval touches for one DFS number, together so that a step up the
  // tree costs one cache miss, not three (the graphs are far bigger than
  // any cache).
  struct Vertex {
    u32 ancestor;  // the DFS parent, then compressed by eval
    u32 semi;      // in the DFS: the next edge to try
    u32 label;
  };

  // Step 1: DFS numbering from the root, then the unreachable nodes hung
  // under the root as DevTools does: first those with no retaining edge at
  // all (only weak or self edges), then what is left (cycles only the
  // unreachable hold), each a DFS of its own in ordinal order.
  void number() {
    pre_.assign(n_, kNone);
    vertex_.resize(n_);
    info_.resize(n_);
    visit(kRoot, 0);
    reached_from_root_ = count_;
    for (u32 v = 0; v < n_ && count_ < n_; ++v) {
      if (pre_[v] == kNone && r_.first[v] == r_.first[v + 1]) visit(v, 0);
    }
    for (u32 v = 0; v < n_ && count_ < n_; ++v) {
      if (pre_[v] == kNone) visit(v, 0);
    }
  }

  u32 assign(u32 v, u32 parent) {
    const u32 k = count_++;
    pre_[v] = k;
    vertex_[k] = v;
    info_[k] = {parent, g_.first_edge[v], k};
    return k;
  }

  // Iterative: each number keeps its next edge in `semi`, and a finished
  // node returns to its parent, so the depth costs no stack.
  void visit(u32 start, u32 parent) {
    const u32 top = assign(start, parent);
    u32 k = top;
    for (;;) {
      const u32 v = vertex_[k];
      const u32 end = g_.first_edge[v + 1];
      u32& e = info_[k].semi;
      while (e < end && (pre_[g_.edge_to[e]] != kNone || !r_.retains(g_, v, e))) ++e;
      if (e < end) {
        k = assign(g_.edge_to[e++], k);
      } else if (k == top) {
        return;
      } else {
        k = info_[k].ancestor;
      }
    }
  }

  // Step 2: semi(w) = the smallest number from which a path reaches w
  // through higher numbers. idom_ keeps the DFS parents for step 3, since
  // eval compresses the ancestors.
  void semidominators() {
    idom_.resize(n_);
    for (u32 k = 0; k < n_; ++k) {
      idom_[k] = info_[k].ancestor;
      info_[k].semi = k;
    }
    for (u32 w = static_cast<u32>(n_) - 1; w >= 1; --w) {
      u32 best = idom_[w];
      const u32 ordinal = vertex_[w];
      // Garbage does not decide who holds a live object: an edge from a
      // node the root does not reach into one it does is left out (DevTools
      // keeps it, so its root may take over such objects).
      const bool live = w < reached_from_root_;
      for (u32 i = r_.first[ordinal]; i < r_.first[ordinal + 1]; ++i) {
        const u32 v = pre_[r_.node[i]];
        if (live && v >= reached_from_root_) continue;
        best = std::min(best, info_[eval(v, w + 1)].semi);
      }
      info_[w].semi = best;
    }
    std::vector<u32>().swap(stack_);
  }

  // The label with the smallest semidominator on v's path of processed
  // (number >= last) ancestors, compressing that path.
  u32 eval(u32 v, u32 last) {
    if (info_[v].ancestor < last) return info_[v].label;
    stack_.clear();
    u32 x = v;
    do {
      stack_.push_back(x);
      x = info_[x].ancestor;
    } while (info_[x].ancestor >= last);
    const Vertex* p = &info_[x];
    u32 p_label = p->label;
    while (!stack_.empty()) {
      Vertex& y = info_[stack_.back()];
      stack_.pop_back();
      y.ancestor = p->ancestor;
      if (info_[p_label].semi < info_[y.label].semi) {
        y.label = p_label;
      } else {
        p_label = y.label;
      }
      p = &y;
    }
    return info_[v].label;
  }

  // Step 3: idom(w) = the nearest ancestor of w's DFS parent in the
  // dominator tree built so far whose number is at most semi(w).
  void immediateDominators() {
    for (u32 w = 1; w < n_; ++w) {
      u32 candidate = idom_[w];
      while (candidate > info_[w].semi) candidate = idom_[candidate];
      idom_[w] = candidate;
    }
    std::vector<Vertex>().swap(info_);
  }

  // Children come after their dominator in DFS order, so one pass in
  // decreasing order adds each subtree into its dominator.
  void retainedSizes(Dominators& out) {
    out.idom.resize(n_);
    for (u32 v = 0; v < n_; ++v) out.idom[v] = vertex_[idom_[pre_[v]]];
    std::vector<u32>().swap(pre_);
    out.retained.assign(g_.self_size.begin(), g_.self_size.end());
    for (u32 w = static_cast<u32>(n_) - 1; w >= 1; --w) {
      out.retained[vertex_[idom_[w]]] += out.retained[vertex_[w]];
    }
  }

  const Graph& g_;
  const Retainers& r_;
  const std::size_t n_;
  std::size_t reached_from_root_ = 0;
  u32 count_ = 0;
  // Kept apart from info_, which is freed before the output is allocated:
  // with it the peak stays at 24 bytes a node.
  std::vector<u32> pre_;     // by ordinal: DFS number
  std::vector<u32> vertex_;  // ordinal
  std::vector<u32> idom_;
  std::vector<Vertex> info_;
  std::vector<u32> stack_;  // eval's path, reused
};

}  // namespace

Dominators computeDominators(const Graph& g, const Retainers& r) { return SemiNca(g, r).run(); }

}  // namespace leakscope::analysis::v8
