#!/usr/bin/env python3
"""The `node.*` ctests (issue #14): the seed replayed in Node
(diag/examples/node/seed_replay.js, run by replay.py) and read by leakscope,
checked against an independent reading of the same files (v8snap.py).

  node_test.py CASE LEAKSCOPE_BINARY

CASE is one of the names in CASES. Exit 0 pass, 1 fail (each failed check on
stderr), 77 skip when no `node` is on PATH.
"""

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replay  # noqa: E402
import v8snap  # noqa: E402

SCHEDULES = 4
SESSIONS = 3
BIG_STRING = 1 << 20  # the results string is 4 MiB; nothing else in the heap is near 1 MiB


class Check:
    """Collects failed expectations, so one run reports all of them."""

    def __init__(self):
        self.failures = []

    def expect(self, ok, what):
        if not ok:
            self.failures.append(what)
        return ok


def leakscope(binary, *args):
    """(exit status, parsed JSON stdout) of one leakscope run."""
    p = subprocess.run([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=300)
    try:
        out = json.loads(p.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"leakscope {' '.join(args[:2])}: exit {p.returncode}, not JSON: "
                             f"{p.stdout[:300]!r} stderr {p.stderr.strip()[:500]!r}")
    return p.returncode, out


def session_class(snap):
    """The class the provider's sessions really have, found in the graph:
    Provider --sessions--> Array --[i]--> the sessions."""
    classes = set()
    for n in range(snap.count):
        if snap.class_name(n) != "Provider":
            continue
        for e in range(snap.first_edge[n], snap.first_edge[n + 1]):
            if snap.edge_label(e) != "sessions":
                continue
            array = snap.edge_to[e]
            for e2 in range(snap.first_edge[array], snap.first_edge[array + 1]):
                if snap.edge_types[snap.edge_type[e2]] == "element":
                    classes.add(snap.class_name(snap.edge_to[e2]))
    if len(classes) != 1:
        raise AssertionError(f"the providers' sessions have classes {classes}, expected one")
    return classes.pop()


def all_groups(trend):
    return trend.get("suspects", []) + trend.get("not_suspects", []) + trend.get("uncertain", [])


def find_group(groups, name):
    return next((g for g in groups if g.get("group") == "class" and g.get("name") == name), None)


def check_big_string(c, snaps, trend):
    """The results string of the big push (schedule 2, replay's --results-at
    default): in that snapshot only, and its class `transient`, never a
    suspect, the string no survivor."""
    per_snapshot = []
    for snap in snaps:
        per_snapshot.append({snap.id[i]: snap.class_name(i) for i in range(snap.count)
                             if snap.self_size[i] >= BIG_STRING})
    ids = [i for big in per_snapshot for i in big]
    c.expect([len(big) for big in per_snapshot] == [0, 1] + [0] * (len(snaps) - 2),
             f"replay: one big results string, in the second snapshot only: {per_snapshot}")
    for cls in {cls for big in per_snapshot for cls in big.values()}:
        c.expect(find_group(trend["suspects"], cls) is None,
                 f"the results string's class {cls} is a suspect")
        g = find_group(all_groups(trend), cls)
        if c.expect(g is not None, f"the results string's class {cls} is in no group"):
            c.expect(g.get("verdict") == "transient",
                     f"{cls}: verdict {g.get('verdict')}, expected transient ({g.get('reason')})")
            for s in g.get("survivors", []):
                c.expect(s.get("id") not in ids, f"{cls}: results string {s.get('id')} a survivor")


def case_seed_trend(binary, work):
    """Leak mode: trend exits 1, its first suspect is the session class,
    growing by exactly K per schedule, the survivors are the first
    schedule's K sessions, the big string's class is no suspect."""
    files = replay.run_replay(work, "leak", SCHEDULES, SESSIONS)
    snaps = [v8snap.Snapshot(f) for f in files]
    cls = session_class(snaps[-1])
    counts, survivors = v8snap.series(snaps, cls)
    c = Check()
    # The replay itself, read independently: K more sessions per schedule,
    # none from before the first (the warm-up closes its own).
    c.expect(counts == [SESSIONS * (i + 1) for i in range(SCHEDULES)],
             f"replay: {cls} per snapshot {counts}, expected +{SESSIONS} per schedule from 0")
    status, trend = leakscope(binary, "trend", "--json", "--survivors", "100000", *files)
    c.expect(status == 1, f"trend exit {status}, expected 1 (a suspect)")
    suspects = trend.get("suspects", [])
    first = suspects[0] if suspects else {}
    c.expect(first.get("group") == "class" and first.get("name") == cls,
             f"first suspect {first.get('group')}/{first.get('name')}, expected class/{cls}")
    g = find_group(suspects, cls)
    if c.expect(g is not None, f"{cls} is not a suspect"):
        c.expect(g.get("verdict") == "steady", f"{cls} verdict {g.get('verdict')}")
        c.expect(g.get("objects") == counts, f"{cls} objects {g.get('objects')}, counted {counts}")
        c.expect(g.get("survivor_count") == len(survivors) == counts[0],
                 f"{cls} survivor_count {g.get('survivor_count')}, counted {len(survivors)} "
                 f"(the first schedule's {counts[0]})")
        got = sorted(s.get("id") for s in g.get("survivors", []))
        c.expect(got == survivors, f"{cls} survivor ids {got}, counted {survivors}")
    check_big_string(c, snaps, trend)
    # The report: the same verdict, the session class's charts and the
    # paths that hold its survivors.
    html = os.path.join(work, "report.html")
    status, _ = leakscope(binary, "report", "--json", "--html", html, *files)
    c.expect(status == 1, f"report exit {status}, expected 1")
    page = open(html, encoding="utf-8").read() if os.path.exists(html) else ""
    c.expect(f'data-group="class" data-name="{cls}"' in page, f"report: no suspect block for {cls}")
    c.expect("Retained by" in page and "Provider.sessions" in page,
             "report: no retaining path through Provider.sessions")
    return c


def case_fixed(binary, work):
    """Fixed mode (sessions closed): trend exits 0 with no suspect."""
    files = replay.run_replay(work, "fixed", SCHEDULES, SESSIONS)
    c = Check()
    status, trend = leakscope(binary, "trend", "--json", *files)
    names = [f"{g.get('group')}/{g.get('name')}" for g in trend.get("suspects", [])]
    c.expect(status == 0, f"trend exit {status}, expected 0; suspects {names}")
    c.expect(not names, f"suspects in the fixed replay: {names}")
    return c


def through_timer(path):
    return "Timeout" in path and "_onTimeout" in path


def retainer_paths(doc):
    """Every (path, count) in leakscope's retainers JSON, wherever nested."""
    found = []
    if isinstance(doc, dict):
        if isinstance(doc.get("path"), str):
            found.append((doc["path"], doc.get("count", 0)))
        for v in doc.values():
            found += retainer_paths(v)
    elif isinstance(doc, list):
        for v in doc:
            found += retainer_paths(v)
    return found


def case_timer(binary, work):
    """Timer mode: nothing in user code holds the providers, an interval
    timer does; the retaining paths leakscope prints for the sessions go
    through the timer (trend's retainers[] and `leakscope retainers`)."""
    files = replay.run_replay(work, "timer", SCHEDULES, SESSIONS)
    last = v8snap.Snapshot(files[-1])
    cls = session_class(last)
    c = Check()
    # The replay, read independently: every session's shortest path (as
    # DevTools measures distance) goes through a Timeout.
    targets = [i for i, k in last.counted() if k == cls]
    mine = [" → ".join(f"{label} {k}" for label, k in p or []) for p in
            last.shortest_paths(targets).values()]
    c.expect(len(targets) == SESSIONS * SCHEDULES and all(through_timer(p) for p in mine),
             f"replay: {len(targets)} {cls}, paths {collections.Counter(mine).most_common(3)}")
    status, trend = leakscope(binary, "trend", "--json", *files)
    c.expect(status == 1, f"trend exit {status}, expected 1")
    g = find_group(trend.get("suspects", []), cls)
    if c.expect(g is not None, f"{cls} is not a suspect"):
        paths = [r.get("path", "") for r in g.get("retainers", [])]
        c.expect(paths and all(through_timer(p) for p in paths),
                 f"trend retainers of {cls} not through the timer: {paths}")
        shown = sum(r.get("count", 0) for r in g.get("retainers", []))
        c.expect(0 < shown <= (g.get("survivor_count") or 0),
                 f"trend retainers count {shown} survivors of {g.get('survivor_count')}")
    status, doc = leakscope(binary, "retainers", files[-1], "--class", cls, "--json")
    found = retainer_paths(doc)
    c.expect(status == 0, f"retainers exit {status}")
    c.expect(found and all(through_timer(p) for p, _ in found),
             f"`leakscope retainers --class {cls}` paths not through the timer: {found}")
    shown = sum(n for _, n in found)
    c.expect(0 < shown <= len(targets),
             f"`leakscope retainers` counts add up to {shown}, {len(targets)} {cls} in the file")
    return c


def case_diff(binary, work):
    """`diff A B` per class New/Deleted/Delta (and the self sizes behind
    Alloc./Freed) equal an independent count by id with Python's json."""
    files = replay.run_replay(work, "leak", SCHEDULES, SESSIONS)
    c = Check()
    for a, b in ((files[0], files[1]), (files[0], files[-1])):
        base, target = v8snap.Snapshot(a), v8snap.Snapshot(b)
        want = expected_diff(base, target)
        status, doc = leakscope(binary, "diff", a, b, "--json", "--top", "100000")
        c.expect(status in (0, 1), f"diff exit {status}")
        rows = {r["name"]: r for r in doc.get("rows", []) if r.get("group") == "class"}
        pair = f"{os.path.basename(a)} → {os.path.basename(b)}"
        for cls, (new, deleted, alloc, freed) in sorted(want.items()):
            r = rows.get(cls)
            if not c.expect(r is not None or (new, deleted) == (0, 0), f"{pair}: no row {cls}"):
                continue
            if r is None:
                continue
            got = (r.get("new"), r.get("deleted"), r.get("delta"), r.get("alloc_bytes"),
                   r.get("freed_bytes"))
            c.expect(got == (new, deleted, new - deleted, alloc, freed),
                     f"{pair} {cls}: new/deleted/delta/alloc/freed {got}, counted "
                     f"{(new, deleted, new - deleted, alloc, freed)}")
            c.expect(r.get("basis") == "ids", f"{pair} {cls}: basis {r.get('basis')}")
        extra = sorted(set(rows) - set(want))
        c.expect(not extra, f"{pair}: rows for classes in neither file: {extra[:10]}")
        # Guards the comparison above against checking nothing.
        cls = session_class(target)
        c.expect(want.get(cls, (0,))[0] > 0, f"{pair}: no new {cls} between the snapshots")
    return c


def expected_diff(base, target):
    """class -> (new, deleted, alloc bytes, freed bytes), by id."""
    a, b = base.ids_by_class(), target.ids_by_class()
    out = {}
    for cls in set(a) | set(b):
        ia, ib = a.get(cls, {}), b.get(cls, {})
        new = [i for i in ib if i not in ia]
        gone = [i for i in ia if i not in ib]
        out[cls] = (len(new), len(gone), sum(ib[i] for i in new), sum(ia[i] for i in gone))
    return out


CASES = {
    "seed_trend_names_the_session_class": case_seed_trend,
    "fixed_replay_is_clean": case_fixed,
    "timer_retainers_go_through_the_timer": case_timer,
    "diff_matches_an_independent_count": case_diff,
}


def run_main(cases, script, tools=("node",)):
    """The main of a test script: runs the case argv[1] names with the
    leakscope binary argv[2] in a temporary directory; exit 0 pass, 1 fail
    (each failure on stderr), 2 usage, 77 skip when a tool is missing."""
    if len(sys.argv) != 3 or sys.argv[1] not in cases:
        print(f"usage: {script} {{{'|'.join(cases)}}} LEAKSCOPE", file=sys.stderr)
        return 2
    for tool in tools:
        if shutil.which(tool) is None:
            hint = " (scripts/setup.sh installs Debian's nodejs)" if tool == "node" else ""
            print(f"SKIP: no {tool} on PATH{hint}")
            return replay.SKIP
    with tempfile.TemporaryDirectory(prefix="leakscope-node-") as work:
        try:
            check = cases[sys.argv[1]](sys.argv[2], work)
        except (AssertionError, replay.ReplayError, subprocess.SubprocessError, OSError) as e:
            print(f"FAIL: {e}", file=sys.stderr)
            return 1
    for f in check.failures:
        print(f"FAIL: {f}", file=sys.stderr)
    if not check.failures:
        print(f"PASS: {sys.argv[1]}")
    return 1 if check.failures else 0


def main():
    return run_main(CASES, "node_test.py")


if __name__ == "__main__":
    sys.exit(main())
