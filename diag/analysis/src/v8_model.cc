#include "v8_model.h"

#include <algorithm>
#include <ctime>
#include <regex>
#include <string_view>

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

// Sorts a class's objects by id (V8 writes them in heap order), keeping each
// object's retained size beside it.
void sortById(ObjectClass& k) {
  std::vector<std::uint32_t> order(k.objects.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::uint32_t a, std::uint32_t b) { return k.objects[a].id < k.objects[b].id; });
  std::vector<TrackedObject> objects(order.size());
  std::vector<std::uint64_t> retained(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    objects[i] = k.objects[order[i]];
    retained[i] = k.retained_of[order[i]];
  }
  k.objects = std::move(objects);
  k.retained_of = std::move(retained);
}

// Per class: how many instances (self size > 0), their sizes and distance.
// Reserving first keeps the instance vectors at their final size: a growing
// vector would briefly need twice the memory.
std::vector<ObjectClass> countClasses(const v8::Graph& g, const v8::Distances& d,
                                      const v8::Classes& cls,
                                      const std::vector<std::uint64_t>& class_retained,
                                      const std::vector<std::uint64_t>& node_retained) {
  std::vector<ObjectClass> out(cls.names.size());
  std::vector<std::size_t> count(cls.names.size(), 0);
  for (std::size_t n = 0; n < g.nodeCount(); ++n) {
    if (g.self_size[n] > 0) ++count[cls.of[n]];
  }
  for (std::size_t c = 0; c < out.size(); ++c) {
    out[c].name = cls.names[c];
    out[c].retained_bytes = static_cast<std::int64_t>(class_retained[c]);
    out[c].distance = ObjectClass::kNoDistance;
    out[c].objects.reserve(count[c]);
    out[c].retained_of.reserve(count[c]);
  }
  for (std::size_t n = 0; n < g.nodeCount(); ++n) {
    if (g.self_size[n] == 0) continue;
    ObjectClass& k = out[cls.of[n]];
    TrackedObject o;
    o.id = g.id[n];
    o.bytes = static_cast<std::int64_t>(g.self_size[n]);
    k.objects.push_back(o);
    k.retained_of.push_back(node_retained[n]);
    k.live_bytes += o.bytes;
    k.engine = isEngineClass(g.type[n], k.name);
    const std::uint32_t dist = d.distance[n];
    if (dist < v8::kSystemDistance) k.distance = std::min(k.distance, dist);
  }
  std::erase_if(out, [](const ObjectClass& k) { return k.objects.empty(); });
  for (ObjectClass& k : out) {
    k.live = static_cast<std::int64_t>(k.objects.size());
    sortById(k);
  }
  std::sort(out.begin(), out.end(),
            [](const ObjectClass& a, const ObjectClass& b) { return a.name < b.name; });
  return out;
}

// Classes and their retained sizes need the dominator tree only for a
// moment; of it only each node's retained size is kept, until the instances
// are listed.
struct ClassFigures {
  v8::Classes classes;
  std::vector<std::uint64_t> retained;
  std::vector<std::uint64_t> node_retained;
  std::size_t unreachable = 0;
};
ClassFigures classFigures(const v8::Graph& g) {
  ClassFigures f;
  v8::Dominators dom;
  {
    const v8::Retainers r = v8::buildRetainers(g);
    dom = v8::computeDominators(g, r);
  }
  f.classes = v8::classify(g);
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
  return f;
}

}  // namespace

std::uint32_t V8Graph::node(std::uint64_t id) const {
  auto it = std::lower_bound(by_id.begin(), by_id.end(), id,
                             [](const auto& p, std::uint64_t v) { return p.first < v; });
  return it != by_id.end() && it->first == id ? it->second : v8::kNone;
}

Snapshot snapshotFromGraph(v8::Graph&& g, SymbolTable& symbols, const LoadOptions& options) {
  auto phase = [&](const char* what) {
    if (options.phase) options.phase(what);
  };
  Snapshot s;
  s.source = SourceKind::kV8HeapSnapshot;
  phase("distances");
  v8::Distances d = v8::computeDistances(g);
  phase("dominators");
  ClassFigures f = classFigures(g);
  phase("classes");
  s.classes = countClasses(g, d, f.classes, f.retained, f.node_retained);
  f.node_retained = {};
  const StringId no_label = symbols.intern("");
  for (ObjectClass& k : s.classes) {
    for (TrackedObject& o : k.objects) o.label = no_label;
  }
  s.v8.nodes = g.nodeCount();
  s.v8.edges = g.edgeCount();
  s.v8.strings = g.stringCount();
  s.v8.unreachable = f.unreachable;
  s.v8.max_js_id = g.max_js_id;
  for (std::uint64_t b : g.self_size) s.v8.self_bytes += static_cast<std::int64_t>(b);
  if (options.keep_graph) {
    auto kept = std::make_shared<V8Graph>();
    kept->by_id.reserve(g.nodeCount());
    for (std::uint32_t n = 0; n < g.nodeCount(); ++n) kept->by_id.emplace_back(g.id[n], n);
    std::sort(kept->by_id.begin(), kept->by_id.end());
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
