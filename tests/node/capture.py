#!/usr/bin/env python3
"""A capture of a process from the outside, written in the agreed format
(docs/run-and-capture.md: a leakscope-snapshot v1 with trigger "capture"),
read straight from /proc: its TCP sockets (/proc/PID/fd joined with
/proc/PID/net/tcp{,6} by inode), open fds, RSS, threads, start time.
Independent of leakscope's own capture code, so the join test checks one
against the other; `write_capture` is the one function that makes a capture
for the tests (swap in `leakscope capture PID --out DIR` there).

  capture.py PID OUT_DIR SEQ    prints the file written
"""

import json
import os
import socket
import struct
import sys
import time

# /proc/net/tcp's state codes (include/net/tcp_states.h).
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
              11: "CLOSING"}


def endpoint(hex_addr, v6):
    addr, port = hex_addr.split(":")
    raw = bytes.fromhex(addr)
    # The kernel prints each 32-bit word in host (little-endian) order.
    raw = b"".join(struct.pack("<I", w) for w in struct.unpack(f">{len(raw) // 4}I", raw))
    if v6:
        return f"[{socket.inet_ntop(socket.AF_INET6, raw)}]:{int(port, 16)}"
    return f"{socket.inet_ntop(socket.AF_INET, raw)}:{int(port, 16)}"


def tcp_table(pid):
    """inode -> (protocol, local, remote, state) from the process's netns."""
    out = {}
    for proto, v6 in (("tcp", False), ("tcp6", True)):
        try:
            with open(f"/proc/{pid}/net/{proto}") as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            col = row.split()
            state = TCP_STATES.get(int(col[3], 16), "UNKNOWN")
            remote = "" if state == "LISTEN" else endpoint(col[2], v6)
            out[int(col[9])] = (proto, endpoint(col[1], v6), remote, state)
    return out


def socket_fds(pid):
    fds = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            fds[int(target[8:-1])] = int(name)
    return fds, len(os.listdir(f"/proc/{pid}/fd"))


def process_figures(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    start = time.time() - uptime + int(fields[19]) / ticks
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.split()
    return {"pid": pid, "exe": os.readlink(f"/proc/{pid}/exe"),
            "start_time_unix": round(start, 2), "rss_bytes": int(status["VmRSS"][0]) * 1024,
            "threads": int(status["Threads"][0])}


def sockets_of(pid):
    table = tcp_table(pid)
    fds, open_fds = socket_fds(pid)
    listening = {local.rsplit(":", 1)[1] for proto, local, remote, state in table.values()
                 if state == "LISTEN"}
    out = []
    for inode, fd in sorted(fds.items(), key=lambda kv: kv[1]):
        if inode not in table:
            continue  # not TCP (unix, udp): the join counts TCP only
        proto, local, remote, state = table[inode]
        peer = "none" if not remote else (
            f"inbound :{local.rsplit(':', 1)[1]}" if local.rsplit(":", 1)[1] in listening
            else "other")
        out.append({"fd": fd, "inode": inode, "protocol": proto, "local": local,
                    "remote": remote, "state": state, "peer": peer, "owner": None})
    return out, open_fds


def write_capture(pid, out_dir, seq):
    """Captures `pid` into out_dir as <comm>.<pid>.<seq>.lsnap; returns the path."""
    with open(f"/proc/{pid}/comm") as f:
        comm = f.read().strip()
    process = process_figures(pid)
    sockets, open_fds = sockets_of(pid)
    process["open_fds"] = open_fds
    now = time.time_ns()
    doc = {
        "format": "leakscope-snapshot", "version": 1, "sequence": seq, "name": comm,
        "taken": {"unix_ns": now, "monotonic_ns": time.monotonic_ns(),
                  "utc": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now / 1e9)) + "Z"},
        "trigger": {"reason": "capture", "detail": f"pid {pid}"},
        "process": process,
        "allocator": {"available": False},
        "tracked": [],
        "sockets": sockets,
        "heap": {"mode": "off", "available": False,
                 "reason": "captured from outside the process: no heap profile"},
    }
    path = os.path.join(out_dir, f"{comm}.{pid}.{seq:06d}.lsnap")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


if __name__ == "__main__":
    print(write_capture(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
