// The views of a mixed series: V8 heap snapshots beside captures, and the
// join between them (join.h).
#include <sstream>

#include "render.h"

namespace leakscope::analysis {

using json = nlohmann::json;

std::string MixedResult::summary() const {
  return "heap snapshots: " + heap.summary + "; captures: " + captures.summary;
}

void renderJoin(std::ostream& out, const JoinResult& j) {
  std::ostringstream text;
  if (!j.pairs.empty()) {
    const JoinPair& p = j.pairs.back();
    text << "Heap and kernel (pid " << p.pid << ", " << shortPath(p.heap_path) << " with "
         << shortPath(p.capture_path) << "): " << p.line << "\n";
    for (const std::string& d : p.disagreements) text << "  but " << d << "\n";
  }
  for (const std::string& n : j.notes) text << "Note: " << n << "\n";
  out << printable(text.str(), true);
}

json joinJson(const JoinResult& j) {
  json pairs = json::array();
  for (const JoinPair& p : j.pairs) {
    json classes = json::array();
    for (const HeapSocketClass& c : p.classes) {
      classes.push_back({{"name", c.name}, {"objects", c.objects}});
    }
    json groups = json::array();
    for (const JoinSocketGroup& g : p.groups) {
      groups.push_back({{"name", g.name}, {"state", g.state}, {"count", g.count}});
    }
    pairs.push_back({{"heap", p.heap_path},
                     {"capture", p.capture_path},
                     {"pid", p.pid},
                     {"seconds_apart", p.seconds_apart},
                     {"classes", classes},
                     {"heap_connections", p.heap_connections},
                     {"groups", groups},
                     {"kernel_connections", p.kernel_connections},
                     {"line", p.line},
                     {"disagreements", p.disagreements}});
  }
  return {{"pairs", pairs}, {"notes", j.notes}};
}

void renderMixed(std::ostream& out, const MixedResult& m, const SymbolTable& symbols,
                 const RenderOptions& o) {
  out << "V8 heap snapshots and captures: each series is judged on its own.\n\n== V8 heap "
         "snapshots ("
      << m.heap.points.size() << ") ==\n";
  renderRuns(out, m.heap, symbols, o);
  out << "\n== Captures (" << m.captures.points.size() << ") ==\n";
  renderRuns(out, m.captures, symbols, o);
  out << "\n";
  renderJoin(out, m.join);
  out << "Verdict: " << printable(m.summary()) << "\n";
}

json mixedJson(const MixedResult& m, const SymbolTable& symbols, const RenderOptions& o) {
  json heap = runsJson(m.heap, symbols, o);
  json captures = runsJson(m.captures, symbols, o);
  json suspects = json::array();
  for (auto [series, name] :
       {std::pair<json*, const char*>{&heap, "heap"}, {&captures, "captures"}}) {
    for (json s : (*series)["suspects"]) {
      s["series"] = name;
      suspects.push_back(std::move(s));
    }
  }
  return {{"command", "trend"},    {"mixed", true},        {"suspects", suspects},
          {"heap", heap},          {"captures", captures}, {"join", joinJson(m.join)},
          {"summary", m.summary()}};
}

}  // namespace leakscope::analysis
