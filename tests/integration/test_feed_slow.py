"""Guarantee 8 on the public feed: a slow subscriber is dropped from the feed and never slows the
pipeline.

Devices send reports at a fixed moderate rate through the whole stack (ledger, intake, router,
dispatch, gateway) twice: once with nobody on the feed, once with a subscriber that reads one
message a second (a raw SUB with a small receive high-water mark, subscribed to everything).
The devices' ack latencies (p50, p99) of both runs are printed as notes with their ratio.
What `make test` asserts holds on any machine, however busy: every report of both runs is
acknowledged and committed, and the slow subscriber does not hold the devices back beyond a
generous bound (p99 with it at most ten times the p99 without, or 500 ms). Whether the slow
subscriber was dropped from depends on how fast this machine fills its queue; it is printed,
and asserted only in `make chaos` (LINKAGE_CHAOS_LONG=1): the feed's PUB socket drops its
messages at the high-water mark instead of waiting, and the events that followed never reach it.
"""

import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import report_pb2  # noqa: E402
import zmq  # noqa: E402

REPORTS = 2000
RATE = 150.0  # reports per second
COMPOUNDS = ("lijinggang", "zhouji-asia-bay", "zhouji-yinhai-bay", "spring-square")
OK = (report_pb2.ReportAck.ACCEPTED, report_pb2.ReportAck.DUPLICATE)


def percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run_phase(st, device_id):
    """Sends REPORTS reports at RATE on one DEALER; returns (latencies in s, acked seqs, other
    outcomes). A BUSY answer is retried after its retry_after_ms; latency runs from the first
    send to the final answer."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(st.intake_endpoint)
    first, lat, acked, other, retry = {}, [], set(), {}, []
    payload = {}
    t0 = time.monotonic()
    i = 0
    deadline = t0 + REPORTS / RATE + 60
    while (i < REPORTS or len(acked) + len(other) < REPORTS) and time.monotonic() < deadline:
        now = time.monotonic()
        while i < REPORTS and now >= t0 + i / RATE:
            seq = i + 1
            # A kind of its own per run, so the second run's reports do not merge into the
            # first run's incidents (each report opens an incident and its whole life).
            r = S.make_report(device_id, seq, category=report_pb2.LATENT_HAZARD,
                              kind="crack_%s_%d" % (device_id[-1], seq),
                              severity=report_pb2.SEVERITY_IV,
                              compound=COMPOUNDS[seq % len(COMPOUNDS)], building=str(seq % 40 + 1))
            payload[seq] = r.SerializeToString()
            first[seq] = now
            sock.send_multipart([b"", payload[seq]])
            i += 1
        for due, seq in [x for x in retry if x[0] <= now]:
            retry.remove((due, seq))
            sock.send_multipart([b"", payload[seq]])
        nxt = t0 + i / RATE if i < REPORTS else now + 0.05
        if sock.poll(max(1, int((nxt - now) * 1000))):
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                ack = report_pb2.ReportAck.FromString(frames[-1])
                seq = ack.sequence
                if seq in acked or seq in other or seq not in first:
                    continue
                if ack.status in OK:
                    acked.add(seq)
                    lat.append(time.monotonic() - first[seq])
                elif ack.status == report_pb2.ReportAck.BUSY:
                    retry.append((time.monotonic() + max(ack.retry_after_ms, 10) / 1000.0, seq))
                else:
                    other[seq] = "%d %s" % (ack.status, ack.error)
    sock.close(0)
    return lat, acked, other


class SlowSubscriber:
    """A raw SUB to everything with a small receive queue, reading one message a second."""

    def __init__(self, endpoint):
        self.sock = zmq.Context.instance().socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, 10)
        # A small kernel buffer too, or the TCP buffers on both ends hold tens of thousands of
        # messages and hide the feed's own high-water mark.
        self.sock.setsockopt(zmq.RCVBUF, 4096)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.positions = []
        self.heartbeats = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _take(self, frames):
        if len(frames) == 3 and len(frames[1]) == 8:
            if frames[0] == b"hb":
                self.heartbeats += 1
            else:
                self.positions.append(struct.unpack(">Q", frames[1])[0])

    def _run(self):
        while not self.stop.is_set():
            if self.sock.poll(100):
                self._take(self.sock.recv_multipart())
                self.stop.wait(1.0)  # one message a second

    def drain(self, quiet=1.0):
        """Stops the slow reading and takes everything still queued for it."""
        self.stop.set()
        self.thread.join()
        while self.sock.poll(int(quiet * 1000)):
            self._take(self.sock.recv_multipart())
        self.sock.close(0)


def head(st):
    return int(st.scalar("select coalesce(max(position), 0) from ledger"))


def settled_head(st, quiet=2.0, timeout=60):
    """The ledger's head once it has not moved for `quiet` seconds."""
    seen = {"head": -1, "since": time.monotonic()}

    def still():
        h = head(st)
        now = time.monotonic()
        if h != seen["head"]:
            seen["head"], seen["since"] = h, now
            return False
        return now - seen["since"] >= quiet

    S.wait_until(still, timeout, interval=0.2)
    return seen["head"]


def body(st, c):
    lat1, acked1, other1 = run_phase(st, "slow-feed-a")
    c.eq(len(acked1), REPORTS, "every report acknowledged without a subscriber")
    c.check(not other1, "no report refused without a subscriber", list(other1.items())[:5])

    slow = SlowSubscriber(st.feed_endpoint)
    # The subscription reaches the gateway before the run: the first heartbeat proves it.
    c.check(S.wait_until(lambda: slow.heartbeats > 0 or slow.positions, 10),
            "the slow subscriber is connected")
    start = head(st)
    lat2, acked2, other2 = run_phase(st, "slow-feed-b")
    c.eq(len(acked2), REPORTS, "every report acknowledged with a slow subscriber")
    c.check(not other2, "no report refused with a slow subscriber", list(other2.items())[:5])
    # The router and dispatch act on the run's reports for a while after the last ack.
    end = settled_head(st)
    slow.drain()
    published = end - start
    S.note("events of the second run by type: %s" % ", ".join(
        "%s %s" % (t, n) for t, n in st.sql("select type, count(*) from ledger where position > %d "
                                          "group by type order by 2 desc" % start)))
    got = [p for p in slow.positions if start < p <= end]
    S.note("slow subscriber: %d of the %d events published while it was connected reached it "
           "(read 1/s, then drained)" % (len(got), published))
    if os.environ.get("LINKAGE_CHAOS_LONG"):
        c.check(published > 0 and len(got) < published,
                "the slow subscriber was dropped from (it did not get every event)",
                "%d of %d" % (len(got), published))
        # PUB drops the newest messages once the queue is full: the subscriber holds an early
        # part and nothing of what followed, however long it waits.
        c.check(not got or max(got) < end, "the events after its queue filled never reached it",
                "last received %s, head %d" % (max(got) if got else None, end))
    p50a, p99a = percentile(lat1, 0.5) * 1000, percentile(lat1, 0.99) * 1000
    p50b, p99b = percentile(lat2, 0.5) * 1000, percentile(lat2, 0.99) * 1000
    S.note("ack latency at %.0f reports/s without a subscriber: p50 %.1f ms, p99 %.1f ms"
           % (RATE, p50a, p99a))
    S.note("ack latency with a slow subscriber: p50 %.1f ms, p99 %.1f ms (ratio p50 %.2f, "
           "p99 %.2f)" % (p50b, p99b, p50b / p50a if p50a else 0, p99b / p99a if p99a else 0))
    c.check(p99b <= max(10 * p99a, 500.0),
            "a slow subscriber does not hold the devices back (p99 within 10x, or 500 ms)",
            "p99 %.1f ms with it, %.1f ms without" % (p99b, p99a))

    # Everything acknowledged is committed.
    committed = {r[0] for r in st.sql("select incident_id from ledger where type = 'reported' "
                                      "and actor in ('device:slow-feed-a', 'device:slow-feed-b')")}
    missing = [(d, s) for d, acked in (("slow-feed-a", acked1), ("slow-feed-b", acked2))
               for s in acked if S.incident_id(d, s) not in committed]
    c.check(not missing, "every acknowledged report is in the ledger", missing[:5])
    status = st.ctl("status")
    S.note("gateway status: %s" % " ".join(
        line for line in status.stdout.splitlines() if "gateway" in line)[:300])


if __name__ == "__main__":
    S.main(body, "feed-slow", daemons=("ledger", "intake", "router", "dispatch", "gateway"))
