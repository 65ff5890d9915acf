// Retainer chains of tracked objects (snapshot format version 2): which
// tracked object holds which, as the program declared it (Tracked::setOwner),
// and which object holds each socket (the fd it declared). The C++ process's
// counterpart of a V8 heap snapshot's retaining paths, shown in the same
// shape (RetainerPath), so a user reads one view whatever the process.
//
// `Ownership` is built from one snapshot and keeps ids, kinds and labels
// only. Owners need not be alive (an owner released before its objects
// leaves an id no object has: "gone"), and may loop (A owned by B, B by A):
// every walk stops at a loop and says so. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/model.h"

namespace leakscope::analysis {

class Ownership {
 public:
  Ownership() = default;
  Ownership(const Snapshot& s, const SymbolTable& symbols);

  // Whether any object or socket of the snapshot names an owner.
  bool any() const { return any_owner_; }

  // The tracked kind that holds most of the owned members of a group (a
  // tracked kind, or a socket group named as trend and diff name it:
  // "GROUP STATE"); nullopt when none of its members has a live owner.
  struct Holder {
    std::string kind;
    std::size_t held = 0;     // members of the group objects of `kind` hold
    std::size_t holders = 0;  // distinct objects of `kind` holding them
    std::size_t members = 0;  // members of the group in the snapshot
  };
  std::optional<Holder> holderOf(Group g, const std::string& name) const;

  // The chain that holds object `id`, root first and the object last:
  // "pushdaemon.registry#1 → apns.provider#5 (localhost) → apns.connection#9
  // (localhost)". A root is an object without owner, "(gone #ID)" an owner
  // no object of the snapshot has, "(owner loop)" where the owners loop.
  std::string chainOf(std::uint64_t id) const;

  // The paths that hold the objects `ids` of `kind` (every object of it
  // when empty), by kinds from the root down (the V8 view's shape:
  // "pushdaemon.leak_drill → apns.provider → apns.connection"), most shared
  // first, at most `max_paths`.
  std::vector<RetainerPath> retainers(const std::string& kind,
                                      const std::vector<std::uint64_t>& ids,
                                      std::size_t max_paths) const;
  std::size_t objectCount(const std::string& kind) const;

 private:
  struct Object {
    std::uint32_t kind = 0;
    std::uint64_t owner = 0;
    std::string label;
  };
  // The owners of `id`, nearest first; `end` says how the walk ended:
  // "" at a root, "(gone #ID)" or "(owner loop)".
  std::vector<std::uint64_t> ownersOf(std::uint64_t id, std::string& end) const;
  std::string objectName(std::uint64_t id) const;

  std::vector<std::string> kinds_;
  std::unordered_map<std::uint64_t, Object> objects_;
  // Each group's members' owner ids (0: none): tracked kinds by name,
  // socket groups as "socket:GROUP STATE".
  std::map<std::string, std::vector<std::uint64_t>> members_;
  bool any_owner_ = false;
};

// Groups `suspects` into chains: a suspect most of whose members are held by
// objects of another suspect's kind goes under it. `growth(i)` says what
// suspect i did (for a top: "+1 per interval, never destroyed"). An owner
// loop between suspects is cut at its first suspect and named in `notes`.
// Chains that hold other suspects come first (they explain them), then
// the rest; each group in the order of its first suspect.
std::vector<Chain> buildChains(const std::vector<Suspect>& suspects, const Ownership& own,
                               const std::function<std::string(std::size_t)>& growth,
                               std::vector<std::string>& notes);

}  // namespace leakscope::analysis
