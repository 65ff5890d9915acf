#!/usr/bin/env python3
"""The `node.capture_*` ctests (issue #15 item 2): a Node process holding TLS
connections (tls_holder.js), V8 heap snapshots of it (--heapsnapshot-signal)
and captures of it from the outside (`leakscope capture`), read by leakscope and
checked against independent counts: the TLSSocket objects in each heap
snapshot (v8snap.py) and the ESTABLISHED sockets `ss -tanp` shows for the pid,
per remote endpoint.

  capture_join_test.py CASE LEAKSCOPE_BINARY

Exit 0 pass, 1 fail (each failed check on stderr), 77 skip without node, ss
or openssl.
"""

import collections
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import node_test  # noqa: E402
import replay  # noqa: E402
import v8snap  # noqa: E402

HOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tls_holder.js")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Per step: connections opened and kept, and a spike's (to the second port)
# opened before the step's files and dropped after them.
STEPS = [(3, 0), (3, 5), (3, 0), (3, 0)]


def ss_established(pid):
    """remote endpoint -> ESTABLISHED TCP sockets of pid, as `ss -tanp` shows them."""
    out = subprocess.run(["ss", "-tanp"], stdout=subprocess.PIPE, text=True, check=True).stdout
    counts = collections.Counter()
    for line in out.splitlines()[1:]:
        col = line.split()
        if col and col[0] == "ESTAB" and f"pid={pid}," in line:
            counts[col[4]] += 1
    return dict(counts)


class Holder:
    """tls_holder.js under --heapsnapshot-signal, driven step by step."""

    def __init__(self, work):
        self.work = work
        cert, key = replay.make_certificate(work)
        self.process = subprocess.Popen(
            ["node", "--heapsnapshot-signal=SIGUSR2", f"--diagnostic-dir={work}", "--expose-gc",
             HOLDER, "--cert", cert, "--key", key],
            cwd=work, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        fields = dict(f.split("=") for f in replay.read_line(self.process, "pid=").split())
        self.pid = int(fields["pid"])
        self.port = fields["port"]
        self.known = set(os.listdir(work))

    def send(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return replay.read_line(self.process, "held=")

    def heap_snapshot(self):
        self.process.send_signal(signal.SIGUSR2)
        path = replay.wait_for_snapshot(self.work, self.known, self.process, 60)
        self.known.add(os.path.basename(path))
        return path

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write("exit\n")
            self.process.stdin.flush()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def capture(binary, holder, with_heap):
    """`leakscope capture PID --out WORK`, with the heap snapshot at the same
    moment when asked (`--signal USR2 --wait 'WORK/Heap.*.heapsnapshot'`, as a
    user would run it): (capture path, heap snapshot path or None)."""
    args = ["capture", str(holder.pid), "--out", holder.work, "--json"]
    if with_heap:
        args += ["--signal", "USR2", "--wait", os.path.join(holder.work, "Heap.*.heapsnapshot")]
    status, out = node_test.leakscope(binary, *args)
    if status != 0:
        raise RuntimeError(f"leakscope {' '.join(args)}: exit {status}")
    return out["capture"], out["heap_snapshot"]


def run_steps(binary, work, with_heap=True):
    """Runs STEPS; per step (capture, heap snapshot or None, ss counts)."""
    holder = Holder(work)
    steps = []
    try:
        for keep, spike in STEPS:
            # Node names its heap snapshots to the second: a step a second
            # apart is one the join can place.
            time.sleep(1.1)
            holder.send(f"open {keep}")
            if spike:
                holder.send(f"spike {spike}")
            ss = ss_established(holder.pid)
            cap, heap = capture(binary, holder, with_heap)
            if with_heap and not (heap and os.path.getsize(heap) > 0):
                raise RuntimeError(f"capture --signal USR2 --wait gave no heap snapshot: {heap!r}")
            steps.append((cap, heap, ss))
            if spike:
                holder.send("drop")
    finally:
        holder.close()
    return holder, steps


def check_pair(c, pair, heap, ss, what):
    tls = len(v8snap.Snapshot(heap).ids_by_class().get("TLSSocket", {}))
    classes = {k["name"]: k["objects"] for k in pair.get("classes", [])}
    c.expect(classes.get("TLSSocket") == tls,
             f"{what}: join has {classes.get('TLSSocket')} TLSSocket, v8snap counts {tls}")
    groups = {g["name"].removeprefix("other (").removesuffix(")"): g["count"]
              for g in pair.get("groups", []) if g["state"] == "ESTABLISHED"}
    c.expect(groups == ss, f"{what}: join's ESTABLISHED groups {groups}, ss -tanp {ss}")
    c.expect(pair.get("heap_connections") == sum(ss.values()) and not pair.get("disagreements"),
             f"{what}: heap holds {pair.get('heap_connections')} TCP handles, ss shows "
             f"{sum(ss.values())}; disagreements {pair.get('disagreements')}")


def case_join(binary, work):
    """trend and report over heap snapshots and captures in one directory:
    each pair's TLSSocket count is v8snap's, its ESTABLISHED groups are
    ss's; the text names the last pair in one line."""
    holder, steps = run_steps(binary, work)
    c = node_test.Check()
    for command in (["trend", "--json", work], ["report", "--json", "--html",
                                                  os.path.join(work, "r.html"), work]):
        status, out = node_test.leakscope(binary, *command)
        c.expect(status == 1, f"{command[0]}: exit {status}, expected 1 (connections leak)")
        c.expect(out.get("mixed") is True, f"{command[0]}: not a mixed result")
        pairs = out.get("join", {}).get("pairs", [])
        c.expect(len(pairs) == len(steps), f"{command[0]}: {len(pairs)} pairs, {len(steps)} steps")
        for i, (pair, (cap, heap, ss)) in enumerate(zip(pairs, steps), start=1):
            c.expect(pair["heap"] == heap and pair["capture"] == cap,
                     f"{command[0]} step {i}: paired {pair['heap']} with {pair['capture']}")
            check_pair(c, pair, heap, ss, f"{command[0]} step {i}")
    held = sum(k for k, _ in STEPS)
    text = subprocess.run([binary, "trend", work], stdout=subprocess.PIPE, text=True).stdout
    line = (f"{held} TLSSocket alive in the heap, {held} ESTABLISHED sockets to "
            f"127.0.0.1:{holder.port}")
    c.expect(line in text, f"trend text lacks '{line}':\n{text[-800:]}")
    with open(os.path.join(work, "r.html"), encoding="utf-8") as f:
        c.expect(line in f.read(), f"report page lacks '{line}'")
    return c


def case_captures_trend(binary, work):
    """trend over the captures alone: the held connections' group is the
    suspect, the spike's group transient, no heap talk."""
    holder, steps = run_steps(binary, work, with_heap=False)
    c = node_test.Check()
    status, out = node_test.leakscope(binary, "trend", "--json", *[s[0] for s in steps])
    c.expect(status == 1, f"trend exit {status}, expected 1")
    names = [(s["group"], s["name"]) for s in out.get("suspects", [])]
    held = ("socket", f"other (127.0.0.1:{holder.port}) ESTABLISHED")
    c.expect(names == [held], f"suspects {names}, expected only {held}")
    spikes = [g for g in out.get("not_suspects", []) if g["name"].endswith("ESTABLISHED")]
    c.expect([g["verdict"] for g in spikes] == ["transient"],
             f"the spike's group: {[(g['name'], g['verdict']) for g in spikes]}")
    text = subprocess.run([binary, "trend", *[s[0] for s in steps]], stdout=subprocess.PIPE,
                          text=True).stdout
    c.expect("heap" not in text.lower(), f"trend over captures talks of a heap:\n{text}")
    return c


def case_mix_refused(binary, work):
    """A program's own snapshot beside a V8 heap snapshot: exit 2, one line
    naming both and saying what mixes."""
    holder = Holder(work)
    try:
        holder.send("open 1")
        heap = holder.heap_snapshot()
    finally:
        holder.close()
    lsnap = os.path.join(REPO, "tests", "data", "snapshots", "leak")
    p = subprocess.run([binary, "trend", lsnap, heap], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    c = node_test.Check()
    c.expect(p.returncode == 2, f"exit {p.returncode}, expected 2")
    err = p.stderr.strip()
    c.expect(len(err.splitlines()) == 1 and "mix only with captures" in err and
             f"{os.path.basename(heap)} (a V8 heap snapshot)" in err and
             "leakscope-example.000001.lsnap (a snapshot the program wrote itself" in err,
             f"stderr: {err!r}")
    return c


CASES = {
    "capture_join_counts_match": case_join,
    "capture_trend_names_the_socket_group": case_captures_trend,
    "capture_mix_with_program_snapshot_refused": case_mix_refused,
}


def main():
    return node_test.run_main(CASES, "capture_join_test.py", ("node", "ss", "openssl"))


if __name__ == "__main__":
    sys.exit(main())
