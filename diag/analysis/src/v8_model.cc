#include "v8_model.h"

#include <algorithm>
#include <ctime>
#include <future>
#include <regex>
#include <string_view>
#include <unordered_set>

namespace leakscope::analysis {
namespace {

// The program's objects are judged by count, V8's own by bytes (model.h):
// the types V8 uses for its own structures, and the objects it names
// "system / ..." (contexts, feedback cells, load handlers: they come and go
// with compilation, in a program that leaks nothing).
bool isEngineClass(v8::NodeType t, std::string_view name) {
  if (name.starts_with("system / ")) return true;
  switch (t) {
    case v8::NodeType::kObject:
    case v8::NodeType::kNative:
    case v8::NodeType::kClosure:
    case v8::NodeType::kRegExp:
      return false;
    default:
      return true;
  }
}

// The counted nodes (self size > 0) in id order: a radix sort of the 32-bit
// ids in two 16-bit passes, linear where a comparison sort of millions of
// objects per class took a third of the load. Listing instances in this
// order leaves every class's objects sorted by id.
std::vector<std::uint32_t> nodesById(const v8::Graph& g) {
  std::vector<std::uint32_t> order;
  order.reserve(g.nodeCount());
  for (std::uint32_t n = 0; n < g.nodeCount(); ++n) {
    if (g.self_size[n] > 0) order.push_back(n);
  }
  std::vector<std::uint32_t> tmp(order.size());
  for (const int shift : {0, 16}) {
    std::vector<std::size_t> start(std::size_t{1} << 16 | 1, 0);
    for (std::uint32_t n : order) ++start[((g.id[n] >> shift) & 0xffff) + 1];
    for (std::size_t b = 1; b < start.size(); ++b) start[b] += start[b - 1];
    for (std::uint32_t n : order) tmp[start[(g.id[n] >> shift) & 0xffff]++] = n;
    order.swap(tmp);
  }
  return order;
}

// What the classes need of the graph, computed in the order that keeps the
// peak low: classes and their distance first, then (distances freed unless
// kept) the dominator tree, of which only each node's retained size stays
// until the instances are listed.
struct ClassFigures {
  v8::Classes classes;
  std::vector<std::uint32_t> distance;  // per class, the nearest instance's
  std::vector<std::uint64_t> retained;  // per class
  std::vector<std::uint64_t> node_retained;
  std::size_t unreachable = 0;
};

std::vector<std::uint32_t> classDistances(const v8::Graph& g, const v8::Distances& d,
                                          const v8::Classes& cls) {
  std::vector<std::uint32_t> out(cls.names.size(), ObjectClass::kNoDistance);
  for (std::size_t n = 0; n < g.nodeCount(); ++n) {
    const std::uint32_t dist = d.distance[n];
    if (g.self_size[n] > 0 && dist < v8::kSystemDistance) {
      out[cls.of[n]] = std::min(out[cls.of[n]], dist);
    }
  }
  return out;
}

v8::Dominators dominatorsOf(const v8::Graph& g) {
  const v8::Retainers r = v8::buildRetainers(g);
  return v8::computeDominators(g, r);
}

void addDominators(const v8::Graph& g, v8::Dominators&& dom, ClassFigures& f) {
  f.retained = v8::classRetained(g, dom, f.classes);
  f.unreachable = dom.unreachable;
  // What V8's compiled code alone holds (allocation-site boilerplates,
  // feedback) is the engine's, whatever its class: it weighs nothing in
  // the program's growth (ObjectClass::retained_of).
  for (std::size_t n = 0; n < g.nodeCount(); ++n) {
    const std::uint32_t d = dom.idom[n];
    if (d != v8::kNone && d != n && g.type[d] == v8::NodeType::kCode) dom.retained[n] = 0;
  }
  f.node_retained = std::move(dom.retained);
}

// Per class: how many instances (self size > 0), their sizes and distance.
// Reserving first keeps the instance vectors at their final size: a growing
// vector would briefly need twice the memory.
// The classes' shape before their instances are listed: how many each has
// and the node types it has (a bit each), and the counted nodes in id order.
// Needs only the graph and the classes, so it runs beside the dominators.
struct ClassShape {
  std::vector<std::size_t> count;
  std::vector<std::uint32_t> types;
  std::vector<std::uint32_t> by_id;
};

ClassShape classShape(const v8::Graph& g, const v8::Classes& cls) {
  ClassShape shape{std::vector<std::size_t>(cls.names.size(), 0),
                   std::vector<std::uint32_t>(cls.names.size(), 0), nodesById(g)};
  for (const std::uint32_t n : shape.by_id) {
    ++shape.count[cls.of[n]];
    shape.types[cls.of[n]] |= 1u << static_cast<unsigned>(g.type[n]);
  }
  return shape;
}

std::vector<ObjectClass> countClasses(const v8::Graph& g, const ClassFigures& f,
                                      const ClassShape& shape, StringId label) {
  const v8::Classes& cls = f.classes;
  const std::vector<std::size_t>& count = shape.count;
  const std::vector<std::uint32_t>& types = shape.types;
  std::vector<ObjectClass> out(cls.names.size());
  for (std::size_t c = 0; c < out.size(); ++c) {
    out[c].name = cls.names[c];
    for (unsigned t = 0; t < 32; ++t) {
      if ((types[c] >> t & 1u) != 0 && isEngineClass(static_cast<v8::NodeType>(t), out[c].name)) {
        out[c].engine = true;
      }
    }
    out[c].retained_bytes = static_cast<std::int64_t>(f.retained[c]);
    out[c].distance = f.distance[c];
    out[c].objects.reserve(count[c]);
    out[c].retained_of.reserve(count[c]);
  }
  for (const std::uint32_t n : shape.by_id) {
    ObjectClass& k = out[cls.of[n]];
    TrackedObject o;
    o.id = g.id[n];
    o.bytes = static_cast<std::int64_t>(g.self_size[n]);
    o.label = label;
    k.objects.push_back(o);
    k.retained_of.push_back(f.node_retained[n]);
    k.live_bytes += o.bytes;
  }
  std::erase_if(out, [](const ObjectClass& k) { return k.objects.empty(); });
  for (ObjectClass& k : out) k.live = static_cast<std::int64_t>(k.objects.size());
  std::sort(out.begin(), out.end(),
            [](const ObjectClass& a, const ObjectClass& b) { return a.name < b.name; });
  return out;
}

}  // namespace

std::vector<std::uint32_t> V8Graph::nodes(const std::vector<std::uint64_t>& ids) const {
  const std::unordered_set<std::uint64_t> wanted(ids.begin(), ids.end());
  std::vector<std::uint32_t> out;
  for (std::uint32_t n = 0; n < graph.nodeCount(); ++n) {
    if (wanted.count(graph.id[n]) != 0) out.push_back(n);
  }
  return out;
}

Snapshot snapshotFromGraph(v8::Graph&& g, SymbolTable& symbols, const LoadOptions& options) {
  auto phase = [&](const char* what) {
    if (options.phase) options.phase(what);
  };
  Snapshot s;
  s.source = SourceKind::kV8HeapSnapshot;
  // Distances and classes on one core while the dominator tree is built on
  // the other: both only read the graph. The distances are freed (unless
  // kept) long before the dominators' peak, which is the load's.
  phase("dominators");
  ClassFigures f;
  v8::Distances d;
  ClassShape shape;
  auto classes = std::async(std::launch::async, [&] {
    d = v8::computeDistances(g);
    f.classes = v8::classify(g);
    f.distance = classDistances(g, d, f.classes);
    if (!options.keep_graph) d = v8::Distances{};
    shape = classShape(g, f.classes);
  });
  v8::Dominators dom = dominatorsOf(g);
  classes.get();
  addDominators(g, std::move(dom), f);
  phase("classes");
  countSocketHolders(g, f.classes, s.v8);
  s.classes = countClasses(g, f, shape, symbols.intern(""));
  shape = ClassShape{};
  std::vector<std::uint64_t>().swap(f.node_retained);  // `= {}` would keep its memory
  s.v8.nodes = g.nodeCount();
  s.v8.edges = g.edgeCount();
  s.v8.strings = g.stringCount();
  s.v8.unreachable = f.unreachable;
  s.v8.max_js_id = g.max_js_id;
  for (std::uint64_t b : g.self_size) s.v8.self_bytes += static_cast<std::int64_t>(b);
  if (options.keep_graph) {
    auto kept = std::make_shared<V8Graph>();
    kept->graph = std::move(g);
    kept->distances = std::move(d);
    s.v8.graph = std::move(kept);
  }
  return s;
}

NodeFileName parseNodeFileName(const std::string& path) {
  static const std::regex kName(
      R"((?:^|/)Heap\.(\d{4})(\d{2})(\d{2})\.(\d{2})(\d{2})(\d{2})\.(\d+)\.(\d+)\.(\d+)\.heapsnapshot(?:\.gz)?$)");
  std::smatch m;
  NodeFileName out;
  if (!std::regex_search(path, m, kName)) return out;
  auto num = [&](std::size_t i) { return std::stoll(m[i].str()); };
  std::tm t{};
  t.tm_year = static_cast<int>(num(1)) - 1900;
  t.tm_mon = static_cast<int>(num(2)) - 1;
  t.tm_mday = static_cast<int>(num(3));
  t.tm_hour = static_cast<int>(num(4));
  t.tm_min = static_cast<int>(num(5));
  t.tm_sec = static_cast<int>(num(6));
  t.tm_isdst = -1;
  const std::time_t when = std::mktime(&t);  // Node names files in local time
  try {
    out.pid = num(7);
    out.sequence = num(9);
  } catch (const std::out_of_range&) {
    return NodeFileName{};
  }
  if (when > 0) out.taken_unix_ns = static_cast<std::int64_t>(when) * 1'000'000'000;
  return out;
}

}  // namespace leakscope::analysis
