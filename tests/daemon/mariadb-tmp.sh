#!/usr/bin/env bash
# A throw-away MariaDB for scripts (benchmark, demo), the shell twin of
# MariaDbServer in daemon_test_support.cc: same flags, 127.0.0.1 only.
#
#   mariadb-tmp.sh start DIR [--tls=PKI_DIR] [EXTRA_MARIADBD_FLAGS...]
#       initialises DIR/data once (mariadb-install-db --no-defaults), starts
#       mariadbd in the background, creates database `pushdaemon` and user
#       `pushdaemon` (password in DIR/db-password, mode 0600) on first start,
#       and prints: port=N socket=PATH password_file=PATH pid=N
#       --tls=PKI_DIR: TLS with make-test-pki.sh's server certificate
#       (--ssl-ca/--ssl-cert/--ssl-key); add --require-secure-transport to
#       refuse unencrypted TCP (the socket, used here, stays allowed).
#   mariadb-tmp.sh stop DIR     clean shutdown (SIGTERM, then SIGKILL after 60 s)
set -euo pipefail
cmd="${1:-}"; dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,14p' "$0" >&2; exit 2; }
shift 2
if [ $# -gt 0 ] && [ "$1" != "${1#--tls=}" ]; then
  pki=$(cd "${1#--tls=}" && pwd)
  shift
  set -- --ssl-ca="$pki/ca.pem" --ssl-cert="$pki/server.pem" --ssl-key="$pki/server.key" "$@"
fi
user=$(id -un)
case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  mkdir -p "$dir/tmp"  # its own: concurrent bootstraps clash in a shared /tmp
  if [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
      --skip-test-db --user="$user" --tmpdir="$dir/tmp" > "$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; exit 1; }
  fi
  if [ ! -s "$dir/port" ]; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' > "$dir/port"
  fi
  port=$(cat "$dir/port")
  mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" --port="$port" \
    --bind-address=127.0.0.1 --user="$user" --pid-file="$dir/mysqld.pid" --tmpdir="$dir/tmp" --skip-name-resolve \
    --innodb-log-file-size=256M --innodb-buffer-pool-size=512M --max-connections=200 \
    --log-error="$dir/error.log" "$@" < /dev/null > /dev/null 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    mariadb --no-defaults -S "$dir/mysqld.sock" -uroot -e 'SELECT 1' > /dev/null 2>&1 && break
    kill -0 "$pid" 2> /dev/null || { cat "$dir/error.log" >&2; exit 1; }
    sleep 0.1
  done
  if [ ! -s "$dir/db-password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/db-password")
    pw=$(cat "$dir/db-password")
    mariadb --no-defaults -S "$dir/mysqld.sock" -uroot <<SQL
CREATE DATABASE pushdaemon;
CREATE USER 'pushdaemon'@'127.0.0.1' IDENTIFIED BY '$pw';
CREATE USER 'pushdaemon'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL ON pushdaemon.* TO 'pushdaemon'@'127.0.0.1';
GRANT ALL ON pushdaemon.* TO 'pushdaemon'@'localhost';
SQL
  fi
  echo "port=$port"
  echo "socket=$dir/mysqld.sock"
  echo "password_file=$dir/db-password"
  echo "pid=$pid"
  ;;
stop)
  [ -s "$dir/mysqld.pid" ] || exit 0
  pid=$(cat "$dir/mysqld.pid")
  kill "$pid" 2> /dev/null || exit 0
  for _ in $(seq 600); do kill -0 "$pid" 2> /dev/null || exit 0; sleep 0.1; done
  kill -9 "$pid" 2> /dev/null || true
  ;;
*) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
