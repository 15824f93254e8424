"""Bad peers (issue 6, "Chaos and overload"): 100 connections sending junk to
intake's device port must not cut legitimate throughput by more than 5%.

The legitimate load: build/chaos/overload flood, DEVICES DEALER devices,
unpaced with WINDOW reports in flight each (the bench's load), for PHASE_S
seconds; its figure is the reports acknowledged per second while sending.
Phases alternate without and with the bad peers (ROUNDS of each), so drift on
the machine hits both alike; the figures compared are the sums.

The bad peers: build/chaos/overload junk, 100 connections, 20 of each kind:
raw TCP writing random bytes (no ZMTP greeting), DEALERs sending random-byte
frames, 5 MiB frames (over intake's 4 MiB ZMQ_MAXMSGSIZE: intake drops the
connection, the DEALER reconnects), empty frames, and random multi-frame
messages without the empty delimiter; every peer acts once per JUNK_INTERVAL_US.

Where the time goes is measured too: CPU seconds of linkage-intake, of the
junk generator and of the legitimate generator per phase, from /proc and
getrusage, printed with the figures.

The other half of the issue's bullet, peers presenting an unknown CURVE key,
needs CURVE on intake, which is being built separately; it is not tested here.

The threshold: `make chaos` (LINKAGE_CHAOS_LONG=1) asserts the issue's 95%.
The short version in `make test` asserts RATIO_SHORT (see below for why).
"""

import os
import signal

import chaos as X
import stack as S
from stack import report_pb2

CONNS = 100
DEVICES = 8
WINDOW = 512
JUNK_INTERVAL_US = int(os.environ.get("LINKAGE_JUNK_INTERVAL_US", "10000"))
# LINKAGE_JUNK_KIND: every bad peer of one kind (see overload.c), to see what each costs.
JUNK_KIND = os.environ.get("LINKAGE_JUNK_KIND", "")
ROUNDS = 3 if X.LONG else 1
PHASE_S = 10 if X.LONG else 5
RATIO_LONG = 0.95
# The short version's bound is looser, and the long one FAILS on this machine (2026-11-27):
# with the junk at 8k messages/s (100 peers, one action each per 10 ms) legitimate throughput
# was 72.7% of without over three alternating 10 s rounds (rounds: 76%, 55%, 71%), and
# single 5 s phases gave 55-87%. Where the time goes: intake's CPU per 1000 acknowledged
# reports rose from 9.4 ms to 14.4 ms, and the cost is in connection-level junk handled by
# libzmq's I/O thread, not in intake's decoding: run one kind at a time (LINKAGE_JUNK_KIND)
# and random-byte frames (parsed and answered REJECTED by intake) cost ~2%, raw TCP garbage
# (a TCP accept and a failed ZMTP greeting each, ~170 reconnects/s) ~13%, and 5 MiB frames
# (intake's libzmq reads up to ZMQ_MAXMSGSIZE then drops the connection; the DEALERs
# reconnect every 100 ms, ~130 frames/s = ~650 MiB/s over loopback) ~31%. The junk
# generator itself takes ~0.2 of the two cores. So the short bound only guards against
# bad peers bringing legitimate traffic to a crawl: 40% sits below every short phase
# measured, and fails at ten times the junk rate (1 ms interval gave 38%).
RATIO_SHORT = 0.40
RATIO = RATIO_LONG if X.LONG else RATIO_SHORT


def cpu_s(pid):
    """utime + stime of pid in seconds (from /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def legit_phase(st, name):
    intake = st.daemons["intake"].proc.pid
    ledger = st.daemons["ledger"].proc.pid
    c0 = (cpu_s(intake), cpu_s(ledger))
    gen = X.start_generator("flood", st.intake_endpoint, PHASE_S, DEVICES, WINDOW, 0, "-")
    out = X.finish_generator(gen, PHASE_S + 60)
    c1 = (cpu_s(intake), cpu_s(ledger))
    out["intake_cpu_s"] = c1[0] - c0[0]
    out["ledger_cpu_s"] = c1[1] - c0[1]
    S.note("%s: %.0f acked/s (%s acked, BUSY %s, other %s in %s s); CPU s: intake %.2f, "
           "ledger %.2f, device generator %s" %
           (name, X.num(out, "acked_per_s"), int(out["accepted"]) + int(out["duplicate"]),
            out["busy"], int(out["rejected"]) + int(out["other"]), out["send_seconds"],
            out["intake_cpu_s"], out["ledger_cpu_s"], out["cpu_s"]))
    return out


def body(st, c):
    clean, dirty, junk_runs = [], [], []
    for rnd in range(ROUNDS):
        clean.append(legit_phase(st, "round %d without bad peers" % (rnd + 1)))
        junk = X.start_generator("junk", st.intake_endpoint, 0, CONNS, JUNK_INTERVAL_US,
                                 *([JUNK_KIND] if JUNK_KIND else []))
        ready = junk.stdout.readline().strip()
        if not c.eq(ready, "ready=1", "junk generator running (round %d)" % (rnd + 1)):
            junk.kill()
            return
        try:
            dirty.append(legit_phase(st, "round %d with %d bad peers" % (rnd + 1, CONNS)))
        finally:
            junk.send_signal(signal.SIGTERM)
        j = X.finish_generator(junk, 30)
        j.pop("ready", None)
        junk_runs.append(j)
        S.note("round %d junk: %s msgs in %s s (%s/s): raw_tcp %s (%s connects), random_frames %s, "
               "oversized %s, empty_frames %s, no_delimiter %s; %s frames answered by intake; junk "
               "generator CPU %s s" %
               (rnd + 1, j["junk_msgs"], j["seconds"], j["junk_per_s"], j["junk_raw_tcp"],
                j["tcp_connects"], j["junk_random_frames"], j["junk_oversized"],
                j["junk_empty_frames"], j["junk_no_delimiter"], j["junk_answer_frames"], j["cpu_s"]))
        c.check(st.alive("intake"), "intake alive with bad peers (round %d)" % (rnd + 1))

    def rate(runs):
        acked = sum(int(o["accepted"]) + int(o["duplicate"]) for o in runs)
        secs = sum(X.num(o, "send_seconds") for o in runs)
        return sum(X.num(o, "acked_per_s") * X.num(o, "send_seconds") for o in runs) / secs, acked

    base, _ = rate(clean)
    bad, _ = rate(dirty)
    ratio = bad / base if base > 0 else 0.0
    icpu_clean = sum(o["intake_cpu_s"] for o in clean)
    icpu_dirty = sum(o["intake_cpu_s"] for o in dirty)
    a_clean = sum(X.num(o, "acked_per_s") * X.num(o, "send_seconds") for o in clean)
    a_dirty = sum(X.num(o, "acked_per_s") * X.num(o, "send_seconds") for o in dirty)
    S.note("legitimate throughput: %.0f acked/s without, %.0f acked/s with %d bad peers: "
           "%.1f%% (bound %.0f%%)" % (base, bad, CONNS, 100 * ratio, 100 * RATIO))
    S.note("intake CPU per 1000 acked reports: %.1f ms without, %.1f ms with bad peers" %
           (1000 * icpu_clean / max(a_clean, 1) * 1000, 1000 * icpu_dirty / max(a_dirty, 1) * 1000))
    c.check(all(int(o["rejected"]) + int(o["other"]) == 0 for o in clean + dirty),
            "legitimate reports get no REJECTED or undecodable answers")
    c.check(sum(int(j["junk_msgs"]) for j in junk_runs) > 0 and
            sum(int(j["junk_answer_frames"]) for j in junk_runs) > 0,
            "the bad peers reached intake (intake answered some of their frames)")
    c.check(ratio >= RATIO, "legitimate throughput with %d bad peers >= %.0f%% of without" %
            (CONNS, 100 * RATIO), "%.1f%%: %.0f vs %.0f acked/s" % (100 * ratio, bad, base))

    dev = st.device()
    ack, attempts = dev.submit(S.make_report("after-bad-peers", 1), timeout=5)
    dev.close()
    c.check(ack is not None and not isinstance(ack, bytes) and
            ack.status == report_pb2.ReportAck.ACCEPTED,
            "a report is ACCEPTED after the bad peers", S.status_name(ack))


if __name__ == "__main__":
    S.main(body, "bad-peers")
