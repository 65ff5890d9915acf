#!/usr/bin/env python3
"""Runs the seed's replay in Node (diag/examples/node/seed_replay.js) and
leaves its heap snapshots in a directory: one `kill -USR2` after each
schedule (node --heapsnapshot-signal=SIGUSR2), waiting for each snapshot file
to be complete before the replay goes on. Used by the `node.*` ctests
(tests/node/node_test.py), scripts/demo.sh and docs/node.md.

  replay.py --out DIR [--mode leak|fixed|timer] [--schedules N] [--sessions K]

prints `snapshot PATH` per snapshot, in order, and exits 0; exit 77 when no
`node` is on PATH (ctest's skip code), 1 on any failure (the reason on
stderr). Python 3 standard library only.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "diag", "examples", "node", "seed_replay.js")
SKIP = 77


class ReplayError(Exception):
    pass


def node_binary():
    """The `node` on PATH (Debian's nodejs installs it as node), or None."""
    return shutil.which("node")


def make_certificate(directory):
    """A self-signed P-256 certificate for localhost (the APNs stand-in's)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return cert, key


def snapshot_complete(path):
    """V8 writes `strings` last and ends the object with `]}`: a file that
    ends so (trailing whitespace aside) is complete."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16))
            return f.read().rstrip().endswith(b"]}")
    except OSError:
        return False


def wait_for_snapshot(directory, known, process, timeout):
    """The one new Heap.*.heapsnapshot in directory, once complete and its
    size stable over two polls."""
    deadline = time.monotonic() + timeout
    last_size = -1
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ReplayError(f"node exited ({process.returncode}) before its snapshot was written")
        new = sorted(f for f in os.listdir(directory)
                     if f.startswith("Heap.") and f.endswith(".heapsnapshot") and f not in known)
        if len(new) > 1:
            raise ReplayError(f"more than one new snapshot: {new}")
        if new:
            path = os.path.join(directory, new[0])
            size = os.path.getsize(path)
            if size == last_size and snapshot_complete(path):
                return path
            last_size = size
        time.sleep(0.05)
    raise ReplayError(f"no complete snapshot in {directory} after {timeout} s")


def read_line(process, expect):
    line = process.stdout.readline()
    if not line:
        try:
            process.wait(10)  # stdout closed: the process is ending
            err = process.stderr.read().strip()
        except subprocess.TimeoutExpired:
            err = "(stdout closed, still running)"
        raise ReplayError(f"node ended before '{expect}' (exit {process.returncode}): {err}")
    if not line.startswith(expect):
        raise ReplayError(f"expected '{expect}…' from the replay, got {line.strip()!r}")
    return line.strip()


def run_replay(out, mode="leak", schedules=4, sessions=3, requests=3, results_mb=4,
               timeout=60, log=None, warmup=2, node_flags=()):
    """Runs one replay with its snapshots in `out` (created); returns their
    paths in order. `log(line)` sees the replay's progress lines."""
    node = node_binary()
    if node is None:
        raise ReplayError("no node on PATH")
    os.makedirs(out, exist_ok=True)
    out = os.path.abspath(out)
    # Beside the snapshots, not among them (`leakscope trend DIR` reads DIR).
    pki = os.path.join(out, "pki")
    os.makedirs(pki, exist_ok=True)
    cert, key = make_certificate(pki)
    known = set(os.listdir(out))
    cmd = [node, "--heapsnapshot-signal=SIGUSR2", f"--diagnostic-dir={out}", "--expose-gc",
           *node_flags, SCRIPT, "--warmup", str(warmup), "--cert", cert, "--key", key,
           "--mode", mode, "--schedules", str(schedules),
           "--sessions", str(sessions), "--requests", str(requests),
           "--results-mb", str(results_mb)]
    process = subprocess.Popen(cmd, cwd=out, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    snapshots = []
    try:
        read_line(process, "pid=")
        for i in range(1, schedules + 1):
            if i > 1:
                process.stdin.write("continue\n")
                process.stdin.flush()
            done = read_line(process, f"schedule {i} done")
            process.send_signal(signal.SIGUSR2)
            path = wait_for_snapshot(out, known, process, timeout)
            known.add(os.path.basename(path))
            snapshots.append(path)
            if log:
                log(f"{done} -> {os.path.basename(path)}")
        process.stdin.write("continue\n")
        read_line(process, "finished")
        process.stdin.write("exit\n")
        process.stdin.flush()
        if process.wait(timeout) != 0:
            raise ReplayError(f"node exited {process.returncode}: {process.stderr.read().strip()}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return snapshots


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory for the snapshots")
    parser.add_argument("--mode", choices=["leak", "fixed", "timer"], default="leak")
    parser.add_argument("--schedules", type=int, default=4)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--results-mb", type=int, default=4)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args()
    if node_binary() is None:
        print("replay: SKIP: no node on PATH (scripts/setup.sh installs Debian's nodejs)",
              file=sys.stderr)
        return SKIP
    log = None if args.quiet else (lambda line: print(f"replay: {line}", file=sys.stderr))
    try:
        snapshots = run_replay(args.out, args.mode, args.schedules, args.sessions, args.requests,
                               args.results_mb, log=log)
    except (ReplayError, subprocess.CalledProcessError, OSError) as e:
        print(f"replay: {e}", file=sys.stderr)
        return 1
    for path in snapshots:
        print(f"snapshot {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
