#include "leakscope/analysis/chains.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <unordered_set>

#include "leakscope/analysis/units.h"

namespace leakscope::analysis {
namespace {

// Chains deeper than this are cut (a file may declare any depth): what a
// reader needs is the top and the last links.
constexpr std::size_t kMaxDepth = 64;
constexpr const char* kArrow = " \u2192 ";

std::string memberKey(Group g, const std::string& name) {
  return (g == Group::kSocket ? "socket:" : "tracked:") + name;
}

// "3", "2.5": how many each object of the top holds.
std::string eachText(double v) {
  const long long tenths = std::llround(v * 10);
  if (tenths % 10 == 0) return formatCount(static_cast<double>(tenths / 10));
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10);
}

}  // namespace

Ownership::Ownership(const Snapshot& s, const SymbolTable& symbols) {
  for (const TrackedKind& k : s.kinds) {
    const auto index = static_cast<std::uint32_t>(kinds_.size());
    kinds_.push_back(k.name);
    auto& members = members_[memberKey(Group::kTracked, k.name)];
    for (const TrackedObject& o : k.objects) {
      objects_[o.id] = Object{index, o.owner, symbols.str(o.label)};
      members.push_back(o.owner);
      any_owner_ = any_owner_ || o.owner != 0;
    }
  }
  const auto listening = listeningPorts(s);
  for (const Socket& k : s.sockets) {
    members_[memberKey(Group::kSocket, socketSeriesName(k, listening))].push_back(
        k.owner.value_or(0));
    any_owner_ = any_owner_ || k.owner.has_value();
  }
}

std::optional<Ownership::Holder> Ownership::holderOf(Group g, const std::string& name) const {
  const auto it = members_.find(memberKey(g, name));
  if (it == members_.end()) return std::nullopt;
  struct Count {
    std::size_t held = 0;
    std::set<std::uint64_t> holders;
  };
  std::map<std::string, Count> by_kind;
  for (std::uint64_t owner : it->second) {
    const auto o = objects_.find(owner);
    if (owner == 0 || o == objects_.end()) continue;
    Count& c = by_kind[kinds_[o->second.kind]];
    ++c.held;
    c.holders.insert(owner);
  }
  std::optional<Holder> best;
  for (const auto& [kind, c] : by_kind) {
    if (!best || c.held > best->held) {
      best = Holder{kind, c.held, c.holders.size(), it->second.size()};
    }
  }
  return best;
}

std::vector<std::uint64_t> Ownership::ownersOf(std::uint64_t id, std::string& end) const {
  std::vector<std::uint64_t> out;
  std::unordered_set<std::uint64_t> seen{id};
  end.clear();
  const auto self = objects_.find(id);
  std::uint64_t cur = self == objects_.end() ? 0 : self->second.owner;
  while (cur != 0) {
    const auto o = objects_.find(cur);
    if (o == objects_.end()) {
      end = "(gone #" + std::to_string(cur) + ")";
      break;
    }
    if (!seen.insert(cur).second) {
      end = "(owner loop)";
      break;
    }
    if (out.size() == kMaxDepth) {
      end = "(\u2026)";
      break;
    }
    out.push_back(cur);
    cur = o->second.owner;
  }
  return out;
}

std::string Ownership::objectName(std::uint64_t id) const {
  const Object& o = objects_.at(id);
  std::string s = kinds_[o.kind] + "#" + std::to_string(id);
  if (!o.label.empty()) s += " (" + o.label + ")";
  return s;
}

std::string Ownership::chainOf(std::uint64_t id) const {
  std::string end;
  const auto owners = ownersOf(id, end);
  std::string out = end;
  for (auto it = owners.rbegin(); it != owners.rend(); ++it) {
    out += (out.empty() ? "" : kArrow) + objectName(*it);
  }
  return out;
}

std::size_t Ownership::objectCount(const std::string& kind) const {
  const auto it = members_.find(memberKey(Group::kTracked, kind));
  return it == members_.end() ? 0 : it->second.size();
}

std::vector<RetainerPath> Ownership::retainers(const std::string& kind,
                                               const std::vector<std::uint64_t>& ids,
                                               std::size_t max_paths) const {
  const std::unordered_set<std::uint64_t> wanted(ids.begin(), ids.end());
  std::map<std::string, std::size_t> shapes;
  std::string end;
  for (const auto& [id, o] : objects_) {
    if (kinds_[o.kind] != kind || (!wanted.empty() && wanted.count(id) == 0)) continue;
    const auto owners = ownersOf(id, end);
    // By kind only: the shape, as V8 paths differ only in indexes.
    std::string path = end.rfind("(gone", 0) == 0 ? "(gone)" : end;
    for (auto it = owners.rbegin(); it != owners.rend(); ++it) {
      path += (path.empty() ? "" : kArrow) + kinds_[objects_.at(*it).kind];
    }
    ++shapes[path + (path.empty() ? "" : kArrow) + kind];
  }
  std::vector<RetainerPath> out;
  for (const auto& [path, count] : shapes) out.push_back({path, count});
  std::stable_sort(out.begin(), out.end(),
                   [](const RetainerPath& a, const RetainerPath& b) { return a.count > b.count; });
  if (out.size() > max_paths) out.resize(max_paths);
  return out;
}

// ---- chains of suspects ---------------------------------------------------

namespace {

// How many members each holding object holds.
double perHolder(const Ownership::Holder& h) {
  return h.holders == 0 ? 0 : static_cast<double>(h.held) / static_cast<double>(h.holders);
}

// Builds the chains: parents from the ownership, loops cut, then each top
// with what it holds, depth first.
class ChainBuilder {
 public:
  ChainBuilder(const std::vector<Suspect>& suspects, const Ownership& own)
      : suspects_(suspects),
        parent_(suspects.size()),
        holder_(suspects.size()),
        children_(suspects.size()) {
    findParents(own);
  }

  void cutLoops(std::vector<std::string>& notes);
  // A chain of suspects deeper than kMaxDepth (a file may declare any) is
  // cut into chains of at most that depth, so that no walk, recursion or
  // summary grows with it.
  void cutDeepChains();
  std::vector<Chain> chains(const Ownership& own,
                            const std::function<std::string(std::size_t)>& growth);

 private:
  void findParents(const Ownership& own);
  void addMembers(Chain& c, std::size_t i, std::size_t depth, double each) const;
  std::string branchText(std::size_t i, double each) const;
  std::size_t firstOf(std::size_t top) const;

  const std::vector<Suspect>& suspects_;
  std::vector<std::optional<std::size_t>> parent_;
  std::vector<Ownership::Holder> holder_;
  std::vector<std::vector<std::size_t>> children_;
};

void ChainBuilder::findParents(const Ownership& own) {
  std::map<std::string, std::size_t> kind_suspect;
  for (std::size_t i = 0; i < suspects_.size(); ++i) {
    if (suspects_[i].group == Group::kTracked) kind_suspect.emplace(suspects_[i].name, i);
  }
  for (std::size_t i = 0; i < suspects_.size(); ++i) {
    const Suspect& s = suspects_[i];
    if (s.group != Group::kTracked && s.group != Group::kSocket) continue;
    const auto h = own.holderOf(s.group, s.name);
    // Most of it held by the other suspect: a minority may be held
    // elsewhere (a client in use beside the abandoned ones).
    if (!h || h->held * 2 <= h->members) continue;
    const auto p = kind_suspect.find(h->kind);
    if (p == kind_suspect.end() || p->second == i) continue;
    parent_[i] = p->second;
    holder_[i] = *h;
  }
}

void ChainBuilder::cutLoops(std::vector<std::string>& notes) {
  const std::size_t n = suspects_.size();
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t cur = i;
    for (std::size_t steps = 0; parent_[cur] && steps <= n; ++steps) cur = *parent_[cur];
    if (!parent_[cur]) continue;  // reached a top
    // `cur` is on a loop: collect it and cut it at its first suspect.
    std::vector<std::size_t> loop{cur};
    for (std::size_t x = *parent_[cur]; x != cur; x = *parent_[x]) loop.push_back(x);
    const std::size_t top = *std::min_element(loop.begin(), loop.end());
    std::string text;
    for (std::size_t x : loop) text += suspects_[x].name + " held by ";
    notes.push_back("owner loop: " + text + suspects_[cur].name + "; shown from " +
                    suspects_[top].name);
    parent_[top].reset();
  }
}

void ChainBuilder::cutDeepChains() {
  const std::size_t n = suspects_.size();
  constexpr std::size_t kUnknown = SIZE_MAX;
  std::vector<std::size_t> depth(n, kUnknown);
  std::vector<std::size_t> path;
  for (std::size_t i = 0; i < n; ++i) {
    // Up to a top or a suspect whose depth is known (no loops are left).
    std::size_t cur = i;
    while (depth[cur] == kUnknown && parent_[cur]) {
      path.push_back(cur);
      cur = *parent_[cur];
    }
    if (depth[cur] == kUnknown) depth[cur] = 0;
    for (auto it = path.rbegin(); it != path.rend(); ++it) depth[*it] = depth[*parent_[*it]] + 1;
    path.clear();
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (depth[i] > 0 && depth[i] % (kMaxDepth + 1) == 0) parent_[i].reset();
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (parent_[i]) children_[*parent_[i]].push_back(i);
  }
}

// The lowest suspect index in the tree under `top`: chains come in the
// order of their first suspect.
std::size_t ChainBuilder::firstOf(std::size_t top) const {
  std::size_t first = top;
  for (std::size_t c : children_[top]) first = std::min(first, firstOf(c));
  return first;
}

void ChainBuilder::addMembers(Chain& c, std::size_t i, std::size_t depth, double each) const {
  c.members.push_back({i, depth, each});
  for (std::size_t k : children_[i]) {
    addMembers(c, k, depth + 1, each * perHolder(holder_[k]));
  }
}

// "3 apns.connection each → 3 ESTABLISHED sockets each".
std::string ChainBuilder::branchText(std::size_t i, double each) const {
  const Suspect& s = suspects_[i];
  std::string text = eachText(each) + " ";
  if (s.group == Group::kSocket) {
    // A socket group's name ends with its state ("... ESTABLISHED").
    const auto space = s.name.rfind(' ');
    text += (space == std::string::npos ? s.name : s.name.substr(space + 1)) +
            (text == "1 " ? " socket each" : " sockets each");
  } else {
    text += s.name + " each";
  }
  for (std::size_t n = 0; n < children_[i].size(); ++n) {
    const std::size_t k = children_[i][n];
    text += (n == 0 ? kArrow : ", ") + branchText(k, each * perHolder(holder_[k]));
  }
  return text;
}

std::vector<Chain> ChainBuilder::chains(const Ownership& own,
                                        const std::function<std::string(std::size_t)>& growth) {
  std::vector<std::size_t> tops;
  std::vector<std::size_t> first(suspects_.size(), 0);
  for (std::size_t i = 0; i < suspects_.size(); ++i) {
    if (!parent_[i]) tops.push_back(i);
    if (!parent_[i]) first[i] = firstOf(i);
  }
  // A chain that holds other suspects explains them: it comes first.
  std::stable_sort(tops.begin(), tops.end(), [&](std::size_t a, std::size_t b) {
    if (children_[a].empty() != children_[b].empty()) return children_[b].empty();
    return first[a] < first[b];
  });
  std::vector<Chain> out;
  for (std::size_t top : tops) {
    Chain c;
    addMembers(c, top, 0, 1);
    c.summary = suspects_[top].name;
    const std::string g = growth(top);
    if (!g.empty()) c.summary += " " + g;
    std::string holds;
    for (const ChainMember& m : c.members) {
      if (m.depth != 1) continue;
      holds += (holds.empty() ? "" : ", ") + branchText(m.suspect, m.each);
    }
    if (!holds.empty()) c.summary += ", holds " + holds;
    if (suspects_[top].group == Group::kTracked) {
      const auto h = own.holderOf(Group::kTracked, suspects_[top].name);
      if (h && h->held * 2 > h->members) c.held_by = h->kind;
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

std::vector<Chain> buildChains(const std::vector<Suspect>& suspects, const Ownership& own,
                               const std::function<std::string(std::size_t)>& growth,
                               std::vector<std::string>& notes) {
  ChainBuilder b(suspects, own);
  b.cutLoops(notes);
  b.cutDeepChains();
  return b.chains(own, growth);
}

}  // namespace leakscope::analysis
