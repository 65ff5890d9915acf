#!/usr/bin/env python3
"""The stages' include graph: arrows point down only (docs/architecture.md).

Every #include of a source file under diag/ and daemon/ is resolved the way
the build resolves it (beside the file, then the public include roots); the
stage of the file it lands in must be one the including stage may use.
A quoted include that resolves nowhere is a violation too: a header the
build finds only through some target's private include path is not allowed
to cross a stage.

  check_layering.py ROOT              check the tree; exit 1 on a violation
  check_layering.py --self-test ROOT  plant a forbidden include in a copy of
                                      the tree; exit 0 only if it is caught
"""
import os
import re
import shutil
import sys
import tempfile

# Stage of a path (first match wins) and what each stage may include.
STAGES = [
    ("diag/core/", "core"),
    ("diag/runtime/", "runtime"),
    ("diag/analysis/", "analysis"),
    ("diag/cli/", "cli"),
    ("diag/examples/", "examples"),
    ("diag/preload/", "preload"),
    ("daemon/push/", "push"),
    ("daemon/", "daemon"),
]
ALLOWED = {
    "core": {"core"},
    "runtime": {"core", "runtime"},
    "analysis": {"core", "analysis"},
    "cli": {"core", "analysis", "cli"},
    "examples": {"core", "runtime", "examples"},
    "preload": {"core", "runtime", "preload"},
    "push": {"core", "runtime", "push"},
    "daemon": {"core", "runtime", "push", "daemon"},
}
# Single headers a stage may include from a stage it may not otherwise use.
# The CLI's `capture` collects from another process by the runtime's rules,
# through leakscope::collect — the runtime's half without tcmalloc (its
# headers below): the CLI must never include what would make it run on
# tcmalloc or carry the daemon-side machinery (runtime.h, tracked.h, ...).
ALLOWED_FILES = {
    "cli": {
        "diag/runtime/include/leakscope/diag/capture.h",
        "diag/runtime/include/leakscope/diag/snapshot_info.h",
        "diag/runtime/include/leakscope/diag/result.h",
        # `run` starts the watcher (leakscope::collect) beside the program.
        "diag/runtime/include/leakscope/diag/watcher.h",
    },
}
# Public include roots, as the targets export them.
INCLUDE_ROOTS = [
    "diag/core/include",
    "diag/runtime/include",
    "diag/analysis/include",
    "daemon/push/include",
]
# Private include paths: a stage's own src/, seen only by that stage's files.
PRIVATE_ROOTS = {
    "runtime": ["diag/runtime/src"],
    "analysis": ["diag/analysis/src"],
    "cli": ["diag/cli/src"],
    "preload": ["diag/preload/src"],
    "push": ["daemon/push/src"],
    "daemon": ["daemon/src"],
}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def stage_of(rel):
    for prefix, stage in STAGES:
        if rel.startswith(prefix):
            return stage
    return None


def sources(root):
    for top in ("diag", "daemon"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if f.endswith((".h", ".cc")):
                    yield os.path.relpath(os.path.join(dirpath, f), root)


def resolve(root, including, target, quoted):
    candidates = []
    if quoted:
        candidates.append(os.path.join(os.path.dirname(including), target))
    roots = PRIVATE_ROOTS.get(stage_of(including), []) + INCLUDE_ROOTS
    candidates += [os.path.join(r, target) for r in roots]
    for c in candidates:
        if os.path.isfile(os.path.join(root, c)):
            return os.path.normpath(c)
    return None


def violations(root):
    found = []
    for rel in sources(root):
        stage = stage_of(rel)
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for line_no, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                quoted, target = m.group(1) == '"', m.group(2)
                # Generated in the build tree, beside the daemon's sources.
                if quoted and target == "schema_sql.h" and stage == "daemon":
                    continue
                dest = resolve(root, rel, target, quoted)
                if dest is None:
                    if quoted or target.startswith("leakscope/"):
                        spelled = f'"{target}"' if quoted else f"<{target}>"
                        found.append(f"{rel}:{line_no}: #include {spelled} resolves neither "
                                     f"beside the file nor under an include root {stage} may use")
                    continue  # a system or third-party header
                to = stage_of(dest)
                if to not in ALLOWED[stage] and dest not in ALLOWED_FILES.get(stage, ()):
                    found.append(f"{rel}:{line_no}: {stage} -> {to}: includes {dest}; "
                                 f"{stage} may include only {', '.join(sorted(ALLOWED[stage]))}"
                                 + (f" (and {', '.join(sorted(ALLOWED_FILES[stage]))})"
                                    if stage in ALLOWED_FILES else ""))
    return found


def self_test(root):
    # Each plant must be caught, and named with its file and edge.
    plants = [
        ("diag/core/src/heap_profile_text.cc", '#include "leakscope/diag/runtime.h"', "core -> runtime"),
        ("diag/analysis/src/model.cc", '#include "leakscope/diag/tracked.h"', "analysis -> runtime"),
        ("diag/analysis/src/model.cc", '#include "render.h"', "resolves neither"),
        ("diag/runtime/src/tracked.cc", '#include "leakscope/analysis/model.h"', "runtime -> analysis"),
        ("daemon/push/src/pool.cc", '#include "store.h"', "resolves neither"),
        ("diag/cli/src/capture_command.cc", '#include "leakscope/diag/runtime.h"', "cli -> runtime"),
        ("diag/preload/src/agent.cc", '#include "leakscope/analysis/model.h"', "preload -> analysis"),
    ]
    ok = True
    for path, include, expect in plants:
        with tempfile.TemporaryDirectory() as tmp:
            for rel in sources(root):
                dst = os.path.join(tmp, rel)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(os.path.join(root, rel), dst)
            with open(os.path.join(tmp, path), "a", encoding="utf-8") as f:
                f.write("\n" + include + "\n")
            got = violations(tmp)
            hit = [v for v in got if v.startswith(path + ":") and expect in v]
            print(f"planted {include} in {path}: {'caught' if hit else 'MISSED'}"
                  + (f" ({hit[0]})" if hit else ""))
            ok = ok and bool(hit) and len(got) == 1
    return 0 if ok else 1


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        return self_test(argv[2])
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    found = violations(argv[1])
    for v in found:
        print(v)
    n = sum(1 for _ in sources(argv[1]))
    print(f"{len(found)} layering violation(s) in {n} files")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
