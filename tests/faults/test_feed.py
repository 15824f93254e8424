"""Guarantee 6 on the public feed: a subscriber that reconnects with its last position receives
every later event once, in order, with the ledger's own bytes.

Devices report steadily through the whole stack (ledger, intake, router, dispatch, gateway).
Two subscriber processes run tests/lib/feed.py's FeedSubscriber and write each event they get
(position, SHA-256 of the event bytes, topic) to a file:

- an unfiltered one, killed with SIGKILL mid-stream and restarted with the last position it
  wrote; the gateway is also killed with SIGKILL and restarted under it. Its runs together
  must hold exactly the ledger's positions 1..head, each once, in order, each with the
  SHA-256 of the ledger's payload at that position;
- a filtered one (one community's prefix), which must hold exactly the events of incidents
  in that community's compound, in order.
"""

import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import event_pb2, report_pb2  # noqa: E402

SUBSCRIBER = r"""
import hashlib, json, os, sys, time
from feed import FeedSubscriber
feed, replay, after, out = sys.argv[1:5]
prefixes = sys.argv[5:] or [""]
sub = FeedSubscriber(feed, replay, after_position=int(after), prefixes=prefixes)
fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
last = 0.0
while True:
    for ev in sub.poll(0.5):
        os.write(fd, ("%d %s %s\n" % (ev.position, hashlib.sha256(ev.event).hexdigest(),
                                      ev.topic)).encode())
    if time.monotonic() - last > 0.5:
        last = time.monotonic()
        with open(out + ".stats.tmp", "w") as f:
            json.dump(dict(sub.stats, covered=sub.covered, head=sub.head), f)
        os.replace(out + ".stats.tmp", out + ".stats")
"""

COMMUNITY = "qingquan"       # the community of compound spring-square
COMPOUNDS = ("lijinggang", "zhouji-asia-bay", "zhouji-yinhai-bay", "spring-square")


def start_subscriber(st, script, out, after, prefixes=()):
    env = st.env()
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(S.ROOT, "tests", "lib"), S.PY_OUT])
    return subprocess.Popen(["/usr/bin/python3", script, st.feed_endpoint, st.feed_replay_endpoint,
                             str(after), out] + list(prefixes),
                            cwd=S.ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=open(out + ".err", "a"),
                            start_new_session=True)


def lines_of(path):
    """Complete lines only: a SIGKILL may cut the last one."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    out = []
    for line in text.split("\n")[:-1]:
        parts = line.split(" ")
        if len(parts) == 3 and parts[0].isdigit() and len(parts[1]) == 64:
            out.append((int(parts[0]), parts[1], parts[2]))
    return out


def stats_of(path):
    import json
    try:
        with open(path + ".stats") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def settled_head(st, quiet=2.0, timeout=60):
    """The ledger's head once it has not moved for `quiet` seconds."""
    seen = {"head": -1, "since": time.monotonic()}

    def still():
        h = int(st.scalar("select coalesce(max(position), 0) from ledger"))
        now = time.monotonic()
        if h != seen["head"]:
            seen["head"], seen["since"] = h, now
            return False
        return now - seen["since"] >= quiet

    S.wait_until(still, timeout, interval=0.2)
    return seen["head"]


def body(st, c):
    total = 1200
    stop = threading.Event()
    sent = [0]
    acks = {"ok": 0, "other": 0}

    def devices():
        dev = st.device()
        seq = 0
        while not stop.is_set() and seq < total:
            seq += 1
            rep = S.make_report("feed-dev", seq, category=report_pb2.LATENT_HAZARD,
                                kind="crack_%d" % seq, severity=report_pb2.SEVERITY_IV,
                                compound=COMPOUNDS[seq % len(COMPOUNDS)],
                                building=str(seq % 30 + 1))
            ack, _ = dev.submit(rep, timeout=60)
            if ack is not None and not isinstance(ack, bytes) and ack.status in (
                    report_pb2.ReportAck.ACCEPTED, report_pb2.ReportAck.DUPLICATE):
                acks["ok"] += 1
            else:
                acks["other"] += 1
            sent[0] = seq
        dev.close()

    script = os.path.join(st.tmp, "subscriber.py")
    with open(script, "w") as f:
        f.write(SUBSCRIBER)
    run1 = os.path.join(st.tmp, "sub-run1.out")
    run2 = os.path.join(st.tmp, "sub-run2.out")
    filtered = os.path.join(st.tmp, "sub-filtered.out")
    prefix = "inc/yongquan/%s/" % COMMUNITY

    sub = start_subscriber(st, script, run1, 0)
    fsub = start_subscriber(st, script, filtered, 0, [prefix])
    feeder = threading.Thread(target=devices)
    feeder.start()
    try:
        c.check(S.wait_until(lambda: len(lines_of(run1)) >= 500, 60), "the subscriber follows",
                "%d lines; %s" % (len(lines_of(run1)), stats_of(run1)))
        sub.send_signal(signal.SIGKILL)
        sub.wait()
        got1 = lines_of(run1)
        last = got1[-1][0] if got1 else 0
        S.note("subscriber killed at position %d" % last)
        sub = start_subscriber(st, script, run2, last)
        c.check(S.wait_until(lambda: len(lines_of(run2)) >= 300, 60),
                "the restarted subscriber follows", stats_of(run2))

        st.kill9("gateway")
        S.note("gateway killed at ledger position %s" %
               st.scalar("select max(position) from ledger"))
        st.start_daemon("gateway")
        feeder.join(300)
        c.eq(sent[0], total, "every report sent")
        c.eq(acks["ok"], total, "every report acknowledged")
        head = settled_head(st)
        c.check(S.wait_until(lambda: (lines_of(run2) or [(0,)])[-1][0] >= head, 60),
                "the subscriber reaches the head after the gateway restart", "head=%d, %s" %
                (head, stats_of(run2)))
        time.sleep(0.5)  # the filtered one reaches it by the same heartbeat; let it write
    finally:
        stop.set()
        for p in (sub, fsub):
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()

    rows = st.sql("select position, encode(sha256(payload), 'hex'), encode(payload, 'hex') "
                  "from ledger order by position")
    ledger = [(int(r[0]), r[1]) for r in rows]
    positions = [p for p, _, _ in lines_of(run1) + lines_of(run2)]
    want = [p for p, _ in ledger]
    c.eq(len(positions), len(want), "the subscriber's two runs hold as many events as the ledger")
    c.check(positions == want, "the subscriber's runs hold the ledger's positions once each, "
            "in order", first_difference(positions, want))
    digests = {p: d for p, d, _ in lines_of(run1) + lines_of(run2)}
    bad = [p for p, d in ledger if digests.get(p) != d]
    c.check(not bad, "every event's bytes are the ledger's payload", bad[:10])
    st2 = stats_of(run2)
    S.note("restarted subscriber: %s" % st2)
    c.check(st2.get("replays", 0) >= 1, "the restarted subscriber caught up through replay")

    # The filtered subscriber: the events of incidents in the community's compound, in order.
    compound_of = {}
    expected = []
    for r in rows:
        ev = event_pb2.Event.FromString(bytes.fromhex(r[2]))
        if ev.HasField("reported"):
            compound_of[ev.incident_id] = ev.reported.report.location.compound_id
        if compound_of.get(ev.incident_id) == "spring-square":
            expected.append(int(r[0]))
    fl = lines_of(filtered)
    c.check(len(expected) > 0, "the community has events")
    c.check([p for p, _, _ in fl] == expected,
            "the filtered subscriber holds exactly its community's events, in order",
            first_difference([p for p, _, _ in fl], expected))
    c.check(all(t.startswith(prefix) for _, _, t in fl), "every filtered topic has the prefix")
    S.note("filtered subscriber: %d of %d events; %s" % (len(fl), len(want), stats_of(filtered)))


def first_difference(got, want):
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return "at index %d: got %d, want %d (got %s...)" % (i, a, b, got[i:i + 5])
    if len(got) != len(want):
        return "lengths %d and %d" % (len(got), len(want))
    return ""


if __name__ == "__main__":
    S.main(body, "feed", daemons=("ledger", "intake", "router", "dispatch", "gateway"))
