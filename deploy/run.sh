#!/bin/sh
# `make run`: the whole stack in the foreground.
#
# Unless LINKAGE_PG names a database, a private PostgreSQL cluster under
# var/pg (LINKAGE_PG_DIR) is started first (initdb on first use) and stopped again when the
# stack stops. Control sockets go to var/run. Ctrl-C (SIGINT) or SIGTERM
# stops everything: the supervisor stops the daemons, then this script stops
# PostgreSQL. LINKAGE_CURVE=1 turns CURVE on with demo keys (see demo_keys).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

LINKAGE_RUN_DIR=${LINKAGE_RUN_DIR:-$root/var/run}
export LINKAGE_RUN_DIR
mkdir -p "$LINKAGE_RUN_DIR"

# One stack per run directory. The lock is taken before anything else (the cluster, the
# tokens, the sockets of a running stack stay untouched) and handed to the supervisor.
lock=$LINKAGE_RUN_DIR/linkage.lock
exec 9>>"$lock"
if ! flock -n 9; then
  echo "linkage: a stack is already running in $LINKAGE_RUN_DIR (pid $(cat "$lock" 2>/dev/null || echo '?')); stop it first (Ctrl-C where it runs), or give this one another LINKAGE_RUN_DIR" >&2
  exit 1
fi
echo $$ >"$lock"
rm -f "$LINKAGE_RUN_DIR/linkage.conf" # a stack killed before it could remove it
LINKAGE_RUN_LOCK_FD=9
export LINKAGE_RUN_LOCK_FD

# What linkagectl needs to find this stack from another shell (the environment still wins).
conf=$LINKAGE_RUN_DIR/linkage.conf
write_conf() {
  {
    echo "# Written by make run for linkagectl in other shells; removed when the stack stops."
    echo "pg = $LINKAGE_PG"
    for k in intake_endpoint ledger_endpoint ledger_stream router_endpoint dispatch_endpoint \
      link_curve link_key_file; do
      v=$(printenv "LINKAGE_$(echo "$k" | tr a-z A-Z)" || true)
      [ -z "$v" ] || echo "$k = $v"
    done
  } >"$conf"
}

# LINKAGE_CURVE=1: CURVE on the device and unit ports and on the feed, with demo
# keys under var/keys (made once): the server's pair, one device (demo-device),
# one city system (demo-city) and every unit of the district, registered in the
# database (a key already there is fine). The links between daemons speak CURVE too,
# with the stack's link key (var/keys/link.key): the gateway relays Open311 reports to
# intake's CURVE port with it, and operators' linkagectl commands need it.
demo_keys() {
  case "${LINKAGE_CURVE:-}" in 1 | true | yes | on) ;; *) return 0 ;; esac
  mkdir -p var/keys
  [ -f var/keys/server.key ] || bin/linkagectl keys gen --out var/keys/server.key >/dev/null ||
    return 1
  [ -f var/keys/link.key ] || bin/linkagectl keys gen --out var/keys/link.key >/dev/null ||
    return 1
  LINKAGE_CURVE=true
  LINKAGE_CURVE_SECRET_FILE=$root/var/keys/server.key
  LINKAGE_CURVE_SERVER_KEY_FILE=$root/var/keys/server.key
  LINKAGE_LINK_CURVE=true
  LINKAGE_LINK_KEY_FILE=$root/var/keys/link.key
  export LINKAGE_CURVE LINKAGE_CURVE_SECRET_FILE LINKAGE_CURVE_SERVER_KEY_FILE
  export LINKAGE_LINK_CURVE LINKAGE_LINK_KEY_FILE
  units=$(awk '/^units:/ { u = 1; next } /^[a-z]/ { u = 0 } u && /^  - id:/ { print $3 }' \
    "${LINKAGE_DISTRICT:-deploy/district/wenjiang.yaml}")
  for who in device:demo-device subscriber:demo-city $(for u in $units; do echo "unit:$u"; done); do
    kind=${who%%:*}
    id=${who#*:}
    f=var/keys/$kind-$id.key
    [ -f "$f" ] || bin/linkagectl keys gen --out "$f" >/dev/null || return 1
    rc=0
    bin/linkagectl "$kind" add -- "$id" "$(sed -n 's/^public = //p' "$f")" >/dev/null 2>&1 || rc=$?
    # 1: registered before (a restart); anything else is a real failure.
    [ "$rc" -le 1 ] || { echo "linkage: cannot register the $kind key of $id" >&2; return 1; }
  done
  echo "linkage: CURVE on; keys in var/keys. Operators: export LINKAGE_LINK_CURVE=true" \
    "LINKAGE_LINK_KEY_FILE=var/keys/link.key; devices: LINKAGE_CURVE_SERVER_KEY_FILE=var/keys/server.key" \
    "LINKAGE_CURVE_CLIENT_KEY_FILE=var/keys/device-demo-device.key bin/linkagectl report ..." >&2
}

# The dashboard's URL with a fresh token of a demo coordinator (the registry keeps only
# hashes, so the token of an earlier run cannot be printed again: it is revoked and replaced).
demo_token() {
  bin/linkagectl token revoke demo-coordinator >/dev/null 2>&1 || true
  tok=$(bin/linkagectl token add demo-coordinator --role coordinator | tail -n 1) || return 1
  echo "linkage: dashboard http://${LINKAGE_HTTP_ADDRESS:-127.0.0.1}:${LINKAGE_HTTP_PORT:-8080}/#token=$tok" \
    "(demo coordinator; more with bin/linkagectl token add NAME --role coordinator|reporter|reader)" >&2
}

if [ -n "${LINKAGE_PG:-}" ]; then
  demo_keys || exit 1
  demo_token || exit 1
  write_conf
  exec bin/linkagectl run
fi

pgdir=${LINKAGE_PG_DIR:-var/pg}
# The cluster must not inherit the lock: it outlives us when it is stopped late.
LINKAGE_PG=$(deploy/pg.sh start "$pgdir" 9>&-)
export LINKAGE_PG
echo "linkage: private PostgreSQL under $pgdir ($LINKAGE_PG)" >&2
demo_keys || { deploy/pg.sh stop "$pgdir" 9>&-; exit 1; }
demo_token || { deploy/pg.sh stop "$pgdir" 9>&-; exit 1; }
write_conf
echo "linkage: linkagectl finds this stack from any shell in this checkout ($conf)" >&2

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
rm -f "$conf"
echo "linkage: stopping PostgreSQL" >&2
deploy/pg.sh stop "$pgdir" 9>&-
exit "$rc"
