#!/usr/bin/env bash
# The leakscope demo, end to end on a fresh machine:
#   1. installs what is missing and builds (scripts/setup.sh, cmake),
#   2. runs leakscope-example with a leak (every 3rd connection kept open),
#      takes a snapshot with `kill -USR2` every second, and runs
#      `leakscope trend` on them: what grows, the survivors, the sockets they
#      hold (and writes the HTML report beside the snapshots),
#   3. does the same without the leak, and shows that nothing grows.
# Everything it starts is stopped at the end, also on Ctrl-C.
#
# Options (environment): DEMO_SNAPSHOTS (default 4), DEMO_DIR (default: a temp
# dir, removed at the end; set it to keep the snapshot files).
set -euo pipefail
cd "$(dirname "$0")/.."

snapshots="${DEMO_SNAPSHOTS:-4}"
keep_dir=1
if [ -z "${DEMO_DIR:-}" ]; then
  DEMO_DIR=$(mktemp -d /tmp/leakscope-demo.XXXXXX)
  keep_dir=0
fi
child=""
cleanup() {
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  [ "$keep_dir" = 1 ] || rm -rf "$DEMO_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }

step "setup and build"
bash scripts/setup.sh
cmake -S . -B build > /dev/null
cmake --build build -j"${LEAKSCOPE_JOBS:-2}" --target leakscope-example leakscope > /dev/null
say "built build/bin/leakscope-example and build/bin/leakscope"

# run NAME LEAK_EVERY: runs the example, snapshots it every second, prints a
# summary; sets VERDICT.
run() {
  local name=$1 leak_every=$2
  local dir="$DEMO_DIR/$name"
  step "$name: leakscope-example --leak-every $leak_every, $snapshots snapshots one second apart"
  build/bin/leakscope-example --snapshot-dir "$dir" --leak-every "$leak_every" \
    --connections 6 --interval-ms 100 --sample-period 65536 > "$DEMO_DIR/$name.out" 2>&1 &
  child=$!
  local start=""
  for _ in $(seq 50); do
    start=$(grep -m1 '^leakscope-example ' "$DEMO_DIR/$name.out" || true)
    [ -n "$start" ] && break
    sleep 0.1
  done
  [ -n "$start" ] || { cat "$DEMO_DIR/$name.out"; say "demo: the example did not start"; exit 1; }
  say "started: $start"
  local metrics
  metrics=$(sed -n 's/.* metrics=\([^ ]*\).*/\1/p' <<< "$start")
  for i in $(seq "$snapshots"); do
    sleep 1
    kill -USR2 "$child"
    say "kill -USR2 $child   (snapshot $i of $snapshots)"
  done
  # Wait for the last file to land.
  for _ in $(seq 50); do
    [ "$(ls "$dir"/*.lsnap 2>/dev/null | wc -l)" -ge "$snapshots" ] && break
    sleep 0.1
  done
  say "live /metrics at http://$metrics/metrics:"
  curl -s "http://$metrics/metrics" | grep -E '^leakscope_tracked_objects|^leakscope_sockets\{peer="example-server"' | sed 's/^/  /'
  kill "$child"
  wait "$child" || true
  child=""

  say ""
  say "snapshots in $dir (mode $(stat -c %a "$dir")):"
  printf '  %-32s %8s %10s %12s %12s %s\n' file connections sockets rss_bytes heap_in_use top_heap_site
  local f
  for f in "$dir"/*.lsnap; do
    jq -r --arg f "$(basename "$f")" '
      ([.tracked[] | select(.kind == "example.connection") | .live][0]) as $conns
      | ([.sockets[] | select(.peer == "example-server" and .state == "ESTABLISHED")] | length) as $socks
      | (.heap as $h | if ($h.available and ($h.sites | length) > 0)
           then ($h.sites | max_by(.estimated_inuse_bytes // .inuse_bytes)
                 | $h.frames[.stack[0]].function | sub("\\(.*"; ""))
           else "-" end) as $site
      | "  \($f | .[0:32] | . + " " * (32 - length)) \($conns | tostring | " " * (8 - length) + .) \($socks | tostring | " " * (10 - length) + .) \(.process.rss_bytes | tostring | " " * (12 - length) + .) \(.allocator.allocated_bytes // 0 | tostring | " " * (12 - length) + .) \($site)"
    ' "$f"
  done

  say ""
  say "\$ leakscope trend --survivors 3 $dir/*.lsnap"
  local status=0
  build/bin/leakscope trend --survivors 3 "$dir"/*.lsnap | sed 's/^/  /' || status=${PIPESTATUS[0]}
  build/bin/leakscope trend --json "$dir"/*.lsnap > "$DEMO_DIR/$name.trend.json" || true
  build/bin/leakscope report --html "$DEMO_DIR/$name.html" "$dir"/*.lsnap > /dev/null || true
  [ "$keep_dir" = 1 ] && say "  report: $DEMO_DIR/$name.html"
  if [ "$status" = 1 ]; then
    VERDICT=$(jq -r '.suspects as $s
      | [$s[] | select(.group == "tracked")][0] as $k
      | "leakscope trend exit 1: \($s | length) suspects; \($k.name) grew \($k.objects | map(tostring) | join(" -> ")) live objects, \($k.survivor_count) survived every snapshot; sockets: \([$s[] | select(.group == "socket") | .name] | join(", "))"' \
      "$DEMO_DIR/$name.trend.json")
  elif [ "$status" = 0 ]; then
    VERDICT="leakscope trend exit 0: no steady growth over $snapshots snapshots"
  else
    say "demo: leakscope trend failed (exit $status)"
    exit 1
  fi
}

run drill 3
drill_verdict=$VERDICT
run normal 0
normal_verdict=$VERDICT

step "verdicts (leakscope trend)"
say "verdict drill: $drill_verdict"
say "verdict normal: $normal_verdict"
