// The views only V8 heap snapshots have: the classes of `show` (DevTools'
// Summary), the class table of `diff` (its Comparison, with the retained
// size), retaining paths, and the `retainers` command.
#include <algorithm>
#include <sstream>

#include "render.h"
#include "text_layout.h"

namespace leakscope::analysis {
namespace {

using json = nlohmann::json;

std::string distanceText(const ObjectClass& k) {
  return k.distance == ObjectClass::kNoDistance ? "-" : std::to_string(k.distance);
}

std::vector<const ObjectClass*> byRetained(const Snapshot& s) {
  std::vector<const ObjectClass*> v;
  for (const ObjectClass& k : s.classes) v.push_back(&k);
  std::stable_sort(v.begin(), v.end(), [](const ObjectClass* a, const ObjectClass* b) {
    if (a->retained_bytes != b->retained_bytes) return a->retained_bytes > b->retained_bytes;
    return a->live_bytes > b->live_bytes;
  });
  return v;
}

// A path's first step and its last few: what holds the objects is at the
// end; the way from the roots to it (often through module contexts) can be
// dozens of steps. --json has it whole.
constexpr std::size_t kPathTail = 6;
std::string elidePath(const std::string& path) {
  static const std::string kArrow = " \u2192 ";
  std::vector<std::size_t> at;
  for (std::size_t p = path.find(kArrow); p != std::string::npos; p = path.find(kArrow, p + 1)) {
    at.push_back(p);
  }
  if (at.size() <= kPathTail + 2) return path;
  return path.substr(0, at[1]) + kArrow + "\u2026" + path.substr(at[at.size() - kPathTail]);
}

}  // namespace

void showV8Source(std::ostream& out, const Snapshot& s) {
  out << printable(s.path)
      << "\n  V8 heap snapshot: " << formatCount(static_cast<double>(s.v8.nodes)) << " nodes, "
      << formatCount(static_cast<double>(s.v8.edges)) << " edges, "
      << formatBytes(static_cast<double>(s.v8.self_bytes)) << " in objects";
  if (s.process.pid != 0) out << "; pid " << s.process.pid << " (from the file name)";
  out << "\n";
  if (s.v8.unreachable > 0) {
    out << "  " << formatCount(static_cast<double>(s.v8.unreachable))
        << " nodes are unreachable from the roots over strong edges (counted under the root, as "
           "DevTools does)\n";
  }
}

void showV8Classes(std::ostream& out, const Snapshot& s, const RenderOptions& o) {
  out << "\nClasses by retained size (" << s.classes.size() << "):\n";
  Table t({"class", "objects", "self size", "retained size", "distance"});
  const auto classes = byRetained(s);
  for (std::size_t i = 0; i < classes.size() && i < o.top; ++i) {
    const ObjectClass& k = *classes[i];
    t.add({k.name, formatCount(static_cast<double>(k.objects.size())),
           formatBytes(static_cast<double>(k.live_bytes)),
           formatBytes(static_cast<double>(k.retained_bytes)), distanceText(k)});
  }
  t.print(out, o.width);
  if (classes.size() > o.top) out << "  ... " << classes.size() - o.top << " more (--top N)\n";
}

json v8ShowJson(const Snapshot& s) {
  json classes = json::array();
  for (const ObjectClass* k : byRetained(s)) {
    json c = {{"name", k->name},
              {"objects", k->objects.size()},
              {"self_bytes", k->live_bytes},
              {"retained_bytes", k->retained_bytes},
              {"engine", k->engine}};
    c["distance"] = k->distance == ObjectClass::kNoDistance ? json(nullptr) : json(k->distance);
    classes.push_back(std::move(c));
  }
  return {{"classes", classes},
          {"v8",
           {{"nodes", s.v8.nodes},
            {"edges", s.v8.edges},
            {"strings", s.v8.strings},
            {"unreachable", s.v8.unreachable},
            {"self_bytes", s.v8.self_bytes}}}};
}

void renderClassComparison(std::ostream& out, const Comparison& c, const RenderOptions& o) {
  Table t({"class", "# New", "# Deleted", "# Delta", "Alloc. Size", "Freed Size", "Size Delta",
           "Retained Delta"});
  std::size_t shown = 0, total = 0;
  for (const CompareRow& r : c.rows) {
    if (r.group != Group::kClass) continue;
    ++total;
    if (shown >= o.top) continue;
    ++shown;
    t.add({r.name, formatCount(r.new_count), formatCount(r.deleted_count), signedNum(r.delta_count),
           formatBytes(r.alloc_bytes), formatBytes(r.freed_bytes), signedBytes(r.delta_bytes),
           signedBytes(r.retained_delta_bytes.value_or(0))});
  }
  if (t.empty()) return;
  out << "\n";
  t.print(out, o.width);
  if (total > shown) out << "  ... " << total - shown << " more (--top N)\n";
}

void renderRetainerPaths(std::ostream& out, const std::vector<RetainerPath>& paths,
                         std::size_t objects, const std::string& indent) {
  for (const RetainerPath& p : paths) {
    out << indent << p.count;
    if (objects > 0) out << " of " << objects;
    out << ": " << printable(elidePath(p.path)) << "\n";
  }
}

json retainersJson(const std::vector<RetainerPath>& paths) {
  json j = json::array();
  for (const RetainerPath& p : paths) j.push_back({{"path", p.path}, {"count", p.count}});
  return j;
}

void renderRetainers(std::ostream& out, const Snapshot& s, const std::string& name,
                     const std::vector<RetainerPath>& paths, const RenderOptions& o) {
  const ObjectClass* k = s.objectClass(name);
  const std::size_t objects = k == nullptr ? 0 : k->objects.size();
  std::ostringstream text;
  text << "Retainers of " << name << " in " << shortPath(s.path) << " (" << objects
       << " objects): shortest paths from the GC roots, by shape\n";
  if (paths.empty()) {
    text << "  no path: " << (objects == 0 ? "no object of this class" : "not reachable") << "\n";
  } else {
    renderRetainerPaths(text, paths, objects, "  ");
    if (paths.size() == o.top) text << "  ... more shapes may exist (--top N)\n";
  }
  // fitText escapes what came from the input and wraps to the terminal.
  out << fitText(text.str(), o.width);
}

json retainersCommandJson(const Snapshot& s, const std::string& name,
                          const std::vector<RetainerPath>& paths) {
  const ObjectClass* k = s.objectClass(name);
  return {{"command", "retainers"},
          {"input", s.path},
          {"class", name},
          {"objects", k == nullptr ? 0 : k->objects.size()},
          {"retainers", retainersJson(paths)}};
}

}  // namespace leakscope::analysis
