// The verdict study of issue #13: series of one sampled heap site whose truth
// is known (a leak, a spike, a cache, a slow leak in a noisy site, a flat
// site), sampled as tcmalloc's heap_v2 sampling does, run through
// TrendBuilder, counted as a confusion matrix (truth × verdict).
//
// The sampling is simulated per allocation, not per snapshot: an object is
// sampled (or not) once, when allocated, and stays in every profile until it
// is freed — so a leak's samples accumulate and a cache's turn over with its
// entries, as in a real profile. Deterministic for a given seed (with the same
// standard library). Only uses the public analysis API, so it runs against
// the rules of any revision.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "leakscope/analysis/analysis.h"

namespace leakscope::study {

enum class Truth { kLeak, kSpike, kCache, kNoisyLeak, kFlat };
inline constexpr Truth kTruths[] = {Truth::kLeak, Truth::kSpike, Truth::kCache, Truth::kNoisyLeak,
                                    Truth::kFlat};
const char* truthName(Truth t);

// The heap_v2 sampling of one series: every allocation of `object_bytes` is
// sampled with probability 1 - exp(-object_bytes / period).
struct Sampling {
  std::int64_t period = 512 * 1024;
  double object_bytes = 64 * 1024;
};

// One generated series: its truth and the snapshots (one heap site each).
struct Case {
  Truth truth = Truth::kFlat;
  std::string description;  // the parameters drawn, for a failing test's message
  std::vector<analysis::Snapshot> snapshots;
};

// `per_truth` series of each truth, from `seed`.
std::vector<Case> generate(std::uint64_t seed, int per_truth, analysis::SymbolTable& symbols);

// The verdicts of one case: the site's group (there is one).
analysis::TrendGroup judge(const Case& c, const analysis::SymbolTable& symbols);

// truth name → verdict name → count.
using Matrix = std::map<std::string, std::map<std::string, int>>;
Matrix confusion(const std::vector<Case>& cases, const analysis::SymbolTable& symbols);
// Rows in kTruths order, columns for every verdict name seen.
std::string formatMatrix(const Matrix& m);

}  // namespace leakscope::study
