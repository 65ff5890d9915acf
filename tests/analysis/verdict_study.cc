#include "verdict_study.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>

namespace leakscope::study {
namespace la = leakscope::analysis;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;
constexpr std::int64_t kInterval = 600'000'000'000;  // 10 minutes

// A part of the site's live objects (the base, a leak, a spike, a cache) and
// how many of them carry a sample.
struct Population {
  std::int64_t live = 0;
  std::int64_t sampled = 0;
};

// The allocator's side of the simulation: allocations are sampled when made,
// frees drop whichever objects they free.
class Heap {
 public:
  Heap(std::mt19937_64& rng, const Sampling& s)
      : rng_(rng), s_(s), p_(-std::expm1(-s.object_bytes / static_cast<double>(s.period))) {}

  std::int64_t objects(double bytes) const {
    return static_cast<std::int64_t>(std::llround(bytes / s_.object_bytes));
  }
  void allocate(Population& pop, std::int64_t n) {
    if (n <= 0) return;
    pop.live += n;
    pop.sampled += std::binomial_distribution<std::int64_t>(n, p_)(rng_);
  }
  // Frees `fraction` of the population's objects, chosen at random.
  void free(Population& pop, double fraction) {
    const std::int64_t n = std::llround(static_cast<double>(pop.live) * fraction);
    if (n <= 0 || pop.live == 0) return;
    // Which of them were sampled: each sampled object is freed with the
    // same chance (binomial; hypergeometric would be a little less noisy).
    const double f = static_cast<double>(n) / static_cast<double>(pop.live);
    pop.sampled -= std::binomial_distribution<std::int64_t>(pop.sampled, std::min(1.0, f))(rng_);
    pop.live -= std::min(n, pop.live);
  }
  // Entries replaced: as many freed as allocated.
  void turnOver(Population& pop, double fraction) {
    const std::int64_t before = pop.live;
    free(pop, fraction);
    allocate(pop, before - pop.live);
  }
  // The site as a heap_v2 profile shows it, unsampled (1 / p per sample).
  la::HeapSite site(la::StackId stack, std::int64_t sampled) const {
    const double objects = static_cast<double>(sampled) / p_;
    return {stack, objects, objects * s_.object_bytes, objects, objects * s_.object_bytes};
  }

 private:
  std::mt19937_64& rng_;
  Sampling s_;
  double p_;
};

double uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

// One series' truth, drawn: what lives at the site at each snapshot.
struct Plan {
  Truth truth = Truth::kFlat;
  std::size_t n = 8;
  Sampling sampling;
  double base = 0;      // bytes always live
  double turnover = 0;  // fraction of the base (and a full cache) replaced per interval
  double leak = 0;      // bytes leaked per interval
  double spike = 0;     // bytes held at snapshot spike_at only
  std::size_t spike_at = 0;
  double cache = 0;      // capacity
  std::size_t fill = 1;  // intervals the cache takes to fill

  std::string describe() const {
    char b[256];
    std::snprintf(b, sizeof b,
                  "%s n=%zu object=%.0fKiB base=%.1fMiB turnover=%.2f leak=%.2fMiB/interval "
                  "spike=%.1fMiB@%zu cache=%.1fMiB/%zu",
                  truthName(truth), n, sampling.object_bytes / 1024, base / kMiB, turnover,
                  leak / kMiB, spike / kMiB, spike_at, cache / kMiB, fill);
    return b;
  }
};

Plan drawPlan(std::mt19937_64& rng, Truth t) {
  static const std::size_t kLengths[] = {5, 8, 12};
  static const double kObjects[] = {4096, 16384, 65536, 262144};
  Plan p;
  p.truth = t;
  p.n = kLengths[std::uniform_int_distribution<int>(0, 2)(rng)];
  p.sampling.object_bytes = kObjects[std::uniform_int_distribution<int>(0, 3)(rng)];
  p.base = uniform(rng, 0, 20) * kMiB;
  p.turnover = uniform(rng, 0, 1);
  const double intervals = static_cast<double>(p.n - 1);
  switch (t) {
    case Truth::kLeak:
      p.leak = uniform(rng, 0.5, 4) * kMiB;
      break;
    case Truth::kNoisyLeak:  // 1.5-4 MiB over the whole series, in a big churning site
      p.base = uniform(rng, 5, 50) * kMiB;
      p.turnover = uniform(rng, 0.5, 1);
      p.leak = uniform(rng, 1.5, 4) * kMiB / intervals;
      break;
    case Truth::kSpike:
      p.spike = uniform(rng, 3, 30) * kMiB;
      p.spike_at = static_cast<std::size_t>(
          std::uniform_int_distribution<int>(1, static_cast<int>(p.n) - 2)(rng));
      break;
    case Truth::kCache:  // full by the middle of the series
      p.base = uniform(rng, 0, 5) * kMiB;
      p.cache = uniform(rng, 2, 20) * kMiB;
      p.fill = static_cast<std::size_t>(std::uniform_int_distribution<int>(
          1, std::max(1, static_cast<int>((p.n - 1) / 2) - 1))(rng));
      break;
    case Truth::kFlat:
      p.base = uniform(rng, 1, 50) * kMiB;
      break;
  }
  return p;
}

Case simulate(std::mt19937_64& rng, const Plan& plan, la::SymbolTable& symbols) {
  Case c;
  c.truth = plan.truth;
  c.description = plan.describe();
  la::FrameInfo f;
  f.function = "study::site";
  const la::StackId stack = symbols.internStack({symbols.internFrame(f)});
  Heap heap(rng, plan.sampling);
  Population base, leak, spike, cache;
  heap.allocate(base, heap.objects(plan.base));
  for (std::size_t i = 0; i < plan.n; ++i) {
    if (i > 0) {
      heap.turnOver(base, plan.turnover);
      heap.allocate(leak, heap.objects(plan.leak));
      if (i <= plan.fill) {
        heap.allocate(cache, heap.objects(plan.cache / static_cast<double>(plan.fill)));
      } else {
        heap.turnOver(cache, plan.turnover);
      }
    }
    if (plan.spike > 0 && i == plan.spike_at) heap.allocate(spike, heap.objects(plan.spike));
    if (plan.spike > 0 && i == plan.spike_at + 1) heap.free(spike, 1.0);
    la::Snapshot s;
    s.path = "s" + std::to_string(i);
    s.sequence = static_cast<std::int64_t>(i);
    s.taken_unix_ns = static_cast<std::int64_t>(i) * kInterval;
    s.process.pid = 1;
    s.heap.available = true;
    s.heap.mode = "sampled";
    s.heap.format = "heap_v2";
    s.heap.sample_period = plan.sampling.period;
    const std::int64_t sampled = base.sampled + leak.sampled + spike.sampled + cache.sampled;
    // A profile lists the stacks it has samples of.
    if (sampled > 0) s.heap.sites.push_back(heap.site(stack, sampled));
    s.heap.inuse_bytes = s.heap.sites.empty() ? 0 : s.heap.sites[0].inuse_bytes;
    c.snapshots.push_back(std::move(s));
  }
  return c;
}

}  // namespace

const char* truthName(Truth t) {
  switch (t) {
    case Truth::kLeak:
      return "leak";
    case Truth::kSpike:
      return "spike";
    case Truth::kCache:
      return "cache";
    case Truth::kNoisyLeak:
      return "noisy leak";
    case Truth::kFlat:
      return "flat";
  }
  return "?";
}

std::vector<Case> generate(std::uint64_t seed, int per_truth, la::SymbolTable& symbols) {
  std::mt19937_64 rng(seed);
  std::vector<Case> cases;
  for (Truth t : kTruths) {
    for (int i = 0; i < per_truth; ++i) cases.push_back(simulate(rng, drawPlan(rng, t), symbols));
  }
  return cases;
}

la::TrendGroup judge(const Case& c, const la::SymbolTable& symbols) {
  la::TrendBuilder b(symbols, {});
  for (const auto& s : c.snapshots) b.add(s);
  const la::TrendResult r = b.finish();
  for (const auto& g : r.groups) {
    if (g.group == la::Group::kHeap) return g;
  }
  return {};  // never sampled: nothing to see, flat
}

Matrix confusion(const std::vector<Case>& cases, const la::SymbolTable& symbols) {
  Matrix m;
  for (const Case& c : cases) ++m[truthName(c.truth)][la::verdictName(judge(c, symbols).verdict)];
  return m;
}

std::string formatMatrix(const Matrix& m) {
  static const char* kVerdicts[] = {"steady",    "uncertain", "recent",
                                    "transient", "bounded",   "flat"};
  std::ostringstream out;
  char cell[64];
  std::snprintf(cell, sizeof cell, "%-12s", "truth");
  out << cell;
  for (const char* v : kVerdicts) {
    std::snprintf(cell, sizeof cell, "%10s", v);
    out << cell;
  }
  out << "\n";
  for (Truth t : kTruths) {
    auto row = m.find(truthName(t));
    std::snprintf(cell, sizeof cell, "%-12s", truthName(t));
    out << cell;
    for (const char* v : kVerdicts) {
      int count = 0;
      if (row != m.end()) {
        auto it = row->second.find(v);
        if (it != row->second.end()) count = it->second;
      }
      std::snprintf(cell, sizeof cell, "%10d", count);
      out << cell;
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace leakscope::study
