// The graph analyses of V8 heap snapshots (diag/analysis/src/v8_graph.cc,
// v8_classes.cc, v8_paths.cc) on graphs built directly as columns:
// hand-made shapes with their dominators and retained sizes written out,
// random small graphs against a naive reference, and big graphs that would
// overflow the stack if anything recursed.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "v8_graph.h"

namespace v8 = leakscope::analysis::v8;
using v8::EdgeType;
using v8::kNone;
using v8::NodeType;
using u32 = std::uint32_t;

namespace {

// Builds a Graph column by column. Node 0 is the root (synthetic, id 1).
class Builder {
 public:
  Builder() { node(NodeType::kSynthetic, "", 0); }

  u32 node(NodeType type, const std::string& name, std::uint64_t self) {
    const u32 v = static_cast<u32>(types_.size());
    types_.push_back(type);
    names_.push_back(static_cast<u32>(intern(name)));
    ids_.push_back(2 * v + 1);
    selfs_.push_back(self);
    edges_.emplace_back();
    return v;
  }
  u32 object(const std::string& name, std::uint64_t self) {
    return node(NodeType::kObject, name, self);
  }
  void setId(u32 v, u32 id) { ids_[v] = id; }

  // A string-named edge (property by default) or, for element/hidden, an index.
  void edge(u32 from, u32 to, EdgeType type = EdgeType::kProperty, const std::string& name = "p") {
    edges_[from].push_back({type, v8::edgeNameIsIndex(type) ? std::stoul(name) : intern(name), to});
  }

  v8::Graph build() const {
    v8::Graph g;
    g.type = types_;
    g.name = names_;
    g.id = ids_;
    g.self_size = selfs_;
    g.first_edge.push_back(0);
    for (const auto& out : edges_) {
      for (const auto& [type, name, to] : out) {
        g.edge_type.push_back(type);
        g.edge_name.push_back(static_cast<u32>(name));
        g.edge_to.push_back(to);
      }
      g.first_edge.push_back(static_cast<u32>(g.edge_type.size()));
    }
    g.string_offset.push_back(0);
    for (const auto& s : strings_) {
      g.string_data += s;
      g.string_offset.push_back(g.string_data.size());
    }
    return g;
  }

 private:
  std::size_t intern(const std::string& s) {
    const auto it = std::find(strings_.begin(), strings_.end(), s);
    if (it != strings_.end()) return static_cast<std::size_t>(it - strings_.begin());
    strings_.push_back(s);
    return strings_.size() - 1;
  }

  std::vector<NodeType> types_;
  std::vector<u32> names_;
  std::vector<u32> ids_;
  std::vector<std::uint64_t> selfs_;
  std::vector<std::vector<std::tuple<EdgeType, std::size_t, u32>>> edges_;
  std::vector<std::string> strings_;
};

struct Analysis {
  v8::Retainers retainers;
  v8::Dominators dominators;
};

Analysis analyse(const v8::Graph& g) {
  Analysis a{v8::buildRetainers(g), {}};
  a.dominators = v8::computeDominators(g, a.retainers);
  return a;
}

std::uint64_t totalSelf(const v8::Graph& g) {
  std::uint64_t sum = 0;
  for (auto s : g.self_size) sum += s;
  return sum;
}

// ---- hand-made graphs -----------------------------------------------------

TEST(V8Dominators, Diamond) {
  Builder b;
  const u32 a = b.object("A", 10), l = b.object("L", 20), r = b.object("R", 30),
            d = b.object("D", 40);
  b.edge(0, a, EdgeType::kShortcut, "global");
  b.edge(a, l);
  b.edge(a, r);
  b.edge(l, d);
  b.edge(r, d);
  const auto g = b.build();
  const auto x = analyse(g);
  EXPECT_EQ(x.dominators.idom, (std::vector<u32>{0, 0, a, a, a}));
  EXPECT_EQ(x.dominators.retained, (std::vector<std::uint64_t>{100, 100, 20, 30, 40}));
  EXPECT_EQ(x.dominators.unreachable, 0u);
}

TEST(V8Dominators, Cycle) {
  Builder b;
  const u32 a = b.object("A", 1), c1 = b.object("B", 2), c2 = b.object("C", 4);
  b.edge(0, a, EdgeType::kShortcut, "global");
  b.edge(a, c1);
  b.edge(c1, c2);
  b.edge(c2, c1);  // back into the cycle: does not change who dominates
  const auto x = analyse(b.build());
  EXPECT_EQ(x.dominators.idom, (std::vector<u32>{0, 0, a, c1}));
  EXPECT_EQ(x.dominators.retained, (std::vector<std::uint64_t>{7, 7, 6, 4}));
}

TEST(V8Dominators, WeakEdgeDoesNotRetain) {
  Builder b;
  const u32 a = b.object("A", 1), w = b.object("W", 2), t = b.object("T", 4),
            only_weak = b.object("Cache", 8);
  b.edge(0, a, EdgeType::kShortcut, "global");
  b.edge(0, w, EdgeType::kShortcut, "other");
  b.edge(a, t);
  b.edge(w, t, EdgeType::kWeak, "1");  // would make the root T's dominator
  b.edge(a, only_weak, EdgeType::kWeak, "2");
  const auto g = b.build();
  const auto x = analyse(g);
  EXPECT_EQ(x.dominators.idom[t], a);
  EXPECT_EQ(x.dominators.retained[a], 5u);
  // Held only weakly: unreachable, hung under the root, still sized.
  EXPECT_EQ(x.dominators.idom[only_weak], 0u);
  EXPECT_EQ(x.dominators.unreachable, 1u);
  EXPECT_EQ(x.dominators.retained[0], totalSelf(g));
  EXPECT_FALSE(v8::isEssentialEdge(g, w, g.first_edge[w]));
}

TEST(V8Dominators, ShortcutRetainsOnlyFromTheRoot) {
  Builder b;
  const u32 a = b.object("A", 1), bound = b.object("Bound", 2), target = b.object("T", 4),
            g2 = b.object("G2", 8);
  b.edge(0, a, EdgeType::kShortcut, "global");
  b.edge(a, bound);
  b.edge(a, target);
  b.edge(bound, target, EdgeType::kShortcut, "bound_this");  // ignored
  b.edge(bound, g2);
  b.edge(0, g2, EdgeType::kShortcut, "global2");  // from the root: kept
  const auto g = b.build();
  const auto x = analyse(g);
  EXPECT_EQ(x.dominators.idom[target], a);
  EXPECT_EQ(x.dominators.idom[g2], 0u);
  EXPECT_FALSE(v8::isEssentialEdge(g, bound, g.first_edge[bound]));
  EXPECT_TRUE(v8::isEssentialEdge(g, 0, g.first_edge[0]));
}

TEST(V8Dominators, SelfEdgeIsNoRetainer) {
  Builder b;
  const u32 a = b.object("A", 1), lonely = b.object("Self", 2);
  b.edge(0, a, EdgeType::kShortcut, "global");
  b.edge(a, a);
  b.edge(lonely, lonely);
  const auto g = b.build();
  const auto x = analyse(g);
  EXPECT_EQ(x.retainers.first[a + 1] - x.retainers.first[a], 1u);  // the root's edge only
  EXPECT_EQ(x.retainers.first[lonely + 1] - x.retainers.first[lonely], 0u);
  EXPECT_EQ(x.dominators.idom[lonely], 0u);
  EXPECT_EQ(x.dominators.unreachable, 1u);
}

TEST(V8Dominators, UnreachableIslandHangsUnderTheRoot) {
  Builder b;
  const u32 a = b.object("A", 1);
  // An island: an orphan holding a cycle, and a cycle nothing else holds.
  const u32 orphan = b.object("Orphan", 2), c1 = b.object("C1", 4), c2 = b.object("C2", 8);
  const u32 k1 = b.object("K1", 16), k2 = b.object("K2", 32);
  const u32 held = b.object("Held", 64);
  b.edge(0, a, EdgeType::kShortcut, "global");
  b.edge(a, held);
  b.edge(orphan, c1);
  b.edge(c1, c2);
  b.edge(c2, c1);
  b.edge(c2, held);  // garbage pointing into the live heap changes nothing
  b.edge(k1, k2);
  b.edge(k2, k1);
  const auto g = b.build();
  const auto x = analyse(g);
  EXPECT_EQ(x.dominators.unreachable, 5u);
  EXPECT_EQ(x.dominators.idom, (std::vector<u32>{0, 0, 0, orphan, c1, 0, k1, a}));
  EXPECT_EQ(x.dominators.retained[a], 65u);
  EXPECT_EQ(x.dominators.retained[orphan], 14u);
  EXPECT_EQ(x.dominators.retained[k1], 48u);
  EXPECT_EQ(x.dominators.retained[0], totalSelf(g));
}

// DevTools' page-owned rule: a handle from the system roots does not take
// over an object the program holds.
TEST(V8Dominators, SystemRootsDoNotTakeOverUserObjects) {
  Builder b;
  const u32 global = b.object("Global", 1);
  const u32 gc_roots = b.node(NodeType::kSynthetic, "(GC roots)", 0);
  const u32 handles = b.node(NodeType::kSynthetic, "(Global handles)", 0);
  const u32 socket = b.object("TLSSocket", 8);
  const u32 internal = b.node(NodeType::kHidden, "system / Cache", 16);
  b.edge(0, global, EdgeType::kShortcut, "global");
  b.edge(0, gc_roots, EdgeType::kElement, "1");
  b.edge(gc_roots, handles, EdgeType::kElement, "2");
  b.edge(global, socket, EdgeType::kProperty, "sock");
  b.edge(handles, socket, EdgeType::kElement, "3");
  b.edge(handles, internal, EdgeType::kElement, "4");
  const auto g = b.build();
  const auto x = analyse(g);
  EXPECT_TRUE(x.retainers.user_owned.test(socket));
  EXPECT_FALSE(x.retainers.user_owned.test(handles));
  EXPECT_FALSE(x.retainers.retains(g, handles, g.first_edge[handles]));
  EXPECT_EQ(x.dominators.idom[socket], global);
  EXPECT_EQ(x.dominators.idom[internal], handles);
}

TEST(V8Dominators, WeakMapValueBelongsToTheKey) {
  Builder b;
  const u32 global = b.object("Global", 1), table = b.node(NodeType::kArray, "WeakMap table", 2);
  const u32 key = b.object("Key", 4), value = b.object("Value", 8);
  b.setId(table, 77);
  b.edge(0, global, EdgeType::kShortcut, "global");
  b.edge(global, table);
  b.edge(global, key);
  const std::string pair =
      " / part of key (Key @7) -> value (Value @9) pair in WeakMap (table @77)";
  b.edge(table, value, EdgeType::kInternal, "1" + pair);
  b.edge(key, value, EdgeType::kInternal, "2" + pair);
  const auto g = b.build();
  EXPECT_FALSE(v8::isEssentialEdge(g, table, g.first_edge[table]));
  EXPECT_TRUE(v8::isEssentialEdge(g, key, g.first_edge[key]));
  const auto x = analyse(g);
  EXPECT_EQ(x.dominators.idom[value], key);
  // Distances: the value gets the later of its two edges.
  const auto d = v8::computeDistances(g);
  EXPECT_EQ(d.distance[value], 3u);
  EXPECT_EQ(d.parent_edge[value], g.first_edge[key]);
}

TEST(V8Dominators, EmptyGraph) {
  const v8::Graph g;
  const auto r = v8::buildRetainers(g);
  EXPECT_EQ(r.first, std::vector<u32>{0});
  EXPECT_TRUE(v8::computeDominators(g, r).idom.empty());
  EXPECT_TRUE(v8::computeDistances(g).distance.empty());
  EXPECT_TRUE(v8::classRetained(g, {}, v8::classify(g)).empty());
}

// ---- random small graphs against a naive reference -------------------------

v8::Graph randomGraph(std::mt19937& rng) {
  const u32 n = std::uniform_int_distribution<u32>(2, 40)(rng);
  const EdgeType types[] = {EdgeType::kProperty, EdgeType::kElement, EdgeType::kInternal,
                            EdgeType::kContext,  EdgeType::kHidden,  EdgeType::kWeak,
                            EdgeType::kShortcut};
  Builder b;
  for (u32 i = 1; i < n; ++i) {
    b.node(i % 5 == 0 ? NodeType::kSynthetic : NodeType::kObject, "N" + std::to_string(i % 3),
           std::uniform_int_distribution<std::uint64_t>(0, 100)(rng));
  }
  const u32 edges = std::uniform_int_distribution<u32>(0, 3 * n)(rng);
  for (u32 i = 0; i < edges; ++i) {
    // Sources lean towards the root so that most nodes are reachable.
    const u32 from = std::uniform_int_distribution<int>(0, 3)(rng) == 0
                         ? 0
                         : std::uniform_int_distribution<u32>(0, n - 1)(rng);
    const u32 to = std::uniform_int_distribution<u32>(0, n - 1)(rng);
    const EdgeType t = types[std::uniform_int_distribution<int>(0, 6)(rng)];
    b.edge(from, to, t, v8::edgeNameIsIndex(t) ? std::to_string(i) : "e" + std::to_string(i));
  }
  return b.build();
}

// The rules written out the plain way: reachability from the root over
// essential edges, with `removed` taken out of the graph.
class Naive {
 public:
  explicit Naive(const v8::Graph& g) : g_(g), n_(g.nodeCount()) { markUserOwned(); }

  bool essential(u32 from, u32 e) const {
    const EdgeType t = g_.edge_type[e];
    const u32 to = g_.edge_to[e];
    if (t == EdgeType::kWeak || to == from) return false;
    if (from == 0) return true;
    if (t == EdgeType::kShortcut) return false;
    return !(owned_[to] && !owned_[from]);
  }

  std::vector<bool> reachable(u32 removed) const {
    std::vector<bool> seen(n_, false);
    if (removed == 0) return seen;
    std::vector<u32> stack{0};
    seen[0] = true;
    while (!stack.empty()) {
      const u32 v = stack.back();
      stack.pop_back();
      for (u32 e = g_.first_edge[v]; e < g_.first_edge[v + 1]; ++e) {
        const u32 to = g_.edge_to[e];
        if (to == removed || seen[to] || !essential(v, e)) continue;
        seen[to] = true;
        stack.push_back(to);
      }
    }
    return seen;
  }

 private:
  void markUserOwned() {
    owned_.assign(n_, false);
    std::vector<u32> stack;
    for (u32 e = g_.first_edge[0]; e < g_.first_edge[1]; ++e) {
      if (g_.edge_type[e] == EdgeType::kShortcut && !owned_[g_.edge_to[e]]) {
        owned_[g_.edge_to[e]] = true;
        stack.push_back(g_.edge_to[e]);
      }
    }
    while (!stack.empty()) {
      const u32 v = stack.back();
      stack.pop_back();
      for (u32 e = g_.first_edge[v]; e < g_.first_edge[v + 1]; ++e) {
        if (g_.edge_type[e] == EdgeType::kWeak || owned_[g_.edge_to[e]]) continue;
        owned_[g_.edge_to[e]] = true;
        stack.push_back(g_.edge_to[e]);
      }
    }
  }

  const v8::Graph& g_;
  const std::size_t n_;
  std::vector<bool> owned_;
};

// Dominators by definition: d dominates v iff v is cut off from the root
// with d removed.
class NaiveDominators {
 public:
  explicit NaiveDominators(const v8::Graph& g) : g_(g), n_(g.nodeCount()), alive_(n_) {
    const Naive naive(g);
    live_ = naive.reachable(kNone);
    for (u32 d = 1; d < n_; ++d) alive_[d] = naive.reachable(d);
  }

  bool live(u32 v) const { return live_[v]; }
  bool dominates(u32 d, u32 v) const { return d == 0 || (d != v && !alive_[d][v]); }

  std::size_t unreachable() const {
    return static_cast<std::size_t>(std::count(live_.begin(), live_.end(), false));
  }

  // The strict dominator every other one dominates: the one with the most
  // dominators itself.
  u32 idom(u32 v) const {
    u32 best = 0;
    std::size_t best_depth = 0;
    for (u32 d = 1; d < n_; ++d) {
      if (!dominates(d, v)) continue;
      std::size_t depth = 1;
      for (u32 e = 1; e < n_; ++e) depth += dominates(e, d) ? 1u : 0u;
      if (depth > best_depth) {
        best_depth = depth;
        best = d;
      }
    }
    return best;
  }

  std::uint64_t retained(u32 v) const {
    std::uint64_t sum = g_.self_size[v];
    for (u32 w = 0; w < n_; ++w) sum += (live_[w] && dominates(v, w)) ? g_.self_size[w] : 0u;
    return sum;
  }

 private:
  const v8::Graph& g_;
  const std::size_t n_;
  std::vector<bool> live_;
  std::vector<std::vector<bool>> alive_;  // [d][v]: v reachable with d removed
};

void checkAgainstNaive(const v8::Graph& g, unsigned seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  const NaiveDominators naive(g);
  const auto x = analyse(g);
  EXPECT_EQ(x.dominators.unreachable, naive.unreachable());
  for (u32 v = 1; v < g.nodeCount(); ++v) {
    EXPECT_LT(x.dominators.idom[v], g.nodeCount());  // every node is in the tree
    if (!naive.live(v)) continue;
    EXPECT_EQ(x.dominators.idom[v], naive.idom(v)) << "node " << v;
    EXPECT_EQ(x.dominators.retained[v], naive.retained(v)) << "node " << v;
  }
  EXPECT_EQ(x.dominators.retained[0], totalSelf(g));
}

TEST(V8Dominators, RandomGraphsMatchTheNaiveReference) {
  for (unsigned seed = 1; seed <= 400; ++seed) {
    std::mt19937 rng(seed);
    checkAgainstNaive(randomGraph(rng), seed);
    if (testing::Test::HasFailure()) break;
  }
}

// BFS distances: every non-weak edge from a reached node reaches, at most one
// further; parent_edge arrives from a node one nearer.
TEST(V8Distances, RandomGraphsAreShortestPaths) {
  for (unsigned seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const auto g = randomGraph(rng);
    const auto d = v8::computeDistances(g);
    for (u32 v = 1; v < g.nodeCount(); ++v) {
      for (u32 e = g.first_edge[v]; e < g.first_edge[v + 1]; ++e) {
        if (g.edge_type[e] == EdgeType::kWeak || d.distance[v] == kNone) continue;
        const u32 to = g.edge_to[e];
        if (to == 0) continue;
        ASSERT_NE(d.distance[to], kNone);
        EXPECT_LE(d.distance[to], d.distance[v] + 1);
      }
      if (d.distance[v] == kNone) {
        EXPECT_EQ(d.parent_edge[v], kNone);
        continue;
      }
      const u32 e = d.parent_edge[v];
      ASSERT_NE(e, kNone);
      EXPECT_EQ(g.edge_to[e], v);
      const u32 from = static_cast<u32>(
          std::upper_bound(g.first_edge.begin(), g.first_edge.end(), e) - g.first_edge.begin() - 1);
      if (from == 0) {
        EXPECT_TRUE(d.distance[v] == 1 || d.distance[v] == v8::kSystemDistance + 1);
      } else {
        EXPECT_EQ(d.distance[from] + 1, d.distance[v]);
      }
    }
    if (testing::Test::HasFailure()) break;
  }
}

TEST(V8Distances, UserRootsThenSystem) {
  Builder b;
  const u32 global = b.object("Global", 1), obj = b.object("Obj", 1);
  const u32 gc_roots = b.node(NodeType::kSynthetic, "(GC roots)", 0);
  const u32 internal = b.node(NodeType::kHidden, "system / X", 1);
  const u32 weakly = b.object("Weakly", 1);
  b.edge(0, global, EdgeType::kShortcut, "global");
  b.edge(0, gc_roots, EdgeType::kElement, "1");
  b.edge(global, obj);
  b.edge(gc_roots, internal, EdgeType::kElement, "1");
  b.edge(obj, weakly, EdgeType::kWeak, "1");
  const auto g = b.build();
  const auto d = v8::computeDistances(g);
  EXPECT_EQ(d.distance[0], v8::kSystemDistance);
  EXPECT_EQ(d.distance[global], 1u);
  EXPECT_EQ(d.distance[obj], 2u);
  EXPECT_EQ(d.distance[gc_roots], v8::kSystemDistance + 1);
  EXPECT_EQ(d.distance[internal], v8::kSystemDistance + 2);
  EXPECT_EQ(d.distance[weakly], kNone);
  EXPECT_EQ(d.parent_edge[obj], g.first_edge[global]);
  EXPECT_EQ(d.parent_edge[0], kNone);
}

TEST(V8Distances, DevToolsSkipsSharedDescriptorsAndSloppyMaps) {
  Builder b;
  const u32 global = b.object("Global", 1);
  const u32 descriptors = b.node(NodeType::kArray, "(map descriptors)", 1);
  const u32 key = b.object("K", 1), slot = b.object("Slot", 1), other = b.object("Other", 1);
  const u32 context = b.node(NodeType::kHidden, "system / NativeContext", 1);
  const u32 sloppy = b.object("SloppyMap", 1);
  b.edge(0, global, EdgeType::kShortcut, "global");
  b.edge(global, descriptors);
  b.edge(descriptors, key, EdgeType::kElement, "2");   // kept
  b.edge(descriptors, slot, EdgeType::kElement, "4");  // 4 % 3 == 1: skipped
  b.edge(global, context);
  b.edge(context, sloppy, EdgeType::kInternal, "sloppy_function_map");
  b.edge(global, other);
  b.edge(other, slot);
  b.edge(other, sloppy);
  const auto g = b.build();
  const auto d = v8::computeDistances(g);
  EXPECT_EQ(d.distance[key], 3u);
  EXPECT_EQ(d.distance[slot], 3u);
  EXPECT_EQ(d.parent_edge[slot], g.first_edge[other]);
  EXPECT_EQ(d.distance[sloppy], 3u);
  EXPECT_EQ(d.parent_edge[sloppy], g.first_edge[other] + 1);
}

// ---- class names and class retained size -----------------------------------

TEST(V8Classes, DevToolsNames) {
  Builder b;
  const std::vector<std::pair<NodeType, std::string>> cases = {
      {NodeType::kHidden, "system / Map"},
      {NodeType::kArray, "(object elements)"},
      {NodeType::kString, "hello"},
      {NodeType::kObject, "Endpoint"},
      {NodeType::kCode, "foo"},
      {NodeType::kClosure, "onTimeout"},
      {NodeType::kRegExp, "a+b"},
      {NodeType::kNumber, "heap number"},
      {NodeType::kNative, "Node / TLSWrap"},
      {NodeType::kConsString, "ab"},
      {NodeType::kSlicedString, "b"},
      {NodeType::kSymbol, "s"},
      {NodeType::kBigInt, "1n"},
      {NodeType::kObjectShape, "shape"},
      {NodeType::kObject, "<div id=\"a\">"},
      {NodeType::kNative, "Detached <span class=x>"},
      {NodeType::kUnknown, "x"},
  };
  const std::vector<std::string> want = {
      "(system)",        "(array)",  "(string)", "Endpoint",       "(compiled code)",
      "Function",        "RegExp",   "(number)", "Node / TLSWrap", "(concatenated string)",
      "(sliced string)", "(symbol)", "(bigint)", "(object shape)", "<div>",
      "Detached <span>", "(unknown)"};
  for (const auto& [type, name] : cases) b.node(type, name, 1);
  const auto g = b.build();
  EXPECT_EQ(v8::className(g, 0), "(synthetic)");
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(v8::className(g, static_cast<u32>(i + 1)), want[i]) << i;
  }
}

TEST(V8Classes, ClassifyInOrderOfFirstAppearance) {
  Builder b;
  b.object("B", 1);
  b.object("A", 1);
  b.node(NodeType::kClosure, "f", 1);
  b.object("B", 1);
  b.node(NodeType::kClosure, "g", 1);
  b.object("<div id=1>", 1);
  b.object("<div>", 1);
  const auto c = v8::classify(b.build());
  EXPECT_EQ(c.names, (std::vector<std::string>{"(synthetic)", "B", "A", "Function", "<div>"}));
  EXPECT_EQ(c.of, (std::vector<u32>{0, 1, 2, 3, 1, 3, 4, 4}));
}

TEST(V8Classes, NestedInstancesCountOnce) {
  Builder b;
  const u32 global = b.object("Global", 1);
  const u32 outer = b.object("List", 10), mid = b.object("Node", 5), inner = b.object("List", 20);
  const u32 empty = b.object("List", 0), under_empty = b.object("List", 7);
  b.edge(0, global, EdgeType::kShortcut, "global");
  b.edge(global, outer);
  b.edge(outer, mid);
  b.edge(mid, inner);
  b.edge(global, empty);
  b.edge(empty, under_empty);
  const auto g = b.build();
  const auto x = analyse(g);
  const auto c = v8::classify(g);
  const auto sizes = v8::classRetained(g, x.dominators, c);
  const auto list =
      static_cast<std::size_t>(std::find(c.names.begin(), c.names.end(), "List") - c.names.begin());
  // outer (35, holding inner) once; the self-size-0 instance hides nothing,
  // so under_empty counts on its own.
  EXPECT_EQ(x.dominators.retained[outer], 35u);
  EXPECT_EQ(sizes[list], 35u + 7u);
  EXPECT_EQ(sizes[c.of[mid]], 25u);
  EXPECT_EQ(sizes[c.of[global]], x.dominators.retained[global]);
  EXPECT_EQ(sizes[0], 0u);  // the root's self size is 0
}

// ---- paths -----------------------------------------------------------------

TEST(V8Paths, EdgeLabels) {
  Builder b;
  const u32 a = b.object("A", 1);
  b.edge(a, a, EdgeType::kContext, "ctx");
  b.edge(a, a, EdgeType::kElement, "3");
  b.edge(a, a, EdgeType::kProperty, "foo");
  b.edge(a, a, EdgeType::kProperty, "a b");
  b.edge(a, a, EdgeType::kInternal, "map");
  b.edge(a, a, EdgeType::kHidden, "4");
  b.edge(a, a, EdgeType::kWeak, "w");
  b.edge(a, a, EdgeType::kShortcut, "global");
  b.edge(a, a, EdgeType::kUnknown, "u");
  const auto g = b.build();
  std::vector<std::string> got;
  for (u32 e = 0; e < g.edgeCount(); ++e) got.push_back(v8::edgeLabel(g, e));
  EXPECT_EQ(got, (std::vector<std::string>{"->ctx", "[3]", ".foo", "[\"a b\"]", "{map}", "{4}",
                                           "[[w]]", ".global", "?u?"}));
}

struct Sockets {
  v8::Graph g;
  std::vector<u32> sockets;
  u32 by_property = 0;
};

// Global.list (an Array) holds three sockets by element, Global.ep an
// Endpoint holding a fourth by _socket.
Sockets sockets() {
  Builder b;
  Sockets s;
  const u32 global = b.object("Global", 1), list = b.object("Array", 1),
            endpoint = b.object("Endpoint", 1);
  b.edge(0, global, EdgeType::kShortcut, "global");
  b.edge(global, list, EdgeType::kProperty, "list");
  b.edge(global, endpoint, EdgeType::kProperty, "ep");
  s.by_property = b.object("TLSSocket", 1);
  b.edge(endpoint, s.by_property, EdgeType::kProperty, "_socket");
  s.sockets.push_back(s.by_property);
  for (int i = 0; i < 3; ++i) {
    s.sockets.push_back(b.object("TLSSocket", 1));
    b.edge(list, s.sockets.back(), EdgeType::kElement, std::to_string(i));
  }
  s.g = b.build();
  return s;
}

TEST(V8Paths, TextInDevToolsNotation) {
  const auto s = sockets();
  const auto d = v8::computeDistances(s.g);
  const auto p = v8::pathTo(s.g, d, s.by_property);
  ASSERT_EQ(p.steps.size(), 3u);
  EXPECT_EQ(p.steps[0].edge, ".global");
  EXPECT_EQ(p.text(), "(GC roots) → Global.ep → Endpoint._socket → TLSSocket");
  const auto q = v8::pathTo(s.g, d, s.sockets[2]);
  EXPECT_EQ(q.text(), "(GC roots) → Global.list → Array[1] → TLSSocket");
  EXPECT_EQ(q.shape(), "(GC roots) → Global.list → Array[] → TLSSocket");
}

TEST(V8Paths, UnreachableNodeHasNoSteps) {
  Builder b;
  const u32 lonely = b.object("Lonely", 1);
  const auto g = b.build();
  const auto p = v8::pathTo(g, v8::computeDistances(g), lonely);
  EXPECT_TRUE(p.steps.empty());
  EXPECT_EQ(p.text(), "Lonely");
}

TEST(V8Paths, ClustersByShapeMostSharedFirst) {
  const auto s = sockets();
  const auto d = v8::computeDistances(s.g);
  const auto clusters = v8::clusterPaths(s.g, d, s.sockets, 10);
  ASSERT_EQ(clusters.size(), 2u);
  EXPECT_EQ(clusters[0].count, 3u);
  EXPECT_EQ(clusters[0].shape, "(GC roots) → Global.list → Array[] → TLSSocket");
  EXPECT_EQ(clusters[0].example.text(), "(GC roots) → Global.list → Array[0] → TLSSocket");
  EXPECT_EQ(clusters[1].count, 1u);
  EXPECT_EQ(clusters[1].shape, "(GC roots) → Global.ep → Endpoint._socket → TLSSocket");
  EXPECT_EQ(v8::clusterPaths(s.g, d, s.sockets, 1).size(), 1u);
}

// ---- big graphs: nothing recurses -------------------------------------------

TEST(V8BigGraphs, LongChainNeedsNoStack) {
  constexpr u32 kNodes = 2'000'000;
  v8::Graph g;
  g.type.assign(kNodes, NodeType::kObject);
  g.type[0] = NodeType::kSynthetic;
  g.name.assign(kNodes, 0);
  g.id.resize(kNodes);
  g.self_size.assign(kNodes, 1);
  g.self_size[0] = 0;
  g.first_edge.resize(kNodes + 1);
  for (u32 v = 0; v <= kNodes; ++v) g.first_edge[v] = std::min(v, kNodes - 1);
  g.edge_type.assign(kNodes - 1, EdgeType::kProperty);
  g.edge_type[0] = EdgeType::kShortcut;
  g.edge_name.assign(kNodes - 1, 0);
  g.edge_to.resize(kNodes - 1);
  for (u32 v = 0; v + 1 < kNodes; ++v) g.edge_to[v] = v + 1;
  g.string_data = "Link";
  g.string_offset = {0, 4};
  const auto d = v8::computeDistances(g);
  EXPECT_EQ(d.distance[kNodes - 1], kNodes - 1);
  const auto x = analyse(g);
  EXPECT_EQ(x.dominators.idom[kNodes - 1], kNodes - 2);
  EXPECT_EQ(x.dominators.retained[1], kNodes - 1);
  const auto c = v8::classify(g);
  const auto sizes = v8::classRetained(g, x.dominators, c);
  EXPECT_EQ(sizes[c.of[1]], kNodes - 1);  // one outermost Link holds them all
}

TEST(V8BigGraphs, WideRandomGraph) {
  constexpr u32 kNodes = 300'000;
  std::mt19937 rng(7);
  v8::Graph g;
  g.type.assign(kNodes, NodeType::kObject);
  g.type[0] = NodeType::kSynthetic;
  g.name.assign(kNodes, 0);
  g.id.resize(kNodes);
  g.self_size.assign(kNodes, 2);
  g.first_edge.push_back(0);
  std::uniform_int_distribution<u32> any(1, kNodes - 1);
  for (u32 v = 0; v < kNodes; ++v) {
    const int out = v == 0 ? 100 : static_cast<int>(rng() % 8);
    for (int i = 0; i < out; ++i) {
      g.edge_type.push_back(v == 0 ? EdgeType::kShortcut : EdgeType::kProperty);
      g.edge_name.push_back(0);
      g.edge_to.push_back(any(rng));
    }
    g.first_edge.push_back(static_cast<u32>(g.edge_type.size()));
  }
  g.string_data = "X";
  g.string_offset = {0, 1};
  const auto x = analyse(g);
  EXPECT_EQ(x.dominators.retained[0], totalSelf(g));
  // Every dominator reaches the node's retainers: spot-check the tree's shape.
  for (u32 v = 1; v < kNodes; v += 9973) {
    u32 up = v;
    std::size_t steps = 0;
    while (up != 0 && steps++ < kNodes) up = x.dominators.idom[up];
    EXPECT_EQ(up, 0u);
    EXPECT_GE(x.dominators.retained[x.dominators.idom[v]], x.dominators.retained[v]);
  }
}

}  // namespace
