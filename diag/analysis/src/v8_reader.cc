#include "v8_reader.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "json_scanner.h"
#include "leakscope/analysis/text.h"

namespace leakscope::analysis::v8 {
namespace {

using json = nlohmann::json;
using Position = JsonScanner::Position;

constexpr std::uint64_t kU32Max = 0xffffffffu;
// V8 writes sizes as doubles' integer range at most.
constexpr std::uint64_t kSizeMax = std::uint64_t{1} << 53;
// Rows wider than this are not a V8 snapshot (it writes 5 to 7 node fields
// and 3 edge fields); the bound keeps one row in a fixed array.
constexpr std::size_t kMaxFields = 32;
// The header holds `meta` and three counts: about 2 KB in every version.
constexpr std::size_t kHeaderLimit = std::size_t{1} << 20;
// Nesting allowed in the header (kept under nlohmann's recursion).
constexpr std::size_t kHeaderDepth = 64;
// Without a file size, columns start at this many rows and grow.
constexpr std::uint64_t kUnknownSizeRows = std::uint64_t{1} << 16;

// A name from the input, safe for a one-line message.
std::string quote(std::string_view s) {
  constexpr std::size_t kMax = 60;
  return "\"" + printable(s.substr(0, kMax)) + (s.size() > kMax ? "...\"" : "\"");
}

// One kind of row (a node or an edge) of this file: its width, the largest
// value each field may hold, and the field names for errors.
struct RowLayout {
  std::size_t width = 0;
  std::array<std::uint64_t, kMaxFields> max{};
  std::vector<std::string> names;
};

// Where the graph's fields sit in this file's rows (read through `meta`), and
// what its type numbers mean.
struct Layout {
  RowLayout node;
  std::size_t n_type = 0, n_name = 0, n_id = 0, n_self = 0, n_edges = 0;
  RowLayout edge;
  std::size_t e_type = 0, e_name = 0, e_to = 0;
  std::vector<NodeType> node_types;  // the file's type number → ours
  std::vector<EdgeType> edge_types;
  std::uint64_t node_count = 0;
  std::uint64_t edge_count = 0;
};

// `meta.<key>`: the field names of a row; the positions of `wanted` in it.
// An error text (after "snapshot.") or nothing.
std::optional<std::string> fieldPositions(const json& meta, const std::string& key,
                                          const std::vector<std::string>& wanted, RowLayout& row,
                                          std::vector<std::size_t*> positions) {
  const auto it = meta.find(key);
  if (it == meta.end() || !it->is_array()) return "meta." + key + ": missing or not an array";
  if (it->size() > kMaxFields) {
    return "meta." + key + ": " + std::to_string(it->size()) + " fields, more than " +
           std::to_string(kMaxFields);
  }
  row.names.clear();
  for (const json& f : *it) {
    if (!f.is_string()) return "meta." + key + ": a field name that is not a string";
    row.names.push_back(f.get<std::string>());
  }
  row.width = row.names.size();
  for (std::size_t w = 0; w < wanted.size(); ++w) {
    const auto at = std::find(row.names.begin(), row.names.end(), wanted[w]);
    if (at == row.names.end()) return "meta." + key + ": no " + quote(wanted[w]) + " field";
    if (std::find(at + 1, row.names.end(), wanted[w]) != row.names.end()) {
      return "meta." + key + ": " + quote(wanted[w]) + " appears twice";
    }
    *positions[w] = static_cast<std::size_t>(at - row.names.begin());
  }
  row.max.fill(kSizeMax);
  return std::nullopt;
}

// `meta.<key>[0]`: the type names, mapped by `from_name`.
template <class Type, class FromName>
std::optional<std::string> typeNames(const json& meta, const std::string& key, FromName from_name,
                                     std::vector<Type>& out) {
  const auto it = meta.find(key);
  if (it == meta.end() || !it->is_array() || it->empty() || !(*it)[0].is_array() ||
      (*it)[0].empty()) {
    return "meta." + key + ": missing, or its first element is not a list of type names";
  }
  out.clear();
  for (const json& t : (*it)[0]) {
    if (!t.is_string()) return "meta." + key + "[0]: a type name that is not a string";
    out.push_back(from_name(t.get<std::string>()));
  }
  return std::nullopt;
}

std::optional<std::string> count(const json& header, const char* key, std::uint64_t max,
                                 std::uint64_t& out) {
  const auto it = header.find(key);
  if (it == header.end() || !it->is_number_unsigned()) {
    return std::string(key) + ": missing or not a non-negative integer";
  }
  out = it->get<std::uint64_t>();
  if (out > max) {
    return std::string(key) + ": " + std::to_string(out) + " is more than this reader holds (" +
           std::to_string(max) + ")";
  }
  return std::nullopt;
}

// The header's layout; an error text (after "snapshot.") or nothing.
std::optional<std::string> parseLayout(const json& h, Layout& l) {
  const auto meta = h.find("meta");
  if (meta == h.end() || !meta->is_object()) return "meta: missing or not an object";
  std::optional<std::string> err =
      fieldPositions(*meta, "node_fields", {"type", "name", "id", "self_size", "edge_count"},
                     l.node, {&l.n_type, &l.n_name, &l.n_id, &l.n_self, &l.n_edges});
  if (!err) {
    err = fieldPositions(*meta, "edge_fields", {"type", "name_or_index", "to_node"}, l.edge,
                         {&l.e_type, &l.e_name, &l.e_to});
  }
  if (!err) err = typeNames(*meta, "node_types", nodeTypeFromName, l.node_types);
  if (!err) err = typeNames(*meta, "edge_types", edgeTypeFromName, l.edge_types);
  // Node ordinals and edge indexes are 32-bit; kNone stays free.
  if (!err) err = count(h, "node_count", kU32Max - 1, l.node_count);
  if (!err) err = count(h, "edge_count", kU32Max, l.edge_count);
  if (err) return err;
  l.node.max[l.n_type] = l.node_types.size() - 1;
  l.node.max[l.n_name] = kU32Max;
  l.node.max[l.n_id] = kU32Max;
  l.node.max[l.n_edges] = kU32Max;
  l.edge.max[l.e_type] = l.edge_types.size() - 1;
  l.edge.max[l.e_name] = kU32Max;
  return std::nullopt;
}

// The largest string index a column refers to, and where it first did:
// strings come last, so the indexes are checked once they are read.
struct StringRefs {
  std::uint64_t max = 0;
  std::uint64_t row = 0;
  std::optional<Position> at;
  void see(std::uint64_t index, std::uint64_t r, Position p) {
    if (at && index <= max) return;
    max = index;
    row = r;
    at = p;
  }
};

// One pass over the document, filling the graph section by section.
class Reader {
 public:
  Reader(ByteReader& reader, const ReadOptions& options)
      : sc_(reader, options.total_bytes, options.progress), total_(options.total_bytes) {}

  core::Result<Graph> run() {
    if (!readDocument()) return sc_.error();
    return std::move(g_);
  }

 private:
  bool readDocument();
  bool readHeader();
  bool readMember(const std::string& key, Position at);
  bool readSkipped(const std::string& key);
  template <class Store>
  bool readRows(const char* what, const RowLayout& layout, std::uint64_t expected, Store store);
  bool readNodes();
  bool storeNode(const std::uint64_t* row, std::uint64_t index, Position at);
  bool readEdges();
  bool storeEdge(const std::uint64_t* row, std::uint64_t index, Position at);
  bool readStrings();
  bool checkComplete(Position end);
  std::uint64_t initialRows(std::uint64_t header_count, std::size_t width) const;
  template <class... Column>
  static void grow(std::uint64_t header_count, Column&... columns);

  JsonScanner sc_;
  std::uint64_t total_;
  Layout layout_;
  Graph g_;
  std::set<std::string> keys_;
  StringRefs node_names_;
  StringRefs edge_names_;
  std::uint64_t edge_sum_ = 0;  // of the nodes' edge_count so far
};

bool Reader::readDocument() {
  const Position start = sc_.position();
  if (sc_.atEnd()) return sc_.fail(start, "the file is empty");
  if (!sc_.expect('{', "'{' (a V8 heap snapshot is a JSON object)")) return false;
  std::string key;
  Position at = sc_.position();
  if (!sc_.readKey(key)) return false;
  if (key != "snapshot") {
    return sc_.fail(
        at, "expected \"snapshot\" as the first key (V8 writes it first), found " + quote(key));
  }
  keys_.insert(key);
  if (!readHeader()) return false;
  for (;;) {
    const char sep = sc_.separator('}');
    if (sep == '\0') return false;
    if (sep == '}') break;
    sc_.peek();
    at = sc_.position();
    if (!sc_.readKey(key) || !readMember(key, at)) return false;
  }
  Position end = sc_.position();
  end.offset -= 1;  // the closing '}'
  if (!sc_.atEnd()) return sc_.failExpected("the end of the file after the top-level object");
  return checkComplete(end);
}

bool Reader::readHeader() {
  if (sc_.peek() != '{') return sc_.failExpected("'{' (the snapshot header)");
  const Position at = sc_.position();
  sc_.startCapture(kHeaderLimit, "the snapshot header");
  std::uint64_t scalars = 0;
  std::string text;
  if (!sc_.skipValue(JsonScanner::Allow::kAny, kHeaderDepth, scalars) || !sc_.endCapture(text)) {
    return false;
  }
  const json header = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) {
    return sc_.fail(at, "the snapshot header is not valid JSON (not UTF-8?)");
  }
  if (auto err = parseLayout(header, layout_)) return sc_.fail(at, "snapshot." + *err);
  return true;
}

bool Reader::readMember(const std::string& key, Position at) {
  if (!keys_.insert(key).second) return sc_.fail(at, "duplicate key " + quote(key));
  if (key == "nodes") return readNodes();
  if (key == "edges") return readEdges();
  if (key == "strings") return readStrings();
  if (readSkipped(key)) return true;
  sc_.addContext(quote(key) + ": ");
  return false;
}

// Sections the analyses do not use: checked to be what V8 writes there (flat
// number arrays; trace_tree nested), then dropped. Unknown keys (a newer V8)
// are skipped as any JSON value.
bool Reader::readSkipped(const std::string& key) {
  std::uint64_t values = 0;
  if (key == "trace_function_infos" || key == "samples" || key == "locations") {
    if (!sc_.skipNumberArray(values)) return false;
    // Node writes empty trace arrays when allocation tracking is off.
    if (key == "trace_function_infos" && values > 0) g_.had_allocation_traces = true;
    return true;
  }
  if (key == "trace_tree") {
    if (sc_.peek() != '[') return sc_.failExpected("'['");
    if (!sc_.skipValue(JsonScanner::Allow::kNumbersAndArrays, SIZE_MAX, values)) return false;
    if (values > 0) g_.had_allocation_traces = true;
    return true;
  }
  return sc_.skipValue(JsonScanner::Allow::kAny, SIZE_MAX, values);
}

// How many rows to reserve before reading: the header's count, but never
// more than the input could hold (each value takes at least two bytes, a
// digit and a comma), so a small file claiming 10^12 nodes allocates little.
std::uint64_t Reader::initialRows(std::uint64_t header_count, std::size_t width) const {
  const std::uint64_t bytes = total_ > 0 ? total_ : kUnknownSizeRows * 2 * width;
  return std::min<std::uint64_t>(header_count, bytes / (2 * width) + 1);
}

// Room for more rows when the columns are full: double, up to the header's
// count (more rows than that is an error before this is reached).
template <class... Column>
void Reader::grow(std::uint64_t header_count, Column&... columns) {
  const std::uint64_t cap = std::get<0>(std::tie(columns...)).capacity();
  const auto want = static_cast<std::size_t>(
      std::min<std::uint64_t>(header_count, std::max<std::uint64_t>(cap * 2, 4096)));
  (columns.reserve(want), ...);
}

// The rows of a number array ("nodes" or "edges"), `layout.width` values
// each, handed to `store` one by one with their index and start. The value
// loop is the reader's hot path: it stays in JsonScanner's inline functions.
template <class Store>
bool Reader::readRows(const char* what, const RowLayout& layout, std::uint64_t expected,
                      Store store) {
  if (!sc_.expect('[', std::string("'[' (the ") + what + " array)")) return false;
  std::array<std::uint64_t, kMaxFields> row{};
  std::uint64_t index = 0;
  const bool empty = sc_.peek() == ']' && !sc_.atEnd();
  if (empty) sc_.advance();
  for (char sep = empty ? ']' : ','; sep != ']';) {
    sc_.peek();
    const Position at = sc_.position();
    for (std::size_t k = 0; k < layout.width; ++k) {
      if (!sc_.readUint(row[k], layout.max[k])) {
        sc_.addContext(std::string(what) + ": row " + std::to_string(index) + ", field " +
                       quote(layout.names[k]) + ": ");
        return false;
      }
      sep = sc_.separator(']');
      if (sep == '\0') return false;
      if (sep == ']' && k + 1 < layout.width) {
        return sc_.fail(at, std::string(what) + ": the array ends inside row " +
                                std::to_string(index) + " (" + std::to_string(layout.width) +
                                " values per row, as meta says)");
      }
    }
    if (index == expected) {
      return sc_.fail(at, std::string(what) + ": more rows than the header's count (" +
                              std::to_string(expected) + ")");
    }
    if (!store(row.data(), index, at)) return false;
    ++index;
  }
  Position end = sc_.position();
  end.offset -= 1;  // the ']'
  if (index != expected) {
    return sc_.fail(end, std::string(what) + ": " + std::to_string(index) +
                             " rows, the header says " + std::to_string(expected) +
                             " (truncated?)");
  }
  return true;
}

bool Reader::readNodes() {
  const std::uint64_t n = layout_.node_count;
  const auto reserve = static_cast<std::size_t>(initialRows(n, layout_.node.width));
  g_.type.reserve(reserve);
  g_.name.reserve(reserve);
  g_.id.reserve(reserve);
  g_.self_size.reserve(reserve);
  g_.first_edge.reserve(reserve + 1);
  g_.first_edge.push_back(0);
  auto store = [this](const std::uint64_t* row, std::uint64_t index, Position at) {
    return storeNode(row, index, at);
  };
  if (!readRows("nodes", layout_.node, n, store)) return false;
  if (edge_sum_ != layout_.edge_count) {
    return sc_.fail(sc_.position(), "nodes: their edge_count values add up to " +
                                        std::to_string(edge_sum_) + ", snapshot.edge_count is " +
                                        std::to_string(layout_.edge_count));
  }
  return true;
}

bool Reader::storeNode(const std::uint64_t* row, std::uint64_t index, Position at) {
  const Layout& l = layout_;
  if (g_.type.size() == g_.type.capacity()) {
    grow(l.node_count, g_.type, g_.name, g_.id, g_.self_size);
    g_.first_edge.reserve(g_.type.capacity() + 1);
  }
  edge_sum_ += row[l.n_edges];
  if (edge_sum_ > l.edge_count) {
    return sc_.fail(at, "nodes: row " + std::to_string(index) +
                            ": the edge_count values so far add up to more than "
                            "snapshot.edge_count (" +
                            std::to_string(l.edge_count) + ")");
  }
  const auto name = static_cast<std::uint32_t>(row[l.n_name]);
  const auto id = static_cast<std::uint32_t>(row[l.n_id]);
  node_names_.see(name, index, at);
  if ((id & 1) != 0 && id > g_.max_js_id) g_.max_js_id = id;
  g_.type.push_back(l.node_types[row[l.n_type]]);
  g_.name.push_back(name);
  g_.id.push_back(id);
  g_.self_size.push_back(row[l.n_self]);
  g_.first_edge.push_back(static_cast<std::uint32_t>(edge_sum_));
  return true;
}

bool Reader::readEdges() {
  const auto reserve =
      static_cast<std::size_t>(initialRows(layout_.edge_count, layout_.edge.width));
  g_.edge_type.reserve(reserve);
  g_.edge_name.reserve(reserve);
  g_.edge_to.reserve(reserve);
  auto store = [this](const std::uint64_t* row, std::uint64_t index, Position at) {
    return storeEdge(row, index, at);
  };
  return readRows("edges", layout_.edge, layout_.edge_count, store);
}

bool Reader::storeEdge(const std::uint64_t* row, std::uint64_t index, Position at) {
  const Layout& l = layout_;
  if (g_.edge_type.size() == g_.edge_type.capacity()) {
    grow(l.edge_count, g_.edge_type, g_.edge_name, g_.edge_to);
  }
  const EdgeType type = l.edge_types[row[l.e_type]];
  const std::uint64_t to = row[l.e_to];
  const std::uint64_t width = l.node.width;
  if (to % width != 0 || to / width >= l.node_count) {
    return sc_.fail(
        at, "edges: row " + std::to_string(index) + ": to_node " + std::to_string(to) +
                (to % width != 0
                     ? " is not a multiple of the node field count (" + std::to_string(width) + ")"
                     : " is past the last node (node_count " + std::to_string(l.node_count) + ")"));
  }
  const auto name = static_cast<std::uint32_t>(row[l.e_name]);
  if (!edgeNameIsIndex(type)) edge_names_.see(name, index, at);
  g_.edge_type.push_back(type);
  g_.edge_name.push_back(name);
  g_.edge_to.push_back(static_cast<std::uint32_t>(to / width));
  return true;
}

bool Reader::readStrings() {
  if (!sc_.expect('[', "'[' (the strings array)")) return false;
  g_.string_offset.push_back(0);
  if (sc_.peek() == ']' && !sc_.atEnd()) {
    sc_.advance();
    return true;
  }
  for (;;) {
    if (!sc_.readString(g_.string_data)) {
      sc_.addContext("strings: string " + std::to_string(g_.string_offset.size() - 1) + ": ");
      return false;
    }
    g_.string_offset.push_back(g_.string_data.size());
    const char sep = sc_.separator(']');
    if (sep == '\0') return false;
    if (sep == ']') return true;
  }
}

bool Reader::checkComplete(Position end) {
  for (const char* key : {"nodes", "edges", "strings"}) {
    if (keys_.count(key) == 0) {
      return sc_.fail(end,
                      std::string("no \"") + key + "\" array (every V8 heap snapshot has one)");
    }
  }
  const std::uint64_t strings = g_.stringCount();
  for (const auto& [refs, what] : {std::pair{&node_names_, "nodes"}, {&edge_names_, "edges"}}) {
    if (refs->at && refs->max >= strings) {
      return sc_.fail(*refs->at, std::string(what) + ": row " + std::to_string(refs->row) +
                                     " names string " + std::to_string(refs->max) +
                                     ", but strings has " + std::to_string(strings));
    }
  }
  return true;
}

}  // namespace

core::Result<Graph> readGraph(ByteReader& reader, const ReadOptions& options) {
  return Reader(reader, options).run();
}

}  // namespace leakscope::analysis::v8
