#!/usr/bin/env bash
# The exposure rating of a systemd unit (systemd-analyze security, offline:
# the unit file alone, no running systemd needed) must not exceed MAX.
#
#   systemd-security.sh UNIT_FILE MAX      e.g. daemon/pushdaemon.service 2.0
#
# Exit 0 at or under MAX; 1 above it (the settings that cost points are
# printed); 77 (ctest: skipped) without systemd-analyze (Debian: the
# `systemd` package, installed by scripts/setup.sh).
set -euo pipefail
unit="${1:?usage: systemd-security.sh UNIT_FILE MAX}"
max="${2:?usage: systemd-security.sh UNIT_FILE MAX}"
if ! command -v systemd-analyze > /dev/null 2>&1; then
  echo "SKIP: systemd-analyze is not installed (apt-get install systemd)"
  exit 77
fi
# --offline needs systemd 250 or later (Debian 12 has 252).
out=$(systemd-analyze security --offline=true "$unit" 2>&1) || true
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for .*: \([0-9][0-9.]*\) .*/\1/p')
if [ -z "$level" ]; then
  printf 'no exposure rating from systemd-analyze:\n%s\n' "$out"
  exit 1
fi
if awk -v l="$level" -v m="$max" 'BEGIN { exit !(l + 0 <= m + 0) }'; then
  echo "$unit: exposure $level (at most $max)"
  exit 0
fi
echo "$unit: exposure $level is above $max; what costs points:"
printf '%s\n' "$out" | grep '✗' || true
exit 1
