#include "leakscope/analysis/model.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "readers.h"

namespace leakscope::analysis {

StringId SymbolTable::intern(std::string_view s) {
  if (auto it = string_ids_.find(s); it != string_ids_.end()) return it->second;
  const auto id = static_cast<StringId>(strings_.size());
  strings_.emplace_back(s);
  string_ids_.emplace(strings_.back(), id);
  return id;
}

std::string SymbolTable::frameKey(const FrameInfo& f) {
  if (!f.function.empty()) return f.function;
  char offset[32];
  std::snprintf(offset, sizeof offset, "+0x%" PRIx64, f.module_offset);
  return (f.module.empty() ? std::string("?") : f.module) + offset;
}

StringId SymbolTable::internFrame(const FrameInfo& f) {
  const StringId key = intern(frameKey(f));
  auto [it, added] = frames_.emplace(key, f);
  // Keep the most informative description (one with file:line).
  if (!added && it->second.file.empty() && !f.file.empty()) it->second = f;
  return key;
}

bool SymbolTable::hasFrame(std::string_view key) const {
  auto it = string_ids_.find(key);
  return it != string_ids_.end() && frames_.count(it->second) != 0;
}

const FrameInfo& SymbolTable::frame(StringId key) const {
  static const FrameInfo kUnknown;
  auto it = frames_.find(key);
  return it == frames_.end() ? kUnknown : it->second;
}

std::size_t SymbolTable::VecHash::operator()(const std::vector<StringId>& v) const noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (StringId x : v) h = (h ^ x) * 1099511628211ull;
  return static_cast<std::size_t>(h);
}

StackId SymbolTable::internStack(const std::vector<StringId>& frames) {
  if (auto it = stack_ids_.find(frames); it != stack_ids_.end()) return it->second;
  const auto id = static_cast<StackId>(stacks_.size());
  stacks_.push_back(frames);
  stack_ids_.emplace(frames, id);
  return id;
}

const TrackedObject* TrackedKind::find(std::uint64_t id) const {
  auto it = std::lower_bound(objects.begin(), objects.end(), id,
                             [](const TrackedObject& o, std::uint64_t v) { return o.id < v; });
  return it != objects.end() && it->id == id ? &*it : nullptr;
}

const TrackedKind* Snapshot::kind(std::string_view n) const {
  auto it = std::lower_bound(kinds.begin(), kinds.end(), n,
                             [](const TrackedKind& k, std::string_view v) { return k.name < v; });
  return it != kinds.end() && it->name == n ? &*it : nullptr;
}

const ObjectClass* Snapshot::objectClass(std::string_view n) const {
  auto it = std::lower_bound(classes.begin(), classes.end(), n,
                             [](const ObjectClass& k, std::string_view v) { return k.name < v; });
  return it != classes.end() && it->name == n ? &*it : nullptr;
}

const char* sourceName(SourceKind k) {
  switch (k) {
    case SourceKind::kSnapshot:
      return "snapshot";
    case SourceKind::kHeapProfile:
      return "heap-profile";
    case SourceKind::kV8HeapSnapshot:
      return "v8-heapsnapshot";
  }
  return "?";
}

void finishHeap(Heap& heap) {
  std::sort(heap.sites.begin(), heap.sites.end(), [](const HeapSite& a, const HeapSite& b) {
    return a.inuse_bytes != b.inuse_bytes ? a.inuse_bytes > b.inuse_bytes : a.stack < b.stack;
  });
  heap.inuse_bytes = 0;
  heap.alloc_bytes = 0;
  for (const HeapSite& s : heap.sites) {
    heap.inuse_bytes += s.inuse_bytes;
    heap.alloc_bytes += s.alloc_bytes;
  }
}

void markMainModule(Heap& heap, std::string_view path, const std::string& build_id) {
  auto it = std::find_if(heap.modules.begin(), heap.modules.end(),
                         [&](const HeapModule& m) { return m.path == path; });
  if (it == heap.modules.end()) return;
  if (it->build_id.empty()) it->build_id = build_id;
  std::rotate(heap.modules.begin(), it, it + 1);
}

}  // namespace leakscope::analysis
