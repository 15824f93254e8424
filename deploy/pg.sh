#!/bin/sh
# A private PostgreSQL cluster in a directory, on a unix socket only.
#
#   deploy/pg.sh start DIR      initdb on first use, start, create database "linkage";
#                               prints the libpq connection string
#   deploy/pg.sh stop DIR [fast|immediate]
#   deploy/pg.sh conninfo DIR
#
# initdb and postgres refuse to run as root, so when we are root the cluster
# runs as the unprivileged user "postgres" and DIR is handed to it.
set -eu

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: deploy/pg.sh start|stop|conninfo DIR [mode]" >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bindir" ] || { echo "linkage: no PostgreSQL server found under /usr/lib/postgresql; run deploy/install-deps.sh" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
owner_user() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }

conninfo() { echo "host=$dir/sock dbname=linkage user=$(owner_user)"; }

case "$cmd" in
start)
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner mkdir -p "$dir/data" "$dir/sock"
    as_owner "$bindir/initdb" -D "$dir/data" -A trust -U "$(owner_user)" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { echo "linkage: initdb failed, see $dir/initdb.log" >&2; exit 1; }
  fi
  as_owner mkdir -p "$dir/sock"
  if ! as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    # Durable on purpose (fsync and synchronous_commit stay on): the figures we
    # publish are for commits that survive a power cut. wal_init_zero=off skips
    # zero-filling each new 16 MB WAL segment, which stalled commits for tens of
    # milliseconds (the ack p99 under load fell from 17 ms to 7 ms); durability
    # does not depend on it on a non-copy-on-write filesystem.
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-c listen_addresses='' -c unix_socket_directories='$dir/sock' -c max_connections=200 -c shared_buffers=256MB -c max_wal_size=2GB -c wal_buffers=16MB -c wal_init_zero=off" \
      start >/dev/null || { echo "linkage: postgres did not start, see $dir/postgres.log" >&2; exit 1; }
  fi
  if ! as_owner "$bindir/psql" -h "$dir/sock" -d postgres -Atqc "select 1 from pg_database where datname='linkage'" | grep -q 1; then
    as_owner "$bindir/createdb" -h "$dir/sock" linkage
  fi
  conninfo
  ;;
stop)
  mode=${3:-fast}
  if [ -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
  fi
  ;;
conninfo) conninfo ;;
*) echo "usage: deploy/pg.sh start|stop|conninfo DIR [mode]" >&2; exit 2 ;;
esac
