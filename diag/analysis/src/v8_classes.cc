// DevTools' class names of V8 heap snapshot nodes and each class's retained
// size (HeapSnapshot.ts calculateObjectNames, calculateClassesRetainedSize);
// docs/v8-graph.md has the table.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "v8_columns.h"
#include "v8_graph.h"

namespace leakscope::analysis::v8 {
namespace {

using u32 = std::uint32_t;

// DevTools shortens DOM node names to their tag: '<div id="a">' → '<div>'.
std::string objectClass(std::string_view name) {
  std::size_t space = std::string_view::npos;
  if (name.starts_with("<")) {
    space = name.find(' ');
  } else if (name.starts_with("Detached <")) {
    space = name.find(' ', 10);
  }
  if (space == std::string_view::npos) return std::string(name);
  return std::string(name.substr(0, space)) + ">";
}

bool isObjectLike(NodeType t) { return t == NodeType::kObject || t == NodeType::kNative; }

// Object and native nodes are named by their name string: a cache by string
// index (4 bytes a string) saves building a name per node; the other types
// have one class each.
class Classifier {
 public:
  explicit Classifier(const Graph& g) : g_(g), by_string_(g.stringCount(), kNone) {
    by_type_.fill(kNone);
  }

  Classes run() {
    out_.of.resize(g_.nodeCount());
    for (u32 v = 0; v < g_.nodeCount(); ++v) out_.of[v] = classOf(v);
    return std::move(out_);
  }

 private:
  u32 classOf(u32 v) {
    const NodeType t = g_.type[v];
    u32* cached = &by_type_[static_cast<std::size_t>(t)];
    if (isObjectLike(t)) {
      const u32 name = g_.name[v];
      if (name >= by_string_.size()) return intern(className(g_, v));
      cached = &by_string_[name];
    }
    if (*cached == kNone) *cached = intern(className(g_, v));
    return *cached;
  }

  u32 intern(const std::string& name) {
    const auto [it, added] = index_.try_emplace(name, static_cast<u32>(out_.names.size()));
    if (added) out_.names.push_back(name);
    return it->second;
  }

  const Graph& g_;
  std::vector<u32> by_string_;
  std::array<u32, static_cast<std::size_t>(NodeType::kUnknown) + 1> by_type_{};
  std::unordered_map<std::string, u32> index_;
  Classes out_;
};

// The dominator tree as children lists (CSR), root excluded.
struct DominatorTree {
  std::vector<u32> first;
  std::vector<u32> child;
};

DominatorTree childrenOf(const Dominators& d) {
  const std::size_t n = d.idom.size();
  DominatorTree t;
  auto forEach = [&](auto emit) {
    for (u32 v = 0; v < n; ++v) {
      if (d.idom[v] != v && d.idom[v] < n) emit(d.idom[v], v, 0);
    }
  };
  auto reserve = [&](u32 total) { t.child.resize(total); };
  auto place = [&](u32 slot, u32 v, u32) { t.child[slot] = v; };
  t.first = bucketIndex(n, forEach, reserve, place);
  return t;
}

}  // namespace

std::string className(const Graph& g, std::uint32_t node) {
  const NodeType t = g.type[node];
  switch (t) {
    case NodeType::kHidden:
      return "(system)";
    case NodeType::kObject:
    case NodeType::kNative:
      return objectClass(g.str(g.name[node]));
    case NodeType::kCode:
      return "(compiled code)";
    case NodeType::kClosure:
      return "Function";
    case NodeType::kRegExp:
      return "RegExp";
    default:
      return std::string("(") + nodeTypeName(t) + ")";
  }
}

Classes classify(const Graph& g) { return Classifier(g).run(); }

// A depth-first walk of the dominator tree that counts an instance only
// when no instance of its class is open above it. Like DevTools, instances
// of self size 0 neither count nor hide what they dominate.
std::vector<std::uint64_t> classRetained(const Graph& g, const Dominators& d, const Classes& c) {
  std::vector<std::uint64_t> out(c.names.size(), 0);
  const std::size_t n = d.idom.size();
  if (n == 0) return out;
  const DominatorTree tree = childrenOf(d);
  std::vector<u32> open(c.names.size(), 0);  // per class: counted instances on the path
  NodeBits entered(n);
  NodeBits counted(n);
  std::vector<u32> stack{0};
  while (!stack.empty()) {
    const u32 v = stack.back();
    const u32 cls = c.of[v];
    if (entered.test(v)) {  // its subtree is done
      stack.pop_back();
      if (counted.test(v)) --open[cls];
      continue;
    }
    entered.set(v);
    if (g.self_size[v] != 0 && open[cls] == 0) {
      out[cls] += d.retained[v];
      ++open[cls];
      counted.set(v);
    }
    for (u32 i = tree.first[v]; i < tree.first[v + 1]; ++i) stack.push_back(tree.child[i]);
  }
  return out;
}

}  // namespace leakscope::analysis::v8
