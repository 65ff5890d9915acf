#!/bin/bash
# Every function of the non-test sources fits the style guide's size rule:
# clang-tidy's readability-function-size with the thresholds in .clang-tidy
# (100 lines, 60 statements), over each diag/ and daemon/ translation unit of
# this build (and the project headers they include). Exits 1 naming each
# function over the limit; a source clang-tidy cannot parse fails too, so the
# check cannot pass by not running.
# Usage: function_size.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
tidy=$(command -v clang-tidy || true)
if [ -z "$tidy" ]; then
  echo "clang-tidy is not installed (scripts/setup.sh installs it)" >&2
  exit 1
fi
mapfile -t files < <(python3 - "$src" "$build/compile_commands.json" <<'PY'
import json, os, sys
src = os.path.realpath(sys.argv[1])
seen = set()
for e in json.load(open(sys.argv[2])):
    f = os.path.realpath(os.path.join(e["directory"], e["file"]))
    rel = os.path.relpath(f, src)
    if rel.startswith(("diag/", "daemon/")) and f not in seen:
        seen.add(f)
        print(f)
PY
)
if [ "${#files[@]}" -lt 40 ]; then
  echo "only ${#files[@]} sources in $build/compile_commands.json: is it the whole build?" >&2
  exit 1
fi
out=$(printf '%s\n' "${files[@]}" |
  xargs -P "${LEAKSCOPE_TIDY_JOBS:-2}" -n 4 "$tidy" -p "$build" --quiet 2>&1)
rc=$?
over=$(grep -E 'warning:|error:' <<<"$out" | sort -u)
if [ -n "$over" ] || [ $rc -ne 0 ]; then
  grep -E 'warning:|error:|note: [0-9]+ (lines|statements)' <<<"$out" | sort -u
  echo "function size: $(grep -c 'readability-function-size' <<<"$over") function(s) over the limit in ${#files[@]} sources (clang-tidy exit $rc)"
  exit 1
fi
echo "function size: every function of ${#files[@]} sources within 100 lines and 60 statements"
