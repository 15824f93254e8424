"""The responder console `linkagectl unit`, against a stand-in and the real stack.

First a stand-in dispatch (a Python ROUTER socket) checks the console's side
of the responder protocol: the empty delimiter and Hello first, heartbeats at
the Welcome's interval, repeats of an assignment id dropped, --count, a new
Hello when dispatch forgot the session, a refused Hello (exit 1), one-shot
messages for list and the answers, an answer retried after BUSY and after silence with
the same seq on a fresh connection that says Hello again, REJECTED (exit 1),
no answer at all (exit 75), list, SIGINT, usage errors (exit 2).

Then the whole stack (ledger, intake, router, dispatch): a gas leak in Zhouji
Asia Bay (special committee mode) is reported; a background
`linkagectl unit U listen --count 1` per expected unit gets its assignment
(the committee, the property company, the grid worker and the fire brigade,
which leads); each unit acknowledges, goes on scene and resolves through
`linkagectl unit`; dispatch emits `resolved`; the grid worker verifies and
dispatch closes the incident. The ledger holds every answer with actor
unit:<id> and the unit column, and the incidents view's new columns are
filled and ordered: acknowledged_at <= on_scene_at <= resolved_at <=
closed_at, lead_unit the fire brigade.

A responder's second terminal: with `linkagectl unit fire-wenjiang listen` running, `list` and
`ack` from other processes (one-shot consoles, UnitMessage.one_shot) are answered, the
acknowledgement is the unit's in the ledger, and the listener is never told it was taken over and
still prints the next call; then a second session of the unit (a full Hello, as a second device
sends) takes it over as before: the listener hears so and exits 1, and the open call goes to the
new session.

Time runs 20x (LINKAGE_TIME_SCALE): the fire brigade's 3-minute acknowledge
deadline is 9 s of real time, room enough for subprocesses on a loaded
machine. Duty hours are local time; the test sets LINKAGE_UTC_OFFSET_MIN so
that it is about noon there, when every unit is on duty.

Under CURVE (LINKAGE_TEST_CURVE=1, tests/lib/stack.py) the stand-in stays
plain; against the stack every `linkagectl unit` and `linkagectl report` runs
with the key file of its unit or device (LINKAGE_CURVE_CLIENT_KEY_FILE), as an
operator's console would. The unknown unit has a registered key too, so it is
refused by dispatch for not being in the district, as in plain mode.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402

import zmq  # noqa: E402

from linkage.v1 import report_pb2, unit_pb2  # noqa: E402

U = unit_pb2
SCALE = 20.0
COMPOUND = "zhouji-asia-bay"
UNITS = {  # role -> unit id (deploy/district/wenjiang.yaml)
    "special_committee": "committee-zhouji-asia-bay",
    "property_company": "property-zhouji-asia-bay",
    "grid_worker": "grid-workers-zhouji-asia-bay",
    "fire_brigade": "fire-wenjiang",
}
LEAD = "fire_brigade"
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
LINE_OK = re.compile(r"^status=OK event_id=(\S+)$")


def parse_line(line):
    out = {}
    for k, v in FIELD.findall(line):
        if v.startswith('"'):
            v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[k] = v
    return out


def ctl_path():
    return os.path.join(S.BIN, "linkagectl")


class Proc:
    """A background linkagectl whose stdout and stderr lines are collected."""

    def __init__(self, args, env):
        self.p = subprocess.Popen([ctl_path()] + [str(a) for a in args], env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.out, self.err = [], []
        self.threads = [threading.Thread(target=self._read, args=(self.p.stdout, self.out),
                                         daemon=True),
                        threading.Thread(target=self._read, args=(self.p.stderr, self.err),
                                         daemon=True)]
        for t in self.threads:
            t.start()

    @staticmethod
    def _read(f, into):
        for line in f:
            into.append(line.rstrip("\n"))

    def wait(self, timeout):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            rc = None
        for t in self.threads:
            t.join(2)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


# ---------------------------------------------------------------- a stand-in dispatch


class Fake:
    """A ROUTER bound on a free port; the test drives it step by step."""

    def __init__(self):
        self.port = S.free_ports(1)[0]
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.s = zmq.Context.instance().socket(zmq.ROUTER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.bind(self.endpoint)

    def recv(self, timeout=5.0):
        """(identity, frames after it, UnitMessage or None) or None on timeout."""
        if not self.s.poll(int(timeout * 1000)):
            return None
        frames = self.s.recv_multipart()
        m = U.UnitMessage()
        try:
            m.ParseFromString(frames[-1])
        except Exception:
            m = None
        return frames[0], frames[1:], m

    def send(self, ident, msg):
        self.s.send_multipart([ident, b"", msg.SerializeToString()])

    def close(self):
        self.s.close()


def assignment(aid, lead=False, state="dispatched"):
    a = U.Assignment(assignment_id=aid, incident_id=aid.split("/")[0], role=aid.split("/")[1],
                     lead=lead, category=report_pb2.ACCIDENT_DISASTER, kind="gas_leak",
                     severity=report_pb2.SEVERITY_II, description="gas smell, stairwell 2",
                     tier=2, acknowledge_by_us=1795000000123456, arrive_by_us=1795000600000000,
                     resolve_by_us=1795003600000000, state=state)
    a.location.compound_id = COMPOUND
    a.location.building = "3"
    return U.DispatchMessage(assignment=a)


def fake_env():
    return dict(os.environ, LINKAGE_LOG_LEVEL="error")


def check_listen(c):
    f = Fake()
    try:
        p = Proc(["unit", "u-1", "listen", "--count", "2", "--timeout", "20", "--endpoint",
                  f.endpoint], fake_env())
        got = f.recv()
        c.check(got is not None and got[1][0] == b"" and got[2] is not None and
                got[2].WhichOneof("body") == "hello" and got[2].unit_id == "u-1" and
                not got[2].one_shot,
                "listen: the first message is a full Hello (not one-shot) for u-1 after an empty "
                "delimiter", got and got[1:])
        if got is None:
            return
        ident = got[0]
        f.send(ident, U.DispatchMessage(welcome=U.Welcome(unit_id="u-1", heartbeat_ms=100)))
        f.send(ident, assignment("inc-a/fire_brigade/1", lead=True))
        f.send(ident, assignment("inc-a/fire_brigade/1", lead=True))  # a repeat: dropped
        beats, t0 = [], time.monotonic()
        while len(beats) < 3 and time.monotonic() - t0 < 5:
            m = f.recv(1.0)
            if m and m[2] is not None and m[2].WhichOneof("body") == "heartbeat":
                beats.append(time.monotonic())
        c.check(len(beats) == 3 and beats[-1] - t0 < 2.0,
                "listen: heartbeats follow the Welcome's 100 ms interval",
                "%d heartbeats in %.2fs" % (len(beats), time.monotonic() - t0))
        c.check(p.p.poll() is None, "listen: still running after one new assignment of two")
        f.send(ident, assignment("inc-a/fire_brigade/2"))
        rc = p.wait(10)
        c.eq(rc, 0, "listen --count 2 exits 0 after two new assignments")
        c.eq(len(p.out), 2, "listen: the repeated assignment id printed once")
        if len(p.out) == 2:
            first, second = parse_line(p.out[0]), parse_line(p.out[1])
            want = {"assignment_id": "inc-a/fire_brigade/1", "incident_id": "inc-a",
                    "role": "fire_brigade", "lead": "true", "category": "accident_disaster",
                    "kind": "gas_leak", "severity": "II", "compound": COMPOUND, "building": "3",
                    "tier": "community", "acknowledge_by": "2026-11-18T11:06:40.123456Z",
                    "arrive_by": "2026-11-18T11:16:40.000000Z",
                    "resolve_by": "2026-11-18T12:06:40.000000Z", "state": "dispatched",
                    "exercise": "false", "description": "gas smell, stairwell 2"}
            c.eq(first, want, "listen: the assignment line's fields")
            c.eq((second.get("assignment_id"), second.get("lead")),
                 ("inc-a/fire_brigade/2", "false"), "listen: the second assignment line")

        # Dispatch restarted and forgot the session: the listener says Hello again and goes on.
        p = Proc(["unit", "u-1", "listen", "--count", "1", "--timeout", "20", "--endpoint",
                  f.endpoint], fake_env())
        ident, _, _ = drain_hello_and(f, "hello")
        if ident:
            f.send(ident, U.DispatchMessage(welcome=U.Welcome(unit_id="u-1", heartbeat_ms=100)))
            f.send(ident, U.DispatchMessage(welcome=U.Welcome(
                unit_id="u-1", error="unit u-1 is not registered: send Hello first")))
        ident2, m, _ = drain_hello_and(f, "hello")
        c.check(m is not None and not m.one_shot,
                "listen: told dispatch forgot it, says a full Hello again", m)
        if ident2:
            f.send(ident2, U.DispatchMessage(welcome=U.Welcome(unit_id="u-1", heartbeat_ms=100)))
            f.send(ident2, assignment("inc-r/fire_brigade/1"))
        rc = p.wait(10)
        c.check(rc == 0 and len(p.out) == 1 and "inc-r/fire_brigade/1" in p.out[0],
                "listen: after its new Hello it prints the next assignment", (rc, p.out, p.err))

        # A refused Hello: the error, exit 1.
        p = Proc(["unit", "nobody", "listen", "--endpoint", f.endpoint], fake_env())
        got = f.recv()
        if got:
            f.send(got[0], U.DispatchMessage(welcome=U.Welcome(
                unit_id="nobody", error='unknown unit id "nobody"')))
        rc = p.wait(10)
        c.check(rc == 1 and p.out == ['status=REJECTED error="unknown unit id \\"nobody\\""'],
                "listen: a refused Hello prints the error and exits 1", (rc, p.out, p.err))

        # SIGINT ends a listener cleanly; --timeout without --count is not a failure.
        p = Proc(["unit", "u-1", "listen", "--endpoint", f.endpoint], fake_env())
        got = f.recv()
        if got:
            f.send(got[0], U.DispatchMessage(welcome=U.Welcome(unit_id="u-1", heartbeat_ms=2000)))
        S.wait_until(lambda: any("welcomed" in line for line in p.err), 5)
        p.p.send_signal(signal.SIGINT)
        c.eq(p.wait(10), 0, "listen: SIGINT exits 0")
        p = Proc(["unit", "u-1", "listen", "--timeout", "1", "--endpoint", f.endpoint], fake_env())
        c.eq(p.wait(10), 0, "listen --timeout 1 without --count exits 0 when time is up")
        p = Proc(["unit", "u-1", "listen", "--count", "1", "--timeout", "1", "--endpoint",
                  f.endpoint], fake_env())
        c.eq(p.wait(10), 75, "listen --count 1 --timeout 1 with nothing sent exits 75")
    finally:
        f.close()


def drain_hello_and(f, want_body, timeout=5.0):
    """Reads messages until one with want_body; returns (ident, message, hellos seen)."""
    hellos, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = f.recv(max(0.05, deadline - time.monotonic()))
        if got is None:
            break
        body = got[2].WhichOneof("body") if got[2] is not None else None
        if body == "hello":
            hellos += 1
        if body == want_body:
            return got[0], got[2], hellos
    return None, None, hellos


def check_answers(c):
    f = Fake()
    try:
        # BUSY, then silence, then OK: three attempts, each Hello + Answer, one seq.
        p = Proc(["unit", "u-1", "ack", "inc-a/fire_brigade/1", "--note", "on our way",
                  "--timeout", "500", "--retries", "2", "--endpoint", f.endpoint], fake_env())
        seqs, hellos = [], 0
        for i in range(3):
            ident, m, h = drain_hello_and(f, "answer")
            hellos += h
            if m is None:
                break
            seqs.append(m.seq)
            if i == 0:
                c.check(m.unit_id == "u-1" and m.answer.assignment_id == "inc-a/fire_brigade/1"
                        and m.answer.kind == U.Answer.ACKNOWLEDGED and
                        m.answer.note == "on our way" and m.one_shot,
                        "ack: a one-shot Answer ACKNOWLEDGED with the assignment and note", m)
                f.send(ident, U.DispatchMessage(answer_reply=U.AnswerReply(
                    seq=m.seq, status=U.AnswerReply.BUSY, error="ledger slow")))
            elif i == 2:
                # A stray reply for another seq is skipped.
                f.send(ident, U.DispatchMessage(answer_reply=U.AnswerReply(
                    seq=m.seq + 1, status=U.AnswerReply.REJECTED, error="not yours")))
                f.send(ident, U.DispatchMessage(answer_reply=U.AnswerReply(
                    seq=m.seq, status=U.AnswerReply.OK,
                    event_id="inc-a/unit_acknowledged/fire_brigade/1")))
        rc = p.wait(15)
        c.eq(len(seqs), 3, "ack: BUSY and silence are retried: three attempts")
        c.check(len(set(seqs)) == 1 and hellos == 3, "ack: every attempt says Hello and keeps "
                "its seq", (seqs, hellos))
        c.check(rc == 0 and p.out == ["status=OK event_id=inc-a/unit_acknowledged/fire_brigade/1"],
                "ack: OK line and exit 0", (rc, p.out, p.err))

        for action, kind in (("on-scene", U.Answer.ON_SCENE), ("resolve", U.Answer.RESOLVED),
                             ("decline", U.Answer.DECLINED), ("backup", U.Answer.NEED_BACKUP),
                             ("verify", U.Answer.VERIFIED)):
            p = Proc(["unit", "u-1", action, "inc-a/x/1", "--endpoint", f.endpoint], fake_env())
            ident, m, _ = drain_hello_and(f, "answer")
            if m is not None:
                f.send(ident, U.DispatchMessage(answer_reply=U.AnswerReply(
                    seq=m.seq, status=U.AnswerReply.REJECTED, error="no such assignment")))
            rc = p.wait(10)
            c.check(m is not None and m.answer.kind == kind and rc == 1 and
                    p.out == ['status=REJECTED error="no such assignment"'],
                    "%s: sends kind %s; REJECTED exits 1" % (action, U.Answer.Kind.Name(kind)),
                    (m, rc, p.out))

        # A refused Hello refuses the answer too.
        p = Proc(["unit", "nobody", "ack", "inc-a/x/1", "--endpoint", f.endpoint], fake_env())
        got = f.recv()
        c.check(got is not None and got[2] is not None and
                got[2].WhichOneof("body") == "hello" and got[2].one_shot,
                "an answer's Hello is one-shot: it does not take the unit's session",
                got and got[2])
        if got:
            f.send(got[0], U.DispatchMessage(welcome=U.Welcome(error="unknown unit id")))
        rc = p.wait(10)
        c.check(rc == 1 and p.out == ['status=REJECTED error="unknown unit id"'],
                "ack from an unknown unit: REJECTED, exit 1", (rc, p.out))

        # Nobody answers: TIMEOUT, exit 75, after 1 + retries attempts.
        p = Proc(["unit", "u-1", "ack", "inc-a/x/1", "--timeout", "200", "--retries", "1",
                  "--endpoint", f.endpoint], fake_env())
        answers = 0
        t0 = time.monotonic()
        while p.p.poll() is None and time.monotonic() - t0 < 10:
            got = f.recv(0.2)
            if got and got[2] is not None and got[2].WhichOneof("body") == "answer" and \
                    got[2].unit_id == "u-1":  # not the unknown unit's leftover Answer
                answers += 1
        rc = p.wait(10)
        c.check(rc == 75 and answers == 2 and len(p.out) == 1 and
                p.out[0].startswith("status=TIMEOUT error=") and "2 attempt(s)" in p.out[0],
                "no answer: two attempts, TIMEOUT, exit 75", (rc, answers, p.out))

        # list: the AssignmentList, one line each; pushed assignments are not listed twice.
        p = Proc(["unit", "u-1", "list", "--endpoint", f.endpoint], fake_env())
        ident, m, _ = drain_hello_and(f, "list")
        if m is not None:
            f.send(ident, assignment("inc-z/grid_worker/1"))  # a push after the Hello: skipped
            lst = U.AssignmentList()
            lst.assignments.add().CopyFrom(assignment("inc-a/fire_brigade/1", True,
                                                      "acknowledged").assignment)
            lst.assignments.add().CopyFrom(assignment("inc-b/grid_worker/2").assignment)
            f.send(ident, U.DispatchMessage(assignments=lst))
        rc = p.wait(10)
        ids = [parse_line(x).get("assignment_id") for x in p.out]
        c.check(rc == 0 and ids == ["inc-a/fire_brigade/1", "inc-b/grid_worker/2"] and
                parse_line(p.out[0]).get("state") == "acknowledged",
                "list: prints the listed assignments with their state", (rc, p.out))
        c.check(m is not None and m.one_shot, "list: the ListAssignments is one-shot", m)
    finally:
        f.close()


def check_usage(c):
    env = fake_env()
    for args, why in ((["unit"], "no unit id"),
                      (["unit", "u-1"], "no action"),
                      (["unit", "u-1", "dance"], "an unknown action"),
                      (["unit", "u-1", "ack"], "an answer without an assignment id"),
                      (["unit", "u-1", "list", "extra"], "list with an extra argument"),
                      (["unit", "u-1", "ack", "a/b/1", "--count", "1"], "--count on an answer"),
                      (["unit", "u-1", "listen", "--note", "x"], "--note on listen"),
                      (["unit", "u-1", "listen", "--count", "0"], "--count 0"),
                      (["unit", "u-1", "ack", "a/b/1", "--note", "x" * 501], "a 501-byte note")):
        r = subprocess.run([ctl_path()] + args, capture_output=True, text=True, timeout=10,
                           env=env)
        c.eq(r.returncode, 2, "usage error for %s: exit 2" % why)
    r = subprocess.run([ctl_path(), "unit", "--help"], capture_output=True, text=True,
                       timeout=10, env=env)
    c.check(r.returncode == 0 and "listen" in r.stdout and "verify" in r.stdout,
            "unit --help", r.stdout)


# ---------------------------------------------------------------- the real stack


def dispatched(st, inc):
    """{role: (unit_id, lead, assignment id)} from the ledger's dispatched rows."""
    rows = st.sql("select event_id, unit_id, lead from ledger where incident_id = '%s' "
                  "and type = 'dispatched' order by position" % inc)
    out = {}
    for event_id, unit_id, lead in rows:
        _, _, role, n = event_id.split("/")
        out[role] = (unit_id, lead == "t", "%s/%s/%s" % (inc, role, n))
    return out


def answer(st, c, unit, action, aid):
    r = st.ctl("unit", unit, action, aid, "--note", "%s by %s" % (action, unit), timeout=30,
               env=st.client_env("unit", unit))
    m = LINE_OK.match(r.stdout.strip())
    c.check(r.returncode == 0 and m is not None, "%s %s: OK" % (unit, action),
            "exit %d: %r %r" % (r.returncode, r.stdout, r.stderr))
    return m.group(1) if m else None


def check_stack(st, c):
    env = st.env()
    run = "%x" % int(time.time() * 1000)
    st.register("unit", list(UNITS.values()) + ["no-such-unit"])  # CURVE: one wait for all
    # Listeners first, as units on duty would be: the assignments reach them as they commit.
    listeners = {role: Proc(["unit", unit, "listen", "--count", "1", "--timeout", "60"],
                            dict(env, **st.client_env("unit", unit)))
                 for role, unit in UNITS.items()}
    try:
        ok = S.wait_until(lambda: all(any("welcomed" in x for x in p.err)
                                      for p in listeners.values()), 15)
        c.check(ok, "every listener is welcomed by dispatch",
                {r: p.err for r, p in listeners.items()})
        r = st.ctl("report", "--device", "ctlunit-" + run, "--seq", 1, "--compound", COMPOUND,
                   "--building", "3", "--category", "accident_disaster", "--kind", "gas_leak",
                   "--severity", "IV", "--description", "gas smell in stairwell 2",
                   env=st.client_env("device", "ctlunit-" + run))
        m = re.match(r"^status=ACCEPTED incident_id=(\S+)", r.stdout)
        c.check(r.returncode == 0 and m, "the gas leak is reported", r.stdout + r.stderr)
        if not m:
            return
        inc = m.group(1)
        got = {}
        for role, p in listeners.items():
            rc = p.wait(30)
            line = parse_line(p.out[0]) if p.out else {}
            got[role] = line
            c.check(rc == 0 and len(p.out) == 1 and line.get("incident_id") == inc and
                    line.get("role") == role and
                    line.get("lead") == ("true" if role == LEAD else "false") and
                    line.get("state") == "dispatched" and line.get("tier") == "community",
                    "%s's listener printed its %s assignment and exited 0" % (UNITS[role], role),
                    (rc, p.out, p.err[-3:]))
    finally:
        for p in listeners.values():
            p.kill()

    d = dispatched(st, inc)
    c.eq(sorted(d), sorted(UNITS), "dispatched: committee, property company, grid worker, fire "
         "brigade (the special committee mode's roster)")
    c.eq({role: v[0] for role, v in d.items()}, UNITS, "the ledger's unit column names the units")
    c.eq([role for role, v in d.items() if v[1]], [LEAD], "the fire brigade leads")
    aid = {role: got.get(role, {}).get("assignment_id") for role in UNITS}
    c.eq(aid, {role: v[2] for role, v in d.items()},
         "the listeners' assignment ids are the dispatched ones")

    # Someone else's assignment is refused with a reason.
    r = st.ctl("unit", UNITS["property_company"], "ack", aid[LEAD],
               env=st.client_env("unit", UNITS["property_company"]))
    c.check(r.returncode == 1 and r.stdout.startswith("status=REJECTED error="),
            "acknowledging another unit's assignment: REJECTED, exit 1", r.stdout + r.stderr)
    r = st.ctl("unit", "no-such-unit", "listen", "--timeout", "10",
               env=st.client_env("unit", "no-such-unit"))
    c.check(r.returncode == 1 and r.stdout.startswith("status=REJECTED error=") and
            "no-such-unit" in r.stdout, "an unknown unit is refused: exit 1", r.stdout)

    for action in ("ack", "on-scene"):
        for role, unit in UNITS.items():
            answer(st, c, unit, action, aid[role])
    r = st.ctl("unit", UNITS[LEAD], "list", env=st.client_env("unit", UNITS[LEAD]))
    lines = [parse_line(x) for x in r.stdout.splitlines()]
    c.check(r.returncode == 0 and any(x.get("assignment_id") == aid[LEAD] and
                                      x.get("state") == "on_scene" for x in lines),
            "list shows the fire brigade's assignment on scene", r.stdout + r.stderr)
    # The lead last: the incident resolves when the lead has and every other part is done.
    for role in [r_ for r_ in UNITS if r_ != LEAD] + [LEAD]:
        answer(st, c, UNITS[role], "resolve", aid[role])
    resolved = S.wait_until(lambda: st.scalar(
        "select count(*) from ledger where incident_id = '%s' and type = 'resolved'" % inc) == "1",
        15)
    c.check(resolved, "dispatch commits the incident's `resolved` once every part is resolved")
    answer(st, c, UNITS["grid_worker"], "verify", aid["grid_worker"])
    closed = S.wait_until(lambda: st.sql(
        "select actor from ledger where incident_id = '%s' and type = 'closed'" % inc), 15)
    c.eq(closed, [["unit:" + UNITS["grid_worker"]]], "the grid worker's verification closes it")

    rows = st.sql("select type, actor, unit_id from ledger where incident_id = '%s' and type in "
                  "('unit_acknowledged', 'unit_on_scene', 'unit_resolved') order by position"
                  % inc)
    c.eq(len(rows), 12, "twelve answers in the ledger")
    c.check(all(a == "unit:" + u for _, a, u in rows),
            "every answer's actor is unit:<its unit column>", rows)

    row = st.sql("select state, lead_unit, acknowledged_at <= on_scene_at, "
                 "on_scene_at <= resolved_at, resolved_at <= closed_at, "
                 "time_to_acknowledge > interval '0', time_to_arrive >= time_to_acknowledge, "
                 "time_to_resolve >= time_to_arrive, "
                 "extract(epoch from time_to_acknowledge) < 60 "
                 "from incidents where incident_id = '%s'" % inc)
    c.eq(row, [["closed", UNITS[LEAD], "t", "t", "t", "t", "t", "t", "t"]],
         "incidents: state closed, lead_unit, milestones filled and ordered")
    first_ack = st.scalar("select min(at) = (select acknowledged_at from incidents where "
                          "incident_id = '%s') from ledger where incident_id = '%s' and type = "
                          "'unit_acknowledged'" % (inc, inc))
    c.eq(first_ack, "t", "acknowledged_at is the first unit's acknowledgement")

    # The daemons this test runs (a bare `status` asks the gateway too, which is not started here).
    r = st.ctl("status", "--wait", "10", "ledger", "intake", "router", "dispatch")
    c.check(r.returncode == 0 and re.search(r"\bname=dispatch\b", r.stdout),
            "linkagectl status asks dispatch too", r.stdout + r.stderr)
    r = st.ctl("verify")
    c.check(r.returncode == 0, "linkagectl verify passes", r.stdout + r.stderr)


def report_gas_leak(st, c, device, building):
    """A gas leak (IV) in Zhouji Asia Bay; returns its incident id or None."""
    r = st.ctl("report", "--device", device, "--seq", 1, "--compound", COMPOUND,
               "--building", building, "--category", "accident_disaster", "--kind", "gas_leak",
               "--severity", "IV", "--description", "gas smell, building %s" % building,
               env=st.client_env("device", device))
    m = re.match(r"^status=ACCEPTED incident_id=(\S+)", r.stdout)
    c.check(r.returncode == 0 and m, "a gas leak in building %s is reported" % building,
            r.stdout + r.stderr)
    return m.group(1) if m else None


def printed(p, inc):
    """The assignment line a listener printed for incident inc, parsed, or None."""
    for line in list(p.out):
        x = parse_line(line)
        if x.get("incident_id") == inc:
            return x
    return None


def check_second_terminal(st, c):
    """A responder's console survives a second terminal: with `listen` running for the fire
    brigade, `list` and `ack` from other processes are answered without unseating it, and it
    still gets the next call; a second session (a full Hello) takes the unit over as before."""
    unit = UNITS[LEAD]
    env = dict(st.env(), **st.client_env("unit", unit))
    run = "%x" % int(time.time() * 1000)
    listener = Proc(["unit", unit, "listen", "--timeout", "120"], env)
    second = None
    try:
        c.check(S.wait_until(lambda: any("welcomed" in x for x in listener.err), 15),
                "second terminal: the fire brigade's listener is welcomed", listener.err)
        first = report_gas_leak(st, c, "ctlunit2-a-" + run, "5")
        a1 = S.wait_until(lambda: printed(listener, first), 30) if first else None
        c.check(a1 is not None and a1.get("role") == "fire_brigade" and
                a1.get("kind") == "gas_leak" and a1.get("compound") == COMPOUND and
                a1.get("building") == "5" and a1.get("acknowledge_by", "-") != "-" and
                a1.get("exercise") == "false",
                "second terminal: the listener prints the call: incident, kind, place, deadline, "
                "not a drill", (listener.out, listener.err))
        aid = a1.get("assignment_id") if a1 else "none"

        r = st.ctl("unit", unit, "list", env=st.client_env("unit", unit))
        ids = [parse_line(x).get("assignment_id") for x in r.stdout.splitlines()]
        c.check(r.returncode == 0 and aid in ids,
                "second terminal: list from another process shows the call", r.stdout + r.stderr)
        r = st.ctl("unit", unit, "ack", aid, "--note", "from the second terminal",
                   env=st.client_env("unit", unit))
        c.check(r.returncode == 0 and LINE_OK.match(r.stdout.strip()),
                "second terminal: ack from another process is OK", r.stdout + r.stderr)
        c.eq(st.scalar("select count(*) from ledger where type = 'unit_acknowledged' and "
                       "actor = 'unit:%s' and incident_id = '%s'" % (unit, first)), "1",
             "second terminal: the acknowledgement is the unit's, in the ledger")

        # The listener is still the unit's session: it gets the next call, and was told nothing.
        nxt = report_gas_leak(st, c, "ctlunit2-b-" + run, "7")
        a2 = S.wait_until(lambda: printed(listener, nxt), 30) if nxt else None
        c.check(a2 is not None and listener.p.poll() is None,
                "second terminal: the listener still receives new calls afterwards",
                (listener.out, listener.err[-3:]))
        c.check(not any("took it over" in x for x in listener.out + listener.err),
                "second terminal: the listener was never told it was taken over",
                listener.out + listener.err)
        c.eq(st.scalar("select count(*) from ledger where type = 'unit_acknowledged' and "
                       "actor = 'unit:%s' and incident_id = '%s'" % (unit, first)), "1",
             "second terminal: still one acknowledgement")

        # A real second session of the unit (a second device, a full Hello) still takes over;
        # the listener hears so at its next heartbeat and ends.
        second = st.unit(unit)
        c.check(second.registered, "second session: a full Hello from another device is welcomed")
        rc = listener.wait(20)
        c.check(rc == 1 and listener.out and "took it over" in listener.out[-1],
                "second session: the listener is told it was taken over and exits 1",
                (rc, listener.out[-2:], listener.err[-2:]))
        got = second.wait_assignment(lambda a: a.incident_id == nxt, 10) if nxt else None
        c.check(got is not None, "second session: the open call goes to the new session")
    finally:
        listener.kill()
        if second is not None:
            second.close()


def body(st, c):
    check_usage(c)
    check_listen(c)
    check_answers(c)
    check_stack(st, c)
    check_second_terminal(st, c)


def local_noon_offset():
    """The UTC offset in minutes (-720..720) that makes it about noon locally now."""
    t = time.gmtime()
    off = (12 * 60 - (t.tm_hour * 60 + t.tm_min)) % 1440
    return off - 1440 if off > 720 else off


if __name__ == "__main__":
    S.main(body, "ctlunit", daemons=("ledger", "intake", "router", "dispatch"),
           env={"LINKAGE_TIME_SCALE": str(SCALE),
                "LINKAGE_UTC_OFFSET_MIN": str(local_noon_offset()),
                "LINKAGE_LOG_LEVEL": "warn"})
