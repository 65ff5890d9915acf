#!/usr/bin/env bash
# The leakscope demo: the seed story's incident, replayed and caught.
#   1. installs what is missing and builds (scripts/setup.sh, cmake),
#   2. starts a throw-away MariaDB and the mock push server on 127.0.0.1,
#      loads an app with APNs and FCM device tokens,
#   3. runs pushdaemon with the leak drill on (--leak-drill: a new APNs
#      client per schedule, never shut down — the seed's bug), runs a series
#      of schedules one after the other and takes a snapshot with
#      `kill -USR2` after each; then `leakscope trend` names what grows, the
#      survivors and the sockets they hold, and `leakscope report --html`
#      writes the page,
#   4. does the same with the drill off and shows the clean verdict,
#   5. replays the seed in its own language: a Node push daemon
#      (diag/examples/node/seed_replay.js, leak mode) run with
#      --heapsnapshot-signal=SIGUSR2, `kill -USR2` after each schedule
#      (tests/node/replay.py), then `leakscope trend` and `report --html` on
#      its .heapsnapshot files (skipped, and said so, where there is no node).
# The last three lines are the verdicts (`verdict drill:`, `verdict normal:`,
# `verdict node:`), read from `leakscope trend --json`. Everything it starts (daemon, MariaDB,
# mock push server) is stopped at the end, also on Ctrl-C.
#
# Options (environment): DEMO_SCHEDULES (default 5), DEMO_APNS_TOKENS (3000),
# DEMO_FCM_TOKENS (500), DEMO_MAX_CONNECTIONS (apns.max_connections, 4),
# DEMO_NODE_SCHEDULES (the Node replay's schedules, 4), DEMO_NODE_SESSIONS
# (its HTTP/2 sessions per schedule, 3),
# DEMO_DIR (default: a temp dir, removed at the end; set it to keep the
# snapshots, reports, logs and configuration), LEAKSCOPE_JOBS (build jobs, 2).
set -euo pipefail
cd "$(dirname "$0")/.."

schedules="${DEMO_SCHEDULES:-5}"
apns_tokens="${DEMO_APNS_TOKENS:-3000}"
fcm_tokens="${DEMO_FCM_TOKENS:-500}"
max_conns="${DEMO_MAX_CONNECTIONS:-4}"
node_schedules="${DEMO_NODE_SCHEDULES:-4}"
node_sessions="${DEMO_NODE_SESSIONS:-3}"
keep_dir=1
if [ -z "${DEMO_DIR:-}" ]; then
  DEMO_DIR=$(mktemp -d /tmp/leakscope-demo.XXXXXX)
  keep_dir=0
fi
mkdir -p "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
# A kept DEMO_DIR from an earlier run: start afresh (only what the demo makes).
rm -rf "${DEMO_DIR:?}"/{db,pki,credentials,setup,drill,normal,node} "$DEMO_DIR"/{mock.out,mock.err,db.out}   "$DEMO_DIR"/payload.json

say() { printf 'demo: %s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
die() { say "FAILED: $*" >&2; exit 1; }

mock_pid=""
daemon_pid=""
db_started=0
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2> /dev/null; then
    kill -TERM "$daemon_pid" 2> /dev/null || true
    # A drained exit takes well under a second here; do not hang on it.
    for _ in $(seq 100); do kill -0 "$daemon_pid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$daemon_pid" 2> /dev/null || true
    wait "$daemon_pid" 2> /dev/null || true
  fi
  if [ -n "$mock_pid" ] && kill -0 "$mock_pid" 2> /dev/null; then
    kill -TERM "$mock_pid" 2> /dev/null || true
    wait "$mock_pid" 2> /dev/null || true
  fi
  if [ "$db_started" = 1 ]; then
    bash tests/daemon/mariadb-tmp.sh stop "$DEMO_DIR/db" || true
  fi
  [ "$keep_dir" = 1 ] || rm -rf "$DEMO_DIR"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "setup and build"
bash scripts/setup.sh
cmake -S . -B build > /dev/null
cmake --build build -j"${LEAKSCOPE_JOBS:-2}" \
  --target pushdaemon pushdaemon-admin mock-push-server leakscope > /dev/null
say "built build/bin/{pushdaemon,pushdaemon-admin,mock-push-server,leakscope}"
t_start=$(date +%s.%N)

step "the push service (mock), the database, the app"
bash tests/mock_push/make-test-pki.sh "$DEMO_DIR/pki" > /dev/null
pki="$DEMO_DIR/pki"
build/bin/mock-push-server --cert "$pki/server.pem" --key "$pki/server.key" \
  --apns-key "$pki/apns.pub.pem" --apns-key-id ABC123DEFG --apns-team-id DEF123GHIJ \
  --topic com.example.game --fcm-key "$pki/fcm.pub.pem" \
  --fcm-client-email push@leakscope-demo.iam.gserviceaccount.com --fcm-project leakscope-demo \
  --max-records 0 > "$DEMO_DIR/mock.out" 2> "$DEMO_DIR/mock.err" &
mock_pid=$!
for _ in $(seq 100); do grep -q '^control_port=' "$DEMO_DIR/mock.out" 2> /dev/null && break; sleep 0.05; done
mock_port=$(sed -n 's/^port=//p' "$DEMO_DIR/mock.out")
control=127.0.0.1:$(sed -n 's/^control_port=//p' "$DEMO_DIR/mock.out")
[ -n "$mock_port" ] || { cat "$DEMO_DIR/mock.err" >&2; die "mock-push-server did not start"; }
say "mock push server (APNs + FCM over HTTP/2 + TLS) on 127.0.0.1:$mock_port, pid $mock_pid"

db_started=1
bash tests/daemon/mariadb-tmp.sh start "$DEMO_DIR/db" --innodb-buffer-pool-size=64M \
  > "$DEMO_DIR/db.out"
db_port=$(sed -n 's/^port=//p' "$DEMO_DIR/db.out")
say "MariaDB on 127.0.0.1:$db_port (data in $DEMO_DIR/db; password in a 0600 file)"

# The app's key files, in the daemon's push.credentials_dir, mode 0600 (the
# daemon refuses anything else). The FCM service account points its
# token_uri at the mock.
creds="$DEMO_DIR/credentials"
(
  umask 077
  mkdir -p "$creds"
  cp "$pki/apns.p8" "$creds/apns.p8"
  jq -n --rawfile key "$pki/fcm.key" --arg uri "https://localhost:$mock_port/token" '{
    type: "service_account", project_id: "leakscope-demo", private_key_id: "demo",
    private_key: $key, client_email: "push@leakscope-demo.iam.gserviceaccount.com",
    client_id: "1", token_uri: $uri}' > "$creds/fcm-service-account.json"
)
printf '%s\n' '{"apns":{"aps":{"alert":{"title":"Evening event","body":"starts in 10 minutes"}}},' \
  '"fcm":{"notification":{"title":"Evening event","body":"starts in 10 minutes"}}}' \
  > "$DEMO_DIR/payload.json"

# write_config NAME DRILL: the daemon's configuration for one run.
write_config() {
  local name=$1 drill=$2
  mkdir -p "$DEMO_DIR/$name"
  cat > "$DEMO_DIR/$name/pushdaemon.toml" << TOML
[daemon]
http_address = "127.0.0.1:0"
poll_interval_ms = 50
log_level = "info"
leak_drill = $drill
[database]
host = "127.0.0.1"
port = $db_port
user = "pushdaemon"
password_file = "$DEMO_DIR/db/db-password"
[sending]
page_size = 500
[push]
credentials_dir = "$creds"
[apns]
host = "localhost"
port = $mock_port
connect_address = "127.0.0.1"
ca_file = "$pki/ca.pem"
max_connections = $max_conns
# few streams per connection, so that every schedule fills its pool
max_streams = 10
[fcm]
host = "localhost"
port = $mock_port
connect_address = "127.0.0.1"
oauth_connect_address = "127.0.0.1"
ca_file = "$pki/ca.pem"
max_connections = 2
[diag]
snapshot_dir = "$DEMO_DIR/$name/snapshots"
TOML
}
write_config setup false
admin() { build/bin/pushdaemon-admin --config "$DEMO_DIR/setup/pushdaemon.toml" "$@"; }
admin migrate > /dev/null
app=$(admin add-app game --apns-key-file "$creds/apns.p8" --apns-key-id ABC123DEFG \
  --apns-team-id DEF123GHIJ --apns-topic com.example.game \
  --fcm-service-account "$creds/fcm-service-account.json" | sed -n 's/^app_id=//p')
admin generate-tokens "$app" apns "$apns_tokens" > /dev/null
admin generate-tokens "$app" fcm "$fcm_tokens" > /dev/null
say "app 'game' (id $app): $apns_tokens APNs + $fcm_tokens FCM device tokens"

metric() {  # SCRAPE SERIES -> value (0 when absent)
  awk -v s="$2" '$1 == s { v = $2 } END { print (v == "" ? 0 : v) + 0 }' <<< "$1"
}

# analyse DIR SHOWN SNAPSHOT...: `leakscope trend` on the snapshots (the
# text shown, the JSON in DIR/trend.json) and the HTML report in
# DIR/report.html; sets TREND_STATUS (trend's exit status, 0 or 1).
analyse() {
  local dir=$1 shown=$2
  shift 2
  echo
  say "\$ leakscope trend --survivors 4 $shown"
  TREND_STATUS=0
  build/bin/leakscope trend --survivors 4 "$@" > "$dir/trend.txt" || TREND_STATUS=$?
  sed -e "s|$DEMO_DIR/||g" -e 's/^/  /' "$dir/trend.txt"
  [ "$TREND_STATUS" -le 1 ] || die "leakscope trend failed (exit $TREND_STATUS)"
  build/bin/leakscope trend --json --survivors 1000 "$@" > "$dir/trend.json" || true
  build/bin/leakscope report --html "$dir/report.html" "$@" > /dev/null || true
  if [ "$keep_dir" = 1 ]; then
    say "HTML report: $dir/report.html"
  else
    say "HTML report written ($(stat -c %s "$dir/report.html") bytes; set DEMO_DIR to keep it)"
  fi
}

# run NAME DRILL: one daemon, $schedules schedules, a snapshot after each,
# then the analysis; sets VERDICT.
run() {
  local name=$1 drill=$2
  local dir="$DEMO_DIR/$name"
  local flags=()
  write_config "$name" false
  [ "$drill" = true ] && flags=(--leak-drill)
  step "$name: pushdaemon ${flags[*]:-(no drill)}, $schedules schedules, kill -USR2 after each"
  build/bin/pushdaemon --config "$dir/pushdaemon.toml" "${flags[@]}" \
    > "$dir/daemon.out" 2> "$dir/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 200); do
    grep -q '^pushdaemon pid=' "$dir/daemon.out" 2> /dev/null && break
    kill -0 "$daemon_pid" 2> /dev/null || { cat "$dir/daemon.log" >&2; die "pushdaemon exited"; }
    sleep 0.05
  done
  local http
  http=$(sed -n 's/.*http=\([^ ]*\).*/\1/p' "$dir/daemon.out")
  [ -n "$http" ] || { cat "$dir/daemon.log" >&2; die "pushdaemon did not start"; }
  say "started: $(head -1 "$dir/daemon.out")"
  grep -m1 'LEAK DRILL ON' "$dir/daemon.log" | sed 's/^/  log: /' || true

  local i sid state t0 t1 m n
  for i in $(seq "$schedules"); do
    t0=$(date +%s.%N)
    sid=$(admin add-schedule "$app" "$DEMO_DIR/payload.json" | sed -n 's/^schedule_id=//p')
    state=""
    for _ in $(seq 600); do
      state=$(admin status "$sid" | sed -n 's/^state=//p')
      [ "$state" = "done" ] || [ "$state" = failed ] && break
      kill -0 "$daemon_pid" 2> /dev/null || { tail "$dir/daemon.log" >&2; die "pushdaemon died"; }
      sleep 0.1
    done
    [ "$state" = "done" ] || { tail "$dir/daemon.log" >&2; die "schedule $sid: state '$state'"; }
    t1=$(date +%s.%N)
    m=$(curl -fsS "http://$http/metrics")
    kill -USR2 "$daemon_pid"
    for _ in $(seq 100); do
      n=$(find "$dir/snapshots" -name '*.lsnap' 2> /dev/null | wc -l)
      [ "$n" -ge "$i" ] && break
      sleep 0.05
    done
    [ "$n" -ge "$i" ] || die "snapshot $i was not written"
    say "$(printf 'schedule %d/%d (id %s) done in %.1f s; open APNs connections %d (tracked %d); mock sees %d; kill -USR2 -> snapshot %d' \
      "$i" "$schedules" "$sid" "$(echo "$t1 - $t0" | bc -l)" \
      "$(metric "$m" pushdaemon_apns_upstream_cx_active)" \
      "$(metric "$m" 'leakscope_tracked_objects{kind="apns.connection"}')" \
      "$(curl -fsS "http://$control/control/stats" | jq .open_connections)" "$i")"
  done
  if [ "$drill" = true ]; then
    grep 'LEAK DRILL: schedule' "$dir/daemon.log" | tail -1 | sed 's/^/  log: /'
  fi
  kill -TERM "$daemon_pid"
  wait "$daemon_pid" || die "pushdaemon exited with status $?"
  daemon_pid=""
  say "pushdaemon stopped (SIGTERM, exit 0); mock now sees $(curl -fsS "http://$control/control/stats" | jq .open_connections) open connections"

  local snaps=("$dir"/snapshots/*.lsnap)
  analyse "$dir" "$name/snapshots/*.lsnap" "${snaps[@]}"
  local status=$TREND_STATUS
  # The verdict, read from the JSON (not from the table above).
  local live
  live=$(for f in "${snaps[@]}"; do
    jq '[.tracked[] | select(.kind == "apns.connection") | .live] | add // 0' "$f"
  done | paste -sd' ')
  VERDICT=$(jq -r --argjson status "$status" --arg port "$mock_port" --arg live "$live" \
    --arg max "$max_conns" '
    (.suspects | map(select(.group == "tracked" and .name == "apns.connection")) | .[0]) as $c
    | ([.suspects[] | select(.group != "tracked" or .name != "apns.connection") | .name]
       | join(", ")) as $others
    | if $status == 1 and $c != null then
        ($c.survivors | map(.socket | capture(" -> (?<peer>[^ ]+) (?<state>[A-Z_]+)$"))) as $s
        | (.chains[0] // {}) as $top
        | "leakscope trend exit 1: "
          + (if $top.summary then "\($top.summary)"
               + (if $top.held_by then " (held by \($top.held_by))" else "" end) + "; " else "" end)
          + "\($c.name) \($c.verdict), \($c.objects | map(tostring) | join(" -> ")) live"
          + " (+\($c.growth_objects_per_interval) per schedule; pool max \($max)); \($c.survivor_count) survivors from the first"
          + " snapshot, \([$s[] | select(.state == "ESTABLISHED" and .peer == "127.0.0.1:" + $port)] | length)"
          + " of them ESTABLISHED to the push server 127.0.0.1:\($port); also flagged: \($others)"
      elif $status == 1 then
        "leakscope trend exit 1 but apns.connection is not a suspect: \($others)"
      else
        "leakscope trend exit \($status): \(.suspects | length) suspects over \(.inputs | length)"
          + " snapshots; apns.connection live per snapshot: \($live) (pool max \($max))"
      end' "$dir/trend.json")
}

# run_node: the seed replayed in Node (leak mode), its snapshots read by
# leakscope; sets VERDICT.
run_node() {
  local dir="$DEMO_DIR/node"
  step "node: the seed replayed in Node (leak mode), $node_schedules schedules of $node_sessions HTTP/2 sessions, kill -USR2 after each"
  if ! command -v node > /dev/null 2>&1; then
    VERDICT="skipped: no node on PATH (scripts/setup.sh installs Debian's nodejs)"
    say "$VERDICT"
    return
  fi
  say "node $(node --version) --heapsnapshot-signal=SIGUSR2 diag/examples/node/seed_replay.js --mode leak"
  mkdir -p "$dir"
  python3 tests/node/replay.py --out "$dir" --mode leak --schedules "$node_schedules" \
    --sessions "$node_sessions" 2>&1 > "$dir/replay.out" | sed 's/^replay: /demo: /' \
    || die "the Node replay failed"
  local snaps=("$dir"/Heap.*.heapsnapshot)
  [ "${#snaps[@]}" -eq "$node_schedules" ] || die "the Node replay left ${#snaps[@]} snapshots"
  analyse "$dir" "node/Heap.*.heapsnapshot" "${snaps[@]}"
  local status=$TREND_STATUS
  # The verdict, read from the JSON. ClientHttp2Session is the class the
  # replay's sessions have (tests/node: node.seed_trend_names_the_session_class).
  VERDICT=$(jq -r --argjson status "$status" --arg k "$node_sessions" '
    "ClientHttp2Session" as $name
    | (.suspects | map(select(.group == "class" and .name == $name)) | .[0]) as $c
    | ((.suspects[0].name) // "none") as $first
    | ([.suspects[] | select(.name != $name) | .name]) as $others
    | ([(.suspects + .not_suspects + (.uncertain // []))[] | select(.name == "(string)")]
       | .[0].verdict // "flat") as $strings
    | if $status == 1 and $c != null then
        "leakscope trend exit 1: \($c.name) \($c.verdict)"
          + (if $first == $name then " (first suspect)" else " (first suspect: \($first))" end)
          + ", \($c.objects | map(tostring) | join(" -> ")) live (+\($c.growth_objects_per_interval)"
          + " per schedule; \($k) sessions per schedule); \($c.survivor_count) survivors from the"
          + " first snapshot, retained via \(($c.retainers // [])[0].path // "?" | split(" → ") | if length > 8 then [.[0], "…"] + .[-6:] else . end | join(" → ")); the results"
          + " string'"'"'s class (string): \($strings); also flagged: \($others | length) classes"
          + (if ($others | length) > 0 then " (\($others[:4] | join(", "))\(if ($others | length) > 4 then ", …" else "" end))" else "" end)
      elif $status == 1 then
        "leakscope trend exit 1 but \($name) is not a suspect: \($others | join(", "))"
      else
        "leakscope trend exit \($status): \(.suspects | length) suspects over \(.inputs | length)"
          + " snapshots; \($name) is not flagged"
      end' "$dir/trend.json")
}

run drill true
drill_verdict=$VERDICT
run normal false
normal_verdict=$VERDICT
run_node
node_verdict=$VERDICT
echo
say "$(printf 'wall time after set-up and build: %.0f s' "$(echo "$(date +%s.%N) - $t_start" | bc -l)")"
[ "$keep_dir" = 1 ] && say "kept $DEMO_DIR: snapshots, trend output, HTML reports, logs"

step "verdicts (from leakscope trend --json)"
echo "verdict drill: $drill_verdict"
echo "verdict normal: $normal_verdict"
echo "verdict node: $node_verdict"
