"""Overload (issue 6, "Chaos and overload"): intake driven far above the rate
the spine sustains (about 55k reports/s unpaced on this machine, README
Performance), for ~10 s in `make test` and a minute in `make chaos`
(LINKAGE_CHAOS_LONG=1).

The load: build/chaos/overload flood, DEVICES DEALER devices each keeping
WINDOW reports unanswered, unpaced (every answer, BUSY ones included, is
followed at once by a new report), so at any moment DEVICES*WINDOW reports
are offered against intake's inflight_max=20000. A BUSY report is not sent
again. Meanwhile VmRSS of linkage-ledger and linkage-intake is sampled from
/proc every 100 ms.

Checks: each daemon's peak RSS stays under its bound (below), devices get
BUSY, every ACCEPTED/DUPLICATE report is in the ledger exactly once (by
incident id), and after the load a fresh report is ACCEPTED within a few
seconds and `linkagectl verify` passes.
"""

import os
import time

import chaos as X
import stack as S
from stack import report_pb2

SECONDS = 60 if X.LONG else 10
DEVICES = 64
WINDOW = 2000     # 128,000 reports offered at once, 6.4 x intake's inflight_max
SUSTAINABLE = 55000  # reports/s, README Performance (make bench, unpaced)
RECOVERY_S = 5.0

# make asan runs this suite with BUILD=build-asan.
SANITIZED = "asan" in os.environ.get("BUILD", "")

# Memory bounds, from the configuration (defaults: intake inflight_max=20000,
# the ledger's queue_max=65536 and batch_max=4096) and this load's ~190-byte
# reports; measured first, then given a margin.
#
# linkage-intake: 20000 pendings of sizeof(struct intake_pending) (~0.8 KiB)
#   plus one packed event each in the ledger client (~0.5 KiB): 25 MiB; libzmq's
#   queues, RCVHWM 1000 in and SNDHWM 1000 acks out per device connection at
#   ~0.4 KiB a queued report (two zmq_msg_t and the body): 64 devices x 2000 x
#   0.4 KiB = 50 MiB; a ~12 MiB idle process. Estimate 87 MiB. Measured peak
#   (2026-11-27): 84.8 MiB in 10 s, 91.7 MiB in 60 s. Bound: 128 MiB.
# linkage-ledger: 65536 queued appends of ~0.6 KiB (event bytes, envelope,
#   queue entry) = 38 MiB, one batch of 4096 in flight with its COPY buffer
#   (~4 MiB), the replay ring of 8192 events (~8 MiB), acks queued in the
#   ROUTER (sndhwm queue_max + batch_max), a ~11 MiB idle process. Estimate
#   ~65 MiB. Measured peak: 51.8 MiB in 10 s; in 60 s runs 88.9 and 136.5 MiB,
#   by quarter 53 / 54 / 81 / 137 MiB: it grows late in a long overload, when
#   appends wait more than intake's ledger_timeout_ms and intake resends them
#   (the ledger holds resends up to twice queue_max). Bound: 160 MiB, which
#   the long run came within 15% of (see the report; not understood further).
# The intake bound holds for this load only (typical-size reports, 64 device
# connections): with every report at the 8 KiB maximum intake's pendings grow
# to the 170 MiB its header (services/intake/intake.h) states, and each further
# device connection can hold another ~0.8 MiB in libzmq's queues.
INTAKE_BOUND_MIB = 128
LEDGER_BOUND_MIB = 160


def body(st, c):
    pids = {"ledger": st.daemons["ledger"].proc.pid, "intake": st.daemons["intake"].proc.pid}
    idle = {n: X.vm_rss_kib(p) or 0 for n, p in pids.items()}
    ackfile = os.path.join(st.tmp, "acks.txt")
    sampler = X.RssSampler(pids, 0.1).start()
    gen = X.start_generator("flood", st.intake_endpoint, SECONDS, DEVICES, WINDOW, 0, ackfile)
    try:
        out = X.finish_generator(gen, SECONDS + 120)
    finally:
        sampler.stop()
    peak = sampler.peak
    sent, busy = int(out["sent"]), int(out["busy"])
    acked = int(out["accepted"]) + int(out["duplicate"])
    S.note("overload for %ss: %d devices x window %d, offered %.0f reports/s (%.1f x the "
           "sustainable %d), acknowledged %.0f/s, BUSY %.0f/s" %
           (out["send_seconds"], DEVICES, WINDOW, X.num(out, "offered_per_s"),
            X.num(out, "offered_per_s") / SUSTAINABLE, SUSTAINABLE, X.num(out, "acked_per_s"),
            X.num(out, "busy_per_s")))
    S.note("sent %d, acknowledged %d (ACCEPTED %s, DUPLICATE %s), BUSY %d, REJECTED %s, "
           "unanswered %s" % (sent, acked, out["accepted"], out["duplicate"], busy,
                              out["rejected"], out["unanswered"]))
    S.note("peak RSS (idle -> peak, bound): linkage-intake %.1f -> %.1f MiB (%d), "
           "linkage-ledger %.1f -> %.1f MiB (%d); %d samples at 100 ms" %
           (X.mib(idle["intake"]), X.mib(peak["intake"]), INTAKE_BOUND_MIB,
            X.mib(idle["ledger"]), X.mib(peak["ledger"]), LEDGER_BOUND_MIB, sampler.samples()))

    per_daemon = min(len(v) for v in sampler.series.values())
    c.check(per_daemon >= SECONDS * 9, "RSS of each daemon sampled every 100 ms",
            "%d samples" % per_daemon)
    for n, series in sorted(sampler.series.items()):
        quarters = [max(v for t, v in series if t <= q * series[-1][0] / 4) for q in (1, 2, 3, 4)]
        S.note("linkage-%s peak RSS by quarter of the run: %s MiB" %
               (n, " / ".join("%.1f" % X.mib(v) for v in quarters)))
    # Overload is shown by the BUSY answers below; this only guards the generator (a loaded
    # machine or a sanitizer build narrows the gap, so no tighter factor).
    c.check(X.num(out, "offered_per_s") > 1.2 * X.num(out, "acked_per_s"),
            "offered rate is above what is acknowledged",
            "offered %s/s, acked %s/s" % (out["offered_per_s"], out["acked_per_s"]))
    if SANITIZED:
        # AddressSanitizer's shadow memory and quarantine make RSS say nothing about our
        # bounds; the plain build (make test) asserts them.
        S.note("sanitizer build: memory bounds not asserted (RSS includes ASan's shadow)")
    else:
        c.check(peak["intake"] < INTAKE_BOUND_MIB * 1024, "linkage-intake RSS under %d MiB" %
                INTAKE_BOUND_MIB, "peak %.1f MiB" % X.mib(peak["intake"]))
        c.check(peak["ledger"] < LEDGER_BOUND_MIB * 1024, "linkage-ledger RSS under %d MiB" %
                LEDGER_BOUND_MIB, "peak %.1f MiB" % X.mib(peak["ledger"]))
    c.check(busy > 0, "devices got BUSY answers", "busy %d" % busy)
    c.eq(int(out["rejected"]) + int(out["other"]), 0, "no REJECTED or undecodable answers")
    c.check(acked > 0, "reports were acknowledged under overload", "acked %d" % acked)
    c.check(st.alive("ledger") and st.alive("intake"), "daemons alive after the overload")

    n, rows = X.check_acked_in_ledger(st, c, ackfile)
    # Every `reported` row is one of this load's reports: acknowledged ones, plus at
    # most those left unanswered and those intake answered BUSY "ledger did not
    # answer" after ledger_give_up_ms (the ledger may commit them later; a device
    # that resends gets DUPLICATE).
    gave_up = int(out["busy_gave_up"])
    c.check(n <= rows <= n + int(out["unanswered"]) + gave_up, "`reported` rows between "
            "acknowledged and acknowledged + unanswered + given up", "rows %d, acked %d, "
            "unanswered %s, BUSY given up %d" % (rows, n, out["unanswered"], gave_up))
    S.note("ledger holds %d reported rows: %d acknowledged, %d committed without an "
           "ACCEPTED (of %s unanswered and %d BUSY \"ledger did not answer\")" %
           (rows, n, rows - n, out["unanswered"], gave_up))

    # Recovery: a fresh report, from a device that was not part of the load.
    dev = st.device()
    t0 = time.monotonic()
    ack, attempts = dev.submit(S.make_report("after-overload", 1), timeout=RECOVERY_S)
    took = time.monotonic() - t0
    dev.close()
    c.check(ack is not None and not isinstance(ack, bytes) and
            ack.status == report_pb2.ReportAck.ACCEPTED,
            "a fresh report is ACCEPTED within %.0f s after the load" % RECOVERY_S,
            "%s after %.2f s, %d attempts" % (S.status_name(ack), took, attempts))
    r = st.ctl("verify", timeout=600)
    c.eq(r.returncode, 0, "linkagectl verify passes after the overload")
    if r.returncode != 0:
        print(r.stdout + r.stderr)
    S.note("recovery: fresh report ACCEPTED after %.2f s (%d attempts); ledger holds %d "
           "reported rows" % (took, attempts, rows))


if __name__ == "__main__":
    S.main(body, "overload")
