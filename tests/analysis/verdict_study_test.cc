// A fixed-seed sample of the verdict study (verdict_study.h): the
// properties the verdict rules promise an on-call engineer, over series of a
// sampled heap site whose truth is known.
#include <gtest/gtest.h>

#include "verdict_study.h"

namespace la = leakscope::analysis;
namespace ls = leakscope::study;

namespace {

struct Judged {
  ls::Case c;
  la::TrendGroup g;
};

const std::vector<Judged>& sample() {
  static const std::vector<Judged> judged = [] {
    static la::SymbolTable symbols;
    std::vector<Judged> out;
    for (auto& c : ls::generate(20240613, 150, symbols)) {
      la::TrendGroup g = ls::judge(c, symbols);
      out.push_back({std::move(c), std::move(g)});
    }
    return out;
  }();
  return judged;
}

bool isLeak(ls::Truth t) { return t == ls::Truth::kLeak || t == ls::Truth::kNoisyLeak; }

}  // namespace

// The false all-clear of issue #13: a leak must never be reassuring.
TEST(VerdictStudy, NoLeakIsJudgedBoundedTransientOrFlat) {
  for (const Judged& j : sample()) {
    if (!isLeak(j.c.truth)) continue;
    EXPECT_NE(j.g.verdict, la::Verdict::kBounded) << j.c.description << ": " << j.g.reason;
    EXPECT_NE(j.g.verdict, la::Verdict::kTransient) << j.c.description << ": " << j.g.reason;
    EXPECT_NE(j.g.verdict, la::Verdict::kFlat) << j.c.description << ": " << j.g.reason;
  }
}

TEST(VerdictStudy, NoSpikeIsJudgedSteady) {
  for (const Judged& j : sample()) {
    if (j.c.truth != ls::Truth::kSpike) continue;
    EXPECT_NE(j.g.verdict, la::Verdict::kSteady) << j.c.description << ": " << j.g.reason;
  }
}

// Uncertain only where the error bars overlap: the claim the verdict would
// have made is within its 2-sigma sampling error.
TEST(VerdictStudy, UncertainOnlyWhereTheErrorBarsOverlap) {
  std::size_t uncertain = 0;
  for (const Judged& j : sample()) {
    if (j.g.verdict != la::Verdict::kUncertain) continue;
    ++uncertain;
    ASSERT_TRUE(j.g.sampling.has_value()) << j.c.description;
    EXPECT_LE(j.g.sampling->margin_bytes, j.g.sampling->error_bytes)
        << j.c.description << ": " << j.g.reason;
  }
  EXPECT_GT(uncertain, 0u);  // the sample does exercise the verdict
}

// Half the clear leaks are confirmed steady (the rest are uncertain, above),
// and a site that does not leak raises the alarm about as often as 2-sigma
// error bars allow (the study's full figures are in docs/cli.md).
TEST(VerdictStudy, ClearLeaksAreSteadyAndOtherSitesRarelyAre) {
  std::map<ls::Truth, std::pair<std::size_t, std::size_t>> steady;  // truth → (steady, all)
  for (const Judged& j : sample()) {
    auto& [hits, all] = steady[j.c.truth];
    ++all;
    hits += j.g.verdict == la::Verdict::kSteady;
  }
  EXPECT_GE(steady[ls::Truth::kLeak].first * 5, steady[ls::Truth::kLeak].second * 2);
  for (ls::Truth t : {ls::Truth::kCache, ls::Truth::kFlat}) {
    EXPECT_LE(steady[t].first * 20, steady[t].second) << ls::truthName(t);  // 5 % at most
  }
}
