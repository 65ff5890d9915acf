// Retainer chains in the text and JSON views (analysis.h Chain, chains.h):
// the suspects of trend and diff grouped by who holds whom, and the
// `retainers --kind` command, in the shape of the V8 retainers view.
#include <sstream>

#include "render.h"
#include "text_layout.h"

namespace leakscope::analysis {

void forEachChainMember(std::ostream& out, const std::vector<Chain>& chains, std::size_t suspects,
                        const std::function<void(std::size_t, std::size_t)>& member) {
  if (chains.empty()) {
    for (std::size_t i = 0; i < suspects; ++i) member(i, 0);
    return;
  }
  for (const Chain& c : chains) {
    // A suspect alone, held by no kind: as before chains, no line of its own.
    if (c.members.size() > 1 || !c.held_by.empty()) {
      out << "  \u25b8 " << printable(c.summary) << "\n";
      if (!c.held_by.empty()) out << "    held by " << printable(c.held_by) << "\n";
    }
    for (const ChainMember& m : c.members) member(m.suspect, m.depth);
  }
}

std::string chainMemberHeader(std::size_t number, std::size_t depth, Group g,
                              const std::string& name) {
  std::string s = "  " + std::to_string(number) + ". ";
  if (depth > 0) s += std::string(2 * (depth - 1), ' ') + "\u21b3 ";
  return s + "[" + groupName(g) + "] " + printable(name);
}

nlohmann::json chainsJson(const std::vector<Chain>& chains, const std::vector<Suspect>& suspects) {
  nlohmann::json j = nlohmann::json::array();
  for (const Chain& c : chains) {
    nlohmann::json members = nlohmann::json::array();
    for (const ChainMember& m : c.members) {
      const Suspect& s = suspects[m.suspect];
      members.push_back(
          {{"group", groupName(s.group)}, {"name", s.name}, {"depth", m.depth}, {"each", m.each}});
    }
    j.push_back(
        {{"summary", c.summary},
         {"held_by", c.held_by.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.held_by)},
         {"members", members}});
  }
  return j;
}

void renderKindRetainers(std::ostream& out, const Snapshot& s, const std::string& kind,
                         std::size_t objects, const std::vector<RetainerPath>& paths,
                         const RenderOptions& o) {
  std::ostringstream text;
  text << "Retainers of " << kind << " in " << shortPath(s.path) << " (" << objects
       << " objects): declared owners from the root, by shape\n";
  renderRetainerPaths(text, paths, objects, "  ");
  if (paths.size() == o.top) text << "  ... more shapes may exist (--top N)\n";
  out << fitText(text.str(), o.width);
}

nlohmann::json kindRetainersJson(const Snapshot& s, const std::string& kind, std::size_t objects,
                                 const std::vector<RetainerPath>& paths) {
  return {{"command", "retainers"},
          {"input", s.path},
          {"kind", kind},
          {"objects", objects},
          {"retainers", retainersJson(paths)}};
}

}  // namespace leakscope::analysis
