#!/usr/bin/env bash
# Runs a benchmark suite and prints its results as key=value lines, with
# ratios against anchors measured in the same run.
#
#   scripts/bench.sh diag    track/untrack cost; snapshot time, stall and
#                            extra memory with 100,000 live tracked objects
#   scripts/bench.sh diff    leakscope diff vs google-pprof --text --base on
#                            two 30,000-stack gperftools profiles; trend over
#                            ten ~92 MB snapshots: time and peak memory
#
# Builds build/ (RelWithDebInfo) first. Results go to stdout; progress to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
suite="${1:-}"
case "$suite" in
  diag|diff) ;;
  -h|--help) usage; exit 0 ;;
  *) usage >&2; echo "bench.sh: unknown suite '${suite}'" >&2; exit 2 ;;
esac

bash scripts/setup.sh >&2
cmake -S . -B build -DLEAKSCOPE_BUILD_BENCH=ON > /dev/null
if [ "$suite" = diag ]; then
  cmake --build build -j"${LEAKSCOPE_JOBS:-2}" --target diag_bench snapshot_bench >&2
else
  cmake --build build -j"${LEAKSCOPE_JOBS:-2}" --target leakscope snapshot_gen >&2
fi

# seconds, best of N runs of a command (output discarded)
best_of() {
  local n=$1 best="" t0 t1 d
  shift
  for _ in $(seq "$n"); do
    t0=$(date +%s.%N)
    "$@" > /dev/null 2>&1 || [ $? -le 1 ]  # exit 1 = suspects found, not an error
    t1=$(date +%s.%N)
    d=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$d < $best" | bc -l)" = 1 ]; then best=$d; fi
  done
  echo "$best"
}

if [ "$suite" = diff ]; then
  work=$(mktemp -d /tmp/leakscope-bench.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  stacks=30000
  echo "bench: two gperftools profiles of $stacks stacks over build/bin/leakscope's own functions" >&2
  python3 tests/bench/make_profiles.py build/bin/leakscope "$work" "$stacks"
  ours=$(best_of 3 build/bin/leakscope diff --json "$work/base.heap" "$work/target.heap")
  echo "bench: google-pprof --text --base (the anchor; takes a while)" >&2
  theirs=$(best_of 1 google-pprof --text --base="$work/base.heap" build/bin/leakscope "$work/target.heap")
  printf 'diff_stacks=%d
' "$stacks"
  printf 'diff_profile_mb=%.1f
' "$(echo "$(stat -c %s "$work/target.heap") / 1000000" | bc -l)"
  printf 'leakscope_diff_seconds=%.3f
' "$ours"
  printf 'pprof_diff_seconds=%.3f
' "$theirs"
  printf 'ratio_vs_pprof=%.1f
' "$(echo "$theirs / $ours" | bc -l)"

  echo "bench: ten synthetic snapshots of ~92 MB (about a million tracked objects each)" >&2
  for i in $(seq 10); do
    build/bin/snapshot_gen "$work/bench.$(printf %06d "$i").lsnap" "$i" 100
  done
  input=$(du -cb "$work"/*.lsnap | tail -1 | cut -f1)
  /usr/bin/time -f '%e %M' -o "$work/time" build/bin/leakscope trend --json "$work"/*.lsnap > /dev/null || true
  # GNU time adds a "Command exited with non-zero status 1" line first.
  read -r secs rss_kb < <(tail -1 "$work/time")
  printf 'trend_inputs=10
'
  printf 'trend_input_mb=%.0f
' "$(echo "$input / 1000000" | bc -l)"
  printf 'trend_seconds=%.2f
' "$secs"
  printf 'trend_mb_per_second=%.0f
' "$(echo "$input / 1000000 / $secs" | bc -l)"
  printf 'trend_peak_rss_mb=%.0f
' "$(echo "$rss_kb * 1024 / 1000000" | bc -l)"
  printf 'trend_peak_rss_vs_input=%.3f
' "$(echo "$rss_kb * 1024 / $input" | bc -l)"
fi

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
