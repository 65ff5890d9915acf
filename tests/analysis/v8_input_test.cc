// V8 heap snapshots through the model and the analyses (issue #14): a
// snapshot's classes as DevTools counts them, diff by ids, trend with
// survivors and retaining paths, runs split where ids go backwards, and the
// order Node's file names give a series. The snapshots are written here from
// small graphs whose figures can be worked out by hand.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/input.h"
#include "leakscope/analysis/runs.h"

namespace la = leakscope::analysis;

namespace {

struct TEdge {
  std::string type;  // "property", "element", "internal", "weak", "shortcut" ...
  std::string name;  // a property name, or the index for element/hidden
  std::size_t to = 0;
};

struct TNode {
  std::string type;  // "object", "array", "native", "synthetic", "string" ...
  std::string name;
  std::uint32_t id = 0;
  std::uint64_t self = 0;
  std::vector<TEdge> edges;
};

// A .heapsnapshot as V8 writes one (7 node fields, current meta).
class SnapshotText {
 public:
  std::size_t add(TNode n) {
    nodes_.push_back(std::move(n));
    return nodes_.size() - 1;
  }
  void edge(std::size_t from, TEdge e) { nodes_[from].edges.push_back(std::move(e)); }
  std::string str() {
    std::vector<std::string> strings = {"<dummy>"};
    auto intern = [&](const std::string& s) {
      for (std::size_t i = 0; i < strings.size(); ++i) {
        if (strings[i] == s) return i;
      }
      strings.push_back(s);
      return strings.size() - 1;
    };
    const std::vector<std::string> node_types = {"hidden",
                                                 "array",
                                                 "string",
                                                 "object",
                                                 "code",
                                                 "closure",
                                                 "regexp",
                                                 "number",
                                                 "native",
                                                 "synthetic",
                                                 "concatenated string",
                                                 "sliced string",
                                                 "symbol",
                                                 "bigint",
                                                 "object shape"};
    const std::vector<std::string> edge_types = {"context", "element",  "property", "internal",
                                                 "hidden",  "shortcut", "weak"};
    auto index = [](const std::vector<std::string>& v, const std::string& s) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == s) return i;
      }
      ADD_FAILURE() << "unknown type " << s;
      return std::size_t{0};
    };
    std::string nodes, edges;
    std::size_t edge_count = 0;
    for (const TNode& n : nodes_) {
      if (!nodes.empty()) nodes += ",\n";
      nodes += std::to_string(index(node_types, n.type)) + "," + std::to_string(intern(n.name)) +
               "," + std::to_string(n.id) + "," + std::to_string(n.self) + "," +
               std::to_string(n.edges.size()) + ",0,0";
      for (const TEdge& e : n.edges) {
        if (edge_count++ > 0) edges += ",\n";
        const bool indexed = e.type == "element" || e.type == "hidden";
        edges += std::to_string(index(edge_types, e.type)) + "," +
                 (indexed ? e.name : std::to_string(intern(e.name))) + "," +
                 std::to_string(e.to * 7);
      }
    }
    std::string types;
    for (const auto& t : node_types) types += (types.empty() ? "\"" : ",\"") + t + "\"";
    std::string etypes;
    for (const auto& t : edge_types) etypes += (etypes.empty() ? "\"" : ",\"") + t + "\"";
    std::string out =
        R"({"snapshot":{"meta":{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[[)" +
        types +
        R"(],"string","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[[)" +
        etypes +
        R"(],"string_or_number","node"],"trace_function_info_fields":[],"trace_node_fields":[],"sample_fields":[],"location_fields":[]},"node_count":)" +
        std::to_string(nodes_.size()) + R"(,"edge_count":)" + std::to_string(edge_count) +
        R"(,"trace_function_count":0},
"nodes":[)" +
        nodes + "],\n\"edges\":[" + edges +
        "],\n\"trace_function_infos\":[],\"trace_tree\":[],\"samples\":[],\"locations\":[],"
        "\n\"strings\":[";
    for (std::size_t i = 0; i < strings.size(); ++i) {
      out += (i ? ",\n\"" : "\"") + strings[i] + "\"";
    }
    return out + "]}\n";
  }

 private:
  std::vector<TNode> nodes_;
};

// The program of the seed in miniature: a global holds a list of providers,
// each provider a session, each session a native TLSWrap. `providers` ids
// (odd, growing) are the providers alive; each provider's session has id + 2
// and its wrap id + 3 (even: native).
std::string seedLike(const std::vector<std::uint32_t>& providers, std::uint64_t big_string = 0) {
  SnapshotText t;
  const auto root = t.add({"synthetic", "", 1, 0, {}});
  const auto gc = t.add({"synthetic", "(GC roots)", 3, 0, {}});
  const auto global = t.add({"object", "Global", 5, 100, {}});
  const auto list = t.add({"array", "", 7, 50, {}});
  t.edge(root, {"element", "1", gc});
  t.edge(root, {"shortcut", "global", global});
  t.edge(gc, {"element", "1", global});
  t.edge(global, {"property", "providers", list});
  for (std::size_t i = 0; i < providers.size(); ++i) {
    const std::uint32_t id = providers[i];
    const auto p = t.add({"object", "Provider", id, 40, {}});
    const auto s = t.add({"object", "Session", id + 2, 30, {}});
    const auto w = t.add({"native", "Node / TLSWrap", id + 3, 20, {}});
    t.edge(list, {"element", std::to_string(i), p});
    t.edge(p, {"property", "session", s});
    t.edge(s, {"internal", "handle", w});
    t.edge(w, {"weak", "owner", s});  // weak: holds nothing
  }
  // Later objects get higher ids, as V8 gives them.
  const std::uint32_t top = providers.empty() ? 101 : providers.back();
  t.add({"string", "an empty name", top + 6, 0, {}});  // self size 0: not counted
  if (big_string > 0) {
    const auto str = t.add({"string", "UPDATE push_result ...", top + 8, big_string, {}});
    t.edge(global, {"property", "results", str});
  }
  return t.str();
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/leakscope-v8-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }

 private:
  std::string path_;
};

la::Snapshot parse(const std::string& text, la::SymbolTable& sy, bool keep_graph = false) {
  la::LoadOptions o;
  o.keep_graph = keep_graph;
  auto s = la::parseInput(text, "x.heapsnapshot", sy, o);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return s.ok() ? std::move(*s) : la::Snapshot{};
}

// The graphs here are tiny: no floor on what a growing class must hold.
la::Thresholds noFloor() {
  la::Thresholds t;
  t.min_class_bytes = 0;
  t.min_class_heap_fraction = 0;
  return t;
}

la::TrendOptions noFloorTrend() {
  la::TrendOptions o;
  o.thresholds = noFloor();
  return o;
}

std::vector<std::uint32_t> ids(std::uint32_t first, std::size_t n) {
  std::vector<std::uint32_t> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back(first + 10 * static_cast<std::uint32_t>(i));
  return v;
}

TEST(V8Input, ClassesAreCountedAsDevToolsCountsThem) {
  la::SymbolTable sy;
  const la::Snapshot s = parse(seedLike({101, 111}), sy);
  EXPECT_EQ(s.source, la::SourceKind::kV8HeapSnapshot);
  const la::ObjectClass* provider = s.objectClass("Provider");
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->objects.size(), 2u);
  EXPECT_EQ(provider->live_bytes, 80);
  // Each provider alone holds its session and wrap: 2 × (40 + 30 + 20).
  EXPECT_EQ(provider->retained_bytes, 180);
  EXPECT_FALSE(provider->engine);
  const la::ObjectClass* session = s.objectClass("Session");
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->retained_bytes, 100);
  ASSERT_NE(s.objectClass("Node / TLSWrap"), nullptr);
  const la::ObjectClass* array = s.objectClass("(array)");
  ASSERT_NE(array, nullptr);
  EXPECT_TRUE(array->engine);
  // Global is a user root (distance 1); the list 2, providers 3.
  EXPECT_EQ(s.objectClass("Global")->distance, 1u);
  EXPECT_EQ(provider->distance, 3u);
  // Self size 0: not a class anyone sees in DevTools' Summary.
  EXPECT_EQ(s.objectClass("(string)"), nullptr);
  EXPECT_EQ(s.v8.nodes, 4u + 2 * 3 + 1);
  EXPECT_EQ(s.v8.max_js_id, 117u);
}

TEST(V8Input, DiffCountsNewAndDeletedByIdPerClass) {
  la::SymbolTable sy;
  const la::Snapshot a = parse(seedLike({101, 111, 121}), sy);
  const la::Snapshot b = parse(seedLike({111, 121, 131, 141}), sy);
  const la::Comparison c = la::compare(a, b, sy, noFloor());
  EXPECT_TRUE(c.same_process);
  const la::CompareRow* provider = nullptr;
  for (const auto& r : c.rows) {
    if (r.group == la::Group::kClass && r.name == "Provider") provider = &r;
  }
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->basis, "ids");
  EXPECT_EQ(provider->new_count, 2);
  EXPECT_EQ(provider->deleted_count, 1);
  EXPECT_EQ(provider->delta_count, 1);
  EXPECT_EQ(provider->alloc_bytes, 80);
  EXPECT_EQ(provider->freed_bytes, 40);
  EXPECT_EQ(*provider->retained_delta_bytes, 90);
  // The program's classes that grew are suspects, the one holding the rest
  // first; V8's (array) did not grow by a MiB.
  ASSERT_FALSE(c.suspects.empty());
  EXPECT_EQ(c.suspects.front().name, "Provider");
  for (const auto& s : c.suspects) EXPECT_NE(s.name, "(array)");
}

TEST(V8Input, TrendNamesTheHolderWithSurvivorsAndRetainingPaths) {
  la::SymbolTable sy;
  la::TrendBuilder b(sy, noFloorTrend());
  // Two providers more per interval, none freed; a big string in one only.
  for (std::size_t k = 0; k < 4; ++k) {
    const bool last = k == 3;
    la::Snapshot s = parse(seedLike(ids(101, 2 + 2 * k), k == 1 ? 8u << 20 : 0), sy, last);
    s.taken_unix_ns = static_cast<std::int64_t>(k) * 60'000'000'000;
    b.add(s);
  }
  const la::TrendResult t = b.finish();
  ASSERT_FALSE(t.suspects.empty());
  EXPECT_EQ(t.suspects.front().group, la::Group::kClass);
  EXPECT_EQ(t.suspects.front().name, "Provider");
  const la::TrendGroup* provider = nullptr;
  const la::TrendGroup* strings = nullptr;
  for (const auto& g : t.groups) {
    if (g.name == "Provider") provider = &g;
    if (g.name == "(string)") strings = &g;
  }
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->counts, (std::vector<double>{2, 4, 6, 8}));
  EXPECT_EQ(provider->retained, (std::vector<double>{180, 360, 540, 720}));
  EXPECT_EQ(provider->survivor_count, 2u);
  ASSERT_EQ(provider->survivors.size(), 2u);
  EXPECT_EQ(provider->survivors[0].id, 101u);
  ASSERT_EQ(provider->retainers.size(), 1u);
  EXPECT_EQ(provider->retainers[0].count, 2u);
  EXPECT_NE(provider->retainers[0].path.find("providers"), std::string::npos)
      << provider->retainers[0].path;
  EXPECT_NE(provider->retainers[0].path.find("Provider"), std::string::npos);
  // The big string came and went: transient, not a suspect.
  ASSERT_NE(strings, nullptr);
  EXPECT_EQ(strings->verdict, la::Verdict::kTransient);
  for (const auto& s : t.suspects) EXPECT_NE(s.name, "(string)");
}

// A class of the program that gains a few objects holding next to nothing
// (a warming heap) is no suspect; nor are objects only compiled code holds
// (allocation-site boilerplates), however many.
TEST(V8Input, GrowthThatHoldsNextToNothingIsNoSuspect) {
  la::SymbolTable sy;
  la::TrendBuilder small(sy, {});
  for (std::size_t k = 0; k < 4; ++k) small.add(parse(seedLike(ids(101, 2 + 2 * k)), sy));
  const la::TrendResult t = small.finish();
  EXPECT_TRUE(t.suspects.empty());
  bool seen = false;
  for (const auto& g : t.groups) {
    if (g.name != "Provider") continue;
    seen = true;
    EXPECT_EQ(g.verdict, la::Verdict::kFlat);
    EXPECT_EQ(g.added_retained_bytes, 6 * 90);
    EXPECT_NE(g.reason.find("too small to be a leak"), std::string::npos) << g.reason;
  }
  EXPECT_TRUE(seen);

  // Boilerplates: objects whose only holder is a code object, 50 more per
  // snapshot, each big enough to pass the floor were they the program's.
  la::TrendBuilder code(sy, {});
  for (std::size_t k = 0; k < 4; ++k) {
    SnapshotText st;
    const auto root = st.add({"synthetic", "", 1, 0, {}});
    const auto global = st.add({"object", "Global", 3, 100, {}});
    const auto site = st.add({"code", "system / AllocationSite", 5, 64, {}});
    st.edge(root, {"shortcut", "global", global});
    st.edge(global, {"internal", "feedback", site});
    for (std::uint32_t i = 0; i < 50 * (k + 1); ++i) {
      const auto o = st.add({"object", "Object", 101 + 2 * i, 8192, {}});
      st.edge(site, {"internal", "transition_info", o});
    }
    code.add(parse(st.str(), sy));
  }
  const la::TrendResult c = code.finish();
  for (const auto& s : c.suspects) EXPECT_NE(s.name, "Object");
  bool object = false;
  for (const auto& g : c.groups) {
    if (g.name != "Object") continue;
    object = true;
    EXPECT_EQ(g.counts.back(), 200);
    EXPECT_EQ(g.added_retained_bytes, 0);
  }
  EXPECT_TRUE(object);
}

TEST(V8Input, ASeriesWhoseIdsGoBackwardsIsJudgedRunByRun) {
  la::SymbolTable sy;
  la::RunsBuilder b(sy, noFloorTrend());
  // Three snapshots of one process, then three of another whose ids start
  // again (the same program, restarted).
  for (int run = 0; run < 2; ++run) {
    for (std::size_t k = 0; k < 3; ++k) b.add(parse(seedLike(ids(101, 1 + k)), sy));
  }
  const la::RunsResult r = b.finish();
  ASSERT_EQ(r.runs.size(), 2u);
  for (const auto& run : r.runs) {
    EXPECT_EQ(run.method, la::RunMethod::kTrend);
    ASSERT_FALSE(run.suspects.empty());
    EXPECT_EQ(run.suspects.front().name, "Provider");
  }
}

TEST(V8Input, NodeFileNamesOrderTheSeriesAndNameThePid) {
  TempDir dir;
  const std::string p = dir.write("Heap.20261130.031502.4242.0.007.heapsnapshot", seedLike({101}));
  auto h = la::readHeader(p);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->source, la::SourceKind::kV8HeapSnapshot);
  EXPECT_EQ(h->sequence, 7);
  std::tm tm{};
  tm.tm_year = 2026 - 1900;
  tm.tm_mon = 10;
  tm.tm_mday = 30;
  tm.tm_hour = 3;
  tm.tm_min = 15;
  tm.tm_sec = 2;
  tm.tm_isdst = -1;
  EXPECT_EQ(h->taken_unix_ns, static_cast<std::int64_t>(std::mktime(&tm)) * 1'000'000'000);
  la::SymbolTable sy;
  auto s = la::load(p, sy, {});
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->process.pid, 4242);
  EXPECT_EQ(s->sequence, 7);
  // Another name: the file's time.
  const std::string other = dir.write("after-push.heapsnapshot", seedLike({101}));
  auto h2 = la::readHeader(other);
  ASSERT_TRUE(h2.ok());
  struct stat st {};
  ASSERT_EQ(::stat(other.c_str(), &st), 0);
  EXPECT_EQ(h2->taken_unix_ns / 1'000'000'000, st.st_mtim.tv_sec);
  // A directory lists both.
  auto listed = la::resolveInputs({dir.path()});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->paths.size(), 2u);
}

TEST(V8Input, RetainersOfAClassNeedTheGraphKept) {
  la::SymbolTable sy;
  const la::Snapshot kept = parse(seedLike(ids(101, 3)), sy, true);
  const auto paths = la::classRetainers(kept, "Session", {}, 5);
  ASSERT_EQ(paths.size(), 1u);
  EXPECT_EQ(paths[0].count, 3u);
  EXPECT_NE(paths[0].path.find(".session"), std::string::npos) << paths[0].path;
  const la::Snapshot dropped = parse(seedLike(ids(101, 3)), sy, false);
  EXPECT_TRUE(la::classRetainers(dropped, "Session", {}, 5).empty());
}

// Socket objects are the objects holding a TCP handle (v8_sockets.cc):
// directly, or through a TLSWrap over one; whatever their class is called.
// A net.Socket over a pipe (process.stdin) and the handle class's prototype
// (also of class TCP) are not. One TCP handle held twice counts once.
TEST(V8Input, SocketObjectsAreThoseHoldingATcpHandle) {
  SnapshotText t;
  const auto root = t.add({"synthetic", "", 1, 0, {}});
  const auto global = t.add({"object", "Global", 3, 100, {}});
  t.edge(root, {"shortcut", "global", global});
  auto object = [&](const std::string& cls, std::uint32_t id) {
    const auto n = t.add({"object", cls, id, 40, {}});
    t.edge(global, {"property", "o" + std::to_string(id), n});
    return n;
  };
  const auto tcp1 = object("TCP", 11), tcp2 = object("TCP", 13), proto = object("TCP", 15);
  const auto wrap = object("TLSWrap", 17), pipe = object("Pipe", 19);
  t.edge(wrap, {"property", "_parent", tcp1});
  t.edge(object("TLSSocket", 21), {"property", "<symbol kHandle>", wrap});
  t.edge(object("Socket", 23), {"property", "_handle", tcp2});           // Node < 14's name
  t.edge(object("Socket", 25), {"property", "<symbol kHandle>", pipe});  // process.stdin
  t.edge(object("MySocket", 27), {"property", "<symbol kHandle>", tcp2});
  t.edge(object("Socket", 29), {"property", "other", tcp1});  // not its handle
  (void)proto;
  la::SymbolTable sy;
  auto s = la::parseInput(t.str(), "x.heapsnapshot", sy, {});
  ASSERT_TRUE(s) << s.error().message;
  std::vector<std::pair<std::string, std::int64_t>> got;
  for (const auto& c : s->v8.socket_classes) got.emplace_back(c.name, c.objects);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::int64_t>>{
                     {"MySocket", 1}, {"Socket", 1}, {"TLSSocket", 1}}));
  EXPECT_EQ(s->v8.tcp_handles, 2);
}

}  // namespace
