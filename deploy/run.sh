#!/bin/sh
# `make run`: the whole stack in the foreground.
#
# Unless LINKAGE_PG names a database, a private PostgreSQL cluster under
# var/pg is started first (initdb on first use) and stopped again when the
# stack stops. Control sockets go to var/run. Ctrl-C (SIGINT) or SIGTERM
# stops everything: the supervisor stops the daemons, then this script stops
# PostgreSQL.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

mkdir -p var/run
LINKAGE_RUN_DIR=${LINKAGE_RUN_DIR:-$root/var/run}
export LINKAGE_RUN_DIR

if [ -n "${LINKAGE_PG:-}" ]; then
  exec bin/linkagectl run
fi

LINKAGE_PG=$(deploy/pg.sh start var/pg)
export LINKAGE_PG
echo "linkage: private PostgreSQL under var/pg ($LINKAGE_PG)" >&2

# The supervisor runs as our child so that we can stop PostgreSQL after it.
# A background child of a non-interactive shell starts with SIGINT ignored;
# linkagectl installs its own handlers, so the signal is forwarded here.
bin/linkagectl run &
ctl=$!
trap 'kill -TERM "$ctl" 2>/dev/null || true' INT TERM
rc=0
wait "$ctl" || rc=$?
# A trapped signal interrupts wait before the supervisor is done stopping.
while kill -0 "$ctl" 2>/dev/null; do
  rc=0
  wait "$ctl" || rc=$?
done
trap - INT TERM
echo "linkage: stopping PostgreSQL" >&2
deploy/pg.sh stop var/pg
exit "$rc"
