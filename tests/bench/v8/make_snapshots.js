// A series of big V8 heap snapshots with one known leak, for
// scripts/bench.sh v8 (never run in CI: a 500 MB snapshot takes tens of
// seconds and a few GB of memory to write). Node only, no packages.
//
//   node --max-old-space-size=8192 make_snapshots.js DIR [--count N] [--mb MB]
//        [--leak N] [--churn N]
//
// Writes N snapshots (default 3) of about MB megabytes each (default 500)
// into DIR, named as Node's --heapsnapshot-signal names them
// (Heap.YYYYMMDD.HHMMSS.PID.0.SEQ.heapsnapshot), so a series sorts by name
// for leakscope and memlab alike. The heap holds:
//   - the leak: `LeakedConnection` objects, --leak more before every
//     snapshot (snapshot k holds k × leak), all retained by one
//     `ConnectionRegistry` (registry.connections), which nothing ever clears;
//   - ballast: `BallastRecord` objects with their own strings and small
//     arrays, built once and identical in every snapshot: it makes the files
//     big and must never show up as growing;
//   - churn: --churn `PendingRequest` objects replaced before every snapshot
//     (same count, new ids), so a comparison by id sees New and Deleted rows
//     that are not a leak.
// The amount of ballast is calibrated at start: two small snapshots measure
// the file bytes per ballast record on this Node, then the ballast is sized so
// that the first snapshot comes out at about MB megabytes.
//
// Prints key=value lines on stdout (what was written, how long it took) and
// progress on stderr.
'use strict';
const fs = require('fs');
const path = require('path');
const v8 = require('v8');

function parseArgs(argv) {
  const opts = { dir: null, count: 3, mb: 500, leak: 1000, churn: 20000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    if (a === '--count') opts.count = value();
    else if (a === '--mb') opts.mb = value();
    else if (a === '--leak') opts.leak = value();
    else if (a === '--churn') opts.churn = value();
    else if (!a.startsWith('--') && opts.dir === null) opts.dir = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (opts.dir === null) throw new Error('usage: make_snapshots.js DIR [--count N] [--mb MB] [--leak N] [--churn N]');
  return opts;
}

// The leak. Each connection holds about 1 KiB, all in its own object: 128
// small-integer fields, which V8 keeps inside the object (no strings, arrays
// or objects of another class that would grow with it). So the class that
// grows by exactly `leak` per snapshot, in count, self and retained size, is
// this one, and it holds enough to matter in a 500 MB heap. The class is
// generated because V8 sizes an object from the assignments its constructor
// spells out; a loop with computed keys would give a dictionary instead.
const kFields = 128;
const LeakedConnection = new Function(
    `return class LeakedConnection { constructor(n) { ${
        Array.from({ length: kFields }, (_, i) => `this.f${i} = (n + ${i}) & 0x3fffffff;`).join(' ')} } };`)();

class ConnectionRegistry {
  constructor() {
    this.connections = [];
  }
}

class BallastRecord {
  constructor(n, parent) {
    this.n = n;
    this.label = `ballast record ${n} ${'x'.repeat(n % 17)}`;
    this.tags = [n & 7, n & 15, `t${n % 1000}`];
    this.parent = parent;
  }
}

class PendingRequest {
  constructor(n) {
    this.n = n;
    this.path = `/3/device/${n}`;
  }
}

const registry = new ConnectionRegistry();
const ballast = []; // chunks of BallastRecord, so no single array is huge
let pending = [];
let nextConnection = 0;
let nextRequest = 0;

function addBallast(records) {
  const chunk = 10000;
  let parent = null;
  for (let made = 0; made < records; made += chunk) {
    const part = [];
    for (let i = 0; i < Math.min(chunk, records - made); i++) {
      parent = new BallastRecord(ballast.length * chunk + i, i % 64 === 0 ? null : parent);
      part.push(parent);
    }
    ballast.push(part);
  }
}

function step(leak, churn) {
  for (let i = 0; i < leak; i++) registry.connections.push(new LeakedConnection(nextConnection++));
  pending = [];
  for (let i = 0; i < churn; i++) pending.push(new PendingRequest(nextRequest++));
}

// Node's own name for a snapshot taken by --heapsnapshot-signal.
function nodeName(seq) {
  const d = new Date();
  const p = (v, w = 2) => String(v).padStart(w, '0');
  const date = `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}`;
  const time = `${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
  return `Heap.${date}.${time}.${process.pid}.0.${p(seq, 3)}.heapsnapshot`;
}

function write(file) {
  if (global.gc) global.gc();
  const t0 = process.hrtime.bigint();
  v8.writeHeapSnapshot(file);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { seconds, bytes: fs.statSync(file).size };
}

// File bytes per ballast record, from two small snapshots: with the heap as
// it is, then with `probe` more records (removed again afterwards).
function calibrate(dir) {
  const probe = 200000;
  const file = path.join(dir, '.calibrate.tmp');
  const before = write(file).bytes;
  addBallast(probe);
  const after = write(file).bytes;
  fs.unlinkSync(file);
  ballast.length = 0;
  return { base: before, perRecord: (after - before) / probe };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  fs.mkdirSync(opts.dir, { recursive: true });
  const t0 = Date.now();
  const cal = calibrate(opts.dir);
  const records = Math.max(0, Math.round((opts.mb * 1e6 - cal.base) / cal.perRecord));
  process.stderr.write(
      `make_snapshots: ${cal.perRecord.toFixed(1)} file bytes per ballast record; ` +
      `${records} records for ~${opts.mb} MB\n`);
  addBallast(records);
  const files = [];
  let writeSeconds = 0;
  for (let k = 1; k <= opts.count; k++) {
    step(opts.leak, opts.churn);
    const file = path.join(opts.dir, nodeName(k));
    const w = write(file);
    writeSeconds += w.seconds;
    files.push(file);
    process.stderr.write(
        `make_snapshots: ${path.basename(file)} ${(w.bytes / 1e6).toFixed(0)} MB in ` +
        `${w.seconds.toFixed(1)} s (LeakedConnection: ${registry.connections.length})\n`);
  }
  console.log(`snapshots=${files.length}`);
  console.log(`ballast_records=${records}`);
  console.log(`leak_per_snapshot=${opts.leak}`);
  console.log(`write_seconds=${writeSeconds.toFixed(1)}`);
  console.log(`total_seconds=${((Date.now() - t0) / 1000).toFixed(1)}`);
  console.log(`peak_rss_mb=${(process.resourceUsage().maxRSS / 1024).toFixed(0)}`);
}

try {
  main();
} catch (e) {
  process.stderr.write(`make_snapshots: ${e.message}\n`);
  process.exit(2);
}
