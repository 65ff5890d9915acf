#!/usr/bin/env node
'use strict';
// A client that opens TLS connections to a local server and never closes
// them, for the capture ⋈ heap snapshot join (tests/node/capture_join_test.py,
// docs/run-and-capture.md). Plain Node >= 18, no npm packages.
//
//   node --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR tls_holder.js \
//     --cert CERT.pem --key KEY.pem
//
// The TLS server is this script run as `tls_holder.js server` in a child
// process, so its sockets are neither in the client's heap nor among its
// fds. The certificate is made by the caller (openssl).
//
// The server listens on two ports: the held connections go to the first,
// a spike's to the second, so that a capture's socket groups tell them apart.
//
// Protocol with the caller (stdin/stdout, line by line):
//   stdout `pid=PID port=PORT spike_port=PORT2`   once the server listens
//   stdin  `open K`              opens K more connections and keeps them
//                                (a list in user code);
//   stdin  `spike K`             opens K connections to the second port,
//                                kept until `drop`;
//   stdin  `drop`                destroys the spike's connections and waits
//                                until their fds are closed;
//   each answered by stdout `held=H spike=S` once every connection is
//   established (or closed), after a full GC when started with --expose-gc;
//   stdin  `exit` (or EOF)       exits 0.

const fs = require('node:fs');
const tls = require('node:tls');
const readline = require('node:readline');
const {fork} = require('node:child_process');

function option(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : '';
}

function listen() {
  const server = tls.createServer(
      {key: fs.readFileSync(option('--key')), cert: fs.readFileSync(option('--cert'))},
      (socket) => socket.on('error', () => {}));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function runServer() {
  const ports = [];
  for (let i = 0; i < 2; ++i) ports.push((await listen()).address().port);
  process.send({ports});
  process.on('disconnect', () => process.exit(0));
}

function connect(port, ca) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({host: '127.0.0.1', port, ca, servername: 'localhost'},
                               () => resolve(socket));
    socket.once('error', reject);
  });
}

async function openMany(n, port, ca) {
  const out = [];
  for (let i = 0; i < n; ++i) out.push(await connect(port, ca));
  return out;
}

function closeAll(sockets) {
  return Promise.all(sockets.map((s) => new Promise((resolve) => {
    s.once('close', resolve);
    s.destroy();
  })));
}

async function runClient() {
  const ca = fs.readFileSync(option('--cert'));
  const server = fork(__filename, ['server', ...process.argv.slice(2)], {stdio: 'inherit'});
  const [port, spikePort] =
      await new Promise((resolve) => server.once('message', (m) => resolve(m.ports)));
  const held = [];  // never closed: what the join must find
  let spike = [];
  console.log(`pid=${process.pid} port=${port} spike_port=${spikePort}`);
  const answer = () => {
    if (global.gc) global.gc();
    console.log(`held=${held.length} spike=${spike.length}`);
  };
  const rl = readline.createInterface({input: process.stdin});
  for await (const line of rl) {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd === 'open') {
      held.push(...await openMany(Number(arg), port, ca));
    } else if (cmd === 'spike') {
      spike = await openMany(Number(arg), spikePort, ca);
    } else if (cmd === 'drop') {
      await closeAll(spike);
      spike = [];
    } else if (cmd === 'exit') {
      break;
    } else {
      console.log(`unknown command ${line}`);
      continue;
    }
    answer();
  }
  server.disconnect();
  process.exit(0);
}

if (process.argv[2] === 'server') {
  runServer();
} else {
  runClient().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
