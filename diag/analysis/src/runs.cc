#include "leakscope/analysis/runs.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "leakscope/analysis/units.h"

namespace leakscope::analysis {
namespace {

// Start times are written with centisecond resolution from the same clock
// ticks in every snapshot of a process; a second apart is another process.
constexpr double kSameStartSeconds = 1.0;
// RSS at or above this share of the memory limit in a run's last snapshot
// counts as "near the limit": snapshots are taken at intervals, so the last
// one before an OOM kill is rarely at the limit itself.
constexpr double kNearLimit = 0.8;
// Suspect names a summary spells out before "and N more".
constexpr std::size_t kNamesShown = 3;

RunId runIdOf(const Snapshot& s) { return {s.process.pid, s.process.start_time_unix}; }

// "a, b, c and 2 more"
std::string nameList(const std::vector<std::string>& names) {
  std::string out;
  const std::size_t shown = std::min(names.size(), kNamesShown);
  for (std::size_t i = 0; i < shown; ++i) {
    if (i > 0) out += i + 1 == shown && names.size() == shown ? " and " : ", ";
    out += names[i];
  }
  if (names.size() > shown) out += " and " + std::to_string(names.size() - shown) + " more";
  return out;
}

std::vector<std::string> suspectNames(const RunVerdict& r) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const Suspect& s : r.suspects) {
    if (seen.insert(s.name).second) names.push_back(s.name);
  }
  return names;
}

std::string percent(double fraction) {
  return std::to_string(static_cast<long long>(std::lround(fraction * 100)));
}

std::string runList(const std::vector<std::size_t>& numbers) {
  std::string out;
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(numbers[i]);
  }
  return out;
}

// What grew: "each grew A and B steadily", "2 of 3 runs grew (run 1: A;
// run 3: A, B)", "no run grew steadily".
std::string growthClause(const std::vector<RunVerdict>& runs) {
  std::vector<const RunVerdict*> growing;
  bool all_trend = true;
  for (const RunVerdict& r : runs) {
    if (r.suspects.empty()) continue;
    growing.push_back(&r);
    all_trend = all_trend && r.method == RunMethod::kTrend;
  }
  const std::string how = all_trend ? " steadily" : "";
  if (growing.empty()) return runs.size() == 1 ? "no steady growth" : "no run grew steadily";
  if (runs.size() == 1) return "grew " + nameList(suspectNames(runs[0])) + how;
  // Names every run grew, in the first run's order (most growth first).
  std::vector<std::string> common = suspectNames(*growing.front());
  for (const RunVerdict* r : growing) {
    const std::vector<std::string> names = suspectNames(*r);
    std::erase_if(common, [&](const std::string& n) {
      return std::find(names.begin(), names.end(), n) == names.end();
    });
  }
  if (growing.size() == runs.size() && !common.empty()) {
    return "each grew " + nameList(common) + how;
  }
  std::string out = std::to_string(growing.size()) + " of " + std::to_string(runs.size()) +
                    " runs grew" + how + " (";
  for (std::size_t i = 0; i < growing.size(); ++i) {
    const auto number = static_cast<std::size_t>(growing[i] - runs.data()) + 1;
    out += (i ? "; run " : "run ") + std::to_string(number) + ": " +
           nameList(suspectNames(*growing[i]));
  }
  return out + ")";
}

// What the runs that were followed by a restart say about the memory limit.
std::string restartClause(const std::vector<RunVerdict>& runs, std::optional<double> limit) {
  const std::vector<RunVerdict> ended(runs.begin(), runs.end() - 1);
  const std::string kills = ended.size() > 1 ? "repeated OOM kills" : "an OOM kill";
  if (!limit) {
    std::string rss;
    for (std::size_t i = 0; i < ended.size() && i < 4; ++i) {
      rss += (i ? ", " : "") + formatBytes(static_cast<double>(ended[i].last_rss_bytes));
    }
    if (ended.size() > 4) rss += ", ...";
    return std::string(ended.size() > 1 ? "last RSS before each restart "
                                        : "last RSS before the restart ") +
           rss + "; no memory limit known (--memory-limit SIZE) to tell " + kills +
           " from other exits";
  }
  double lo = 1e300, hi = 0;
  std::vector<std::size_t> near;
  for (std::size_t i = 0; i < ended.size(); ++i) {
    const double f = ended[i].last_rss_of_limit.value_or(0);
    lo = std::min(lo, f);
    hi = std::max(hi, f);
    if (f >= kNearLimit) near.push_back(i + 1);
  }
  const std::string range =
      "last RSS " + (percent(lo) == percent(hi) ? percent(hi) : percent(lo) + "–" + percent(hi)) +
      " % of limit";
  if (near.size() == ended.size()) {
    return (ended.size() > 1 ? "each restart came near the memory limit ("
                             : "the restart came near the memory limit (") +
           range + ") — consistent with " + kills;
  }
  if (!near.empty()) {
    return "run(s) " + runList(near) + " ended near the memory limit (" + range +
           ") — consistent with an OOM kill there, not before the other restarts";
  }
  return "RSS was far from the memory limit before each restart (" + range +
         "): the snapshots do not point to " + kills;
}

std::string describeRun(const RunVerdict& r) {
  const std::string names = nameList(suspectNames(r));
  switch (r.method) {
    case RunMethod::kTrend:
      return r.suspects.empty() ? "no steady growth" : "steady growth: " + names;
    case RunMethod::kDiff:
      return std::string("two inputs (a trend needs three); compared first to last: ") +
             (r.suspects.empty() ? "nothing grew" : names + " grew");
    case RunMethod::kSingle:
      break;
  }
  return "one input: nothing to compare";
}

}  // namespace

const char* runMethodName(RunMethod m) {
  switch (m) {
    case RunMethod::kTrend:
      return "trend";
    case RunMethod::kDiff:
      return "diff";
    case RunMethod::kSingle:
      break;
  }
  return "single";
}

namespace {

// A V8 base of a run is kept whole only in ids and sizes: the comparison
// weighs what the target's new objects hold, never the base's (no
// retained_of, no graph), and 8 bytes an object is a quarter of what its
// objects take while the next input, the load's peak, is read.
std::vector<std::vector<std::uint64_t>> packObjects(Snapshot& s) {
  std::vector<std::vector<std::uint64_t>> packed;
  if (s.source != SourceKind::kV8HeapSnapshot) return packed;
  s.v8.graph.reset();
  for (ObjectClass& k : s.classes) {
    std::vector<std::uint64_t> p;
    p.reserve(k.objects.size());
    for (const TrackedObject& o : k.objects) {
      const auto bytes =
          static_cast<std::uint64_t>(std::clamp<std::int64_t>(o.bytes, 0, 0xffffffff));
      p.push_back(o.id << 32 | bytes);
    }
    packed.push_back(std::move(p));
    // Swapped with empty vectors: assigning {} would keep their capacity.
    std::vector<TrackedObject>().swap(k.objects);
    std::vector<std::uint64_t>().swap(k.retained_of);
  }
  return packed;
}

void unpackObjects(Snapshot& s, std::vector<std::vector<std::uint64_t>>&& packed) {
  for (std::size_t c = 0; c < packed.size() && c < s.classes.size(); ++c) {
    std::vector<TrackedObject>& objects = s.classes[c].objects;
    objects.resize(packed[c].size());
    for (std::size_t i = 0; i < packed[c].size(); ++i) {
      objects[i].id = packed[c][i] >> 32;
      objects[i].bytes = static_cast<std::int64_t>(packed[c][i] & 0xffffffff);
    }
    std::vector<std::uint64_t>().swap(packed[c]);
  }
}

}  // namespace

RunsBuilder::RunsBuilder(const SymbolTable& symbols, TrendOptions options)
    : symbols_(symbols), options_(std::move(options)) {}

// Unknown ids (raw profiles, pid 0) continue the run they follow; a start
// time is compared only when both snapshots recorded one.
bool RunsBuilder::continues(const RunId& id) const {
  const RunId& cur = open_->verdict.id;
  if (id.pid == 0 || cur.pid == 0) return true;
  if (id.pid != cur.pid) return false;
  return id.start_time_unix == 0 || cur.start_time_unix == 0 ||
         std::fabs(id.start_time_unix - cur.start_time_unix) < kSameStartSeconds;
}

void RunsBuilder::add(const Snapshot& s) { add(s, nullptr); }

void RunsBuilder::add(Snapshot&& s) { add(s, &s); }

void RunsBuilder::add(const Snapshot& s, Snapshot* owned) {
  const RunId id = runIdOf(s);
  // V8 heap snapshots name no process inside; their ids only grow within
  // one, so ids that went backwards start another run.
  const bool v8 = s.source == SourceKind::kV8HeapSnapshot;
  const bool ids_restarted = v8 && s.v8.max_js_id < last_v8_max_id_;
  last_v8_max_id_ = v8 ? s.v8.max_js_id : 0;
  if (open_ && (ids_restarted || !continues(id))) close();
  if (!open_) {
    open_.emplace(
        Open{RunVerdict{}, TrendBuilder(symbols_, options_), std::nullopt, {}, std::nullopt});
    open_->verdict.first_input = inputs_;
  }
  RunVerdict& v = open_->verdict;
  if (v.id.pid == 0) v.id = id;
  ++v.inputs;
  ++inputs_;
  open_->trend.add(s);
  // A comparison is only wanted of a run that stays short: made as soon as
  // it has two inputs, so no more than its first is ever kept whole.
  if (v.inputs == 1) {
    // (Not a conditional expression: its const result would be copied.)
    if (owned != nullptr) {
      open_->first = std::move(*owned);
    } else {
      open_->first = s;
    }
    open_->packed = packObjects(*open_->first);
  } else if (v.inputs == 2) {
    unpackObjects(*open_->first, std::move(open_->packed));
    open_->comparison = compare(*open_->first, s, symbols_, options_.thresholds);
    open_->first.reset();
  } else {
    open_->comparison.reset();
  }
}

void RunsBuilder::close() {
  RunVerdict v = std::move(open_->verdict);
  v.trend = open_->trend.finish();
  if (v.inputs >= 3) {
    v.method = RunMethod::kTrend;
    v.suspects = v.trend.suspects;
  } else if (v.inputs == 2) {
    v.method = RunMethod::kDiff;
    v.comparison = std::move(open_->comparison);
    v.suspects = v.comparison->suspects;
  }
  v.last_rss_bytes = v.trend.points.back().rss_bytes;
  // The limit the run's own trend used: --memory-limit, else the one its
  // snapshots recorded.
  const std::optional<double> limit =
      v.trend.memory_limit ? std::optional<double>(v.trend.memory_limit->bytes) : std::nullopt;
  if (limit && *limit > 0 && v.last_rss_bytes > 0) {
    v.last_rss_of_limit = static_cast<double>(v.last_rss_bytes) / *limit;
  }
  v.reason = describeRun(v);
  open_.reset();
  result_.points.insert(result_.points.end(), v.trend.points.begin(), v.trend.points.end());
  result_.suspects.insert(result_.suspects.end(), v.suspects.begin(), v.suspects.end());
  result_.runs.push_back(std::move(v));
}

RunsResult RunsBuilder::finish() {
  if (open_) close();
  RunsResult r = std::move(result_);
  result_ = {};
  inputs_ = 0;
  if (!r.runs.empty()) {
    const auto& last = r.runs.back().trend.memory_limit;
    r.summary = summariseRuns(r.runs, last ? std::optional<double>(last->bytes) : std::nullopt);
  }
  return r;
}

RunsResult singleRun(TrendResult trend) {
  RunVerdict v;
  v.inputs = trend.points.size();
  v.method = RunMethod::kTrend;
  if (!trend.points.empty()) {
    v.id.pid = trend.points.front().pid;
    v.last_rss_bytes = trend.points.back().rss_bytes;
  }
  v.suspects = trend.suspects;
  v.trend = std::move(trend);
  v.reason = describeRun(v);
  RunsResult r;
  r.points = v.trend.points;
  r.suspects = v.suspects;
  r.runs.push_back(std::move(v));
  r.summary = summariseRuns(r.runs, std::nullopt);
  return r;
}

std::string summariseRuns(const std::vector<RunVerdict>& runs, std::optional<double> limit) {
  if (runs.empty()) return {};
  if (runs.size() == 1) {
    return runs[0].method == RunMethod::kTrend ? "1 run; " + growthClause(runs)
                                               : "1 run; " + describeRun(runs[0]);
  }
  return std::to_string(runs.size()) + " runs; " + growthClause(runs) + "; " +
         restartClause(runs, limit);
}

}  // namespace leakscope::analysis
