#!/usr/bin/env bash
# Installs everything leakscope needs to build, test and demo, from Debian's
# packages. Idempotent: re-running it installs nothing new and exits 0.
# Needs root (or sudo) the first time; later runs skip apt when all is present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  # diag library
  libgoogle-perftools-dev google-perftools libdw-dev
  prometheus-cpp-dev
  nlohmann-json3-dev
  # the CLI's gzip-compressed inputs
  zlib1g-dev
  # `leakscope export --format pprof`: libprotobuf, protoc and pprof's published
  # profile.proto; go (`go tool pprof`) reads the exports in the tests
  libprotobuf-dev protobuf-compiler golang-github-google-pprof-dev golang-go
  # command lines of leakscope, pushdaemon, pushdaemon-admin, leakscope-example
  libcli11-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  curl jq bc python3 procps iproute2 time binutils
  # promtool (checks metric names on a real scrape) and the server for later tests
  prometheus
  # clang with libFuzzer, for the CLI's parser fuzzers
  clang libclang-rt-14-dev
  # headless browser that renders the HTML report in a test
  chromium
  # wired in by the transport and daemon issues
  libnghttp2-dev nghttp2-client libssl-dev libevent-dev
  # leakscope run's tests: a program on jemalloc (the allocator clash) and
  # third-party daemons under the agent, with h2load's traffic (nghttpd on
  # its jemalloc; nginx on the agent's tcmalloc, also scripts/bench.sh preload)
  libjemalloc-dev nghttp2-server nginx-light
  default-libmysqlclient-dev mariadb-server
  # pushdaemon: its TOML configuration file (toml++, with line numbers for errors)
  libtomlplusplus-dev
  # push transport: test keys and certificates (openssl CLI). Node.js (the
  # node-apn benchmark peer, the seed's replay) is added below only where no
  # `node` is on PATH.
  openssl
  # formatting, and the function-size check (clang-tidy)
  clang-format clang-tidy
  # systemd-analyze: the pushdaemon unit's sandbox rating (a ctest)
  systemd
)

# Node.js: the seed replayed in its own language (diag/examples/node, the
# node.* ctests, demo.sh's third verdict). A machine's own Node (nvm, NodeSource,
# a newer release) is kept: Debian's nodejs only where there is no `node`.
if ! command -v node > /dev/null 2>&1; then
  packages+=(nodejs)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# mariadb-server and prometheus would start system services on install. Tests
# and the demo run their own instances in temp dirs on 127.0.0.1, so keep the
# packages' services from starting (policy-rc.d, only while we install).
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" > /dev/null
  $sudo chmod 755 "$policy"
  own_policy=1
fi
remove_policy() { [ "$own_policy" = 1 ] && $sudo rm -f "$policy"; return 0; }
trap remove_policy EXIT
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
