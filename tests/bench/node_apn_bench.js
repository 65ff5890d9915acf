// node-apn (npm @parse/node-apn, the seed story's client) against
// mock-push-server, for scripts/bench.sh transport. Token auth from the .p8
// file; one provider = one HTTP/2 connection; STREAMS sends in flight at any
// time (a sliding window: as one finishes the next starts), the same number
// of concurrent streams our client gets. Handing all notifications to one
// provider.send() is not an option: Node's HTTP/2 session refuses streams
// beyond its memory budget (ENHANCE_YOUR_CALM). Prints key=value lines like
// push_bench.
//
//   NODE_PATH=.../node_modules node node_apn_bench.js PORT CA P8 KEY_ID TEAM_ID REQUESTS WARMUP STREAMS
'use strict';
const apn = require('@parse/node-apn');
const fs = require('fs');

const [port, ca, key, keyId, teamId, requests, warmup, streams] = process.argv.slice(2);
const token = 'a'.repeat(64);

async function main() {
  const provider = new apn.Provider({
    token: { key, keyId, teamId },
    address: '127.0.0.1', // the certificate names 127.0.0.1
    port: Number(port),
    ca: fs.readFileSync(ca),
    production: false,
    requestTimeout: 60000,
  });
  const note = new apn.Notification();
  note.topic = 'com.example.app';
  note.pushType = 'alert';
  note.alert = { title: 'leakscope', body: 'benchmark' };

  // Sends n notifications with `streams` in flight; resolves to the number sent.
  const send = async n => {
    let started = 0;
    let ok = 0;
    const worker = async () => {
      while (started < n) {
        started++;
        const { sent, failed } = await provider.send(note, token);
        ok += sent.length;
        if (failed.length > 0 && process.env.BENCH_DEBUG) console.error(JSON.stringify(failed[0]));
      }
    };
    await Promise.all(Array.from({ length: Number(streams) }, worker));
    return ok;
  };
  await send(Number(warmup));
  const n = Number(requests);
  const start = process.hrtime.bigint();
  const ok = await send(n);
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  await provider.shutdown();
  console.log(`notifications_per_second=${Math.round(n / secs)}`);
  console.log(`succeeded=${ok}`);
  process.exitCode = ok === n ? 0 : 1;
}

main().catch(e => {
  console.error(`node_apn_bench: ${e.message}`);
  process.exit(2);
});
