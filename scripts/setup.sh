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
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  curl jq bc python3 procps iproute2
  # promtool (checks metric names on a real scrape) and the server for later tests
  prometheus
  # sanitizer and fuzzing runtime (clang's LSan/ASan/libFuzzer)
  clang libclang-rt-14-dev
  # wired in by the transport and daemon issues
  libnghttp2-dev nghttp2-client libssl-dev libevent-dev
  default-libmysqlclient-dev mariadb-server
  # formatting
  clang-format
)

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
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
# mariadb-server's package starts a system instance; tests run their own in a
# temp dir, so the system one is not needed (and may not start in a container).
echo "setup: done"
