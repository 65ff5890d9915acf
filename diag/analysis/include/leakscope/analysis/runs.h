// A series split into runs of the process, each judged on its own.
//
// The snapshots a daemon leaves in its directory span restarts: an OOM kill
// under `Restart=on-failure` starts a new process whose objects, ids and
// memory start again from nothing. Judged as one series, a leak that grew in
// every run looks like growth that was freed (the drop at the restart) or
// levelled off. So the series is cut where the process changes (another pid,
// or the same pid with another start time) and each run goes to its own
// TrendBuilder; a run of fewer than three inputs gets the comparison of its
// first and last instead, as `diff` would give. The verdict of the whole is
// the union of the runs' suspects and one sentence on what the restarts mean.
//
// Feeding is one snapshot at a time in time order; a run is judged as soon
// as the next one starts, so memory holds one run's series (and, while a run
// is short, its first and latest snapshot). Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/model.h"

namespace leakscope::analysis {

// Which process a snapshot came from. Raw heap profiles (pid 0) say nothing,
// and belong to the run they follow. V8 heap snapshots have the pid of a
// Node.js file name (else 0), and a run also ends where their ids go
// backwards.
struct RunId {
  std::int64_t pid = 0;
  double start_time_unix = 0;  // 0: not recorded (older snapshots)
};

// How a run was judged.
enum class RunMethod {
  kTrend,   // three or more inputs: TrendBuilder's verdicts
  kDiff,    // two: the comparison of its first and last (a trend needs three)
  kSingle,  // one: nothing to compare
};
const char* runMethodName(RunMethod m);

struct RunVerdict {
  RunId id;
  std::size_t first_input = 0;  // index of its first input in the series
  std::size_t inputs = 0;
  RunMethod method = RunMethod::kSingle;
  // The run's own trend (its points; with kTrend its verdicts). Kept for
  // every method: the report charts its groups.
  TrendResult trend;
  std::optional<Comparison> comparison;  // kDiff
  // kTrend: the steady groups; kDiff: what grew between first and last.
  std::vector<Suspect> suspects;
  std::string reason;  // one line: how it was judged and what grew
  std::int64_t last_rss_bytes = 0;
  // Last RSS over the memory limit, when both are known.
  std::optional<double> last_rss_of_limit;
};

struct RunsResult {
  std::vector<SeriesPoint> points;  // every input, in time order
  std::vector<RunVerdict> runs;
  // Every run's suspects, in run order. For one run: that run's suspects.
  std::vector<Suspect> suspects;
  // What the runs say together, e.g. "3 runs; each grew example.connection
  // steadily; ..." (also written for one run; the text view shows it only
  // when there are several).
  std::string summary;
  bool single() const { return runs.size() == 1; }
};

class RunsBuilder {
 public:
  RunsBuilder(const SymbolTable& symbols, TrendOptions options);
  void add(const Snapshot& s);
  // The same; a first input the run keeps (for a run that stays short) is
  // moved rather than copied.
  void add(Snapshot&& s);
  RunsResult finish();

 private:
  // The run being fed.
  struct Open {
    RunVerdict verdict;
    TrendBuilder trend;
    // While the run is short: its first input, then the comparison of its
    // first two (dropped when a third comes).
    std::optional<Snapshot> first;
    // A V8 first input's objects, packed while the next input loads: per
    // class (in `first->classes` order) id << 32 | self size (capped at
    // 4 GiB), 8 bytes an object instead of 32.
    std::vector<std::vector<std::uint64_t>> packed;
    std::optional<Comparison> comparison;
  };
  bool continues(const RunId& id) const;
  // add() with `owned` the same snapshot when the caller gave it away.
  void add(const Snapshot& s, Snapshot* owned);
  void close();

  const SymbolTable& symbols_;
  TrendOptions options_;
  std::optional<Open> open_;
  RunsResult result_;
  std::size_t inputs_ = 0;
  std::uint32_t last_v8_max_id_ = 0;  // of the previous input, when a V8 heap snapshot
};

// A trend already made, as the result of a series of one run judged by
// trend (whatever its length).
RunsResult singleRun(TrendResult trend);

// The sentence of RunsResult::summary, from the judged runs. `limit` is the
// memory limit in bytes, when known.
std::string summariseRuns(const std::vector<RunVerdict>& runs, std::optional<double> limit);

}  // namespace leakscope::analysis
