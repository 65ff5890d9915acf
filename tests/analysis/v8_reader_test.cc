// The streaming V8 heap snapshot reader (diag/analysis/src/v8_reader.cc):
// hand-made snapshots in tests/data/v8/ (5, 6 and 7 node fields, reordered
// meta, allocation traces, unicode), gzip, every kind of bad input with the
// byte offset and line it is reported at, and a real snapshot written by Node
// compared with Python's json on the same file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "byte_reader.h"
#include "prefetch_reader.h"
#include "test_support.h"
#include "v8_reader.h"

namespace la = leakscope::analysis;
namespace v8 = leakscope::analysis::v8;
using leakscope::core::Result;

namespace {

std::string data(const std::string& name) {
  const std::string text = leakscope::testing::readFile(LEAKSCOPE_TEST_DATA "/v8/" + name);
  EXPECT_FALSE(text.empty()) << name;
  return text;
}

Result<v8::Graph> read(std::string_view text) {
  la::MemoryReader r(text);
  v8::ReadOptions o;
  o.total_bytes = text.size();
  return v8::readGraph(r, o);
}

v8::Graph readOk(std::string_view text) {
  auto g = read(text);
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error().message);
  return g.ok() ? std::move(*g) : v8::Graph{};
}

// `text` with its first `from` replaced by `to` (which must be there).
std::string edit(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// Expects an error "byte N (line L): ..." at `offset` of `text` whose text
// contains `what`.
void expectError(std::string_view text, std::size_t offset, const std::string& what) {
  auto g = read(text);
  ASSERT_FALSE(g.ok()) << "read a graph, expected: " << what;
  const std::string& m = g.error().message;
  EXPECT_EQ(g.error().code, leakscope::core::Errc::kParse) << m;
  const auto line =
      1 + std::count(text.begin(), text.begin() + std::min(offset, text.size()), '\n');
  const std::string prefix =
      "byte " + std::to_string(offset) + " (line " + std::to_string(line) + "): ";
  EXPECT_EQ(m.substr(0, prefix.size()), prefix) << m;
  EXPECT_NE(m.find(what), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

// The graph every seed file in tests/data/v8/ holds (written out in
// tests/data/v8/README.md).
void expectSeedGraph(const v8::Graph& g) {
  using NT = v8::NodeType;
  using ET = v8::EdgeType;
  ASSERT_EQ(g.nodeCount(), 5u);
  ASSERT_EQ(g.edgeCount(), 5u);
  ASSERT_EQ(g.stringCount(), 9u);
  EXPECT_EQ(g.type, (std::vector<NT>{NT::kSynthetic, NT::kSynthetic, NT::kObject, NT::kString,
                                     NT::kNative}));
  EXPECT_EQ(g.name, (std::vector<std::uint32_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(g.id, (std::vector<std::uint32_t>{1, 3, 5, 7, 8}));
  EXPECT_EQ(g.self_size, (std::vector<std::uint64_t>{0, 0, 32, 24, 100}));
  EXPECT_EQ(g.first_edge, (std::vector<std::uint32_t>{0, 2, 3, 5, 5, 5}));
  EXPECT_EQ(g.edge_type, (std::vector<ET>{ET::kElement, ET::kProperty, ET::kElement, ET::kProperty,
                                          ET::kInternal}));
  EXPECT_EQ(g.edge_name, (std::vector<std::uint32_t>{1, 6, 0, 7, 8}));
  EXPECT_EQ(g.edge_to, (std::vector<std::uint32_t>{1, 2, 2, 3, 4}));
  EXPECT_EQ(g.str(0), "<dummy>");
  EXPECT_EQ(g.str(1), "");
  EXPECT_EQ(g.str(2), "(GC roots)");
  EXPECT_EQ(g.str(5), "Node / TLSWrap");
  EXPECT_EQ(g.str(8), "native");
  EXPECT_EQ(g.max_js_id, 7u);  // 8 is native (even)
}

// A byte source that fails after `ok` bytes, as a disk or a gzip stream can.
class FailingReader final : public la::ByteReader {
 public:
  FailingReader(std::string_view bytes, std::size_t ok) : inner_(bytes.substr(0, ok)) {}
  Result<std::size_t> read(char* buf, std::size_t n) override {
    auto got = inner_.read(buf, std::min<std::size_t>(n, 7));
    if (got.ok() && *got == 0)
      return leakscope::core::Error{leakscope::core::Errc::kIo, "read error: boom"};
    return got;
  }
  std::uint64_t consumed() const override { return inner_.consumed(); }

 private:
  la::MemoryReader inner_;
};

std::string gzip(const std::string& text) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, text.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// ---- valid files -----------------------------------------------------------

TEST(V8Reader, SevenNodeFieldsReadIntoEveryColumn) {
  const v8::Graph g = readOk(data("node7.heapsnapshot"));
  expectSeedGraph(g);
  EXPECT_FALSE(g.had_allocation_traces);  // empty trace arrays, as Node writes them
}

TEST(V8Reader, FiveNodeFieldsAndTwelveTypesAsOlderNodeWrites) {
  expectSeedGraph(readOk(data("node5.heapsnapshot")));
}

TEST(V8Reader, SixFieldsReorderedMetaAndUnknownTypeReadThroughMeta) {
  // Fields, node and edge types in another order; meta's keys reversed; a
  // type name this reader does not know; no trace or location sections; an
  // unknown top-level key with a nested value, skipped.
  const v8::Graph g = readOk(data("reordered-meta.heapsnapshot"));
  ASSERT_EQ(g.nodeCount(), 5u);
  EXPECT_EQ(g.type[4], v8::NodeType::kUnknown);
  v8::Graph same = g;
  same.type[4] = v8::NodeType::kNative;
  expectSeedGraph(same);
}

TEST(V8Reader, AllocationTracesAreCheckedAndSkipped) {
  const v8::Graph g = readOk(data("traces.heapsnapshot"));
  expectSeedGraph(g);
  EXPECT_TRUE(g.had_allocation_traces);
}

TEST(V8Reader, StringsDecodeEscapesSurrogatesAndRawUtf8) {
  const v8::Graph g = readOk(data("unicode.heapsnapshot"));
  ASSERT_EQ(g.stringCount(), 9u);
  EXPECT_EQ(g.str(3), "caf\xc3\xa9");
  EXPECT_EQ(g.str(4), "smile \xf0\x9f\x98\x80");  // a surrogate pair: U+1F600
  EXPECT_EQ(g.str(5), "cut \xef\xbf\xbd");        // a lone high surrogate: U+FFFD
  EXPECT_EQ(g.str(6), "low \xef\xbf\xbd alone");  // a lone low surrogate
  EXPECT_EQ(g.str(7), "raw \xc3\xbc");            // raw UTF-8 passes as it is
  EXPECT_EQ(g.str(8), "esc \" \\ / \b\f\n\r\t");
}

TEST(V8Reader, GzipInputReadsTheSameGraph) {
  const std::string z = gzip(data("traces.heapsnapshot"));
  la::MemoryReader file(z);
  la::GzipReader inflated(file, la::inflateLimit(z.size()));
  v8::ReadOptions o;
  std::uint64_t last_progress = 0;
  o.total_bytes = z.size();
  o.progress = [&](std::uint64_t done, std::uint64_t total) {
    EXPECT_EQ(total, z.size());
    last_progress = done;
  };
  auto g = v8::readGraph(inflated, o);
  ASSERT_TRUE(g.ok()) << g.error().message;
  expectSeedGraph(*g);
  EXPECT_EQ(last_progress, z.size());
}

TEST(V8Reader, BigValuesAtTheirLimitsAreRead) {
  const std::string text =
      edit(edit(data("node7.heapsnapshot"), "2,4,7,24,", "2,4,4294967295,9007199254740992,"),
           "8,5,8,100,", "8,5,4294967294,100,");
  const v8::Graph g = readOk(text);
  ASSERT_EQ(g.nodeCount(), 5u);
  EXPECT_EQ(g.id[3], 4294967295u);
  EXPECT_EQ(g.self_size[3], std::uint64_t{1} << 53);
  EXPECT_EQ(g.max_js_id, 4294967295u);
}

TEST(V8Reader, WhitespaceAnywhereJsonAllowsIt) {
  std::string text = data("node7.heapsnapshot");
  std::string spaced;
  for (char c : text) {
    spaced += c;
    if (c == ',' || c == ':' || c == '[' || c == '{') spaced += " \r\n\t ";
  }
  expectSeedGraph(readOk(spaced));
}

// ---- bad input -----------------------------------------------------------

TEST(V8Reader, TruncatedAtEveryByteIsAnErrorAtTheEnd) {
  for (const char* name : {"node7.heapsnapshot", "traces.heapsnapshot", "unicode.heapsnapshot",
                           "reordered-meta.heapsnapshot"}) {
    const std::string text = data(name);
    for (std::size_t k = 1; k < text.size(); ++k) {
      auto g = read(std::string_view(text).substr(0, k));
      ASSERT_FALSE(g.ok()) << name << " cut at " << k << " read a graph";
      const std::string& m = g.error().message;
      std::smatch match;
      ASSERT_TRUE(std::regex_search(m, match, std::regex("^byte ([0-9]+) \\(line [0-9]+\\): ")))
          << m;
      // At the end, or at the escape the end cut in two.
      const std::size_t at = std::stoul(match[1]);
      EXPECT_LE(at, k) << m;
      EXPECT_GE(at + 12, k) << m;
      EXPECT_NE(m.find("truncated?"), std::string::npos) << name << " cut at " << k << ": " << m;
    }
  }
}

TEST(V8Reader, EmptyFileIsAnError) {
  expectError("", 0, "the file is empty");
  expectError(" \n\t ", 0, "the file is empty");
}

TEST(V8Reader, NotAV8SnapshotIsAnErrorAtItsFirstByte) {
  expectError("[1,2]", 0, "expected '{'");
  expectError("{\"nodes\":[]}", 1, "expected \"snapshot\" as the first key");
  expectError("{\"snapshot\":[1]}", 12, "expected '{' (the snapshot header)");
}

TEST(V8Reader, SeedFilesWithBadInputNameTheByte) {
  std::string t = data("bad-escape.heapsnapshot");
  expectError(t, t.find("\\x"), "strings: string 8: invalid escape \\x in a string");
  t = data("bad-to-node-multiple.heapsnapshot");
  expectError(t, t.find("2,7,22"),
              "edges: row 3: to_node 22 is not a multiple of the node field count (7)");
  t = data("bad-to-node-range.heapsnapshot");
  expectError(t, t.find("2,7,35"), "edges: row 3: to_node 35 is past the last node");
  t = data("bad-edge-counts.heapsnapshot");
  expectError(t, t.find("3,3,5,32,3"), "nodes: row 2: the edge_count values so far add up to more");
  t = data("bad-incomplete-meta.heapsnapshot");
  expectError(t, t.find("{\"meta\""), "snapshot.meta.edge_fields: missing or not an array");
  t = data("bad-non-numeric.heapsnapshot");
  expectError(t, t.find("\"7\""), "nodes: row 3, field \"id\": expected a number, found '\"'");
  t = data("bad-trailing.heapsnapshot");
  expectError(t, t.rfind("{}"), "expected the end of the file after the top-level object");
  t = data("bad-truncated.heapsnapshot");
  expectError(t, t.size(), "found the end of the file (truncated?)");
}

TEST(V8Reader, MetaMissingOrWithoutARequiredFieldIsAnError) {
  const std::string good = data("node7.heapsnapshot");
  const std::size_t header = good.find("{\"meta\"");
  expectError(edit(good, "\"meta\":", "\"neta\":"), header, "snapshot.meta: missing");
  for (const char* field : {"type", "name", "id", "self_size", "edge_count"}) {
    const std::string quoted = std::string("\"") + field + "\"";
    expectError(edit(good, quoted, "\"other\""), header,
                "snapshot.meta.node_fields: no " + quoted + " field");
  }
  for (const char* field : {"type", "name_or_index", "to_node"}) {
    const std::string quoted = std::string("\"") + field + "\"";
    const std::string from = "\"edge_fields\":[";
    const std::size_t at = good.find(from);
    std::string t = good;
    t.replace(t.find(quoted, at), quoted.size(), "\"other\"");
    expectError(t, header, "snapshot.meta.edge_fields: no " + quoted + " field");
  }
  expectError(edit(good, "\"node_fields\":[\"type\",", "\"node_fields\":[\"type\",\"type\","),
              header, "\"type\" appears twice");
  expectError(edit(good, "\"node_types\":[[", "\"node_types\":[\"x\",["), header,
              "snapshot.meta.node_types: missing, or its first element is not a list");
  expectError(edit(good, "\"node_count\":5", "\"node_count\":-5"), header,
              "snapshot.node_count: missing or not a non-negative integer");
  expectError(edit(good, "\"edge_count\":5", "\"edge_count\":4294967296"), header,
              "snapshot.edge_count: 4294967296 is more than this reader holds");
}

TEST(V8Reader, CountsThatDoNotMatchTheHeaderAreErrors) {
  const std::string good = data("node7.heapsnapshot");
  std::string t = edit(good, "\"node_count\":5", "\"node_count\":6");
  expectError(t, t.find("],\n\"edges\""), "nodes: 5 rows, the header says 6");
  t = edit(good, "\"node_count\":5", "\"node_count\":4");
  expectError(t, t.find("8,5,8,100"), "nodes: more rows than the header's count (4)");
  // The nodes' edge counts add up to 5, the header says 6.
  t = edit(good, "\"edge_count\":5", "\"edge_count\":6");
  expectError(t, t.find(",\n\"edges\""), "edge_count values add up to 5, snapshot.edge_count is 6");
  // One edge fewer than the nodes' edge counts: the header and nodes agree.
  t = edit(edit(edit(good, "\"edge_count\":5", "\"edge_count\":4"), "3,3,5,32,2", "3,3,5,32,1"),
           "\n,3,8,28]", "]");
  const v8::Graph fewer = readOk(t);
  EXPECT_EQ(fewer.edgeCount(), 4u);
  t = edit(good, "\n,3,8,28]", "]");
  expectError(t, t.find("],\n\"trace_function_infos\""), "edges: 4 rows, the header says 5");
  t = edit(good, "\n,3,8,28]", "\n,3,8,28\n,3,8,28]");
  expectError(t, t.rfind("3,8,28"), "edges: more rows than the header's count (5)");
  t = edit(good, "8,5,8,100,0,0,0]", "8,5,8,100,0,0]");
  expectError(t, t.find("8,5,8,100"), "nodes: the array ends inside row 4 (7 values per row");
}

TEST(V8Reader, ValuesOutOfRangeOrNotNaturalNumbersAreErrors) {
  const std::string good = data("node7.heapsnapshot");
  auto bad = [&](const std::string& from, const std::string& to, const std::string& value,
                 const std::string& what) {
    const std::string t = edit(good, from, to);
    expectError(t, t.find(value, good.find("\"nodes\"")), what);
  };
  bad("2,4,7,24,", "2,4,4294967296,24,", "4294967296",
      "nodes: row 3, field \"id\": 4294967296 is out of range (at most 4294967295)");
  bad("2,4,7,24,", "2,4,7,9007199254740993,", "9007199254740993",
      "field \"self_size\": 9007199254740993 is out of range (at most 9007199254740992)");
  bad("2,4,7,24,", "2,4,7,12345678901234567,", "12345678901234567",
      "field \"self_size\": a number of more than 16 digits");
  bad("2,4,7,24,", "15,4,7,24,", "15,4,7", "field \"type\": 15 is out of range (at most 14)");
  bad("2,4,7,24,", "2,4,-7,24,", "-7", "field \"id\": expected a number of at least 0");
  bad("2,4,7,24,", "2,4,7.5,24,", "7.5", "field \"id\": expected an integer, found a fraction");
  bad("2,4,7,24,", "2,4,7e2,24,", "7e2", "field \"id\": expected an integer, found a fraction");
  bad("2,4,7,24,", "2,4,07,24,", "07", "field \"id\": a number with a leading zero");
  bad("2,4,7,24,", "2,4,null,24,", "null", "field \"id\": expected a number, found 'n'");
  bad("2,4,7,24,", "2,4,7 8,24,", "8,24", "expected ',' or ']', found '8'");
  bad("2,4,7,24,", "2,4,7,,24,", ",24", "field \"self_size\": expected a number, found ','");
  const std::string t = edit(good, "2,7,21", "7,7,21");
  expectError(t, t.find("7,7,21"), "edges: row 3, field \"type\": 7 is out of range (at most 6)");
}

TEST(V8Reader, NameIndexesPastTheStringsAreErrors) {
  const std::string good = data("node7.heapsnapshot");
  std::string t = edit(good, "2,4,7,24,", "2,9,7,24,");
  expectError(t, t.find("2,9,7,24"), "nodes: row 3 names string 9, but strings has 9");
  t = edit(good, "2,7,21", "2,99,21");  // a property: its name is a string
  expectError(t, t.find("2,99,21"), "edges: row 3 names string 99, but strings has 9");
  // An element's name is its index, not a string.
  t = edit(good, "1,0,14", "1,99,14");
  EXPECT_EQ(readOk(t).edge_name[2], 99u);
}

TEST(V8Reader, BadStringsAreErrors) {
  const std::string good = data("node7.heapsnapshot");
  std::string t = edit(good, "\"hello\"", "\"he\\u00zzo\"");
  expectError(t, t.find("\\u00zz"), "invalid \\u escape");
  t = edit(good, "\"hello\"", "\"he\tlo\"");
  expectError(t, t.find('\t'), "a raw control character (byte 0x09) inside a string");
  t = edit(good, "\"hello\"", std::string("\"he\0lo\"", 7));
  expectError(t, t.find('\0'), "a raw control character (byte 0x00)");
  t = edit(good, "\"hello\"", "5");
  expectError(t, t.find("5\n,\"Node"), "strings: string 4: expected a string, found '5'");
}

TEST(V8Reader, StructureErrorsNameTheByte) {
  const std::string good = data("node7.heapsnapshot");
  std::string t = edit(good, "\"nodes\":[", "\"nodes\":{");
  expectError(t, t.find("{9,1"), "expected '[' (the nodes array)");
  t = edit(good, "\"samples\":[]", "\"nodes\":[]");
  expectError(t, t.rfind("\"nodes\""), "duplicate key \"nodes\"");
  t = edit(good, "\"strings\":[", "\"strangs\":[");
  expectError(t, t.size() - 1, "no \"strings\" array");
  t = edit(good, "\"edges\":[", "\"edgez\":[");
  expectError(t, t.size() - 1, "no \"edges\" array");
  t = edit(good, "\"trace_tree\":[]", "\"trace_tree\":[1,[2,\"x\"]]");
  expectError(t, t.find("\"x\""), "\"trace_tree\": expected a number or '['");
  t = edit(good, "\"samples\":[]", "\"samples\":[1,[2]]");
  expectError(t, t.find("[2]"), "\"samples\": expected a number, found '['");
  t = edit(good, "\"samples\":[]", "\"future\":{\"a\":[1,}");
  expectError(t, t.find("}", t.find("\"future\"")), "\"future\": expected a JSON value, found '}'");
  t = edit(good, "\"samples\":[]", "\"future\":tru");
  expectError(t, t.find("tru"), "\"future\": expected a JSON value");
  t = edit(good, "\"meta\":{",
           "\"meta\":{\"deep\":" + std::string(70, '[') + std::string(70, ']') + ",");
  // The header and meta are two levels: the 63rd '[' is the 65th.
  expectError(t, t.find("[") + 62, "nesting deeper than 64");
}

TEST(V8Reader, AHugeClaimedCountInASmallFileAllocatesLittle) {
  // Reserving the header's counts would take over 100 GB; the file can hold
  // only a few rows, so that is all the reader reserves.
  std::string t =
      edit(edit(data("node7.heapsnapshot"), "\"node_count\":5", "\"node_count\":4294967294"),
           "\"edge_count\":5", "\"edge_count\":4294967295");
  expectError(t, t.find("],\n\"edges\""), "nodes: 5 rows, the header says 4294967294");
  la::MemoryReader r(t);
  auto g = v8::readGraph(r, {});  // the size unknown
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message.find("the header says 4294967294"), std::string::npos);
}

TEST(V8Reader, AReadErrorPassesThroughAsItIs) {
  const std::string text = data("node7.heapsnapshot");
  for (std::size_t ok : {std::size_t{0}, std::size_t{100}, text.size() - 3}) {
    FailingReader r(text, ok);
    auto g = v8::readGraph(r, {});
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.error().code, leakscope::core::Errc::kIo);
    EXPECT_EQ(g.error().message, "read error: boom");
  }
}

// ---- a real snapshot -----------------------------------------------------

// The full path of `program` on PATH, or "".
std::string onPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path != nullptr ? path : "";
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    const std::string dir(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? "" : rest.substr(colon + 1);
    const std::string full = dir + "/" + program;
    if (!dir.empty() && ::access(full.c_str(), X_OK) == 0) return full;
  }
  return "";
}

// Python's json on the snapshot: the counts and a few names, independently
// of the reader (and of nlohmann, which rejects the lone surrogates Node writes).
nlohmann::json pythonFacts(const std::string& python, const std::string& dir,
                           const std::string& file) {
  const std::string script =
      "import json,sys\n"
      "s=json.load(open(sys.argv[1]))\n"
      "m=s['snapshot']['meta'];nf=len(m['node_fields']);ef=len(m['edge_fields'])\n"
      "ni=m['node_fields'].index('name');ii=m['node_fields'].index('id')\n"
      "ti=m['node_fields'].index('type');si=m['node_fields'].index('self_size')\n"
      "n=s['nodes'];nc=len(n)//nf;st=s['strings']\n"
      "print(json.dumps({'nodes':nc,'edges':len(s['edges'])//ef,'strings':len(st),\n"
      " 'self':sum(n[i*nf+si] for i in range(nc)),\n"
      " 'maxjs':max([n[i*nf+ii] for i in range(nc) if n[i*nf+ii]%2]+[0]),\n"
      " 'native':sum(1 for i in range(nc) if m['node_types'][0][n[i*nf+ti]]=='native'),\n"
      " 'names':[st[n[i*nf+ni]] for i in range(20)]}))\n";
  leakscope::testing::writeFile(dir + "/facts.py", script);
  const std::string cmd = python + " " + dir + "/facts.py " + file;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {};
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ::pclose(p);
  return nlohmann::json::parse(out, nullptr, false);
}

TEST(V8Reader, ARealNodeSnapshotMatchesPythonsJson) {
  const std::string node = onPath("node");
  const std::string python = onPath("python3");
  if (node.empty() || python.empty()) GTEST_SKIP() << "needs node and python3 on PATH";
  leakscope::testing::TempDir dir;
  const std::string file = dir.path() + "/real.heapsnapshot";
  leakscope::testing::Child writer(
      {node, "-e", "require('v8').writeHeapSnapshot(process.argv[1])", file});
  ASSERT_EQ(writer.wait(60000), 0) << writer.err();
  const nlohmann::json facts = pythonFacts(python, dir.path(), file);
  ASSERT_TRUE(facts.is_object()) << "python3 could not read " << file;

  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  la::FileReader r(fd);
  auto g = v8::readGraph(r, {});
  ::close(fd);
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->nodeCount(), facts["nodes"].get<std::size_t>());
  EXPECT_EQ(g->edgeCount(), facts["edges"].get<std::size_t>());
  EXPECT_EQ(g->stringCount(), facts["strings"].get<std::size_t>());
  EXPECT_GT(g->nodeCount(), 1000u);
  std::uint64_t self = 0;
  std::size_t native = 0;
  for (std::size_t i = 0; i < g->nodeCount(); ++i) {
    self += g->self_size[i];
    native += g->type[i] == v8::NodeType::kNative ? 1u : 0u;
  }
  EXPECT_EQ(self, facts["self"].get<std::uint64_t>());
  EXPECT_EQ(native, facts["native"].get<std::size_t>());
  EXPECT_EQ(g->max_js_id, facts["maxjs"].get<std::uint32_t>());
  for (std::uint32_t i = 0; i < 20; ++i) {
    EXPECT_EQ(g->str(g->name[i]), facts["names"][i].get<std::string>()) << "node " << i;
  }
  EXPECT_EQ(g->str(g->name[1]), "(GC roots)");
  EXPECT_EQ(g->id[0], 1u);
}

}  // namespace

// The read-ahead thread big inputs are read through: the same bytes in the
// same order whatever the caller's and the thread's chunk sizes, the end
// seen once, and the source's error passed through after its bytes.
TEST(PrefetchReader, HandsOverEveryByteInOrderAndTheSourcesError) {
  std::string bytes;
  for (int i = 0; i < 100000; ++i) bytes.push_back(static_cast<char>('a' + i % 26));
  for (std::size_t chunk :
       {std::size_t{1}, std::size_t{7}, std::size_t{4096}, std::size_t{1} << 20}) {
    la::MemoryReader source(bytes);
    la::PrefetchReader ahead(source, chunk);
    std::string out;
    std::vector<char> buf(1000);
    for (;;) {
      auto got = ahead.read(buf.data(), 1 + out.size() % buf.size());
      ASSERT_TRUE(got.ok());
      if (*got == 0) break;
      out.append(buf.data(), *got);
    }
    EXPECT_EQ(out, bytes) << "chunk " << chunk;
    EXPECT_EQ(ahead.consumed(), bytes.size());
    auto again = ahead.read(buf.data(), buf.size());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, 0u);
  }
  // A source that fails after some bytes.
  class Failing final : public la::ByteReader {
   public:
    leakscope::core::Result<std::size_t> read(char* buf, std::size_t n) override {
      if (given_ >= 10)
        return leakscope::core::Error{leakscope::core::Errc::kIo, "read error: EIO"};
      const std::size_t k = std::min<std::size_t>(n, 10 - given_);
      std::memset(buf, 'x', k);
      given_ += k;
      return k;
    }
    std::uint64_t consumed() const override { return given_; }

   private:
    std::size_t given_ = 0;
  } failing;
  la::PrefetchReader ahead(failing, 4);
  std::vector<char> buf(64);
  std::size_t total = 0;
  for (;;) {
    auto got = ahead.read(buf.data(), buf.size());
    if (!got.ok()) {
      EXPECT_EQ(got.error().message, "read error: EIO");
      break;
    }
    ASSERT_NE(*got, 0u) << "the error was lost";
    total += *got;
  }
  EXPECT_EQ(total, 10u);
}
