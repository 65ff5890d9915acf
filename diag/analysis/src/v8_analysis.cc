// The parts of diff's and trend's analyses that only V8 heap snapshots
// have: per-class series with retained sizes, survivors by V8 id, and
// retaining paths (analysis.h).
#include <algorithm>
#include <cstdio>

#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/units.h"
#include "v8_graph.h"
#include "v8_model.h"

namespace leakscope::analysis {
namespace {

// Retaining paths are computed for at most this many objects of a class:
// the clusters' shares are then of a sample (the first ids, the oldest).
constexpr std::size_t kMaxPathObjects = 100000;

std::vector<RetainerPath> retainersIn(const V8Graph& kept, const std::string& name,
                                      const std::vector<std::uint64_t>& ids,
                                      std::size_t max_paths) {
  const v8::Graph& g = kept.graph;
  std::vector<std::uint32_t> nodes;
  if (ids.empty()) {
    for (std::uint32_t n = 0; n < g.nodeCount() && nodes.size() < kMaxPathObjects; ++n) {
      if (g.self_size[n] > 0 && v8::className(g, n) == name) nodes.push_back(n);
    }
  } else {
    nodes = kept.nodes(ids);
    if (nodes.size() > kMaxPathObjects) nodes.resize(kMaxPathObjects);
  }
  std::vector<RetainerPath> out;
  for (const v8::PathCluster& c : v8::clusterPaths(g, kept.distances, nodes, max_paths)) {
    out.push_back({c.shape, c.count});
  }
  return out;
}

// A candidate's field: V8's ids fit (the reader checks), sizes are capped.
std::uint32_t narrow(std::uint64_t v) {
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(v, 0xffffffffu));
}
std::uint32_t narrow(std::int64_t v) {
  return narrow(static_cast<std::uint64_t>(std::max<std::int64_t>(v, 0)));
}

}  // namespace

std::vector<RetainerPath> classRetainers(const Snapshot& s, const std::string& name,
                                         const std::vector<std::uint64_t>& ids,
                                         std::size_t max_paths) {
  if (!s.v8.graph) return {};
  return retainersIn(*s.v8.graph, name, ids, max_paths);
}

double classMinBytes(const Thresholds& t, double heap_bytes) {
  return std::max(t.min_class_bytes, t.min_class_heap_fraction * heap_bytes);
}

double addedRetained(const ObjectClass& k, std::uint32_t after_id) {
  double sum = 0;
  auto it = std::upper_bound(k.objects.begin(), k.objects.end(), after_id,
                             [](std::uint64_t v, const TrackedObject& o) { return v < o.id; });
  for (auto i = static_cast<std::size_t>(it - k.objects.begin()); i < k.objects.size(); ++i) {
    if (i < k.retained_of.size()) sum += static_cast<double>(k.retained_of[i]);
  }
  return sum;
}

double addedRetained(const ObjectClass& base, const ObjectClass& target) {
  double sum = 0;
  std::size_t i = 0;
  for (std::size_t j = 0; j < target.objects.size(); ++j) {
    const std::uint64_t id = target.objects[j].id;
    while (i < base.objects.size() && base.objects[i].id < id) ++i;
    const bool known = i < base.objects.size() && base.objects[i].id == id;
    if (!known && j < target.retained_of.size()) sum += static_cast<double>(target.retained_of[j]);
  }
  return sum;
}

void TrendBuilder::tooSmallToLeak(TrendGroup& g, const Thresholds& t, double heap_bytes) {
  if (g.verdict != Verdict::kSteady || g.retained.size() < 2) return;
  const double held = g.added_retained_bytes;
  const double floor = classMinBytes(t, heap_bytes);
  if (held >= floor) return;
  g.verdict = Verdict::kFlat;
  char share[32];
  std::snprintf(share, sizeof share, "%g%%", 100 * t.min_class_heap_fraction);
  g.reason = "grew by " + formatCount(g.counts.back() - g.counts.front()) +
             " objects, but those added since the first input hold only " + formatBytes(held) +
             " (under " + formatBytes(floor) + ": " + share + " of the heap, at least " +
             formatBytes(t.min_class_bytes) + "): too small to be a leak";
}

void TrendBuilder::addClasses(const Snapshot& s) {
  if (s.source == SourceKind::kV8HeapSnapshot && !first_max_id_) first_max_id_ = s.v8.max_js_id;
  for (const ObjectClass& k : s.classes) {
    Series& se = series(Group::kClass, k.name, std::nullopt);
    se.counts.push_back(static_cast<double>(k.objects.size()));
    se.bytes.push_back(static_cast<double>(k.live_bytes));
    se.retained.resize(points_.size() - 1, 0.0);
    se.retained.push_back(static_cast<double>(k.retained_bytes));
    se.engine = se.engine || k.engine;
    se.added_retained = first_max_id_ ? addedRetained(k, *first_max_id_) : 0;
  }
  if (s.source == SourceKind::kV8HeapSnapshot) last_graph_ = s.v8.graph;
}

// Candidates are kept sorted by id, as a class's objects are, so that each
// snapshot's intersection is one merge.
void TrendBuilder::updateClassSurvivors(const Snapshot& s, bool first) {
  if (first) {
    for (const ObjectClass& k : s.classes) {
      auto& c = class_survivors_[k.name];
      c.reserve(k.objects.size());
      for (const TrackedObject& o : k.objects) c.push_back({narrow(o.id), narrow(o.bytes)});
    }
    return;
  }
  for (auto& [name, cands] : class_survivors_) {
    const ObjectClass* k = s.objectClass(name);
    if (k == nullptr) {
      cands.clear();
      cands.shrink_to_fit();
      continue;
    }
    std::size_t out = 0, j = 0;
    for (const ClassCandidate& c : cands) {
      while (j < k->objects.size() && k->objects[j].id < c.id) ++j;
      if (j < k->objects.size() && k->objects[j].id == c.id) {
        cands[out++] = {c.id, narrow(k->objects[j].bytes)};
      }
    }
    cands.resize(out);
    cands.shrink_to_fit();
  }
}

void TrendBuilder::addClassSurvivors(TrendGroup& g) const {
  if (g.group != Group::kClass || !survivors_valid_) return;
  auto it = class_survivors_.find(g.name);
  if (it == class_survivors_.end()) return;
  const std::vector<ClassCandidate>& cands = it->second;
  g.survivor_count = cands.size();
  for (std::size_t i = 0; i < cands.size() && i < options_.max_survivors; ++i) {
    Survivor sv;
    sv.id = cands[i].id;
    sv.bytes = cands[i].bytes;
    g.survivors.push_back(sv);
  }
  if (g.verdict != Verdict::kSteady) return;
  if (g.survivor_count > 0) {
    g.reason += "; " + std::to_string(g.survivor_count) + " object(s) alive in every snapshot";
  }
  if (!last_graph_) return;
  std::vector<std::uint64_t> ids;
  ids.reserve(std::min(cands.size(), kMaxPathObjects));
  for (std::size_t i = 0; i < cands.size() && i < kMaxPathObjects; ++i) ids.push_back(cands[i].id);
  g.retainers = retainersIn(*last_graph_, g.name, ids, options_.max_retainer_paths);
}

}  // namespace leakscope::analysis
