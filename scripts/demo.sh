#!/usr/bin/env bash
# The leakscope demo, end to end on a fresh machine:
#   1. installs what is missing and builds (scripts/setup.sh, cmake),
#   2. runs leakscope-example with a leak (every 3rd connection kept open),
#      takes a snapshot with `kill -USR2` every second, and summarises them:
#      what grows, the survivors, and the sockets they hold,
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
cmake --build build -j"${LEAKSCOPE_JOBS:-2}" --target leakscope-example > /dev/null
say "built build/bin/leakscope-example"

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

  # Growth and survivors: objects alive in every snapshot, from object ids.
  local summary
  summary=$(jq -s '
    def conns: [.tracked[] | select(.kind == "example.connection")][0];
    (first | conns) as $a | (last | conns) as $b
    | [.[] | [conns.objects[].id]] as $idsets
    | [$idsets[0][] | . as $x | select(all($idsets[]; any(.[]; . == $x)))] as $survivors
    | (last | [.sockets[] | select(.state == "ESTABLISHED" and .peer == "example-server") | .owner])
        as $established
    | { first: $a.live, last: $b.live,
        created: ($b.created_total - $a.created_total),
        destroyed: ($b.destroyed_total - $a.destroyed_total),
        survivors: ($survivors | length),
        held: ([$survivors[] | . as $x | select(any($established[]; . == $x))] | length),
        bytes_first: $a.live_bytes, bytes_last: $b.live_bytes,
        sample: ([$b.objects[] | . as $o | select(any($survivors[]; . == $o.id))
                  | {id: .id, label: .label, fd: .fd}] | .[0:3]) }' \
    "$dir"/*.lsnap)
  say ""
  say "example.connection across the series (from object ids):"
  jq -r '"  live \(.first) -> \(.last); created \(.created), destroyed \(.destroyed) in between; retained bytes \(.bytes_first) -> \(.bytes_last)",
         "  survivors (alive in every snapshot): \(.survivors), \(.held) of them owning an ESTABLISHED socket to example-server",
         (.sample[] | "    id \(.id) label \(.label) fd \(.fd)")' <<< "$summary"
  local first last survivors held
  first=$(jq .first <<< "$summary")
  last=$(jq .last <<< "$summary")
  survivors=$(jq .survivors <<< "$summary")
  held=$(jq .held <<< "$summary")
  # Survivors, not a rising count, are the evidence: a snapshot taken in the
  # middle of a round also sees connections that are about to close.
  if [ "$survivors" -gt 0 ] && [ "$last" -gt "$first" ]; then
    VERDICT="example.connection grew from $first to $last live objects over $snapshots snapshots; $survivors survived every snapshot, $held of them holding an ESTABLISHED socket to example-server"
  else
    VERDICT="no leak: no example.connection survived the series (live $first -> $last over $snapshots snapshots)"
  fi
}

run drill 3
drill_verdict=$VERDICT
run normal 0
normal_verdict=$VERDICT

step "verdicts (the leakscope CLI will compute these: issue #3)"
say "verdict drill: $drill_verdict"
say "verdict normal: $normal_verdict"
