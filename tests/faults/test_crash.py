"""Guarantees 1 and 2 under faults.

Eight device threads send a few thousand distinct reports, each retried on
timeout (a fresh DEALER per retry, as a device on a bad network reconnects)
and on BUSY until it is ACCEPTED or DUPLICATE. Meanwhile a fault thread,
paced by the acknowledgement counter, kills the ledger with SIGKILL twice,
intake once, and stops PostgreSQL in immediate mode once, restarting each.

Afterwards: every acknowledged report is in `ledger` exactly once, no
(device, sequence) opened two incidents, the number of `reported` rows equals
the number of reports acknowledged, positions have no gap, and
`linkagectl verify` passes.

Under CURVE (LINKAGE_TEST_CURVE=1, tests/lib/stack.py) each device thread has
its own registered key, and every reconnect is a new CURVE handshake through
ZAP, across intake's restart (it reads the registry again at start) and
PostgreSQL's stop (intake keeps the registry it has).
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import event_pb2, report_pb2, zmq  # noqa: E402

THREADS = 8
PER_THREAD = int(os.environ.get("LINKAGE_CRASH_PER_THREAD", "600"))
ATTEMPT_TIMEOUT = 1.0   # seconds before a device gives up on one attempt
REPORT_DEADLINE = 60.0  # seconds one report may take, faults included
ACK = report_pb2.ReportAck
CATEGORIES = [report_pb2.NATURAL_DISASTER, report_pb2.ACCIDENT_DISASTER,
              report_pb2.PUBLIC_HEALTH, report_pb2.SOCIAL_SAFETY, report_pb2.PROPERTY_SERVICE,
              report_pb2.NEIGHBOUR_DISPUTE, report_pb2.LATENT_HAZARD]
COMPOUNDS = ["lijinggang", "zhouji-asia-bay", "zhouji-yinhai-bay", "spring-square"]


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0       # attempts put on the wire
        self.acked = 0      # reports with a final ACCEPTED/DUPLICATE
        self.retries = 0    # attempts beyond the first, timeouts and BUSY
        self.busy = 0
        self.timeouts = 0
        self.accepted = 0
        self.duplicate = 0  # final answers that were DUPLICATE (an earlier attempt committed)
        self.wrong = []     # anything that breaks the contract
        self.incidents = {}  # (device, seq) -> incident id acknowledged

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


def device_thread(st, t, idx, stop):
    device = "crash-dev-%d" % idx
    dev = st.device(zmq.DEALER, device_id=device)  # keys registered by body()
    for seq in range(1, PER_THREAD + 1):
        rep = S.make_report(device, seq, category=CATEGORIES[seq % len(CATEGORIES)],
                            severity=1 + seq % 4, compound=COMPOUNDS[(idx + seq) % len(COMPOUNDS)],
                            kind="gas_leak", description="report %d of %s" % (seq, device))
        data = rep.SerializeToString()
        final, attempts = S.submit_until_final(dev, data, device, seq, t, stop, REPORT_DEADLINE,
                                               ATTEMPT_TIMEOUT, 0.5)
        t.add(retries=max(attempts - 1, 0))
        if final is None:
            if not stop.is_set():
                with t.lock:
                    t.wrong.append("%s/%d: no final answer within %ss" %
                                   (device, seq, REPORT_DEADLINE))
            continue
        key = (device, seq)
        with t.lock:
            t.acked += 1
            if final.status == ACK.ACCEPTED:
                t.accepted += 1
            else:
                t.duplicate += 1
            if final.sequence != seq:
                t.wrong.append("%s/%d: ack echoes sequence %d" % (device, seq, final.sequence))
            if final.incident_id != S.incident_id(device, seq):
                t.wrong.append("%s/%d: incident %s, expected %s" %
                               (device, seq, final.incident_id, S.incident_id(device, seq)))
            t.incidents[key] = final.incident_id
    dev.close()


def fault_thread(st, t, total, faults, errors, stop):
    """Each fault once the acknowledged count has moved on by a step, so every
    fault hits a loaded pipeline."""
    step = max(total // 6, 50)

    def after(n):
        target = min(t.acked + n, total)
        S.wait_until(lambda: t.acked >= target or stop.is_set(), 90, interval=0.01)

    plan = [
        ("kill -9 ledger", lambda: st.restart("ledger")),
        ("kill -9 intake", lambda: st.restart("intake")),
        ("postgres stop -m immediate", None),
        ("kill -9 ledger", lambda: st.restart("ledger")),
    ]
    try:
        for name, act in plan:
            after(step)
            if stop.is_set():
                return
            if act is not None:
                act()
            else:
                st.stop_pg("immediate")
                # Keep it down until devices have noticed: some attempts timed
                # out or were answered BUSY while the database was gone.
                seen = t.timeouts + t.busy
                S.wait_until(lambda: t.timeouts + t.busy >= seen + THREADS or stop.is_set(), 10)
                st.start_pg()
            faults.append(name)
            S.note("fault %d: %s at %d acknowledged" % (len(faults), name, t.acked))
    except Exception as e:
        errors.append("%s" % e)


def body(st, c):
    total = THREADS * PER_THREAD
    t = Tally()
    stop = threading.Event()
    faults, errors = [], []
    st.register("device", ["crash-dev-%d" % i for i in range(THREADS)])  # CURVE: before the clock
    started = time.monotonic()
    devices = [threading.Thread(target=device_thread, args=(st, t, i, stop), daemon=True)
               for i in range(THREADS)]
    fault = threading.Thread(target=fault_thread, args=(st, t, total, faults, errors, stop),
                             daemon=True)
    for th in devices:
        th.start()
    fault.start()
    budget = 100.0
    for th in devices:
        th.join(max(budget - (time.monotonic() - started), 0.1))
    finished = not any(th.is_alive() for th in devices)
    stop.set()
    fault.join(30)
    for th in devices:
        th.join(5)
    took = time.monotonic() - started

    c.check(finished, "devices finish within %.0fs" % budget, "%d of %d acknowledged" %
            (t.acked, total))
    c.eq(errors, [], "every fault was injected and recovered from")
    c.eq(faults, ["kill -9 ledger", "kill -9 intake", "postgres stop -m immediate",
                  "kill -9 ledger"], "faults injected")
    c.eq(t.wrong[:10], [], "every answer keeps the contract")
    c.eq(t.acked, total, "every report acknowledged")
    c.check(st.alive("ledger") and st.alive("intake"), "daemons alive at the end")

    # What PostgreSQL holds.
    reported = {}
    for inc, eid, hexpay in st.sql("select incident_id, event_id, encode(payload, 'hex') "
                                   "from ledger where type = 'reported'", timeout=120):
        ev = event_pb2.Event()
        ev.ParseFromString(bytes.fromhex(hexpay))
        r = ev.reported.report
        reported.setdefault((r.device_id, r.sequence), []).append((inc, eid))
    rows = sum(len(v) for v in reported.values())
    twice = {k: v for k, v in reported.items() if len(v) > 1}
    c.eq(len(twice), 0, "no (device, sequence) has two `reported` rows")
    c.check(all(len({i for i, _ in v}) == 1 for v in reported.values()),
            "no (device, sequence) opened two incidents")
    missing = [k for k in t.incidents if k not in reported]
    c.eq(missing[:10], [], "every acknowledged report is in the ledger")
    mismatched = [k for k, inc in t.incidents.items()
                  if k in reported and reported[k][0][0] != inc]
    c.eq(mismatched[:10], [], "each row's incident is the acknowledged one")
    c.eq(rows, len(t.incidents), "`reported` rows == unique reports acknowledged")
    odd_ids = [eid for v in reported.values() for inc, eid in v if eid != inc + "/reported"]
    c.eq(odd_ids[:10], [], "every reported event id is <incident_id>/reported")
    n, lo, hi = st.sql("select count(*), coalesce(min(position), 0), coalesce(max(position), 0) "
                       "from ledger")[0]
    c.check(int(lo) == 1 and int(hi) == int(n), "positions 1..%s have no gap" % n,
            "count %s min %s max %s" % (n, lo, hi))
    ids = int(st.scalar("select count(distinct event_id) from ledger"))
    c.eq(ids, int(n), "event ids are unique")
    c.eq(int(st.scalar("select count(*) from incidents")), len(reported),
         "one incidents row per reported incident")

    r = st.ctl("verify", timeout=120)
    c.eq(r.returncode, 0, "linkagectl verify passes after the faults")
    if r.returncode != 0:
        print(r.stdout + r.stderr)

    S.note("sent %d attempts for %d reports; acknowledged %d (%d ACCEPTED, %d DUPLICATE); "
           "retries %d (timeouts %d, BUSY %d)" % (t.sent, total, t.acked, t.accepted,
                                                   t.duplicate, t.retries, t.timeouts, t.busy))
    S.note("faults injected %d: %s" % (len(faults), ", ".join(faults)))
    S.note("ledger rows %s, reported rows %d, took %.1fs" % (n, rows, took))
    for w in t.wrong[:10]:
        print("contract broken: " + w)


if __name__ == "__main__":
    S.main(body, "crash")
