"""Wire compatibility: the protocol driven purely from Python, with modules
made by stock `protoc --python_out` from proto/linkage/v1 and pyzmq, as other
people's clients will drive it.

Intake: ACCEPTED (REQ and DEALER), DUPLICATE with the same incident id, each
enum's UNSPECIFIED value rejected, unknown compound rejected, the sequence
echoed. Ledger: AppendRequest and ReplayRequest round-trip as LedgerRequest
over a DEALER; a replay from position 1 returns the committed events in order
with hashes that chain, recomputed here as SHA-256(prev || position as 8
bytes big-endian || event bytes).

Under CURVE (LINKAGE_TEST_CURVE=1, tests/lib/stack.py) the devices are CURVE
clients with keys registered for their device ids, as a real client of an
exposed intake would be; the ledger's links stay plain.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import event_pb2, ledger_pb2, report_pb2, zmq  # noqa: E402

R = report_pb2
AppendReply = ledger_pb2.AppendReply


def check_intake(st, c):
    req = st.device(kind=zmq.REQ, device_id="wire-dev-1")
    rep = S.make_report("wire-dev-1", 41, category=R.NATURAL_DISASTER, kind="flooding",
                        severity=R.SEVERITY_III, compound="zhouji-yinhai-bay",
                        description="water in basement garage B2, 30 cm and rising")
    ack, _ = req.submit(rep, timeout=20)
    c.eq(S.status_name(ack), "ACCEPTED", "REQ: a valid report is ACCEPTED")
    inc = None
    if not isinstance(ack, (bytes, type(None))):
        inc = ack.incident_id
        c.eq(ack.sequence, 41, "ACCEPTED echoes the sequence")
        c.eq(inc, S.incident_id("wire-dev-1", 41), "incident id as documented")
    req.close()

    dealer = st.device(kind=zmq.DEALER, device_id="wire-dev-1")
    ack = dealer.request(rep, timeout=10)
    c.eq(S.status_name(ack), "DUPLICATE", "DEALER: the same report is DUPLICATE")
    if not isinstance(ack, (bytes, type(None))):
        c.eq(ack.incident_id, inc, "DUPLICATE names the same incident")
        c.eq(ack.sequence, 41, "DUPLICATE echoes the sequence")

    big = S.make_report("wire-dev-1", 2**64 - 1, compound="lijinggang")
    ack = dealer.request(big, timeout=10)
    c.eq(S.status_name(ack), "ACCEPTED", "the largest sequence is ACCEPTED")
    if not isinstance(ack, (bytes, type(None))):
        c.eq(ack.sequence, 2**64 - 1, "the largest sequence is echoed")

    rejected = [
        ("category UNSPECIFIED", dict(category=R.CATEGORY_UNSPECIFIED), "category"),
        ("severity UNSPECIFIED", dict(severity=R.SEVERITY_UNSPECIFIED), "severity"),
        ("category unknown (99)", dict(category=99), "category"),
        ("severity unknown (9)", dict(severity=9), "severity"),
        ("unknown compound", dict(compound="atlantis"), "compound"),
        ("no compound", dict(compound=""), "compound"),
    ]
    dealer.close()
    # Another device id, so another device (under CURVE a key speaks for one id).
    dealer = st.device(kind=zmq.DEALER, device_id="wire-dev-2")
    seq = 100
    for name, kw, word in rejected:
        seq += 1
        before = st.scalar("select count(*) from ledger")
        r = S.make_report("wire-dev-2", seq, **kw)
        ack = dealer.request(r, timeout=10)
        if c.eq(S.status_name(ack), "REJECTED", name + " is REJECTED"):
            c.eq(ack.sequence, seq, name + ": sequence echoed")
            c.check(word in ack.error.lower(), name + ": error names " + word, ack.error)
            c.eq(ack.incident_id, "", name + ": no incident id")
        c.eq(st.scalar("select count(*) from ledger"), before, name + ": no row")
    dealer.close()
    return inc


class Ledger:
    """LedgerRequest/LedgerReply over a DEALER to the ledger's ROUTER."""

    def __init__(self, st):
        self.sock = st.ledger_socket()
        self.next_id = 1

    def call(self, fill, timeout=10.0):
        req = ledger_pb2.LedgerRequest()
        req.request_id = self.next_id
        self.next_id += 1
        fill(req)
        self.sock.send(req.SerializeToString())
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000) + 1):
                return None
            frames = [f for f in self.sock.recv_multipart() if f != b""]
            if len(frames) != 1:
                continue
            rep = ledger_pb2.LedgerReply()
            rep.ParseFromString(frames[0])
            if rep.request_id == req.request_id:
                return rep

    def append(self, ev, timeout=10.0):
        rep = self.call(lambda r: r.append.event.CopyFrom(ev), timeout)
        return None if rep is None else rep.append

    def replay(self, from_position, limit=1000):
        def fill(r):
            r.replay.from_position = from_position
            r.replay.limit = limit
        rep = self.call(fill)
        return None if rep is None else rep.replay

    def replay_all(self):
        """Every committed event from position 1, following pages to the head."""
        out, pos, head = [], 1, None
        for _ in range(10000):
            rep = self.replay(pos)
            if rep is None:
                return None, None
            head = rep.head
            out.extend(rep.events)
            if not rep.events or rep.events[-1].position >= head:
                break
            pos = rep.events[-1].position + 1
        return out, head

    def close(self):
        self.sock.close(linger=0)


def note_event(inc, suffix, text):
    ev = event_pb2.Event()
    ev.event_id = "%s/coordinator_note/%s" % (inc, suffix)
    ev.incident_id = inc
    ev.type = event_pb2.COORDINATOR_NOTE
    ev.at_us = int(time.time() * 1e6)
    ev.actor = "coordinator:wire-test"
    ev.coordinator_note.text = text
    return ev


def check_ledger(st, c, inc):
    lg = Ledger(st)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(st.stream_endpoint)

    events, head = lg.replay_all()
    if not c.check(events is not None, "the ledger answers a ReplayRequest"):
        lg.close()
        return
    c.eq(head, int(st.scalar("select coalesce(max(position), 0) from ledger")),
         "replay's head is the table's last position")

    ev = note_event(inc, "wire", "coordinator called the property office")
    # The SUB socket may still be joining; appends until one is seen would be
    # a retry loop, so instead wait until the stream delivers anything (the
    # ledger's heartbeat) before appending.
    joined = S.wait_until(lambda: sub.poll(0) != 0, 10)
    rep = lg.append(ev)
    if c.check(rep is not None, "the ledger answers an AppendRequest"):
        c.eq(AppendReply.Status.Name(rep.status), "COMMITTED", "a new event is COMMITTED")
        c.eq(rep.position, head + 1, "it gets the next position")
        c.eq(rep.event_id, ev.event_id, "the reply names the event id")
        pos = rep.position
        rep2 = lg.append(ev)
        if c.check(rep2 is not None, "the ledger answers a repeated append"):
            c.eq(AppendReply.Status.Name(rep2.status), "DUPLICATE", "the same event is DUPLICATE")
            c.eq(rep2.position, pos, "DUPLICATE names the stored position")
            c.eq(rep2.incident_id, inc, "DUPLICATE names the stored incident")

        # The committed stream carries it too.
        seen = []

        def stream_has_it():
            while sub.poll(0):
                for f in sub.recv_multipart():
                    m = event_pb2.Committed()
                    try:
                        m.ParseFromString(f)
                    except Exception:
                        continue
                    if m.position == pos and m.event:
                        seen.append(m)
            return bool(seen)
        if joined:
            c.check(S.wait_until(stream_has_it, 10), "the committed stream publishes it")
        else:
            c.fail("the committed stream publishes anything (heartbeat) within 10 s")

    bad = note_event(inc, "wire-bad", "type and body disagree")
    bad.type = event_pb2.REPORTED
    rep = lg.append(bad)
    if c.check(rep is not None, "the ledger answers a malformed append"):
        c.eq(AppendReply.Status.Name(rep.status), "INVALID", "type/body mismatch is INVALID")
        c.check(rep.error != "", "INVALID says why")
    empty = note_event(inc, "x", "no id")
    empty.event_id = ""
    rep = lg.append(empty)
    if c.check(rep is not None, "the ledger answers an append without event id"):
        c.eq(AppendReply.Status.Name(rep.status), "INVALID", "an empty event id is INVALID")

    events, head = lg.replay_all()
    if not c.check(events is not None and len(events) > 0, "replay from 1 returns events"):
        lg.close()
        return
    c.eq([e.position for e in events], list(range(1, head + 1)),
         "replay returns positions 1..head in order, no gap")
    prev = bytes(32)
    chained = True
    for e in events:
        want = S.chain_hash(prev, e.position, e.event)
        if e.hash != want:
            chained = False
            c.fail("hash of position %d chains" % e.position,
                   "got %s want %s" % (e.hash.hex(), want.hex()))
            break
        prev = e.hash
    c.check(chained, "every replayed hash is SHA-256(prev || position BE64 || event)")

    table = {int(p): (h, pay) for p, h, pay in st.sql(
        "select position, encode(hash, 'hex'), encode(payload, 'hex') from ledger")}
    c.check(all(table.get(e.position) == (e.hash.hex(), e.event.hex()) for e in events),
            "replayed events and hashes are the table's rows byte for byte")

    byid = {}
    for e in events:
        m = event_pb2.Event()
        m.ParseFromString(e.event)
        byid[m.event_id] = (e.position, m)
    got = byid.get(ev.event_id)
    if c.check(got is not None, "the appended note is replayed"):
        c.eq(got[1].coordinator_note.text, ev.coordinator_note.text, "its text round-trips")
        c.eq(got[1].actor, ev.actor, "its actor round-trips")
    rep_ev = [m for _, m in byid.values() if m.incident_id == inc and m.type == event_pb2.REPORTED]
    if c.eq(len(rep_ev), 1, "the report's REPORTED event is replayed once"):
        c.eq(rep_ev[0].reported.report.device_id, "wire-dev-1", "it carries the report")

    part = lg.replay(2, limit=1)
    if c.check(part is not None, "a replay with limit 1 answers"):
        c.eq([e.position for e in part.events], [2], "replay(from 2, limit 1) returns position 2")
    past = lg.replay(head + 1000)
    if c.check(past is not None, "a replay past the head answers"):
        c.eq(len(past.events), 0, "a replay past the head returns nothing")
    sub.close(linger=0)
    lg.close()


def body(st, c):
    inc = check_intake(st, c)
    if inc:
        check_ledger(st, c, inc)


if __name__ == "__main__":
    S.main(body, "wire")
