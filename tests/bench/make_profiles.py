#!/usr/bin/env python3
"""Writes a pair of large gperftools heap profiles (format `heapprofile`) for
`scripts/bench.sh diff`: STACKS distinct stacks of real function addresses of
BINARY, as if BINARY had run as a PIE at a fixed base, with a MAPPED_LIBRARIES
section built from its program headers, so leakscope and google-pprof both
symbolize them against the real file.

Usage: make_profiles.py BINARY OUTDIR STACKS
Writes OUTDIR/base.heap and OUTDIR/target.heap (target: 10% of the stacks
grew, 5% are new, 5% are gone)."""
import os
import random
import subprocess
import sys

BASE = 0x555555554000


def functions(binary):
    out = subprocess.run(["nm", "--defined-only", "-n", "-S", binary], check=True,
                         capture_output=True, text=True).stdout
    fns = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW" and int(parts[1], 16) > 4:
            fns.append((int(parts[0], 16), int(parts[1], 16)))
    return fns


def mappings(binary):
    out = subprocess.run(["readelf", "-lW", binary], check=True, capture_output=True,
                         text=True).stdout
    lines = []
    for line in out.splitlines():
        f = line.split()
        if not f or f[0] != "LOAD":
            continue
        offset, vaddr, memsz = int(f[1], 16), int(f[2], 16), int(f[5], 16)
        flags = "".join(f[6:-1])
        start = BASE + (vaddr & ~0xFFF)
        end = BASE + ((vaddr + memsz + 0xFFF) & ~0xFFF)
        perms = ("r" if "R" in flags else "-") + ("w" if "W" in flags else "-") + \
                ("x" if "E" in flags else "-") + "p"
        lines.append("%x-%x %s %08x fd:01 4242 %s" % (start, end, perms, offset & ~0xFFF, binary))
    return lines


def main():
    binary, outdir, count = os.path.abspath(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    rng = random.Random(42)
    fns = functions(binary)
    maps = "\n".join(mappings(binary))
    stacks = []
    for _ in range(count):
        depth = rng.randint(6, 16)
        stack = []
        for _ in range(depth):
            addr, size = rng.choice(fns)
            stack.append(BASE + addr + rng.randrange(1, size))
        stacks.append(stack)
    base = [(rng.randint(1, 50), rng.choice([16, 64, 256, 4096])) for _ in stacks]

    def write(path, records):
        tot = [0, 0, 0, 0]
        body = []
        for (objs, size, allocs), stack in records:
            inuse, alloc = objs * size, allocs * size
            tot = [tot[0] + objs, tot[1] + inuse, tot[2] + allocs, tot[3] + alloc]
            body.append("%6d: %8d [%6d: %8d] @ %s" % (objs, inuse, allocs, alloc,
                                                      " ".join("0x%x" % a for a in stack)))
        with open(path, "w") as f:
            f.write("heap profile: %6d: %8d [%6d: %8d] @ heapprofile\n" % tuple(tot))
            f.write("\n".join(body))
            f.write("\n\nMAPPED_LIBRARIES:\n" + maps + "\n")

    write(outdir + "/base.heap", [((n, s, n * 2), st) for (n, s), st in zip(base, stacks)])
    target = []
    for i, ((n, s), st) in enumerate(zip(base, stacks)):
        r = i % 20
        if r == 0:
            target.append(((0, s, n * 2), st))  # all freed: in use 0, allocations stay
            continue
        grow = n * 3 if r < 3 else n
        target.append(((grow, s, n * 2 + grow + 5), st))
    for i in range(count // 20):  # new stacks
        depth = rng.randint(6, 16)
        st = [BASE + a + rng.randrange(1, sz) for a, sz in (rng.choice(fns) for _ in range(depth))]
        target.append(((10, 128, 10), st))
    write(outdir + "/target.heap", target)


if __name__ == "__main__":
    main()
