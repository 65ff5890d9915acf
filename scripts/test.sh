#!/usr/bin/env bash
# Builds leakscope and runs the whole test suite, from a fresh machine:
#   1. installs what is missing (scripts/setup.sh),
#   2. builds with ASan + UBSan (LeakSanitizer on) and runs the unit tests and
#      the push transport's integration tests (threads, callbacks, sockets:
#      where lifetime bugs live) — the mock push server runs sanitized too,
#   3. builds the parsers' libFuzzer targets with clang and runs each for
#      LEAKSCOPE_FUZZ_SECONDS (default 30),
#   4. builds everything (RelWithDebInfo, -Werror) and runs the full ctest suite
#      (unit, integration, lint) — last, so the run ends with ctest's summary.
# Build dirs: build-asan/, build-fuzz/ and build/. Exit status: non-zero if
# anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${LEAKSCOPE_JOBS:-2}"

step() { printf '\n== %s\n' "$*"; }

step "setup"
bash scripts/setup.sh

step "sanitizer build (ASan + UBSan + LSan): unit tests and push transport integration tests"
cmake -S . -B build-asan -DLEAKSCOPE_SANITIZE=ON -DLEAKSCOPE_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=Debug > build-asan.configure.log || { cat build-asan.configure.log; exit 1; }
cmake --build build-asan -j"$jobs"
# detect_leaks: LeakSanitizer reports any leak at exit as a failure.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan -L unit -LE lint --output-on-failure
ctest --test-dir build-asan -L integration -R '^(ApnsIntegration|Faults|FcmIntegration|Soak)' \
  --output-on-failure
unset ASAN_OPTIONS UBSAN_OPTIONS

step "fuzzers (libFuzzer + ASan + UBSan, ${LEAKSCOPE_FUZZ_SECONDS:-30} s each)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DLEAKSCOPE_FUZZ=ON \
  -DLEAKSCOPE_FUZZ_SECONDS="${LEAKSCOPE_FUZZ_SECONDS:-30}" > build-fuzz.configure.log \
  || { cat build-fuzz.configure.log; exit 1; }
cmake --build build-fuzz -j"$jobs"
ctest --test-dir build-fuzz -L fuzz --output-on-failure

step "build"
cmake -S . -B build > build.configure.log || { cat build.configure.log; exit 1; }
cmake --build build -j"$jobs"

step "full test suite"
ctest --test-dir build --output-on-failure
