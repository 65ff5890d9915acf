#!/usr/bin/env bash
# Runs a benchmark suite and prints its results as key=value lines, with
# ratios against anchors measured in the same run.
#
#   scripts/bench.sh diag    track/untrack cost; snapshot time, stall and
#                            extra memory with 100,000 live tracked objects
#
# Builds build/ (RelWithDebInfo) first. Results go to stdout; progress to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
suite="${1:-}"
case "$suite" in
  diag) ;;
  -h|--help) usage; exit 0 ;;
  *) usage >&2; echo "bench.sh: unknown suite '${suite}'" >&2; exit 2 ;;
esac

bash scripts/setup.sh >&2
cmake -S . -B build -DLEAKSCOPE_BUILD_BENCH=ON > /dev/null
cmake --build build -j"${LEAKSCOPE_JOBS:-2}" --target diag_bench snapshot_bench >&2

if [ "$suite" = diag ]; then
  json=$(mktemp)
  trap 'rm -f "$json"' EXIT
  echo "bench: track/untrack (Google Benchmark, 2 s per case)" >&2
  build/bin/diag_bench --benchmark_min_time=2 --benchmark_format=json > "$json"
  # Per-operation real time as each thread sees it, in ns.
  get() { jq -r --arg n "$1" '.benchmarks[] | select(.name == $n) | .real_time * (.threads // 1)' "$json"; }
  tu1=$(get "BM_TrackUntrack/real_time/threads:1")
  tu2=$(get "BM_TrackUntrack/real_time/threads:2")
  mf1=$(get "BM_MallocFree/real_time/threads:1")
  mf2=$(get "BM_MallocFree/real_time/threads:2")
  printf 'track_untrack_ns=%.1f\n' "$tu1"
  printf 'track_untrack_2threads_ns=%.1f\n' "$tu2"
  printf 'anchor_malloc_free_ns=%.1f\n' "$mf1"
  printf 'anchor_malloc_free_2threads_ns=%.1f\n' "$mf2"
  printf 'track_untrack_vs_malloc_free=%.2f\n' "$(echo "$tu1 / $mf1" | bc -l)"
  printf 'track_untrack_2threads_vs_malloc_free=%.2f\n' "$(echo "$tu2 / $mf2" | bc -l)"

  echo "bench: snapshot with 100,000 live tracked objects (sampled heap profile)" >&2
  out=$(build/bin/snapshot_bench 100000)
  echo "$out"
  stall=$(echo "$out" | sed -n 's/^snapshot_stall_ms=//p')
  base=$(echo "$out" | sed -n 's/^baseline_stall_ms=//p')
  ratio=$(echo "$out" | sed -n 's/^snapshot_extra_mem_ratio=//p')
  printf 'snapshot_stall_vs_goal_10ms=%.3f\n' "$(echo "$stall / 10" | bc -l)"
  printf 'snapshot_stall_vs_baseline=%.2f\n' "$(echo "$stall / $base" | bc -l)"
  printf 'snapshot_extra_mem_vs_goal_10pct=%.3f\n' "$(echo "$ratio / 0.10" | bc -l)"
  # node-heapdump's anchor: a heap snapshot needs a copy of the whole heap (ratio 1.0).
  printf 'snapshot_extra_mem_vs_full_copy=%.4f\n' "$ratio"
fi
