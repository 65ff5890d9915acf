#!/usr/bin/env bash
# Runs a benchmark suite and prints its results as key=value lines, with
# ratios against anchors measured in the same run.
#
#   scripts/bench.sh diag       track/untrack cost; snapshot time, stall and
#                               extra memory with 100,000 live tracked objects
#   scripts/bench.sh diff       leakscope diff vs google-pprof --text --base on
#                               two 30,000-stack gperftools profiles; trend over
#                               ten ~92 MB snapshots: time and peak memory
#   scripts/bench.sh transport  APNs notifications/s of leakscope::push against
#                               mock-push-server: vs h2load, instrumentation on
#                               vs off, vs node-apn (@parse/node-apn via npm)
#   scripts/bench.sh e2e        pushdaemon end to end: 1,000,000 APNs tokens from
#                               MariaDB through mock-push-server and back into
#                               push_result; tokens/s, peak RSS, and the ratio
#                               to push_bench's transport-only rate (same mock,
#                               same connections and streams, same run)
#   scripts/bench.sh v8 [--fresh]
#                               V8 .heapsnapshot: a series of big Node snapshots
#                               (V8_BENCH_COUNT=3 of V8_BENCH_MB=500 MB, a known
#                               leak of V8_BENCH_LEAK=1000 LeakedConnection per
#                               snapshot) through leakscope trend, diff and show
#                               vs memlab analyze unbound-object (npm, into
#                               build/bench/memlab): time, peak RSS, who named
#                               the leak. V8_BENCH_2GB=1 adds two ~2 GB
#                               snapshots (V8_BENCH_BIG_MB). memlab runs with a
#                               MEMLAB_HEAP_MB=16384 heap, stopped after
#                               MEMLAB_TIMEOUT=1800 s. Snapshots are kept in
#                               build/bench/v8/ (V8_BENCH_DIR) and reused;
#                               --fresh rewrites them.
#   scripts/bench.sh preload    leakscope run's agent in nginx (1 worker, TLS +
#                               HTTP/2, heap sampled at the default period):
#                               h2load requests/s with and without the agent
#                               (and on tcmalloc alone), rounds of fresh
#                               nginx (LEAKSCOPE_BENCH_ROUNDS=5),
#                               medians and ratio; the longest stall a snapshot
#                               causes: a one-connection probe's slowest
#                               request with a snapshot signal to the worker
#                               every 200 ms vs without (PROBE_SECONDS=10)
#
# Builds build/ (RelWithDebInfo) first. Results go to stdout; progress to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,41p' "$0" | sed 's/^# \{0,1\}//'; }
suite="${1:-}"
case "$suite" in
  diag|diff|transport|e2e|v8|preload) ;;
  -h|--help) usage; exit 0 ;;
  *) usage >&2; echo "bench.sh: unknown suite '${suite}'" >&2; exit 2 ;;
esac
fresh=0
case "${2:-}" in
  "") ;;
  --fresh) [ "$suite" = v8 ] || { echo "bench.sh: --fresh is for the v8 suite" >&2; exit 2; }; fresh=1 ;;
  *) usage >&2; echo "bench.sh: unknown argument '$2'" >&2; exit 2 ;;
esac

bash scripts/setup.sh >&2
cmake -S . -B build -DLEAKSCOPE_BUILD_BENCH=ON > /dev/null
if [ "$suite" = diag ]; then
  cmake --build build -j"${LEAKSCOPE_JOBS:-2}" --target diag_bench snapshot_bench >&2
elif [ "$suite" = diff ]; then
  cmake --build build -j"${LEAKSCOPE_JOBS:-2}" --target leakscope snapshot_gen >&2
elif [ "$suite" = v8 ]; then
  cmake --build build -j"${LEAKSCOPE_JOBS:-2}" --target leakscope >&2
elif [ "$suite" = preload ]; then
  cmake --build build -j"${LEAKSCOPE_JOBS:-2}" --target leakscope leakscope_preload \
    leakscope_preload_noheap >&2
elif [ "$suite" = e2e ]; then
  cmake --build build -j"${LEAKSCOPE_JOBS:-2}" --target push_bench mock-push-server pushdaemon \
    pushdaemon-admin >&2
else
  cmake --build build -j"${LEAKSCOPE_JOBS:-2}" --target push_bench mock-push-server >&2
fi

# Certificates for the run in $work/pki, and mock-push-server with at most
# $M concurrent streams; sets pki, mock_pid and port. The caller's cleanup
# stops the mock.
start_mock() {
  bash tests/mock_push/make-test-pki.sh "$work/pki" >&2
  pki="$work/pki"
  build/bin/mock-push-server --cert "$pki/server.pem" --key "$pki/server.key" \
    --apns-key "$pki/apns.pub.pem" --apns-key-id ABC123DEFG --apns-team-id DEF123GHIJ \
    --max-concurrent-streams "$M" --max-records 0 > "$work/mock.out" 2>&2 &
  mock_pid=$!
  for _ in $(seq 100); do grep -q '^control_port=' "$work/mock.out" 2>/dev/null && break; sleep 0.05; done
  port=$(sed -n 's/^port=//p' "$work/mock.out")
  [ -n "$port" ] || { echo "bench: mock-push-server did not start" >&2; exit 1; }
}

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
  printf 'diff_stacks=%d\n' "$stacks"
  printf 'diff_profile_mb=%.1f\n' "$(echo "$(stat -c %s "$work/target.heap") / 1000000" | bc -l)"
  printf 'leakscope_diff_seconds=%.3f\n' "$ours"
  printf 'pprof_diff_seconds=%.3f\n' "$theirs"
  printf 'ratio_vs_pprof=%.1f\n' "$(echo "$theirs / $ours" | bc -l)"

  echo "bench: ten synthetic snapshots of ~92 MB (about a million tracked objects each)" >&2
  for i in $(seq 10); do
    build/bin/snapshot_gen "$work/bench.$(printf %06d "$i").lsnap" "$i" 100
  done
  input=$(du -cb "$work"/*.lsnap | tail -1 | cut -f1)
  /usr/bin/time -f '%e %M' -o "$work/time" build/bin/leakscope trend --json "$work"/*.lsnap > /dev/null || true
  # GNU time adds a "Command exited with non-zero status 1" line first.
  read -r secs rss_kb < <(tail -1 "$work/time")
  printf 'trend_inputs=10\n'
  printf 'trend_input_mb=%.0f\n' "$(echo "$input / 1000000" | bc -l)"
  printf 'trend_seconds=%.2f\n' "$secs"
  printf 'trend_mb_per_second=%.0f\n' "$(echo "$input / 1000000 / $secs" | bc -l)"
  printf 'trend_peak_rss_mb=%.0f\n' "$(echo "$rss_kb * 1024 / 1000000" | bc -l)"
  printf 'trend_peak_rss_vs_input=%.3f\n' "$(echo "$rss_kb * 1024 / $input" | bc -l)"
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

if [ "$suite" = transport ]; then
  # Same mock, same payload, same connections (C) and concurrent streams (M:
  # the mock's SETTINGS_MAX_CONCURRENT_STREAMS, and our pool's cap) for every
  # client. Each figure is the median of ROUNDS runs, alternating the
  # contenders so drift on a shared machine hits them alike.
  C="${LEAKSCOPE_BENCH_CONNECTIONS:-4}"
  M="${LEAKSCOPE_BENCH_STREAMS:-100}"
  N="${LEAKSCOPE_BENCH_REQUESTS:-200000}"
  NODE_N="${LEAKSCOPE_BENCH_NODE_REQUESTS:-50000}"
  ROUNDS="${LEAKSCOPE_BENCH_ROUNDS:-3}"
  work=$(mktemp -d)
  mock_pid=""
  cleanup() {
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
    rm -rf "$work"
  }
  trap cleanup EXIT
  start_mock
  token=$(printf 'a%.0s' $(seq 64))
  printf '{"aps":{"alert":{"title":"leakscope","body":"benchmark"}}}' > "$work/payload.json"
  # Token auth on both sides, so both post identical requests: h2load gets a
  # provider token made from the run's throwaway .p8 (nghttp2 sends
  # authorization as a never-indexed literal on both sides).
  jwt=$(build/bin/push_bench --apns-key "$pki/apns.p8" --print-provider-token)

  median() { sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
  ours() {  # CONNECTIONS [extra flags...]
    local c=$1; shift
    build/bin/push_bench --port "$port" --ca "$pki/ca.pem" --apns-key "$pki/apns.p8" \
      --connections "$c" --streams "$M" --requests "$N" --payload "$work/payload.json" "$@" \
      | sed -n 's/^notifications_per_second=//p'
  }
  h2() {
    # h2load does not verify the certificate; the request is the same POST.
    h2load -n "$N" -c "$C" -m "$M" -d "$work/payload.json" -H 'apns-topic: com.example.app' \
      -H 'apns-push-type: alert' -H "authorization: bearer $jwt" \
      "https://127.0.0.1:$port/3/device/$token" > "$work/h2load.out"
    grep -q "$N succeeded" "$work/h2load.out" || { cat "$work/h2load.out" >&2; echo 0; return; }
    sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$work/h2load.out"
  }

  echo "bench: ours vs h2load ($C connections x $M streams, $N notifications, $ROUNDS rounds)" >&2
  : > "$work/ours"; : > "$work/h2load"
  for _ in $(seq "$ROUNDS"); do
    ours "$C" >> "$work/ours"; h2 >> "$work/h2load"
  done
  ours_rps=$(median < "$work/ours")
  h2_rps=$(median < "$work/h2load")

  echo "bench: instrumentation on vs off ($((ROUNDS * 2 - 1)) rounds each)" >&2
  : > "$work/on"; : > "$work/off"
  for _ in $(seq $((ROUNDS * 2 - 1))); do
    ours "$C" >> "$work/on"; ours "$C" --no-instrument >> "$work/off"
  done
  on_rps=$(median < "$work/on")
  off_rps=$(median < "$work/off")

  printf 'transport_connections=%s\ntransport_streams=%s\ntransport_requests=%s\n' "$C" "$M" "$N"
  printf 'h2load_rps=%.0f\nours_rps=%.0f\n' "$h2_rps" "$ours_rps"
  printf 'ratio_vs_h2load=%.2f\n' "$(echo "$ours_rps / $h2_rps" | bc -l)"
  printf 'ours_instrumented_rps=%.0f\nours_uninstrumented_rps=%.0f\n' "$on_rps" "$off_rps"
  printf 'ratio_instrumented=%.3f\n' "$(echo "$on_rps / $off_rps" | bc -l)"

  # node-apn, the seed's own client: one provider is one connection, so
  # both sides get 1 connection x M streams here. Installed with npm into the
  # build tree (not vendored), once.
  node_dir=build/bench-node
  if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
    echo "bench: node/npm not found; node-apn comparison skipped" >&2
    echo "ratio_vs_node_apn=unavailable"
    exit 0
  fi
  if [ ! -d "$node_dir/node_modules/@parse/node-apn" ]; then
    echo "bench: npm install @parse/node-apn into $node_dir" >&2
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error @parse/node-apn >&2 \
      || { echo "ratio_vs_node_apn=unavailable"; exit 0; }
  fi
  echo "bench: ours vs node-apn (1 connection x $M streams, $NODE_N notifications)" >&2
  : > "$work/node"; : > "$work/ours1"
  for _ in $(seq "$ROUNDS"); do
    NODE_PATH="$node_dir/node_modules" node tests/bench/node_apn_bench.js "$port" "$pki/ca.pem" \
      "$pki/apns.p8" ABC123DEFG DEF123GHIJ "$NODE_N" 1000 "$M" \
      | sed -n 's/^notifications_per_second=//p' >> "$work/node"
    N="$NODE_N" ours 1 >> "$work/ours1"
  done
  node_rps=$(median < "$work/node")
  ours1_rps=$(median < "$work/ours1")
  printf 'node_apn_version=%s\n' "$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$node_dir/node_modules/@parse/node-apn/package.json")"
  printf 'node_apn_rps=%.0f\nours_1conn_rps=%.0f\n' "$node_rps" "$ours1_rps"
  printf 'ratio_vs_node_apn=%.2f\n' "$(echo "$ours1_rps / $node_rps" | bc -l)"
fi

if [ "$suite" = e2e ]; then
  # One mock, one MariaDB, one run: the daemon's end-to-end rate and the
  # transport-only rate (push_bench) against the same mock with the same
  # connections (C) and streams (M), token auth on both.
  C="${LEAKSCOPE_BENCH_CONNECTIONS:-4}"
  M="${LEAKSCOPE_BENCH_STREAMS:-100}"
  N="${LEAKSCOPE_BENCH_TOKENS:-1000000}"
  PAGE="${LEAKSCOPE_BENCH_PAGE:-5000}"
  work=$(mktemp -d /tmp/leakscope-e2e.XXXXXX)
  mock_pid=""; daemon_pid=""
  cleanup() {
    [ -n "$daemon_pid" ] && kill -9 "$daemon_pid" 2> /dev/null
    [ -n "$mock_pid" ] && kill "$mock_pid" 2> /dev/null && wait "$mock_pid" 2> /dev/null
    bash tests/daemon/mariadb-tmp.sh stop "$work/db" || true
    rm -rf "$work"
  }
  trap cleanup EXIT
  start_mock
  echo "bench: MariaDB in $work/db" >&2
  bash tests/daemon/mariadb-tmp.sh start "$work/db" > "$work/db.out"
  db_port=$(sed -n 's/^port=//p' "$work/db.out")
  cat > "$work/pushdaemon.toml" <<TOML
[daemon]
http_address = "127.0.0.1:0"
poll_interval_ms = 100
[database]
host = "127.0.0.1"
port = $db_port
user = "pushdaemon"
password_file = "$work/db/db-password"
[sending]
page_size = $PAGE
pages_in_flight = 4
[push]
# make-test-pki.sh writes its keys 0600 into a private dir.
credentials_dir = "$pki"
[apns]
host = "localhost"
port = $port
connect_address = "127.0.0.1"
ca_file = "$pki/ca.pem"
max_connections = $C
max_streams = $M
max_outstanding = $((PAGE * 4))
request_timeout_ms = 30000
[fcm]
enabled = false
[diag]
heap_mode = "off"
TOML
  admin() { build/bin/pushdaemon-admin --config "$work/pushdaemon.toml" "$@"; }
  admin migrate > /dev/null
  app=$(admin add-app bench --apns-key-file "$pki/apns.p8" --apns-key-id ABC123DEFG \
    --apns-team-id DEF123GHIJ --apns-topic com.example.app | sed -n 's/^app_id=//p')
  echo "bench: $N tokens into device_token" >&2
  admin generate-tokens "$app" apns "$N" > /dev/null
  printf '{"apns":{"aps":{"alert":{"title":"leakscope","body":"benchmark"}}}}' > "$work/payload.json"
  sql() { mariadb --no-defaults -S "$work/db/mysqld.sock" -uroot -N -B pushdaemon -e "$1"; }
  # Steady state, as for tokens registered over days: the freshly loaded
  # table's dirty pages are written out before the clock starts (otherwise
  # InnoDB's page cleaner competes with the run for the two cores).
  sql "SET GLOBAL innodb_max_dirty_pages_pct = 0"
  for _ in $(seq 300); do
    dirty=$(sql "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'" | cut -f2)
    [ "${dirty:-0}" -lt 200 ] && break
    sleep 0.2
  done
  sql "SET GLOBAL innodb_max_dirty_pages_pct = 90"

  echo "bench: transport only (push_bench, $C x $M, $N notifications)" >&2
  transport_rps=$(build/bin/push_bench --port "$port" --ca "$pki/ca.pem" --apns-key "$pki/apns.p8" \
    --connections "$C" --streams "$M" --requests "$N" --payload "$work/payload.json" \
    | sed -n 's/^notifications_per_second=//p')

  cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
  db_pid=$(sed -n 's/^pid=//p' "$work/db.out")
  db_cpu0=$(cpu "$db_pid"); mock_cpu0=$(cpu "$mock_pid")
  echo "bench: pushdaemon end to end ($N tokens, pages of $PAGE)" >&2
  build/bin/pushdaemon --config "$work/pushdaemon.toml" > "$work/daemon.out" 2> "$work/daemon.err" &
  daemon_pid=$!
  for _ in $(seq 100); do grep -q '^pushdaemon pid=' "$work/daemon.out" 2>/dev/null && break; sleep 0.05; done
  sid=$(admin add-schedule "$app" "$work/payload.json" | sed -n 's/^schedule_id=//p')
  while :; do
    state=$(sql "SELECT state FROM schedule WHERE id = $sid")
    [ "$state" = done ] || [ "$state" = failed ] && break
    kill -0 "$daemon_pid" 2> /dev/null || { tail "$work/daemon.err" >&2; exit 1; }
    sleep 0.2
  done
  rss_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$daemon_pid/status")
  http=$(sed -n 's/.*http=\([^ ]*\).*/\1/p' "$work/daemon.out")
  curl -s "http://$http/metrics" > "$work/metrics.txt" || true
  cpu_daemon=$(cpu "$daemon_pid")
  cpu_db=$(echo "$(cpu "$db_pid") - $db_cpu0" | bc -l)
  cpu_mock=$(echo "$(cpu "$mock_pid") - $mock_cpu0" | bc -l)
  kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=""
  secs=$(sql "SELECT TIMESTAMPDIFF(MICROSECOND, started_at, finished_at) / 1e6 FROM schedule WHERE id = $sid")
  rows=$(sql "SELECT COUNT(*) FROM push_result WHERE schedule_id = $sid AND outcome = 'success'")
  [ "$state" = done ] && [ "$rows" = "$N" ] || { echo "bench: schedule $state with $rows/$N results" >&2; exit 1; }
  e2e_rps=$(echo "$N / $secs" | bc -l)
  printf 'e2e_tokens=%s\ne2e_seconds=%.2f\n' "$N" "$secs"
  printf 'e2e_tokens_per_s=%.0f\ne2e_peak_rss_mb=%.1f\n' "$e2e_rps" "$(echo "$rss_kb / 1024" | bc -l)"
  # Where a page's time goes (seconds per page, averaged): the stages overlap.
  for stage in read send write; do
    sum=$(sed -n "s/^pushdaemon_batch_duration_seconds_sum{platform=\"apns\",stage=\"$stage\"} //p" "$work/metrics.txt")
    cnt=$(sed -n "s/^pushdaemon_batch_duration_seconds_count{platform=\"apns\",stage=\"$stage\"} //p" "$work/metrics.txt")
    [ -n "$cnt" ] && [ "$cnt" != 0 ] && printf 'e2e_page_%s_seconds=%.4f\n' "$stage" "$(echo "$sum / $cnt" | bc -l)"
  done
  printf 'e2e_cpu_seconds_daemon=%s\ne2e_cpu_seconds_mariadb=%.2f\ne2e_cpu_seconds_mock=%.2f\n' \
    "$cpu_daemon" "$cpu_db" "$cpu_mock"
  printf 'transport_connections=%s\ntransport_streams=%s\n' "$C" "$M"
  printf 'transport_tokens_per_s=%.0f\n' "$transport_rps"
  printf 'ratio_vs_transport=%.2f\n' "$(echo "$e2e_rps / $transport_rps" | bc -l)"
fi

if [ "$suite" = v8 ]; then
  # One run, the same files for every tool. The snapshots are written by Node
  # (tests/bench/v8/make_snapshots.js) and kept under build/bench/v8/, one
  # directory per series, with the parameters they were made with; a series
  # is rewritten when they differ, or with --fresh.
  MB="${V8_BENCH_MB:-500}"
  COUNT="${V8_BENCH_COUNT:-3}"
  LEAK="${V8_BENCH_LEAK:-1000}"
  BIG_MB="${V8_BENCH_BIG_MB:-2000}"
  ML_HEAP="${MEMLAB_HEAP_MB:-16384}"
  ML_TIMEOUT="${MEMLAB_TIMEOUT:-1800}"
  leaked=LeakedConnection holder=ConnectionRegistry
  v8dir="${V8_BENCH_DIR:-build/bench/v8}"
  memlab_dir=build/bench/memlab
  if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
    echo "bench: the v8 suite needs node and npm" >&2
    exit 1
  fi
  # Every tool's output of the last run stays in $work for a look afterwards.
  work="$v8dir/run"
  rm -rf "$work"; mkdir -p "$work"

  # series DIR MB COUNT: the snapshots of DIR, written unless present.
  series() {
    local dir=$1 mb=$2 count=$3 params
    params="mb=$2 count=$3 leak=$LEAK generator=$(sha1sum < tests/bench/v8/make_snapshots.js | cut -c1-12)"
    if [ "$fresh" = 1 ] || [ "$(cat "$dir/params" 2> /dev/null)" != "$params" ]; then
      echo "bench: writing $count V8 snapshots of ~$mb MB into $dir (Node, takes a while)" >&2
      rm -rf "$dir"; mkdir -p "$dir"
      # A generous heap limit: Node's peak RSS was 2.5 GB writing 500 MB
      # files and 9.8 GB writing 2 GB ones (V8 builds the snapshot beside
      # the heap).
      node --expose-gc --max-old-space-size=$((mb * 4 + 2048)) tests/bench/v8/make_snapshots.js \
        "$dir" --count "$count" --mb "$mb" --leak "$LEAK" > "$work/gen.out"
      mv "$work/gen.out" "$dir/make_snapshots.out"
      echo "$params" > "$dir/params"
      generated=1
    else
      echo "bench: reusing the snapshots in $dir ($params)" >&2
      generated=0
    fi
  }
  # nodes FILE: the node count from the snapshot's header.
  nodes() { head -c 4096 "$1" | sed -n 's/.*"node_count":\([0-9]*\).*/\1/p'; }
  mb_of() { echo "$(du -cb "$@" | tail -1 | cut -f1) / 1000000" | bc -l; }
  # timed NAME LIMIT CMD...: runs CMD (stdout to $work/NAME.out, stderr to
  # $work/NAME.err) under /usr/bin/time, stopped after LIMIT seconds; sets
  # secs, cpu (user + system seconds: the machine may be shared), rss_mb
  # (peak RSS, children included) and rc (124: timed out, 128 + N: killed by
  # signal N).
  timed() {
    local name=$1 limit=$2 user sys
    shift 2
    # SIGTERM first: timeout then reaps the command, so time still sees its
    # peak RSS (after a SIGKILL to timeout itself it would not).
    /usr/bin/time -f '%e %M %x %U %S' -o "$work/$name.time" timeout -k 30 "$limit" "$@" \
      > "$work/$name.out" 2> "$work/$name.err" || true
    # GNU time adds a "Command exited with non-zero status N" or "Command
    # terminated by signal N" line first.
    read -r secs rss_kb rc user sys < <(tail -1 "$work/$name.time")
    local signal
    signal=$(sed -n 's/^Command terminated by signal \([0-9]*\)$/\1/p' "$work/$name.time")
    [ -z "$signal" ] || rc=$((128 + signal))
    cpu=$(echo "$user + $sys" | bc -l)
    rss_mb=$(echo "$rss_kb * 1024 / 1000000" | bc -l)
  }
  # leakscope NAME CMD ARGS...: a leakscope command with --json; sets
  # ls_ok=1 when it ran (exit 0 or 1, as diff(1)), else prints its error.
  leakscope() {
    local name=$1
    shift
    echo "bench: leakscope $1 ($name)" >&2
    timed "$name" 86400 build/bin/leakscope "$@" --json
    if [ "$rc" -le 1 ]; then ls_ok=1; else
      ls_ok=0
      echo "bench: leakscope $1 failed (exit $rc): $(head -1 "$work/$name.err")" >&2
    fi
  }
  # memlab NAME DIR: memlab analyze unbound-object on the series in DIR; sets
  # ml_outcome (ok, out-of-memory, stopped-after-Ns, killed-by-signal-N,
  # exit-N), ml_named and ml_named_holder.
  memlab() {
    local name=$1 dir=$2
    echo "bench: memlab analyze unbound-object --snapshot-dir $dir (up to ${ML_TIMEOUT} s)" >&2
    rm -rf "$work/memlab-$name"; mkdir -p "$work/memlab-$name"
    # memlab's own launcher runs node with --max-old-space-size=4096; it gets
    # the same flags with a bigger heap, so that it fails on time, not memory.
    timed "memlab-$name" "$ML_TIMEOUT" node --expose-gc --max-old-space-size="$ML_HEAP" \
      "$memlab_dir/node_modules/memlab/bin/memlab" analyze unbound-object \
      --snapshot-dir "$dir" --work-dir "$work/memlab-$name"
    if [ "$rc" = 124 ] || { [ "$rc" -gt 128 ] && [ "$(echo "$secs >= $ML_TIMEOUT" | bc)" = 1 ]; }
    then ml_outcome="stopped-after-${ML_TIMEOUT}s"
    elif grep -q 'heap out of memory\|invalid table size\|Invalid string length' "$work/memlab-$name.err"
    then ml_outcome="out-of-memory"
    elif [ "$rc" -gt 128 ]; then ml_outcome="killed-by-signal-$((rc - 128))"  # the OOM killer: 9
    elif [ "$rc" = 0 ]; then ml_outcome=ok
    else ml_outcome="exit-$rc"
    fi
    # memlab prints its findings on stderr, one object a line: `· NAME
    # [TYPE](@ID): SIZES`. Naming the leak means a line for the leaked
    # objects (`LeakedConnection [object]`), not for the class's constructor
    # (`[closure]`, whose size does not grow); naming the holder is recorded
    # apart.
    ml_named=no ml_named_holder=no
    grep -q "$leaked \[object\]" "$work/memlab-$name.out" "$work/memlab-$name.err" && ml_named=yes
    grep -q "$holder \[object\]" "$work/memlab-$name.out" "$work/memlab-$name.err" && ml_named_holder=yes
    echo "bench: memlab: $ml_outcome after ${secs} s, $(printf %.0f "$rss_mb") MB" >&2
  }

  if [ ! -x "$memlab_dir/node_modules/.bin/memlab" ]; then
    echo "bench: npm install memlab into $memlab_dir" >&2
    mkdir -p "$memlab_dir"
    PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix "$memlab_dir" --no-audit --no-fund \
      --loglevel=error memlab >&2
  fi

  dir="$v8dir/series"
  series "$dir" "$MB" "$COUNT"
  files=("$dir"/*.heapsnapshot)
  first=${files[0]} last=${files[${#files[@]} - 1]}
  if [ "$generated" = 1 ]; then
    sed -n 's/^write_seconds=/v8_write_seconds=/p; s/^total_seconds=/v8_generate_seconds=/p
      s/^peak_rss_mb=/v8_write_rss_mb=/p' "$dir/make_snapshots.out"
  fi
  printf 'v8_snapshots=%d\n' "${#files[@]}"
  printf 'v8_file_mb=%.0f\n' "$(mb_of "$last")"
  printf 'v8_nodes=%s\n' "$(nodes "$last")"
  printf 'v8_leak_per_snapshot=%s\n' "$LEAK"

  # show on the largest file: parse, graph, dominators; its time gives the
  # parse rate (a lower bound unless the CLI reports the parse alone).
  leakscope show show "$last"
  if [ "$ls_ok" = 1 ]; then
    parse_s=$(jq -r '.v8.parse_seconds // empty' "$work/show.out" 2> /dev/null || true)
    printf 'leakscope_show_s=%.2f\nleakscope_show_rss_mb=%.0f\n' "$secs" "$rss_mb"
    printf 'v8_parse_mb_per_s=%.0f\n' "$(echo "$(mb_of "$last") / ${parse_s:-$secs}" | bc -l)"
    printf 'v8_bytes_per_node=%.1f\n' "$(echo "$rss_mb * 1000000 / $(nodes "$last")" | bc -l)"
  fi
  leakscope diff diff "$first" "$last" --top 100000
  if [ "$ls_ok" = 1 ]; then
    printf 'leakscope_diff_s=%.2f\nleakscope_diff_rss_mb=%.0f\n' "$secs" "$rss_mb"
    # The leak's row must count exactly the connections opened in between.
    new=$(jq -r --arg c "$leaked" '[.rows[] | select(.group == "class" and .name == $c)][0].new // 0' \
      "$work/diff.out" 2> /dev/null || echo unreadable)
    [ "$new" = $(((${#files[@]} - 1) * LEAK)) ] && diff_named=yes || diff_named=no
    printf 'leakscope_diff_leak_new=%s\nleakscope_diff_named_leak=%s\n' "$new" "$diff_named"
  fi
  leakscope trend trend "${files[@]}"
  ls_trend_ok=$ls_ok ls_secs=$secs ls_rss=$rss_mb
  if [ "$ls_ok" = 1 ]; then
    top=$(jq -r '.suspects[0].name // "none"' "$work/trend.out" 2> /dev/null || echo unreadable)
    printf 'leakscope_trend_s=%.2f\nleakscope_trend_cpu_s=%.2f\n' "$secs" "$cpu"
    printf 'leakscope_trend_rss_mb=%.0f\n' "$rss_mb"
    printf 'leakscope_first_suspect=%s\n' "$top"
    printf 'leakscope_named_leak=%s\n' "$([ "$top" = "$leaked" ] && echo yes || echo no)"
  else
    printf 'leakscope_trend=error\nleakscope_named_leak=no\n'
  fi

  memlab series "$dir"
  printf 'memlab_version=%s\n' "$(jq -r .version "$memlab_dir/node_modules/memlab/package.json")"
  printf 'memlab_outcome=%s\nmemlab_s=%.2f\nmemlab_cpu_s=%.2f\n' "$ml_outcome" "$secs" "$cpu"
  printf 'memlab_rss_mb=%.0f\n' "$rss_mb"
  printf 'memlab_named_leak=%s\nmemlab_named_holder=%s\n' "$ml_named" "$ml_named_holder"
  if [ "$ls_trend_ok" = 1 ] && [ "$ml_outcome" = ok ]; then
    printf 'ratio_vs_memlab_time=%.1f\n' "$(echo "$secs / $ls_secs" | bc -l)"
    printf 'ratio_vs_memlab_rss=%.3f\n' "$(echo "$ls_rss / $rss_mb" | bc -l)"
  else
    printf 'ratio_vs_memlab_time=unavailable\nratio_vs_memlab_rss=unavailable\n'
  fi

  if [ "${V8_BENCH_2GB:-0}" = 1 ]; then
    # Two snapshots (memlab's unbound-object takes two or more), ~2 GB each.
    dir="$v8dir/big"
    series "$dir" "$BIG_MB" 2
    files=("$dir"/*.heapsnapshot)
    if [ "$generated" = 1 ]; then
      sed -n 's/^write_seconds=/v8_2gb_write_seconds=/p; s/^peak_rss_mb=/v8_2gb_write_rss_mb=/p' \
        "$dir/make_snapshots.out"
    fi
    printf 'v8_2gb_file_mb=%.0f\nv8_2gb_nodes=%s\n' "$(mb_of "${files[1]}")" "$(nodes "${files[1]}")"
    big_figures() {  # CMD: the figures of the leakscope command just run
      if [ "$ls_ok" = 1 ]; then
        printf 'leakscope_2gb_%s_s=%.2f\nleakscope_2gb_%s_rss_mb=%.0f\n' "$1" "$secs" "$1" "$rss_mb"
      else
        printf 'leakscope_2gb_%s=error\n' "$1"
      fi
    }
    leakscope big-show show "${files[1]}"
    big_figures show
    leakscope big-diff diff "${files[@]}" --top 100000
    big_figures diff
    memlab big "$dir"
    printf 'memlab_2gb_outcome=%s\nmemlab_2gb_s=%.2f\nmemlab_2gb_cpu_s=%.2f\n' "$ml_outcome" \
      "$secs" "$cpu"
    printf 'memlab_2gb_rss_mb=%.0f\n' "$rss_mb"
    printf 'memlab_2gb_named_leak=%s\n' "$ml_named"
  fi
fi

if [ "$suite" = preload ]; then
  # Three nginx masters with one worker each, from the tests' configuration
  # (tests/run/nginx/nginx.conf.in): one plain (glibc malloc), one on
  # tcmalloc with sampling but no agent (what the allocator swap alone
  # costs), one under leakscope run with the heap sampled (the realistic
  # case). h2load goes round them, plain, tcmalloc, agent, each round.
  ROUNDS="${LEAKSCOPE_BENCH_ROUNDS:-5}"
  N="${LEAKSCOPE_BENCH_REQUESTS:-100000}"
  C="${LEAKSCOPE_BENCH_CONNECTIONS:-4}"
  M="${LEAKSCOPE_BENCH_STREAMS:-10}"
  PROBE_SECONDS="${PROBE_SECONDS:-10}"
  # The sampling period of both the tcmalloc contender and the agent: run's
  # default (2 MiB) unless LEAKSCOPE_BENCH_SAMPLE says otherwise.
  SAMPLE="${LEAKSCOPE_BENCH_SAMPLE:-2097152}"
  for tool in nginx h2load openssl python3 jq; do
    command -v "$tool" > /dev/null || { echo "bench: the preload suite needs $tool" >&2; exit 1; }
  done
  work=$(mktemp -d /tmp/leakscope-bench.XXXXXX)
  masters=()
  cleanup() {
    for p in "${masters[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
    for p in "${masters[@]}"; do wait "$p" 2> /dev/null || true; done
    rm -rf "$work"
  }
  trap cleanup EXIT
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  # site NAME: $work/NAME with the page, a certificate and nginx.conf; prints its port.
  site() {
    local dir="$work/$1" port user=""
    port=$(free_port)
    mkdir -p "$dir/htdocs"
    head -c 4096 /dev/zero | tr '\0' x > "$dir/htdocs/index.html"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
      -days 1 -keyout "$dir/key.pem" -out "$dir/cert.pem" 2> /dev/null
    [ "$(id -u)" = 0 ] && user="user root root;"
    sed -e "s|@DIR@|$dir|g; s|@PORT@|$port|g; s|@WORKERS@|1|g; s|@USER@|$user|g" \
      -e "s|@LISTEN@| ssl http2|g" \
      -e "s|@TLS@|ssl_certificate $dir/cert.pem; ssl_certificate_key $dir/key.pem;|g" \
      tests/run/nginx/nginx.conf.in > "$dir/nginx.conf"
    echo "$port"
  }
  nginx_args() { echo "-p $work/$1 -c $work/$1/nginx.conf -e $work/$1/error.log"; }
  # rps PORT [REQUESTS]: h2load's requests/s (0 and its output when a request failed).
  rps() {
    local n="${2:-$N}"
    "${client_cpu[@]}" h2load -n "$n" -c "$C" -m "$M" -t 1 "https://127.0.0.1:$1/index.html" \
      > "$work/h2load.out"
    grep -q "$n succeeded" "$work/h2load.out" || { cat "$work/h2load.out" >&2; echo 0; return; }
    sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$work/h2load.out"
  }
  serving() {
    for _ in $(seq 100); do
      h2load -n 1 "https://127.0.0.1:$1/index.html" 2> /dev/null | grep -q "1 succeeded" && return 0
      sleep 0.1
    done
    echo "bench: nginx on port $1 does not serve" >&2
    exit 1
  }
  median() { sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

  plain_port=$(site plain)
  tcmalloc_port=$(site tcmalloc)
  agent_port=$(site agent)
  # On two or more CPUs the nginx workers share the last one and h2load has
  # the first: each worker is then the bottleneck of its own rounds, and the
  # scheduler's placement (h2load and a worker on one core, or not) stops
  # being the largest noise in the figures.
  server_cpu=() client_cpu=()
  if [ "$(nproc)" -ge 2 ]; then
    server_cpu=(taskset -c "$(($(nproc) - 1))")
    client_cpu=(taskset -c 0)
  fi
  # start NAME: one nginx master of that contender, serving; sets
  # NAME_master and NAME_worker.
  start() {
    case "$1" in
      plain)
        # shellcheck disable=SC2046
        "${server_cpu[@]}" nginx $(nginx_args plain) 2>> "$work/plain.err" & ;;
      tcmalloc)
        # shellcheck disable=SC2046
        LD_PRELOAD=libtcmalloc.so.4 TCMALLOC_SAMPLE_PARAMETER="$SAMPLE" \
          "${server_cpu[@]}" nginx $(nginx_args tcmalloc) 2>> "$work/tcmalloc.err" & ;;
      agent)
        # nginx uses USR1 and USR2 itself: the snapshot signal is RTMIN+3.
        # shellcheck disable=SC2046
        "${server_cpu[@]}" build/bin/leakscope run --snapshot-dir "$work/snaps" \
          --signal RTMIN+3 --sample-period "$SAMPLE" -- nginx $(nginx_args agent) \
          2>> "$work/agent.err" & ;;
    esac
    local master=$! port_var="${1}_port"
    masters+=("$master")
    printf -v "${1}_master" '%s' "$master"
    serving "${!port_var}"
    printf -v "${1}_worker" '%s' "$(pgrep -P "$master" | head -1)"
  }
  stop() {
    local master_var="${1}_master"
    kill -TERM "${!master_var}"
    wait "${!master_var}" 2> /dev/null || true
  }
  # on_cpu PID: nanoseconds the process has run (/proc/PID/schedstat).
  on_cpu() { cut -d' ' -f1 "/proc/$1/schedstat"; }
  # round NAME: one h2load run against that contender's nginx; its
  # requests/s, and the requests per second of the worker's own CPU time
  # (what the agent costs per request, whatever else the machine did).
  round() {
    local port_var="${1}_port" worker_var="${1}_worker" before after
    before=$(on_cpu "${!worker_var}")
    rps "${!port_var}" >> "$work/$1.rps"
    after=$(on_cpu "${!worker_var}")
    echo "$N / (($after - $before) / 1000000000)" | bc -l >> "$work/$1.cpu"
  }

  # Every round starts fresh nginx: two starts of one program differ by a
  # few percent (where the loader and ASLR put code and data), and a run that
  # kept one instance each would be decided by that luck.
  echo "bench: $ROUNDS rounds, each: fresh nginx (plain, tcmalloc, agent), warm-up," \
    "h2load -n $N -c $C -m $M against each" >&2
  for name in plain tcmalloc agent; do : > "$work/$name.rps"; : > "$work/$name.cpu"; done
  agent_threads=0
  for _ in $(seq "$ROUNDS"); do
    for name in plain tcmalloc agent; do start "$name"; done
    grep -q "libleakscope-preload.so" "/proc/$agent_worker/maps" \
      || { echo "bench: the agent is not in nginx's worker" >&2; exit 1; }
    for port in "$plain_port" "$tcmalloc_port" "$agent_port"; do rps "$port" 10000 > /dev/null; done
    for name in plain tcmalloc agent; do round "$name"; done
    # Before any snapshot the agent has started no thread in the worker.
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$agent_worker/status")
    [ "$threads" -gt "$agent_threads" ] && agent_threads=$threads
    for name in plain tcmalloc agent; do stop "$name"; done
  done
  plain_rps=$(median < "$work/plain.rps")
  tcmalloc_rps=$(median < "$work/tcmalloc.rps")
  agent_rps=$(median < "$work/agent.rps")
  plain_cpu=$(median < "$work/plain.cpu")
  tcmalloc_cpu=$(median < "$work/tcmalloc.cpu")
  agent_cpu=$(median < "$work/agent.cpu")
  start agent
  worker=$agent_worker
  echo "bench: stall probe, ${PROBE_SECONDS} s without snapshots, then with one every 200 ms" >&2
  python3 tests/bench/preload_probe.py --tls "$agent_port" "$PROBE_SECONDS" > "$work/quiet.out"
  python3 tests/bench/preload_probe.py --tls "$agent_port" "$PROBE_SECONDS" > "$work/snap.out" &
  probe=$!
  while kill -0 "$probe" 2> /dev/null; do kill -s RTMIN+3 "$worker"; sleep 0.2; done
  wait "$probe"
  get() { sed -n "s/^$1=//p" "$2"; }
  quiet_max=$(get max_ms "$work/quiet.out")
  snap_max=$(get max_ms "$work/snap.out")
  snapshots=$(find "$work/snaps" -name "nginx.$worker.*.lsnap" | wc -l)
  writer_max=$(jq -s 'map(.writer.duration_seconds) | max' "$work/snaps"/nginx."$worker".*.lsnap)
  heap_sites=$(jq '.heap.sites | length' "$(ls "$work/snaps"/nginx."$worker".*.lsnap | tail -1)")

  printf 'preload_requests=%s\npreload_connections=%s\npreload_streams=%s\npreload_rounds=%s\n' \
    "$N" "$C" "$M" "$ROUNDS"
  printf 'preload_sample_period=%s\n' "$SAMPLE"
  printf 'preload_plain_rps_rounds=%s\n' "$(paste -sd, "$work/plain.rps")"
  printf 'preload_tcmalloc_rps_rounds=%s\n' "$(paste -sd, "$work/tcmalloc.rps")"
  printf 'preload_agent_rps_rounds=%s\n' "$(paste -sd, "$work/agent.rps")"
  printf 'preload_plain_rps=%.0f\npreload_tcmalloc_rps=%.0f\npreload_agent_rps=%.0f\n' \
    "$plain_rps" "$tcmalloc_rps" "$agent_rps"
  # With the agent against without it (nginx on its own glibc malloc): the goal is >= 0.97.
  printf 'preload_rps_ratio=%.3f\n' "$(echo "$agent_rps / $plain_rps" | bc -l)"
  printf 'preload_plain_rps_per_cpu=%.0f\npreload_tcmalloc_rps_per_cpu=%.0f\npreload_agent_rps_per_cpu=%.0f\n' \
    "$plain_cpu" "$tcmalloc_cpu" "$agent_cpu"
  printf 'preload_cpu_ratio=%.3f\n' "$(echo "$agent_cpu / $plain_cpu" | bc -l)"
  printf 'preload_agent_worker_threads=%s\n' "$agent_threads"
  # The same, split: tcmalloc with sampling alone, and the agent on top of it.
  printf 'preload_tcmalloc_vs_plain=%.3f\n' "$(echo "$tcmalloc_rps / $plain_rps" | bc -l)"
  printf 'preload_agent_vs_tcmalloc=%.3f\n' "$(echo "$agent_rps / $tcmalloc_rps" | bc -l)"
  printf 'probe_requests_quiet=%s\nprobe_requests_snapshots=%s\n' "$(get requests "$work/quiet.out")" \
    "$(get requests "$work/snap.out")"
  printf 'probe_p50_ms_quiet=%s\nprobe_p50_ms_snapshots=%s\n' "$(get p50_ms "$work/quiet.out")" \
    "$(get p50_ms "$work/snap.out")"
  printf 'probe_p99_ms_quiet=%s\nprobe_p99_ms_snapshots=%s\n' "$(get p99_ms "$work/quiet.out")" \
    "$(get p99_ms "$work/snap.out")"
  printf 'probe_max_ms_quiet=%s\nprobe_max_ms_snapshots=%s\n' "$quiet_max" "$snap_max"
  # The slowest request with snapshots minus the slowest without: what the
  # snapshots added to the worst case (it can be below the writer's time: the
  # worker only waits for the snapshot thread where they share a core or a lock).
  printf 'snapshot_stall_ms_max=%.3f\n' "$(echo "$snap_max - $quiet_max" | bc -l)"
  printf 'snapshots=%s\nsnapshot_heap_sites=%s\n' "$snapshots" "$heap_sites"
  printf 'snapshot_writer_ms_max=%.1f\n' "$(echo "$writer_max * 1000" | bc -l)"
fi
