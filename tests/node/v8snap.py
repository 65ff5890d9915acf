#!/usr/bin/env python3
"""An independent reading of V8 .heapsnapshot files with Python's json module,
to check leakscope's figures against (tests/node/node_test.py) and to verify
the Node replay itself. Deliberately simple and slow: whole-file json.load,
plain lists. Not shared with the C++ reader in any way.

Class names follow Chrome DevTools' `calculateObjectNames` (see
/docs/v8-graph.md): hidden -> (system), object and native -> the node's
name, code -> (compiled code), closure -> Function, regexp -> RegExp, any
other type T -> (T). Objects whose self size is 0 are not counted (DevTools'
Summary and Comparison skip them).

  v8snap.py summary F.heapsnapshot [--top N]    per class objects, self bytes
  v8snap.py series F1 F2 ...  [--class NAME]    per class count per snapshot,
                                                survivors by id
  v8snap.py paths F.heapsnapshot --class NAME   shortest retaining paths
"""

import argparse
import collections
import json
import sys


class Snapshot:
    """One snapshot's graph as column lists, fields indexed through `meta`."""

    def __init__(self, path):
        with open(path, encoding="utf-8", errors="surrogatepass") as f:
            doc = json.load(f)
        meta = doc["snapshot"]["meta"]
        nf = meta["node_fields"]
        ef = meta["edge_fields"]
        self.node_types = meta["node_types"][0]
        self.edge_types = meta["edge_types"][0]
        self.strings = doc["strings"]
        nodes = doc["nodes"]
        edges = doc["edges"]
        n_fields = len(nf)
        e_fields = len(ef)
        self.count = len(nodes) // n_fields
        if self.count != doc["snapshot"]["node_count"]:
            raise ValueError(f"{path}: {self.count} nodes, header says "
                             f"{doc['snapshot']['node_count']}")

        def column(array, width, field):
            return array[field::width]

        self.type = column(nodes, n_fields, nf.index("type"))
        self.name = column(nodes, n_fields, nf.index("name"))
        self.id = column(nodes, n_fields, nf.index("id"))
        self.self_size = column(nodes, n_fields, nf.index("self_size"))
        edge_count = column(nodes, n_fields, nf.index("edge_count"))
        self.edge_type = column(edges, e_fields, ef.index("type"))
        self.edge_name = column(edges, e_fields, ef.index("name_or_index"))
        self.edge_to = [t // n_fields for t in column(edges, e_fields, ef.index("to_node"))]
        self.first_edge = [0] * (self.count + 1)
        for i, c in enumerate(edge_count):
            self.first_edge[i + 1] = self.first_edge[i] + c
        if self.first_edge[-1] != len(self.edge_to):
            raise ValueError(f"{path}: edge counts add up to {self.first_edge[-1]}, "
                             f"edges hold {len(self.edge_to)}")

    def class_name(self, i):
        kind = self.node_types[self.type[i]]
        if kind == "hidden":
            return "(system)"
        if kind in ("object", "native"):
            return self.strings[self.name[i]]
        if kind == "code":
            return "(compiled code)"
        if kind == "closure":
            return "Function"
        if kind == "regexp":
            return "RegExp"
        return f"({kind})"

    def counted(self):
        """(index, class) of every node DevTools counts (self size > 0)."""
        for i in range(self.count):
            if self.self_size[i] > 0:
                yield i, self.class_name(i)

    def ids_by_class(self):
        """class -> {id: self size} over the counted nodes."""
        out = collections.defaultdict(dict)
        for i, cls in self.counted():
            out[cls][self.id[i]] = self.self_size[i]
        return out

    def edge_label(self, e):
        kind = self.edge_types[self.edge_type[e]]
        name = self.edge_name[e]
        if kind in ("element", "hidden"):
            return f"[{name}]"
        return self.strings[name]

    def shortest_paths(self, targets):
        """Shortest retaining paths as DevTools measures distance: first a
        breadth-first search from the user roots (the root's non-synthetic
        children, e.g. `global`), then one from the root for what that did
        not reach; weak edges, and shortcut edges except the root's, are not
        followed. For each target index the list of (edge label, class)
        steps from the root to it, or None when unreachable."""
        weak = self.edge_types.index("weak") if "weak" in self.edge_types else -1
        shortcut = self.edge_types.index("shortcut") if "shortcut" in self.edge_types else -1
        synthetic = self.node_types.index("synthetic")
        parent = {0: None}

        def bfs(starts):
            queue = collections.deque(starts)
            while queue:
                n = queue.popleft()
                for e in range(self.first_edge[n], self.first_edge[n + 1]):
                    to = self.edge_to[e]
                    kind = self.edge_type[e]
                    if kind == weak or (kind == shortcut and n != 0) or to in parent:
                        continue
                    parent[to] = (n, e)
                    queue.append(to)

        user_roots = []
        for e in range(self.first_edge[0], self.first_edge[1]):
            to = self.edge_to[e]
            if self.type[to] != synthetic and to not in parent:
                parent[to] = (0, e)
                user_roots.append(to)
        bfs(user_roots)
        bfs([0])
        paths = {}
        for t in targets:
            if t not in parent:
                paths[t] = None
                continue
            steps = []
            n = t
            while parent[n] is not None:
                p, e = parent[n]
                steps.append((self.edge_label(e), self.class_name(n)))
                n = p
            paths[t] = list(reversed(steps))
        return paths


def diff(base, target):
    """DevTools' Comparison by id per class: {class: (new, deleted, delta)}."""
    a = base.ids_by_class()
    b = target.ids_by_class()
    out = {}
    for cls in set(a) | set(b):
        ids_a = set(a.get(cls, {}))
        ids_b = set(b.get(cls, {}))
        new = len(ids_b - ids_a)
        deleted = len(ids_a - ids_b)
        out[cls] = (new, deleted, new - deleted)
    return out


def series(snapshots, cls):
    """Count per snapshot of cls, and the ids present in every snapshot."""
    counts = []
    survivors = None
    for snap in snapshots:
        ids = set(snap.ids_by_class().get(cls, {}))
        counts.append(len(ids))
        survivors = ids if survivors is None else survivors & ids
    return counts, sorted(survivors or [])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summary")
    s.add_argument("file")
    s.add_argument("--top", type=int, default=25)
    t = sub.add_parser("series")
    t.add_argument("files", nargs="+")
    t.add_argument("--class", dest="cls", action="append", default=[])
    p = sub.add_parser("paths")
    p.add_argument("file")
    p.add_argument("--class", dest="cls", required=True)
    p.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    if args.cmd == "summary":
        snap = Snapshot(args.file)
        by = snap.ids_by_class()
        rows = sorted(by.items(), key=lambda kv: -sum(kv[1].values()))
        for cls, ids in rows[:args.top]:
            print(f"{len(ids):8d} {sum(ids.values()):10d}  {cls}")
    elif args.cmd == "series":
        snaps = [Snapshot(f) for f in args.files]
        for cls in args.cls:
            counts, survivors = series(snaps, cls)
            print(f"{cls}: objects {counts} survivors {len(survivors)} {survivors}")
    else:
        snap = Snapshot(args.file)
        targets = [i for i, c in snap.counted() if c == args.cls]
        shapes = collections.Counter()
        for steps in snap.shortest_paths(targets).values():
            shapes[" → ".join(f"{label} {cls}" for label, cls in steps) if steps else "-"] += 1
        for shape, n in shapes.most_common(args.top):
            print(f"{n:5d}  {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
