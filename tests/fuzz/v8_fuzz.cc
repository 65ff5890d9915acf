// libFuzzer target: the streaming V8 heap snapshot reader (readGraph) over
// memory. Any crash, sanitizer report or hang is a bug; so is a graph that
// breaks what the analyses rely on: first_edge starts at 0, never decreases
// and ends at the edge count; every edge's target is a node; every node name
// and every edge name that is not an index is a string.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "byte_reader.h"
#include "v8_reader.h"

namespace la = leakscope::analysis;
namespace v8 = leakscope::analysis::v8;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void checkInvariants(const v8::Graph& g) {
  const std::size_t nodes = g.nodeCount();
  check(g.name.size() == nodes && g.id.size() == nodes && g.self_size.size() == nodes);
  check(g.first_edge.size() == nodes + 1 && g.first_edge[0] == 0);
  for (std::size_t i = 0; i < nodes; ++i) {
    check(g.first_edge[i] <= g.first_edge[i + 1]);
    check(g.name[i] < g.stringCount());
  }
  check(g.first_edge[nodes] == g.edgeCount());
  check(g.edge_name.size() == g.edgeCount() && g.edge_to.size() == g.edgeCount());
  for (std::size_t e = 0; e < g.edgeCount(); ++e) {
    check(g.edge_to[e] < nodes);
    check(v8::edgeNameIsIndex(g.edge_type[e]) || g.edge_name[e] < g.stringCount());
  }
  check(g.string_offset.back() == g.string_data.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  la::MemoryReader reader(text);
  v8::ReadOptions options;
  options.total_bytes = size;
  auto g = v8::readGraph(reader, options);
  if (g.ok()) checkInvariants(*g);
  return 0;
}
