// Which objects of a V8 heap snapshot hold a TCP connection (v8_model.h:
// countSocketHolders).
//
// Node wraps each libuv TCP handle in a JS object of class `TCP`; a
// net.Socket (and every subclass: TLSSocket, a library's own) points at its
// handle through `_handle` (Node < 14: a property) or the `kHandle` symbol
// (`<symbol kHandle>`). A TLS socket's handle is a `TLSWrap` whose `_parent`
// is the TCP handle. So a socket object is an object with such an edge to a
// `TCP`, or to a `TLSWrap` over one — whatever its class is called, and a
// net.Socket over a pipe (`Pipe`: stdin, IPC) is not one. Class names alone
// cannot tell that: `Socket` is also the class of process.stdin and of a
// dgram socket, and `TCP` also names the handle class's prototype.
#include <algorithm>
#include <map>
#include <set>
#include <string_view>

#include "v8_model.h"

namespace leakscope::analysis {
namespace {

bool isHandleEdge(const v8::Graph& g, std::uint32_t e) {
  const v8::EdgeType t = g.edge_type[e];
  if (t != v8::EdgeType::kProperty && t != v8::EdgeType::kInternal) return false;
  const std::string_view name = g.str(g.edge_name[e]);
  return name == "_handle" || name == "<symbol kHandle>";
}

// The TCP handle node `handle` stands for: itself when a `TCP`, its
// `_parent` when a `TLSWrap` over one; else kNone.
std::uint32_t tcpHandleOf(const v8::Graph& g, const v8::Classes& c, std::uint32_t handle) {
  const std::string& cls = c.names[c.of[handle]];
  if (cls == "TCP") return handle;
  if (cls != "TLSWrap") return v8::kNone;
  for (std::uint32_t e = g.first_edge[handle]; e < g.first_edge[handle + 1]; ++e) {
    const std::uint32_t to = g.edge_to[e];
    if (g.edge_type[e] == v8::EdgeType::kProperty && g.str(g.edge_name[e]) == "_parent" &&
        c.names[c.of[to]] == "TCP") {
      return to;
    }
  }
  return v8::kNone;
}

}  // namespace

void countSocketHolders(const v8::Graph& g, const v8::Classes& c, V8Facts& facts) {
  std::map<std::string, std::int64_t> per_class;
  std::set<std::uint32_t> handles;
  for (std::uint32_t n = 0; n < g.nodeCount(); ++n) {
    if (g.type[n] != v8::NodeType::kObject) continue;
    for (std::uint32_t e = g.first_edge[n]; e < g.first_edge[n + 1]; ++e) {
      if (!isHandleEdge(g, e)) continue;
      const std::uint32_t tcp = tcpHandleOf(g, c, g.edge_to[e]);
      if (tcp == v8::kNone) continue;
      handles.insert(tcp);
      ++per_class[c.names[c.of[n]]];
      break;
    }
  }
  facts.tcp_handles = static_cast<std::int64_t>(handles.size());
  facts.socket_classes.clear();
  for (auto& [name, objects] : per_class) facts.socket_classes.push_back({name, objects});
  std::stable_sort(
      facts.socket_classes.begin(), facts.socket_classes.end(),
      [](const HeapSocketClass& a, const HeapSocketClass& b) { return a.objects > b.objects; });
}

}  // namespace leakscope::analysis
