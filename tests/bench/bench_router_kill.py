#!/usr/bin/python3
"""`make bench`: how late deadlines escalate when the router is killed with SIGKILL.

Runs `make run`'s own stack (deploy/run.sh: a private PostgreSQL, `linkagectl run` supervising
every daemon) in a network namespace of its own, so the default ports are free, with plan time
x300, merging off, local time noon (every unit on duty) and every unit of the demo district on
line, acknowledging each call at once and never resolving: each gas leak's resolve deadline is
missed at community, street and district tier, and each miss is one `escalated` (at district
tier `overdue`) event carrying the moment it fell due. Reports arrive at a steady rate; the
router is killed with SIGKILL every few seconds until every incident is overdue; the supervisor
starts it again and it catches up from the ledger.

Lateness of one deadline = the ledger's commit time of the decision - the moment it fell due.
Printed for every deadline decision of the run, and for those that fell due while the router
was down or catching up (from the kill to the first status answer of the new process, plus a
second). Each line is `key=value`; run-bench.sh quotes them.

Sizes: BENCH_KILL_REPORTS (reports, default 80), BENCH_KILL_RATE (reports/s, 4),
BENCH_KILL_EVERY_S (3).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

if os.environ.get("BENCH_NETNS") != "1":
    # Our own loopback: make run's default ports, whatever else runs on this machine.
    env = dict(os.environ, BENCH_NETNS="1")
    os.execvpe("unshare", ["unshare", "-n", "sh", "-c",
                           'ip link set lo up && exec "$0" "$@"', sys.executable] + sys.argv, env)

import yaml  # noqa: E402

import stack as S  # noqa: E402
from linkage.v1 import event_pb2, report_pb2  # noqa: E402

CTL = os.path.join(S.BIN, "linkagectl")
REPORTS = int(os.environ.get("BENCH_KILL_REPORTS", "80"))
RATE = float(os.environ.get("BENCH_KILL_RATE", "4"))
KILL_EVERY_S = float(os.environ.get("BENCH_KILL_EVERY_S", "3"))
GAP_GRACE_US = 1_000_000


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def noon_offset_min():
    """The UTC offset that makes the local time noon now: every unit is on duty (duty hours are
    local time), so deadlines, not empty rosters, decide the escalations."""
    t = time.gmtime()
    off = 12 * 60 - (t.tm_hour * 60 + t.tm_min)
    return off - 1440 if off > 720 else off + 1440 if off < -720 else off


def main():
    tmp = tempfile.mkdtemp(prefix="linkage-bench-kill-", dir="/tmp")
    os.chmod(tmp, 0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKAGE_")}
    env.update({"LINKAGE_RUN_DIR": os.path.join(tmp, "run"),
                "LINKAGE_PG_DIR": os.path.join(tmp, "pg"), "LINKAGE_LOG_LEVEL": "warn",
                "LINKAGE_TIME_SCALE": "300", "LINKAGE_MERGE_WINDOW_MIN": "0",
                "LINKAGE_MERGE_DISTANCE_M": "0", "LINKAGE_UTC_OFFSET_MIN": str(noon_offset_min())})
    log = open(os.path.join(tmp, "run.log"), "w")
    run = subprocess.Popen([os.path.join(S.ROOT, "deploy", "run.sh")], cwd=S.ROOT, env=env,
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    units = []
    try:
        def ctl(*args, timeout=30):
            return subprocess.run([CTL] + list(args), cwd=S.ROOT, env=env, capture_output=True,
                                  text=True, timeout=timeout)

        def router_pid():
            r = ctl("status", "router", timeout=5)
            m = re.search(r"name=router pid=(\d+)", r.stdout)
            return int(m.group(1)) if r.returncode == 0 and m else None

        if not S.wait_until(lambda: run.poll() is None and router_pid(), 120, interval=0.5):
            print("bench-kill: the stack did not come up; log in %s" % log.name, file=sys.stderr)
            return 1
        conf = open(os.path.join(tmp, "run", "linkage.conf")).read()
        pg = re.search(r"^pg = (.*)$", conf, re.M).group(1)

        district = yaml.safe_load(open(os.path.join(S.ROOT, "deploy", "district",
                                                    "wenjiang.yaml")))
        for u in district["units"]:
            units.append(S.Unit("tcp://127.0.0.1:7005", u["id"], software="bench_router_kill"))
        compounds = [c["id"] for c in district["compounds"]]

        # The responders: every call acknowledged at once (well inside its acknowledge window),
        # nothing ever resolved.
        stop = threading.Event()

        def acknowledge_all():
            while not stop.is_set():
                idle = True
                for u in units:
                    a = u.next_assignment(timeout=0)
                    if a is not None:
                        idle = False
                        u.answer(a.assignment_id, "acknowledged", timeout=5)
                if idle:
                    stop.wait(0.01)

        acker = threading.Thread(target=acknowledge_all, daemon=True)
        acker.start()

        def decisions():
            out = subprocess.run(
                ["psql", pg, "-XAtq", "-c",
                 "select (extract(epoch from committed_at) * 1e6)::bigint, encode(payload, 'hex') "
                 "from ledger where type in ('escalated', 'overdue') order by position"],
                capture_output=True, text=True, timeout=60)
            rows = []
            for line in out.stdout.split():
                at, hexp = line.split("|")
                e = event_pb2.Event()
                e.ParseFromString(bytes.fromhex(hexp))
                body = e.escalated if e.HasField("escalated") else e.overdue
                if body.due_us > 0:
                    rows.append((int(at), body.due_us, e.type))
            return rows

        def overdue_count():
            return sum(1 for _, _, t in decisions() if t == event_pb2.OVERDUE)

        dev = S.Device("tcp://127.0.0.1:7001")
        kills = []  # (kill wall us, wall us when the new router answered its control socket)
        next_kill = time.monotonic() + KILL_EVERY_S
        t0 = time.monotonic()
        give_up = t0 + 900
        sent = 0
        checked = 0.0
        # Until every incident has missed its district deadline: each deadline of the run can
        # fall while the router is down.
        while time.monotonic() < give_up:
            now = time.monotonic()
            if sent < REPORTS and now >= t0 + sent / RATE:
                r = S.make_report("bench-kill", sent + 1, kind="gas_leak",
                                  severity=report_pb2.SEVERITY_IV,
                                  compound=compounds[sent % len(compounds)],
                                  building="k%d" % sent)
                ack, _ = dev.submit(r, timeout=30)
                if S.status_name(ack) != "ACCEPTED":
                    print("bench-kill: report %d not accepted: %r" % (sent + 1, ack),
                          file=sys.stderr)
                    return 1
                sent += 1
                continue
            if sent == REPORTS and now - checked > 2:
                checked = now
                if overdue_count() >= REPORTS:
                    break
            if now >= next_kill:
                pid = router_pid()
                if pid:
                    killed = time.time()
                    os.kill(pid, signal.SIGKILL)
                    S.wait_until(lambda: router_pid() not in (None, pid), 30, interval=0.01)
                    kills.append((int(killed * 1e6), int(time.time() * 1e6)))
                next_kill = time.monotonic() + KILL_EVERY_S
                continue
            time.sleep(0.01)
        stop.set()
        acker.join(10)

        rows = decisions()
        late = [(at - due) / 1e6 for at, due, _ in rows]
        in_gap = [(at - due) / 1e6 for at, due, _ in rows
                  if any(k <= due <= b + GAP_GRACE_US for k, b in kills)]
        back = [(b - k) / 1e6 for k, b in kills]
        print("kill_reports=%d" % sent)
        print("kill_kills=%d" % len(kills))
        print("kill_restart_p50_s=%.3f" % pct(back, 50))
        print("kill_restart_max_s=%.3f" % (max(back) if back else float("nan")))
        print("kill_deadlines=%d" % len(late))
        print("kill_overdue=%d" % overdue_count())
        print("kill_late_p50_s=%.3f" % pct(late, 50))
        print("kill_late_p99_s=%.3f" % pct(late, 99))
        print("kill_late_max_s=%.3f" % max(late))
        print("kill_gap_deadlines=%d" % len(in_gap))
        print("kill_gap_late_p50_s=%.3f" % pct(in_gap, 50))
        print("kill_gap_late_p99_s=%.3f" % pct(in_gap, 99))
        print("kill_gap_late_max_s=%.3f" % (max(in_gap) if in_gap else float("nan")))
        return 0
    finally:
        for u in units:
            u.close()
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)
            try:
                run.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
        log.close()
        if os.environ.get("BENCH_KEEP"):
            print("bench-kill: kept %s" % tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
