#!/bin/bash
# leakscope as another project gets it: the library and CLI built alone
# (LEAKSCOPE_BUILD_DAEMON=OFF, no tests, no benchmarks) and `cmake --install`ed
# into a temp prefix; then a small outside project (consumer.cc) built against
# that prefix twice — with CMake's find_package(leakscope CONFIG) and with
# pkg-config — each run, each snapshot read by the installed `leakscope show`,
# which must find the consumer's 5 live consumer.session objects and its
# sampled heap.
# Usage: run.sh SOURCE_DIR
set -euo pipefail
src=$1
jobs=${LEAKSCOPE_JOBS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build=$work/build prefix=$work/prefix

cmake -S "$src" -B "$build" -DLEAKSCOPE_BUILD_DAEMON=OFF -DLEAKSCOPE_BUILD_TESTS=OFF \
  -DLEAKSCOPE_BUILD_BENCH=OFF >"$work/lib-configure.log" || { cat "$work/lib-configure.log"; exit 1; }
cmake --build "$build" -j"$jobs" >"$work/lib-build.log" || { cat "$work/lib-build.log"; exit 1; }
for t in pushdaemon leakscope_push; do
  if grep -q "^$t:" "$build/Makefile" 2>/dev/null; then
    echo "LEAKSCOPE_BUILD_DAEMON=OFF still defines $t"
    exit 1
  fi
done
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
for f in include/leakscope/diag/runtime.h include/leakscope/core/result.h \
  lib/cmake/leakscope/leakscope-config.cmake lib/pkgconfig/leakscope.pc bin/leakscope; do
  [ -e "$prefix/$f" ] || { echo "install: $prefix/$f is missing"; exit 1; }
done
# Nothing of the build or source tree leaks into what was installed.
if grep -rIl -e "$src" -e "$build" "$prefix/lib/cmake" "$prefix/lib/pkgconfig"; then
  echo "install: the files above name the build or source tree"
  exit 1
fi

check() {  # check HOW BINARY
  local how=$1 bin=$2 out
  mkdir -p "$work/snaps-$how"
  chmod 700 "$work/snaps-$how"
  TCMALLOC_SAMPLE_PARAMETER=65536 "$bin" "$work/snaps-$how"
  out=$("$prefix/bin/leakscope" show --json "$work"/snaps-"$how"/consumer.*.lsnap)
  python3 - "$how" "$out" <<'PY'
import json, sys
how, doc = sys.argv[1], json.loads(sys.argv[2])
kinds = {k["kind"]: k for k in doc["tracked"]}
s = kinds.get("consumer.session")
assert s is not None, f"{how}: no consumer.session in {sorted(kinds)}"
assert s["live"] == 5, f"{how}: {s['live']} consumer.session live, expected 5"
assert doc["heap"]["available"], f"{how}: no heap profile: {doc['heap']}"
print(f"{how}: built, ran, and leakscope show reads 5 live consumer.session and its heap")
PY
}

# 1. CMake: find_package(leakscope CONFIG) → leakscope::diag.
cmake -S "$src/tests/consumer" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/cmake-build" >"$work/build.log" || { cat "$work/build.log"; exit 1; }
check cmake "$work/cmake-build/consumer"

# 2. pkg-config: one compiler line.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046
"${CXX:-c++}" -o "$work/consumer-pc" "$src/tests/consumer/consumer.cc" \
  $(pkg-config --cflags --libs leakscope)
check pkg-config "$work/consumer-pc"
