#!/usr/bin/env node
'use strict';
// The seed's incident, replayed in its own language: a push daemon that sends
// notifications to an APNs stand-in over HTTP/2 + TLS, one "schedule" after
// another, and (in leak mode) never shuts its per-schedule provider down.
// Plain Node >= 18, no npm packages. Used by tests/node/replay.py (the
// ctests `node.*`), scripts/demo.sh and docs/node.md.
//
//   node --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR seed_replay.js \
//     --cert CERT.pem --key KEY.pem [--mode leak|fixed|timer] [--schedules N]
//     [--sessions K] [--requests R] [--results-mb M] [--results-at I]
//     [--warmup W] [--heartbeat-ms MS]
//     (defaults: leak, 4, 3, 3, 4, 2, 2, 60000)
//
// Modes (also REPLAY_MODE in the environment):
//   leak   each schedule creates a Provider that opens K sessions
//          (http2.connect) and is never shut down; a user-code list
//          (`providers`) holds every provider, so K ClientHttp2Session objects
//          are added per schedule and none goes away (the seed's bug).
//   fixed  the provider closes its sessions (session.close()) when the
//          schedule is done and nothing keeps it: nothing grows.
//   timer  nothing in user code keeps the providers, but each has a
//          setInterval heartbeat (as node-apn's Endpoint does) that is never
//          cleared: the timer keeps the provider and its sessions alive.
//
// The APNs stand-in is this script run as `seed_replay.js server` in a child
// process (so its server-side sessions are not in the daemon's heap); the
// certificate is self-signed for "localhost", made by the caller (openssl).
//
// Every schedule also builds a "results" string (the per-token results
// UPDATE the seed's daemon wrote back), kept in `lastResults` until the next
// schedule starts. Schedule --results-at (default 2; 0: none) is the big
// push: its results are --results-mb MB, the others' a few KB. So, as in the
// seed, a big string is in one snapshot only and gone in the next
// (transient, never a leak).
//
// Protocol with the caller (stdin/stdout, line by line):
//   stdout `pid=PID`                  at start
//   stdout `schedule I done sessions=K held_open=O results_bytes=B`
//                                     (held_open: sessions still open in the
//                                     providers list, leak mode),
//                                     after schedule I (1-based, warm-up not
//                                     counted), then the daemon waits; the
//                                     caller may `kill -USR2 PID` and wait for
//                                     the snapshot file to be complete,
//   stdin  `continue`                 runs the next schedule,
//   stdout `finished`                 after the last one, then it waits for
//   stdin  `exit` (or EOF)            and exits 0.
// The warm-up (--warmup W, default 2) runs W schedules before the first
// reported one, always closing their sessions (whatever the mode), so the
// snapshots are not dominated by start-up (module loading, compiled code,
// the TLS context) and the first snapshot holds exactly one schedule's
// leaked sessions. Started with --expose-gc, the daemon runs a full GC
// before printing `schedule I done` (V8 also collects before writing a
// snapshot; the early GC only makes the printed counts settle sooner).

const http2 = require('node:http2');
const fs = require('node:fs');
const readline = require('node:readline');
const {fork} = require('node:child_process');

function parseArgs(argv) {
  const opts = {
    mode: process.env.REPLAY_MODE || 'leak',
    schedules: 4,
    sessions: 3,
    requests: 3,
    resultsMb: 4,
    resultsAt: 2,
    warmup: 2,
    cert: '',
    key: '',
    heartbeatMs: 60000,
  };
  const numeric = {
    '--schedules': 'schedules',
    '--sessions': 'sessions',
    '--requests': 'requests',
    '--results-mb': 'resultsMb',
    '--results-at': 'resultsAt',
    '--warmup': 'warmup',
    '--heartbeat-ms': 'heartbeatMs',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag}: missing value`);
    if (flag === '--mode') opts.mode = value;
    else if (flag === '--cert') opts.cert = value;
    else if (flag === '--key') opts.key = value;
    else if (numeric[flag]) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag}: not a count: ${value}`);
      opts[numeric[flag]] = n;
    } else throw new Error(`unknown option ${flag}`);
  }
  if (!['leak', 'fixed', 'timer'].includes(opts.mode)) {
    throw new Error(`--mode: leak, fixed or timer, not ${opts.mode}`);
  }
  if (!opts.cert || !opts.key) throw new Error('--cert and --key are required');
  return opts;
}

// ---- the APNs stand-in (child process) -------------------------------------

function runServer(argv) {
  const opts = parseArgs(argv);
  const server = http2.createSecureServer({
    cert: fs.readFileSync(opts.cert),
    key: fs.readFileSync(opts.key),
  });
  server.on('stream', (stream, headers) => {
    // Drain the body, answer as APNs does: 200 and an apns-id.
    stream.on('data', () => {});
    stream.on('end', () => {
      stream.respond({':status': 200, 'apns-id': `id-${headers[':path'].slice(-8)}`});
      stream.end();
    });
  });
  server.listen(0, '127.0.0.1', () => process.send({port: server.address().port}));
  // The daemon's exit closes the IPC channel: go with it.
  process.on('disconnect', () => process.exit(0));
}

// ---- the daemon ------------------------------------------------------------

// One per schedule, as the seed's daemon made one APNs client per schedule.
// Holds K HTTP/2 sessions; shutdown() is what the buggy daemon never called.
class Provider {
  constructor(authority, ca, sessionCount, heartbeatMs) {
    this.sessions = [];
    for (let i = 0; i < sessionCount; i++) {
      const session = http2.connect(authority, {ca, servername: 'localhost'});
      // A failed session must not crash the replay silently: report and exit.
      session.on('error', (err) => fail(`session ${i}: ${err.message}`));
      this.sessions.push(session);
    }
    this.heartbeat = null;
    if (heartbeatMs > 0) {
      // node-apn's Endpoint pings on an interval cleared only by destroy().
      this.heartbeat = setInterval(this.ping.bind(this), heartbeatMs);
    }
  }

  ping() {
    for (const session of this.sessions) session.ping(() => {});
  }

  send(session, token) {
    return new Promise((resolve, reject) => {
      const req = session.request({
        ':method': 'POST',
        ':path': `/3/device/${token}`,
        'apns-topic': 'com.example.game',
      });
      req.on('response', () => {});
      req.on('data', () => {});
      req.on('end', resolve);
      req.on('error', reject);
      req.end(JSON.stringify({aps: {alert: {title: 'Evening event'}}}));
    });
  }

  async sendAll(requestsPerSession, schedule) {
    const sends = [];
    this.sessions.forEach((session, s) => {
      for (let r = 0; r < requestsPerSession; r++) {
        sends.push(this.send(session, `${schedule}-${s}-${r}`.padStart(64, '0')));
      }
    });
    await Promise.all(sends);
  }

  shutdown() {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    return Promise.all(this.sessions.map((s) => new Promise((done) => s.close(done))));
  }
}

// The per-token results the seed's daemon wrote back in one UPDATE: several
// MB in one flat string, alive only until the next schedule starts.
function buildResults(schedule, bytes) {
  const row = `(${String(schedule).padStart(6, '0')},'sent'),`;
  const rows = new Array(Math.floor(bytes / row.length)).fill(row);
  // join() makes one flat string (one node in the snapshot, self size = its
  // length); `+` and repeat() would make a tree of concatenated strings.
  return `UPDATE device_tokens SET state = CASE id ${rows.join('')}`;
}

function fail(message) {
  process.stderr.write(`seed_replay: ${message}\n`);
  process.exit(1);
}

function startServer(opts) {
  const child = fork(__filename, ['server', '--cert', opts.cert, '--key', opts.key],
                     {execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc']});
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({child, port: m.port}));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

// Lines from stdin, one at a time, on request.
function lineReader() {
  const lines = [];
  const waiting = [];
  const rl = readline.createInterface({input: process.stdin});
  rl.on('line', (l) => (waiting.length ? waiting.shift()(l) : lines.push(l)));
  rl.on('close', () => {
    while (waiting.length) waiting.shift()(null);
    lines.push(null);
  });
  return () =>
    lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiting.push(r));
}

const providers = [];  // leak mode: the user-code list that keeps every provider
let lastResults = null;  // the big string, transient by design

async function runSchedule(opts, authority, ca, index, warmup) {
  lastResults = null;  // the previous schedule's results are garbage from here
  const leak = !warmup && opts.mode !== 'fixed';
  const heartbeat = !warmup && opts.mode === 'timer' ? opts.heartbeatMs : 0;
  const provider = new Provider(authority, ca, opts.sessions, heartbeat);
  await provider.sendAll(opts.requests, index);
  const big = index === opts.resultsAt;
  lastResults = buildResults(index, big ? opts.resultsMb << 20 : 4096);
  if (!leak) {
    await provider.shutdown();
    // A closed session is let go a tick after its 'close' (the socket's
    // own teardown): wait for that, so the snapshot shows it gone.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  else if (opts.mode === 'leak') providers.push(provider);
  // timer mode: dropped here; only its heartbeat still refers to it.
}

async function runDaemon(argv) {
  const opts = parseArgs(argv);
  const {child, port} = await startServer(opts);
  // A URL-like object made once, not a URL string: http2.connect() would
  // parse a string into new host and protocol strings for every session.
  const authority = {protocol: 'https:', hostname: 'localhost', port: String(port)};
  const ca = fs.readFileSync(opts.cert);
  const nextLine = lineReader();
  process.stdout.write(`pid=${process.pid}\n`);
  for (let w = 0; w < opts.warmup; w++) await runSchedule(opts, authority, ca, -1 - w, true);
  for (let i = 1; i <= opts.schedules; i++) {
    if (i > 1) {
      const line = await nextLine();
      if (line === null) break;
      if (line.trim() !== 'continue') fail(`expected "continue" on stdin, got "${line}"`);
    }
    await runSchedule(opts, authority, ca, i, false);
    if (global.gc) global.gc();
    const open = providers.reduce((n, p) => n + p.sessions.filter((s) => !s.closed).length, 0);
    process.stdout.write(`schedule ${i} done sessions=${opts.sessions} held_open=${open} ` +
                         `results_bytes=${lastResults.length}\n`);
  }
  process.stdout.write('finished\n');
  let line = await nextLine();
  while (line !== null && line.trim() !== 'exit') line = await nextLine();
  child.kill();
  process.exit(0);
}

const argv = process.argv.slice(2);
const main = argv[0] === 'server' ? () => runServer(argv.slice(1)) : () => runDaemon(argv);
Promise.resolve().then(main).catch((err) => fail(err.message));
