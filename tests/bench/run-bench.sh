#!/bin/bash
# `make bench`: the spine's and the router's figures, measured in one run on this machine.
#
# Builds nothing (make bench builds first). Starts a private PostgreSQL in a temporary
# directory (durable: fsync and synchronous_commit on), then:
#   1. raw ceilings: ZeroMQ request-reply of the Report bytes (bench_spine zmq), binary COPY
#      of the ledger's rows in the ledger's batch size (bench_copy), and the latency of a
#      one-row durable transaction (the floor under any acknowledgement after commit);
#   2. linkage-ledger + linkage-intake on free ports: reports/s acknowledged (unpaced), then ack
#      latency paced at half that rate, the ratios against the ceilings with their targets, the ledger's commit cycle next to a bare COPY of the same batch size, and the
#      daemons' peak RSS;
#   3. the router core without sockets (bench_router): a million open incidents, memory per
#      incident, heap operations/s, timer lateness on a real libuv loop;
#   4. linkage-router on the same stack: routes everything stored so far, is killed with
#      SIGKILL and restarted; catch-up time to live at the ledger head. Merging is off there
#      (BENCH_MERGE_WINDOW_MIN, default 0): every bench report has the same kind and building.
#   5. the whole chain (bench_chain) on a fresh database: ledger, intake, router and dispatch,
#      the four units a gas leak in Zhouji Asia Bay calls connected as DEALERs from the bench
#      (Hello, heartbeats): report -> first Assignment on a unit's socket, p50/p99, paced at
#      BENCH_CHAIN_RATE (200) reports/s for BENCH_CHAIN_PACED_S (10) s; then BENCH_CHAIN_REPORTS
#      (30000) unpaced: reports/s for which reported, routed and all four dispatched events are
#      committed (the last assignment arrived; the ledger's rows counted by type after), against
#      its targets. Time runs at 0.1 there so that no deadline passes during the run,
#      and the local time (duty hours) is set to noon.
#   6. make run's stack in a network namespace (tests/bench/bench_router_kill.py): gas leaks
#      whose resolve deadlines are missed at every tier while the router is killed with SIGKILL
#      every 3 s; how late each deadline's decision was committed, overall and for the deadlines
#      that fell due while the router was down (BENCH_KILL_REPORTS, BENCH_KILL_RATE,
#      BENCH_KILL_EVERY_S).
# Ends with a summary block for the README. Sizes can be changed through the environment
# (BENCH_REPORTS, BENCH_PACED_S, BENCH_COPY_ROWS, BENCH_ZMQ_MSGS, BENCH_ROUTER_INCIDENTS,
# BENCH_CHAIN_RATE, BENCH_CHAIN_PACED_S, BENCH_CHAIN_REPORTS);
# BENCH_KEEP=1 keeps the scratch directory (daemon logs, raw outputs). The figures are only as
# good as the machine is quiet: the load average is printed at the start and the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
B=$BUILD/bench
REPORTS=${BENCH_REPORTS:-200000}
PACED_S=${BENCH_PACED_S:-10}
COPY_ROWS=${BENCH_COPY_ROWS:-200000}
ZMQ_MSGS=${BENCH_ZMQ_MSGS:-1000000}
ROUTER_INCIDENTS=${BENCH_ROUTER_INCIDENTS:-1000000}
CHAIN_RATE=${BENCH_CHAIN_RATE:-200}
CHAIN_PACED_S=${BENCH_CHAIN_PACED_S:-10}
CHAIN_REPORTS=${BENCH_CHAIN_REPORTS:-30000}
BATCH=4096 # linkage-ledger's batch_max default (services/ledger/main.c)

for f in "$B/bench_spine" "$B/bench_copy" "$B/bench_router" "$B/bench_chain" \
  "$BIN/linkage-ledger" "$BIN/linkage-intake" "$BIN/linkage-router" "$BIN/linkage-dispatch"; do
  [ -x "$f" ] || { echo "bench: $f is missing; run make bench" >&2; exit 1; }
done

dir=$(mktemp -d /tmp/linkage-bench.XXXXXX)
chmod 755 "$dir"
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  deploy/pg.sh stop "$dir/pg" fast || true
  if [ "$rc" -ne 0 ]; then
    echo "bench: failed; logs kept in $dir" >&2
  elif [ -n "${BENCH_KEEP:-}" ]; then
    echo "bench: logs and raw outputs kept in $dir" >&2
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_start=$(date +%s)
say() { printf '%s\n' "$*"; }
# key=value lines of a bench program's output -> value of key
val() { sed -n "s/^$1=//p" "$2" | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
# met/not met, measured: test "$1 $2 $3" numerically, e.g. met 0.41 ">=" 0.3
met() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
  ok = (op == ">=") ? (a >= b) : (a <= b); print (a == "" ? "not measured" : (ok ? "met" : "not met")) }'; }
hwm_kb() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

read -r P_INTAKE P_LEDGER P_STREAM P_ROUTER P_DISPATCH < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(loadavg)
say "linkage bench: $(nproc) cores, $(uname -r), $(date -u +%FT%TZ), load average $load_start"
LINKAGE_PG=$(deploy/pg.sh start "$dir/pg")
export LINKAGE_PG
export LINKAGE_RUN_DIR=$dir/run
export LINKAGE_INTAKE_ENDPOINT=tcp://127.0.0.1:$P_INTAKE
export LINKAGE_LEDGER_ENDPOINT=tcp://127.0.0.1:$P_LEDGER
export LINKAGE_LEDGER_STREAM=tcp://127.0.0.1:$P_STREAM
export LINKAGE_ROUTER_ENDPOINT=tcp://127.0.0.1:$P_ROUTER
export LINKAGE_DISPATCH_ENDPOINT=tcp://127.0.0.1:$P_DISPATCH
# No /metrics listeners here: their default ports may be a running stack's.
export LINKAGE_LEDGER_METRICS_LISTEN= LINKAGE_INTAKE_METRICS_LISTEN= LINKAGE_ROUTER_METRICS_LISTEN=
export LINKAGE_DISPATCH_METRICS_LISTEN= LINKAGE_GATEWAY_METRICS_LISTEN=
export LINKAGE_LOG_LEVEL=${LINKAGE_LOG_LEVEL:-warn}
mkdir -p "$LINKAGE_RUN_DIR"
pgver=$("$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/postgres" --version)
say "PostgreSQL: $pgver, private cluster, fsync on, synchronous_commit on"

# ---------------------------------------------------------------- raw ceilings
say ""
say "== raw ceilings (same bytes, same rows)"
"$B/bench_spine" zmq "$ZMQ_MSGS" >"$dir/zmq.out"
zmq_rate=$(val zmq_msgs_per_s "$dir/zmq.out")
say "ZeroMQ DEALER->ROUTER echo, $(val zmq_bytes_per_message "$dir/zmq.out") B Report frames, 8 DEALERs: $zmq_rate msgs/s"
"$B/bench_copy" "$LINKAGE_PG" "$COPY_ROWS" "$BATCH" >"$dir/copy.out"
copy_rate=$(val copy_rows_per_s "$dir/copy.out")
say "PostgreSQL binary COPY into a ledger-shaped table, $(val copy_bytes_per_row "$dir/copy.out") B rows, $BATCH rows/transaction, durable: $copy_rate rows/s ($(val copy_rows_per_s_with_encoding "$dir/copy.out") rows/s counting the ledger's encoding and hashing)"

"$B/bench_copy" "$LINKAGE_PG" 500 1 >"$dir/commit.out"
floor_p50_ms=$(awk -v u="$(val txn_p50_us "$dir/commit.out")" 'BEGIN { printf "%.2f", u / 1000 }')
floor_p99_ms=$(awk -v u="$(val txn_p99_us "$dir/commit.out")" 'BEGIN { printf "%.2f", u / 1000 }')
say "one-row durable transaction (begin, COPY, commit): p50 $floor_p50_ms ms, p99 $floor_p99_ms ms: the floor under any ack that waits for a commit"

# ---------------------------------------------------------------- the spine
start_daemon() { # name -> pid in $daemon_pid
  "$BIN/linkage-$1" >>"$dir/$1.log" 2>&1 &
  daemon_pid=$!
  pids+=("$daemon_pid")
}
ctl() { echo "ipc://$LINKAGE_RUN_DIR/$1.ctl"; }

start_daemon ledger
ledger_pid=$daemon_pid
start_daemon intake
intake_pid=$daemon_pid
"$B/bench_spine" wait "$(ctl ledger)" 30 pg=up >"$dir/wait.out" ||
  { echo "bench: the ledger did not come up: $(val status "$dir/wait.out")" >&2; exit 1; }
"$B/bench_spine" wait "$(ctl intake)" 30 >"$dir/wait.out" ||
  { echo "bench: intake did not come up" >&2; exit 1; }

say ""
say "== devices -> linkage-intake -> linkage-ledger -> PostgreSQL (8 DEALER devices)"
"$B/bench_spine" load "$LINKAGE_INTAKE_ENDPOINT" "$REPORTS" >"$dir/load.out" ||
  { echo "bench: unpaced load did not complete: $(tr '\n' ' ' <"$dir/load.out")" >&2; exit 1; }
acked_rate=$(val acked_per_s "$dir/load.out")
say "unpaced: $(val acked "$dir/load.out") of $(val reports "$dir/load.out") acknowledged (busy $(val busy "$dir/load.out"), other $(val other "$dir/load.out")) in $(val seconds "$dir/load.out") s: $acked_rate reports/s; latency under saturation p50 $(val latency_p50_us "$dir/load.out") us, p99 $(val latency_p99_us "$dir/load.out") us"

half=$(awk -v r="$acked_rate" 'BEGIN { printf "%d", r / 2 }')
paced_n=$(awk -v r="$half" -v s="$PACED_S" 'BEGIN { n = int(r * s / 8) * 8; if (n < 8) n = 8; print n }')
ledger_counts() { # -> "batches events" from the ledger's status line
  "$B/bench_spine" wait "$(ctl ledger)" 5 | sed -n 's/^status=.* batches=\([0-9]*\) events=\([0-9]*\).*/\1 \2/p'
}
read -r pb0 pe0 < <(ledger_counts)
"$B/bench_spine" load "$LINKAGE_INTAKE_ENDPOINT" "$paced_n" "$half" >"$dir/paced.out" ||
  { echo "bench: paced load did not complete: $(tr '\n' ' ' <"$dir/paced.out")" >&2; exit 1; }
p50=$(val latency_p50_us "$dir/paced.out")
p99=$(val latency_p99_us "$dir/paced.out")
pmax=$(val latency_max_us "$dir/paced.out")
p50_ms=$(awk -v u="$p50" 'BEGIN { printf "%.2f", u / 1000 }')
p99_ms=$(awk -v u="$p99" 'BEGIN { printf "%.2f", u / 1000 }')
say "paced at $half reports/s (half the unpaced rate) for $paced_n reports: $(val acked "$dir/paced.out") acknowledged (busy $(val busy "$dir/paced.out"), other $(val other "$dir/paced.out")) in $(val seconds "$dir/paced.out") s, $(val acked_per_s "$dir/paced.out") acked/s; ack latency p50 $p50_ms ms, p99 $p99_ms ms, max $(awk -v u="$pmax" 'BEGIN { printf "%.2f", u / 1000 }') ms"

read -r pb1 pe1 < <(ledger_counts)
paced_batch=$(awk -v e=$((pe1 - pe0)) -v b=$((pb1 - pb0)) 'BEGIN { printf "%d", (b > 0 ? e / b + 0.5 : 1) }')
paced_cycle_ms=$(awk -v s="$(val seconds "$dir/paced.out")" -v b=$((pb1 - pb0)) 'BEGIN { printf "%.2f", (b > 0 ? s * 1000 / b : 0) }')
"$B/bench_copy" "$LINKAGE_PG" $((paced_batch * 300)) "$paced_batch" >"$dir/copy_small.out"
say "during the paced run the ledger committed $((pb1 - pb0)) batches, $paced_batch events each on average: one every $paced_cycle_ms ms; a bare COPY transaction of $paced_batch such rows takes p50 $(awk -v u="$(val txn_p50_us "$dir/copy_small.out")" 'BEGIN { printf "%.2f", u / 1000 }') ms, p99 $(awk -v u="$(val txn_p99_us "$dir/copy_small.out")" 'BEGIN { printf "%.2f", u / 1000 }') ms"

ledger_status=$("$B/bench_spine" wait "$(ctl ledger)" 5 | sed -n 's/^status=//p')
head_pos=$(sed -n 's/.* head=\([0-9]*\).*/\1/p' <<<"$ledger_status")
batches=$(sed -n 's/.* batches=\([0-9]*\).*/\1/p' <<<"$ledger_status")
events=$(sed -n 's/.* events=\([0-9]*\).*/\1/p' <<<"$ledger_status")
avg_batch=$(awk -v e="$events" -v b="$batches" 'BEGIN { if (b > 0) printf "%.0f", e / b; else print "n/a" }')
ledger_hwm=$(hwm_kb "$ledger_pid")
intake_hwm=$(hwm_kb "$intake_pid")

r_copy=$(ratio "$acked_rate" "$copy_rate")
r_zmq=$(ratio "$acked_rate" "$zmq_rate")
say ""
say "== ratios and targets"
say "acked/s / raw COPY rows/s  = $r_copy   target >= 0.3: $(met "$r_copy" ">=" 0.3)"
say "acked/s / raw ZeroMQ msgs/s = $r_zmq   (no target)"
say "ack latency p50 at half rate = $p50_ms ms   target <= 1.5 ms: $(met "$p50_ms" "<=" 1.5)"
say "ack latency p99 at half rate = $p99_ms ms   target <= 5 ms: $(met "$p99_ms" "<=" 5)"
say "ledger: head=$head_pos, $batches batches, $avg_batch events/batch on average"
say "peak RSS after the load: linkage-ledger $(mib "$ledger_hwm") MiB, linkage-intake $(mib "$intake_hwm") MiB"

# ---------------------------------------------------------------- router core
say ""
say "== linkage-router core, no sockets ($ROUTER_INCIDENTS open incidents)"
"$B/bench_router" core deploy/district/wenjiang.yaml "$ROUTER_INCIDENTS" >"$dir/router.out"
cat "$dir/router.out" | sed -n 's/^# //p'
bytes_per_inc=$(val bytes_per_incident "$dir/router.out")
heap_ops=$(val heap_ops_per_s "$dir/router.out")
fold_rate=$(val fold_events_per_s "$dir/router.out")
late_p50=$(val late_p50_us "$dir/router.out")
late_p99=$(val late_p99_us "$dir/router.out")
late_max=$(val late_max_us "$dir/router.out")

# ---------------------------------------------------------------- router on the stack
say ""
say "== linkage-router on the stack: route what is stored, kill -9, restart, catch up"
# Merging is off here: the bench's devices all report the same kind in the same building, which
# with merging on would make one incident of everything (see the report of this bench).
export LINKAGE_TIME_SCALE=1 LINKAGE_MERGE_WINDOW_MIN=${BENCH_MERGE_WINDOW_MIN:-0}
start_daemon router
router_pid=$daemon_pid
incidents=$head_pos
t0=$(date +%s.%N)
# Every reported event gets one routed event: the ledger head doubles.
"$B/bench_spine" wait "$(ctl router)" 600 live=1 "routed>=$incidents" >"$dir/route.out" ||
  { echo "bench: the router did not route everything: $(val status "$dir/route.out")" >&2; exit 1; }
route_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
"$B/bench_spine" wait "$(ctl ledger)" 60 "head>=$((2 * incidents))" >"$dir/head.out" ||
  { echo "bench: the routed events did not all commit: $(val status "$dir/head.out")" >&2; exit 1; }
ledger_status=$(val status "$dir/head.out")
head2=$(sed -n 's/.* head=\([0-9]*\).*/\1/p' <<<"$ledger_status")
"$B/bench_spine" wait "$(ctl router)" 60 live=1 "position>=$head2" >"$dir/route.out" ||
  { echo "bench: the router did not reach the head: $(val status "$dir/route.out")" >&2; exit 1; }
say "first start: $incidents incidents routed in $route_s s (from start, including the catch-up over $incidents reports)"
router_hwm1=$(hwm_kb "$router_pid")
kill -KILL "$router_pid"
wait "$router_pid" 2>/dev/null || true
start_daemon router
router_pid=$daemon_pid
"$B/bench_spine" wait "$(ctl router)" 300 live=1 "position>=$head2" >"$dir/catchup.out" ||
  { echo "bench: the restarted router did not catch up: $(val status "$dir/catchup.out")" >&2; exit 1; }
catch_ms=$(val wait_ms "$dir/catchup.out")
catch_s=$(awk -v m="$catch_ms" 'BEGIN { printf "%.2f", m / 1000 }')
catch_rate=$(awk -v n="$head2" -v m="$catch_ms" 'BEGIN { printf "%.0f", n / (m / 1000) }')
router_hwm2=$(hwm_kb "$router_pid")
say "after kill -9: restarted and live at head $head2 in $catch_s s: $catch_rate events/s replayed ($incidents incidents)"
say "router peak RSS: $(mib "$router_hwm1") MiB after routing, $(mib "$router_hwm2") MiB after the catch-up"

# ---------------------------------------------------------------- the whole chain
say ""
say "== the whole chain: device -> intake -> ledger -> router -> ledger -> dispatch -> ledger -> units"
# A fresh database: dispatch would otherwise start by dispatching every incident stored above.
for p in "$ledger_pid" "$intake_pid" "$router_pid"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "$ledger_pid" "$intake_pid" "$router_pid"; do wait "$p" 2>/dev/null || true; done
psql_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/psql"
"$psql_bin" "$LINKAGE_PG" -X -q -c "create database linkage_chain" >/dev/null
LINKAGE_PG=$(sed 's/dbname=linkage\b/dbname=linkage_chain/' <<<"$LINKAGE_PG")
chain_sql() { "$psql_bin" "$LINKAGE_PG" -X -A -t -q -c "$1"; }
# Deadlines ten times longer than the plans' (time_scale 0.1), so that nothing expires or
# escalates while the bench runs; duty hours are local time, set to noon so every unit is on duty.
noon=$(/usr/bin/python3 -c '
import time
t = time.gmtime(); o = (720 - (t.tm_hour * 60 + t.tm_min)) % 1440
print(o - 1440 if o > 720 else o)')
export LINKAGE_TIME_SCALE=0.1 LINKAGE_MERGE_WINDOW_MIN=0 LINKAGE_UTC_OFFSET_MIN=$noon
start_daemon ledger
ledger_pid=$daemon_pid
start_daemon intake
intake_pid=$daemon_pid
start_daemon router
router_pid=$daemon_pid
start_daemon dispatch
dispatch_pid=$daemon_pid
"$B/bench_spine" wait "$(ctl ledger)" 30 pg=up >"$dir/wait.out" ||
  { echo "bench: the chain's ledger did not come up: $(val status "$dir/wait.out")" >&2; exit 1; }
for d in intake router dispatch; do
  "$B/bench_spine" wait "$(ctl "$d")" 30 >"$dir/wait.out" ||
    { echo "bench: $d did not come up for the chain" >&2; exit 1; }
done
"$B/bench_spine" wait "$(ctl router)" 30 live=1 >/dev/null
"$B/bench_spine" wait "$(ctl dispatch)" 30 live=1 >/dev/null
# The gas-leak plan at community tier in a special-committee compound calls these four, the
# fire brigade leading (deploy/district/wenjiang.yaml).
chain_compound=zhouji-asia-bay
chain_units="committee-zhouji-asia-bay property-zhouji-asia-bay grid-workers-zhouji-asia-bay fire-wenjiang"
chain_n=$((CHAIN_RATE * CHAIN_PACED_S))
# shellcheck disable=SC2086 # one argument per unit
"$B/bench_chain" "$LINKAGE_INTAKE_ENDPOINT" "$LINKAGE_DISPATCH_ENDPOINT" "$(ctl ledger)" \
  "$chain_n" "$CHAIN_RATE" "$chain_compound" $chain_units >"$dir/chain_paced.out" ||
  { echo "bench: the paced chain run did not complete: $(tr '\n' ' ' <"$dir/chain_paced.out")" >&2; exit 1; }
c_p50_ms=$(awk -v u="$(val latency_p50_us "$dir/chain_paced.out")" 'BEGIN { printf "%.2f", u / 1000 }')
c_p99_ms=$(awk -v u="$(val latency_p99_us "$dir/chain_paced.out")" 'BEGIN { printf "%.2f", u / 1000 }')
c_max_ms=$(awk -v u="$(val latency_max_us "$dir/chain_paced.out")" 'BEGIN { printf "%.2f", u / 1000 }')
say "paced at $CHAIN_RATE reports/s for $(val reports "$dir/chain_paced.out") gas leaks, 4 units each: $(val assignments "$dir/chain_paced.out") of $(val assignments_expected "$dir/chain_paced.out") assignments arrived; report -> first assignment p50 $c_p50_ms ms, p99 $c_p99_ms ms, max $c_max_ms ms"
# shellcheck disable=SC2086
"$B/bench_chain" "$LINKAGE_INTAKE_ENDPOINT" "$LINKAGE_DISPATCH_ENDPOINT" "$(ctl ledger)" \
  "$CHAIN_REPORTS" 0 "$chain_compound" $chain_units >"$dir/chain_load.out" ||
  { echo "bench: the unpaced chain run did not complete: $(tr '\n' ' ' <"$dir/chain_load.out")" >&2; exit 1; }
chain_rate=$(val chain_reports_per_s "$dir/chain_load.out")
read -r n_rep n_rout n_disp n_all < <(chain_sql "select count(*) filter (where type = 'reported'),
  count(*) filter (where type = 'routed'), count(*) filter (where type = 'dispatched'), count(*)
  from ledger" | tr '|' ' ')
chain_events=$(awk -v e="$n_all" -v r="$n_rep" 'BEGIN { printf "%.1f", (r > 0 ? e / r : 0) }')
chain_event_rate=$(awk -v r="$chain_rate" -v e="$chain_events" 'BEGIN { printf "%.0f", r * e }')
dispatch_hwm=$(hwm_kb "$dispatch_pid")
say "unpaced: $(val reports "$dir/chain_load.out") gas leaks (busy and resent $(val busy_resent "$dir/chain_load.out")), all acknowledged in $(val send_seconds "$dir/chain_load.out") s, the last of $(val assignments "$dir/chain_load.out") assignments on the units' sockets after $(val chain_seconds "$dir/chain_load.out") s: $chain_rate reports/s through the whole chain ($chain_event_rate events/s committed, $chain_events per report); first-assignment latency under saturation p50 $(awk -v u="$(val latency_p50_us "$dir/chain_load.out")" 'BEGIN { printf "%.0f", u / 1000 }') ms"
say "committed in the chain's ledger after both runs: $n_rep reported, $n_rout routed, $n_disp dispatched ($n_all rows)"
if [ "$n_rout" -ne "$n_rep" ] || [ "$n_disp" -ne $((4 * n_rep)) ]; then
  echo "bench: expected one routed and four dispatched events per report" >&2
  exit 1
fi
say ""
say "== targets of the whole chain"
say "report -> first assignment p50 at $CHAIN_RATE reports/s = $c_p50_ms ms   target <= 3 ms: $(met "$c_p50_ms" "<=" 3)"
say "reports through the whole chain, all committed = $chain_rate reports/s   target >= 25000: $(met "$chain_rate" ">=" 25000)"
say "dispatch peak RSS: $(mib "$dispatch_hwm") MiB after $((n_rep)) incidents, $n_disp open assignments"

# ---------------------------------------------------------------- router kill -9 on make run
say ""
say "== deadlines across kill -9 of the router, on make run's stack (supervisor restarts it)"
/usr/bin/python3 tests/bench/bench_router_kill.py >"$dir/kill.out"
k() { val "$1" "$dir/kill.out"; }
say "$(k kill_reports) gas leaks, $(k kill_deadlines) resolve deadlines missed (escalated or overdue), the router killed $(k kill_kills) times; back on its control socket after p50 $(k kill_restart_p50_s) s, max $(k kill_restart_max_s) s"
say "lateness of every deadline decision: p50 $(k kill_late_p50_s) s, p99 $(k kill_late_p99_s) s, max $(k kill_late_max_s) s"
say "of the $(k kill_gap_deadlines) that fell due while the router was down or starting: p50 $(k kill_gap_late_p50_s) s, p99 $(k kill_gap_late_p99_s) s, max $(k kill_gap_late_max_s) s   target p99 <= 1 s: $(met "$(k kill_gap_late_p99_s)" "<=" 1)"

elapsed=$(($(date +%s) - t_start))
say ""
say "== summary (make bench, $(nproc) cores, $elapsed s, load average $load_start at the start, $(loadavg) at the end)"
cat <<EOF
| figure | value |
| --- | --- |
| raw ZeroMQ request-reply, $(val zmq_bytes_per_message "$dir/zmq.out") B Report frames | $zmq_rate msgs/s |
| raw PostgreSQL binary COPY, ledger rows, $BATCH/txn, durable | $copy_rate rows/s |
| one-row durable commit, p50 / p99 (latency floor) | $floor_p50_ms ms / $floor_p99_ms ms |
| reports acknowledged (intake + ledger, durable) | $acked_rate reports/s |
| acked ÷ raw COPY | $r_copy (target ≥ 0.3: $(met "$r_copy" ">=" 0.3)) |
| acked ÷ raw ZeroMQ | $r_zmq |
| ack latency at $half reports/s, p50 / p99 | $p50_ms ms / $p99_ms ms (targets 1.5 / 5 ms: $(met "$p50_ms" "<=" 1.5) / $(met "$p99_ms" "<=" 5)) |
| ledger commit cycle at that rate / bare COPY txn of the same $paced_batch rows, p50 | $paced_cycle_ms ms / $(awk -v u="$(val txn_p50_us "$dir/copy_small.out")" 'BEGIN { printf "%.2f", u / 1000 }') ms |
| peak RSS ledger / intake after the load | $(mib "$ledger_hwm") MiB / $(mib "$intake_hwm") MiB |
| router memory per open incident (2 deadlines each) | $bytes_per_inc B |
| router fold of reported+routed | $fold_rate events/s |
| deadline heap operations | $heap_ops ops/s |
| timer lateness, one uv_timer over the heap, p50 / p99 / max | $late_p50 / $late_p99 / $late_max µs |
| router restart catch-up after kill -9 ($head2 events) | $catch_s s, $catch_rate events/s |
| router peak RSS at $incidents incidents | $(mib "$router_hwm2") MiB |
| report → first assignment at $CHAIN_RATE reports/s (3 durable commits), p50 / p99 | $c_p50_ms ms / $c_p99_ms ms (target p50 ≤ 3 ms: $(met "$c_p50_ms" "<=" 3)) |
| whole chain, reported + routed + 4 dispatched committed, assignments delivered | $chain_rate reports/s, $chain_event_rate events/s (target ≥ 25k reports/s: $(met "$chain_rate" ">=" 25000)) |
| dispatch peak RSS at $n_rep incidents, $n_disp open assignments | $(mib "$dispatch_hwm") MiB |
| router kill -9 every ${BENCH_KILL_EVERY_S:-3} s ($(k kill_kills) kills): back after p50 / max | $(k kill_restart_p50_s) s / $(k kill_restart_max_s) s |
| deadline lateness across the kills, all $(k kill_deadlines), p50 / p99 / max | $(k kill_late_p50_s) s / $(k kill_late_p99_s) s / $(k kill_late_max_s) s |
| deadline lateness, the $(k kill_gap_deadlines) due while the router was down, p50 / p99 / max | $(k kill_gap_late_p50_s) s / $(k kill_gap_late_p99_s) s / $(k kill_gap_late_max_s) s (target p99 ≤ 1 s: $(met "$(k kill_gap_late_p99_s)" "<=" 1)) |
EOF
