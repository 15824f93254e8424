"""Coordinator commands through `linkagectl`, on the real stack.

An incident is reported and routed, then a coordinator acts on it with
linkagectl ack, escalate, de-escalate, note, merge and close; each answer
line and exit code is checked, and so is what the ledger and the incidents
view hold afterwards (actor "coordinator:<name>", tier, state). Commands on a
closed and an unknown incident fail with exit 1 and a clear error. A
planned-work window declared with `linkagectl plan declare` makes a matching
report routed with suppressed_by set and never escalated; lifting it works
once. `linkagectl status` sees all three daemons and `verify` passes.

Before the stack part, a stand-in router (a Python ROUTER socket) checks the
retry contract: the same command_id on every attempt, exit 75 on silence,
BUSY retried, exit 0 when an answer finally comes.

Time runs 3000x (LINKAGE_TIME_SCALE), so a 120-minute acknowledge deadline
passes in 2.4 s.
"""

import os
import re
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import command_pb2, event_pb2, report_pb2  # noqa: E402

import zmq  # noqa: E402

R = report_pb2
SCALE = 3000.0
COMPOUND = "zhouji-yinhai-bay"  # traditional mode: severity IV starts at compound tier
LINE_OK = re.compile(r"^status=OK event_id=(\S*) position=(\d+)$")


def events_of(st, incident_id, types=None):
    sql = "select position, actor, encode(payload, 'hex') from ledger where incident_id = '%s'" % \
        incident_id
    if types:
        sql += " and type in (%s)" % ",".join("'%s'" % t for t in types)
    out = []
    for pos, actor, hexed in st.sql(sql + " order by position"):
        ev = event_pb2.Event()
        ev.ParseFromString(bytes.fromhex(hexed))
        out.append((int(pos), actor, ev))
    return out


def incident_row(st, inc):
    rows = st.sql("select state, tier from incidents where incident_id = '%s'" % inc)
    return tuple(rows[0]) if rows else (None, None)


def report(st, c, device, seq, **kw):
    rep = S.make_report(device, seq, **kw)
    ack, _ = st.device().submit(rep, timeout=20)
    c.eq(S.status_name(ack), "ACCEPTED", "report %s/%d ACCEPTED" % (device, seq))
    return ack.incident_id if ack is not None and not isinstance(ack, bytes) else None, rep


def ctl_ok(st, c, name, *args):
    """Runs linkagectl; checks exit 0 and the OK line. Returns (event_id, position)."""
    r = st.ctl(*args)
    line = r.stdout.strip()
    m = LINE_OK.match(line)
    c.check(r.returncode == 0 and m is not None, name, "exit %d: %r %r" %
            (r.returncode, line, r.stderr.strip()))
    return (m.group(1), int(m.group(2))) if m else (None, 0)


def ctl_rejected(st, c, name, needle, *args):
    r = st.ctl(*args)
    line = r.stdout.strip()
    c.check(r.returncode == 1 and line.startswith("status=REJECTED error=") and needle in line,
            name, "exit %d: %r %r" % (r.returncode, line, r.stderr.strip()))


# ---------------------------------------------------------------- retry contract, no stack


def fake_router(endpoint, answers, seen, stop):
    """Binds a ROUTER; for each Command received appends it to seen and replies
    with answers[i] (None: stay silent) until stop is set."""
    s = zmq.Context.instance().socket(zmq.ROUTER)
    s.setsockopt(zmq.LINGER, 0)
    s.bind(endpoint)
    try:
        while not stop.is_set():
            if not s.poll(50):
                continue
            frames = s.recv_multipart()
            cmd = command_pb2.Command()
            cmd.ParseFromString(frames[-1])
            seen.append((frames, cmd))
            i = len(seen) - 1
            a = answers[i] if i < len(answers) else None
            if a is None:
                continue
            rep = command_pb2.CommandReply(status=a, command_id=cmd.command_id)
            if a == command_pb2.CommandReply.OK:
                rep.event_id = "%s/acknowledged/cmd-%s" % (cmd.incident_id, cmd.command_id)
                rep.position = 7
            else:
                rep.error = "busy for a moment"
            s.send_multipart([frames[0], b"", rep.SerializeToString()])
    finally:
        s.close()


def with_fake(answers, args):
    port = S.free_ports(1)[0]
    ep = "tcp://127.0.0.1:%d" % port
    seen, stop = [], threading.Event()
    t = threading.Thread(target=fake_router, args=(ep, answers, seen, stop), daemon=True)
    t.start()
    time.sleep(0.1)  # the bind happens in the thread; linkagectl would reconnect anyway
    env = dict(os.environ, LINKAGE_LOG_LEVEL="error")
    r = subprocess.run([os.path.join(S.BIN, "linkagectl")] + args + ["--endpoint", ep],
                       capture_output=True, text=True, timeout=30, env=env)
    stop.set()
    t.join(5)
    return r, seen


def check_retries(c):
    OK, BUSY = command_pb2.CommandReply.OK, command_pb2.CommandReply.BUSY
    # Silent twice, then answers: three attempts, one command_id, exit 0.
    r, seen = with_fake([None, None, OK], ["ack", "inc-1", "--note", "here", "--actor", "li-na",
                                           "--timeout", "300", "--retries", "2"])
    c.eq(r.returncode, 0, "a reply on the third attempt: exit 0")
    c.eq(len(seen), 3, "three attempts reached the router")
    ids = {cmd.command_id for _, cmd in seen}
    c.eq(len(ids), 1, "every attempt carries the same command_id")
    if seen:
        frames, cmd = seen[0]
        c.eq(len(frames), 3, "identity, empty delimiter, Command")
        c.eq(frames[1], b"", "the delimiter frame is empty")
        c.check(re.fullmatch(r"[0-9a-f]{16}", cmd.command_id), "command_id is 16 hex digits",
                cmd.command_id)
        c.eq((cmd.actor, cmd.incident_id, cmd.WhichOneof("body"), cmd.acknowledge.note),
             ("li-na", "inc-1", "acknowledge", "here"), "the Command says what was asked")
        c.check(r.stdout.strip().startswith("status=OK event_id=inc-1/acknowledged/cmd-%s "
                                            "position=7" % cmd.command_id),
                "the OK line", r.stdout)
    # Never answers: exit 75, TIMEOUT line, retries + 1 attempts.
    r, seen = with_fake([], ["close", "inc-2", "--reason", "done", "--timeout", "200",
                             "--retries", "1"])
    c.eq(r.returncode, 75, "no answer at all: exit 75")
    c.check(r.stdout.startswith("status=TIMEOUT error="), "a TIMEOUT line", r.stdout)
    c.eq(len(seen), 2, "--retries 1 sends twice")
    # BUSY, then OK: retried, exit 0; BUSY to the end: exit 75.
    r, seen = with_fake([BUSY, OK], ["note", "inc-3", "boiler checked", "--timeout", "2000"])
    c.eq((r.returncode, len(seen)), (0, 2), "BUSY is retried with the same command")
    c.eq(len({cmd.command_id for _, cmd in seen}), 1, "same command_id after BUSY")
    r, seen = with_fake([BUSY, BUSY], ["note", "inc-3", "x", "--retries", "1"])
    c.eq(r.returncode, 75, "BUSY on the last attempt: exit 75")
    c.check(r.stdout.startswith("status=BUSY error=\"busy for a moment\""), "a BUSY line",
            r.stdout)


def check_usage(st, c):
    for sub in (["ack"], ["escalate"], ["de-escalate"], ["merge"], ["close"], ["note"],
                ["plan"], ["plan", "declare"], ["plan", "lift"]):
        r = st.ctl(*(sub + ["--help"]))
        c.check(r.returncode == 0 and "SYNOPSIS" in r.stdout and "EXIT STATUS" in r.stdout,
                "linkagectl %s --help" % " ".join(sub), r.stderr)
    for args, why in ((["escalate", "inc-1"], "--reason is required"),
                      (["merge", "inc-1"], "--into is required"),
                      (["ack", "inc-1", "--reason", "x"], "--reason does not apply to ack"),
                      (["note", "inc-1"], "note needs TEXT"),
                      (["plan", "declare", "w1", "--compound", COMPOUND, "--to", "tomorrow",
                        "--reason", "x"], "a --to it cannot read"),
                      (["plan", "declare", "w1", "--compound", COMPOUND, "--to",
                        "2026-01-01T00:00", "--reason", "x"], "an ISO time without zone"),
                      (["plan", "bogus"], "plan needs declare or lift"),
                      (["ack", "inc-1", "--timeout", "0"], "--timeout 0")):
        r = st.ctl(*args)
        c.eq(r.returncode, 2, "usage error: " + why)


# ---------------------------------------------------------------- on the stack


def check_commands(st, c):
    run = uuid.uuid4().hex[:8]
    st.extra_env["LINKAGE_ACTOR"] = "wang-fang"
    inc, _ = report(st, c, "ctl-%s" % run, 1, category=R.NEIGHBOUR_DISPUTE, kind="noise",
                    severity=R.SEVERITY_IV, compound=COMPOUND, building="3")
    if not inc:
        return
    c.check(S.wait_until(lambda: incident_row(st, inc)[1] == "compound", 10),
            "routed to compound tier", incident_row(st, inc))

    ev_id, pos = ctl_ok(st, c, "ack answers OK", "ack", inc, "--note", "on my way")
    acked = events_of(st, inc, ["acknowledged"])
    if c.eq(len(acked), 1, "one acknowledged row"):
        p, actor, ev = acked[0]
        c.eq(actor, "coordinator:wang-fang", "actor from $LINKAGE_ACTOR")
        c.eq((p, ev.event_id), (pos, ev_id), "the OK line names the committed event and position")
    c.eq(incident_row(st, inc)[0], "acknowledged", "incidents.state acknowledged")

    ctl_ok(st, c, "escalate answers OK", "escalate", inc, "--reason", "neighbours threaten",
           "--actor", "li-na")
    c.eq(incident_row(st, inc)[1], "community", "escalate: compound -> community")
    esc = events_of(st, inc, ["escalated"])
    if c.eq(len(esc), 1, "one escalated row"):
        c.eq(esc[0][1], "coordinator:li-na", "--actor overrides the environment")
        c.eq((esc[0][2].escalated.from_tier, esc[0][2].escalated.to_tier),
             (event_pb2.COMPOUND, event_pb2.COMMUNITY), "from compound to community")
    ctl_ok(st, c, "de-escalate answers OK", "de-escalate", inc, "--reason", "calmed down")
    c.eq(incident_row(st, inc)[1], "compound", "de-escalate: back to compound")
    ctl_rejected(st, c, "de-escalate below compound is refused", "may not go below",
                 "de-escalate", inc, "--reason", "lower still")

    ctl_ok(st, c, "note answers OK", "note", inc, "mediator booked for 19:00")
    notes = events_of(st, inc, ["coordinator_note"])
    c.check(len(notes) == 1 and notes[0][2].coordinator_note.text == "mediator booked for 19:00",
            "the note is in the timeline", notes and notes[0][2])

    # A second incident (another kind: no automatic merge) merged by hand into the first.
    inc2, _ = report(st, c, "ctl-%s" % run, 2, category=R.NEIGHBOUR_DISPUTE, kind="parking",
                     severity=R.SEVERITY_IV, compound=COMPOUND, building="3")
    if inc2:
        c.check(S.wait_until(lambda: incident_row(st, inc2)[1] == "compound", 10),
                "second incident routed")
        ctl_ok(st, c, "merge answers OK", "merge", inc2, "--into", inc)
        merged = events_of(st, inc2, ["merged"])
        c.check(len(merged) == 1 and merged[0][2].merged.into_incident_id == inc,
                "a merged row naming the first incident", merged)
        c.eq(incident_row(st, inc2)[0], "closed", "the merged incident shows closed")
        ctl_rejected(st, c, "a merged incident refuses acknowledging", "merged", "ack", inc2)

    ctl_rejected(st, c, "close with an empty reason is refused by the router", "needs a reason",
                 "close", inc, "--reason", "")
    ctl_ok(st, c, "close answers OK", "close", inc, "--reason", "agreement signed")
    closed = events_of(st, inc, ["closed"])
    c.check(len(closed) == 1 and closed[0][2].closed.reason == "agreement signed",
            "a closed row with the reason", closed)
    c.eq(incident_row(st, inc)[0], "closed", "incidents.state closed")
    ctl_rejected(st, c, "a command on a closed incident: exit 1, says closed", "closed",
                 "escalate", inc, "--reason", "again")
    ctl_rejected(st, c, "an unknown incident: exit 1, says unknown incident", "unknown incident",
                 "ack", "inc-00000000000000000000")


def check_planned(st, c):
    run = uuid.uuid4().hex[:8]
    window = "water-%s" % run
    ev_id, _ = ctl_ok(st, c, "plan declare answers OK", "plan", "declare", window,
                      "--compound", COMPOUND, "--kind", "water_leak", "--from", "now",
                      "--to", "+120", "--reason", "riser replacement, water off")
    declared = events_of(st, "plan-" + window, ["planned_work_declared"])
    if c.eq(len(declared), 1, "a planned_work_declared row"):
        pw = declared[0][2].planned_work_declared
        c.eq((pw.compound_id, pw.kind, pw.building), (COMPOUND, "water_leak", ""),
             "window: compound and kind as declared")
        c.eq(pw.to_us - pw.from_us, 120 * 60 * 1000000, "--to +120 is two hours after --from")
        c.check(abs(pw.from_us - time.time() * 1e6) < 60e6, "--from now is now", pw.from_us)
        c.eq(declared[0][1], "coordinator:wang-fang", "declared by the coordinator")
    ctl_rejected(st, c, "the same window id again is refused", "already declared",
                 "plan", "declare", window, "--compound", COMPOUND, "--to", "+10",
                 "--reason", "again")

    inc, _ = report(st, c, "plan-%s" % run, 1, category=R.LATENT_HAZARD, kind="water_leak",
                    severity=R.SEVERITY_IV, compound=COMPOUND, building="7")
    if inc:
        c.check(S.wait_until(lambda: len(events_of(st, inc, ["routed"])) == 1, 10),
                "the matching report is routed")
        routed = events_of(st, inc, ["routed"])
        if routed:
            r = routed[0][2].routed
            c.eq(r.suppressed_by, "plan-" + window, "routed with suppressed_by naming the window")
            # 120 plan minutes at 3000x: 2.4 s. Wait past it with a margin, then look.
            S.wait_until(lambda: time.time() * 1e6 > r.acknowledge_by_us + 1.5e6, 15)
            c.eq(len(events_of(st, inc, ["escalated"])), 0,
                 "past its acknowledge deadline it is not escalated")
            c.eq(incident_row(st, inc)[1], "compound", "still at compound tier")
    # The same kind elsewhere is not covered: it is routed without suppressed_by.
    other, _ = report(st, c, "plan-%s" % run, 2, category=R.LATENT_HAZARD, kind="water_leak",
                      severity=R.SEVERITY_IV, compound="spring-square", building="7")
    if other:
        c.check(S.wait_until(lambda: len(events_of(st, other, ["routed"])) == 1, 10),
                "a report outside the window is routed")
        routed = events_of(st, other, ["routed"])
        c.check(routed and routed[0][2].routed.suppressed_by == "",
                "outside the window: no suppressed_by", routed and routed[0][2])

    ctl_ok(st, c, "plan lift answers OK", "plan", "lift", window, "--reason", "riser done")
    lifted = events_of(st, "plan-" + window, ["planned_work_lifted"])
    c.check(len(lifted) == 1 and lifted[0][2].planned_work_lifted.reason == "riser done",
            "a planned_work_lifted row with the reason", lifted)
    ctl_rejected(st, c, "lifting again is refused", "already lifted", "plan", "lift", window)
    ctl_rejected(st, c, "lifting an unknown window is refused", "unknown planned-work window",
                 "plan", "lift", "no-such-window-%s" % run)


def body(st, c):
    check_retries(c)
    check_usage(st, c)
    check_commands(st, c)
    check_planned(st, c)
    # Dispatch is not part of this stack (tests/integration/test_ctl_unit.py asks it).
    r = st.ctl("status", "--wait", "10", "ledger", "intake", "router")
    c.eq(r.returncode, 0, "linkagectl status --wait 10 ledger intake router exits 0")
    for name in ("ledger", "intake", "router"):
        c.check(re.search(r"\bname=%s\b" % name, r.stdout), "status lists %s" % name,
                r.stdout + r.stderr)
    r = st.ctl("status", "router")
    c.check(r.returncode == 0 and r.stdout.startswith("ok name=router ") and
            len(r.stdout.splitlines()) == 1, "linkagectl status router asks the router only",
            r.stdout + r.stderr)
    c.eq(st.ctl("status", "janitor").returncode, 2, "status of an unknown daemon: usage error")
    r = st.ctl("verify")
    c.check(r.returncode == 0, "linkagectl verify passes", r.stdout + r.stderr)


if __name__ == "__main__":
    S.main(body, "ctl-commands", daemons=("ledger", "intake", "router"),
           env={"LINKAGE_TIME_SCALE": str(SCALE)})
