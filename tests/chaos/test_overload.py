"""Overload: ten times the sustainable rate,
offered open loop, for a minute in `make chaos` (LINKAGE_CHAOS_LONG=1) and
~10 s in `make test`.

1. The sustainable rate, measured in the same run on the same stack:
   build/chaos/overload flood, 8 DEALER devices with 512 reports unanswered
   each (4,096 in flight, under intake's inflight_max of 20,000), unpaced,
   for SUSTAIN_S seconds: what intake acknowledges when devices keep it busy
   and get no BUSY. The router and dispatch run throughout and commit their
   own events to the same ledger.
2. The overload: build/chaos/overload open, DEVICES DEALERs sending FACTOR x
   that rate on a fixed schedule whatever the answers. A report whose
   device's send queue is at SNDHWM is skipped and counted (the generator's
   memory stays bounded; intake cannot be made to read faster than it does),
   so "offered" is the schedule, "sent" what went onto the sockets.
   VmRSS of every daemon is sampled every 100 ms.
3. Recovery: a fresh report from a new device ACCEPTED within RECOVERY_S,
   every ACCEPTED/DUPLICATE report in the ledger exactly once, every
   `reported` incident routed or merged by the router (it catches up on
   the backlog), `linkagectl verify` passes, and peaks against the bounds.

Timing is not asserted in `make test` (the short run checks correctness and
memory; the machine's two cores are shared); `make chaos` asserts that the
offered rate was at least 9.5 x the measured sustainable rate.
"""

import os
import time

import chaos as X
import stack as S
from stack import report_pb2

SECONDS = 60 if X.LONG else 6
SUSTAIN_S = 5 if X.LONG else 3
FACTOR = 10
DEVICES = 64
SNDHWM = 1000
RECOVERY_S = 5.0
# After the load the router works through the backlog: it routes the first
# report of the burst and merges the rest (same kind, same building). The
# router's merge search walks every incident of the bucket within the merge
# window for each new one (services/router/router_policy.c, router_decide_new),
# so a burst of N reports in one building costs it O(N^2): measured
# 2026-11-27, 420k reports after 10 s of overload were 20% decided after
# 4 minutes, in chunks of ~256 merges with gaps growing to 15 s. `make chaos`
# asserts the catch-up (it fails until that search is fixed); `make test`
# prints how far the router got.
CATCHUP_S = 300 if X.LONG else 3
DAEMONS = ("ledger", "intake", "router", "dispatch")

# make asan runs this suite with BUILD=build-asan.
SANITIZED = "asan" in os.environ.get("BUILD", "")

# Memory bounds (MiB). Each is the daemon's stated bound for this load (the
# estimate), measured, then given a margin; the figures are in the README's
# Reliability section.
#
# linkage-intake: 20,000 pendings of sizeof(struct intake_pending) (~0.8 KiB)
#   plus one packed event each in the ledger client (~0.5 KiB): 25 MiB;
#   libzmq's queues, RCVHWM 1,000 reports in and SNDHWM 1,000 acks out per
#   device connection at ~0.4 KiB a queued message: 64 x 2,000 x 0.4 KiB =
#   50 MiB; a ~12 MiB idle process. Estimate 87 MiB.
# linkage-ledger: the queue holds at most queue_max (65,536) appends plus
#   one copy of an event per other client holding it (a client's resend of
#   an event the ledger holds is answered by the held copy, not queued:
#   services/ledger/ledger_server.c), ~0.6 KiB each: 38 MiB; one batch of
#   4,096 with its COPY buffer (~4 MiB); the ring of 8,192 events (~8 MiB);
#   replies queued in the ROUTER (sndhwm queue_max + batch_max, ~0.2 KiB);
#   a ~11 MiB idle process. Estimate ~75 MiB.
# linkage-router and linkage-dispatch keep every incident they have seen in
#   memory (README, Not built yet): their bound is per incident, checked
#   against the number of `reported` rows: the router's 490 B per open
#   incident (README Performance) is given 2 KiB per incident here, on top
#   of 64 MiB; dispatch, which only sees the routed first incident of a
#   merged burst, 64 MiB plus 1 KiB per incident.
INTAKE_BOUND_MIB = 128
LEDGER_BOUND_MIB = 128
ROUTER_BASE_MIB, ROUTER_PER_INCIDENT_B = 64, 2048
DISPATCH_BASE_MIB, DISPATCH_PER_INCIDENT_B = 64, 1024


def scalar(st, sql):
    return int(st.scalar(sql))


def body(st, c):
    pids = {n: st.daemons[n].proc.pid for n in DAEMONS}
    idle = {n: X.vm_rss_kib(p) or 0 for n, p in pids.items()}

    # 1. The sustainable rate.
    gen = X.start_generator("flood", st.intake_endpoint, SUSTAIN_S, 8, 512, 0, "-")
    sus = X.finish_generator(gen, SUSTAIN_S + 60)
    sustainable = X.num(sus, "acked_per_s")
    S.note("sustainable: %.0f reports/s acknowledged over %s s (8 devices x 512 in flight, "
           "BUSY %s, unanswered %s)" % (sustainable, sus["send_seconds"], sus["busy"],
                                        sus["unanswered"]))
    c.check(sustainable > 0, "a sustainable rate was measured", "%.0f/s" % sustainable)
    c.eq(int(sus["busy"]), 0, "the sustainable run got no BUSY")
    if sustainable <= 0:
        return
    rate = FACTOR * sustainable

    # 2. The overload.
    ackfile = os.path.join(st.tmp, "acks.txt")
    sampler = X.RssSampler(pids, 0.1).start()
    gen = X.start_generator("open", st.intake_endpoint, SECONDS, DEVICES, "%.0f" % rate, SNDHWM,
                            ackfile)
    try:
        out = X.finish_generator(gen, SECONDS + 120)
    finally:
        load_end = time.monotonic()
    offered = X.num(out, "offered_per_s")
    S.note("overload for %s s: %d devices, open loop at %.0f reports/s scheduled (%d x %.0f); "
           "offered %.0f/s (%.1f x sustainable), sent %.0f/s (%s skipped at the devices' "
           "SNDHWM %d), acknowledged %.0f/s, BUSY %.0f/s; generator CPU %s s, late turns %s" %
           (out["send_seconds"], DEVICES, rate, FACTOR, sustainable, offered,
            offered / sustainable, X.num(out, "sent_per_s"), out["skipped_hwm"], SNDHWM,
            X.num(out, "acked_per_s"), X.num(out, "busy_per_s"), out["cpu_s"], out["late_turns"]))
    acked = int(out["accepted"]) + int(out["duplicate"])
    busy = int(out["busy"])
    S.note("attempted %s, sent %s, acknowledged %d (ACCEPTED %s, DUPLICATE %s), BUSY %d "
           "(%s \"ledger did not answer\"), REJECTED %s, unanswered %s" %
           (out["attempted"], out["sent"], acked, out["accepted"], out["duplicate"], busy,
            out["busy_gave_up"], out["rejected"], out["unanswered"]))
    if X.LONG:
        c.check(offered >= 0.95 * FACTOR * sustainable, "offered rate is at least %.1f x the "
                "sustainable rate" % (0.95 * FACTOR), "%.0f/s offered, sustainable %.0f/s" %
                (offered, sustainable))
    else:
        # Short run: only that the load really is open loop well above the sustainable rate.
        c.check(offered > 2 * sustainable, "offered rate is above twice the sustainable rate",
                "%.0f/s offered, sustainable %.0f/s" % (offered, sustainable))
    c.check(busy > 0, "devices got BUSY answers", "busy %d" % busy)
    c.eq(int(out["rejected"]) + int(out["other"]), 0, "no REJECTED or undecodable answers")
    c.check(acked > 0, "reports were acknowledged under overload", "acked %d" % acked)
    c.check(all(st.alive(n) for n in DAEMONS), "every daemon alive after the overload")

    # 3. Recovery.
    dev = st.device()
    t0 = time.monotonic()
    ack, attempts = dev.submit(S.make_report("after-overload", 1), timeout=RECOVERY_S)
    took = time.monotonic() - t0
    dev.close()
    c.check(ack is not None and not isinstance(ack, bytes) and
            ack.status == report_pb2.ReportAck.ACCEPTED,
            "a fresh report is ACCEPTED within %.0f s after the load" % RECOVERY_S,
            "%s after %.2f s, %d attempts" % (S.status_name(ack), took, attempts))
    S.note("recovery: fresh report ACCEPTED %.2f s after the load (%d attempts)" % (took, attempts))

    n, rows = X.check_acked_in_ledger(st, c, ackfile)
    gave_up = int(out["busy_gave_up"])
    # `reported` rows: this load's acknowledged reports, plus at most those unanswered or
    # answered BUSY "ledger did not answer" (committed later), plus the sustainable run's
    # and the fresh report.
    extra = int(sus["accepted"]) + int(sus["duplicate"]) + int(sus["unanswered"]) + 1
    c.check(n <= rows <= n + int(out["unanswered"]) + gave_up + extra, "`reported` rows between "
            "acknowledged and acknowledged + unanswered + given up", "rows %d, acked %d, "
            "unanswered %s, BUSY given up %d, other runs %d" %
            (rows, n, out["unanswered"], gave_up, extra))

    by_run = st.sql("select substr(actor, 1, 11), count(*) from ledger where type = 'reported' "
                    "group by 1 order by 1")
    S.note("reported rows by actor prefix: %s" % "; ".join(" ".join(r) for r in by_run))

    # The router catches up: every reported incident routed or merged into another.
    decided = ("select count(*) from ledger where type in ('routed', 'merged')")
    reported = "select count(*) from ledger where type = 'reported'"

    def caught_up():
        return scalar(st, decided) >= scalar(st, reported)
    ok = S.wait_until(caught_up, CATCHUP_S, interval=1.0)
    catchup = time.monotonic() - load_end
    how_far = "%d of %d decided %.0f s after the load" % (scalar(st, decided),
                                                          scalar(st, reported),
                                                          time.monotonic() - load_end)
    if X.LONG:
        c.check(ok, "the router routes or merges every reported incident after the load",
                how_far)
    else:
        S.note("router catch-up (not asserted in the short run): %s" % how_far)
    sampler.stop()
    dispatched = scalar(st, "select count(distinct incident_id) from ledger where type in "
                            "('dispatched', 'no_unit_available')")
    routed = scalar(st, "select count(*) from ledger where type = 'routed'")
    S.note("pipeline: %d reported, %d routed, %d merged, %d incidents dispatched or "
           "no_unit_available; %s %.1f s after the load ended" %
           (rows, routed, scalar(st, "select count(*) from ledger where type = 'merged'"),
            dispatched, "router caught up" if ok else "router NOT caught up", catchup))
    c.check(all(st.alive(n) for n in DAEMONS), "every daemon alive after the catch-up")

    r = st.ctl("verify", timeout=600)
    c.eq(r.returncode, 0, "linkagectl verify passes after the overload")
    if r.returncode != 0:
        print(r.stdout + r.stderr)

    # Memory: peaks over the overload and the catch-up.
    peak = sampler.peak
    per_daemon = min(len(v) for v in sampler.series.values())
    c.check(per_daemon >= SECONDS * 9, "RSS of each daemon sampled every 100 ms",
            "%d samples" % per_daemon)
    bounds = {
        "intake": INTAKE_BOUND_MIB,
        "ledger": LEDGER_BOUND_MIB,
        "router": ROUTER_BASE_MIB + rows * ROUTER_PER_INCIDENT_B / 2**20,
        "dispatch": DISPATCH_BASE_MIB + rows * DISPATCH_PER_INCIDENT_B / 2**20,
    }
    for name in DAEMONS:
        series = sampler.series[name]
        span = series[-1][0] if series else 0
        quarters = [max([v for t, v in series if t <= q * span / 4] or [0]) for q in (1, 2, 3, 4)]
        S.note("linkage-%s RSS: idle %.1f MiB, peak %.1f MiB (bound %.0f MiB), by quarter %s MiB" %
               (name, X.mib(idle[name]), X.mib(peak[name]), bounds[name],
                " / ".join("%.1f" % X.mib(v) for v in quarters)))
    if SANITIZED:
        # AddressSanitizer's shadow memory and quarantine make RSS say nothing about our
        # bounds; the plain build (make test) asserts them.
        S.note("sanitizer build: memory bounds not asserted (RSS includes ASan's shadow)")
    else:
        for name in DAEMONS:
            c.check(peak[name] < bounds[name] * 1024, "linkage-%s RSS under %.0f MiB" %
                    (name, bounds[name]), "peak %.1f MiB" % X.mib(peak[name]))


if __name__ == "__main__":
    S.main(body, "overload", daemons=DAEMONS)
