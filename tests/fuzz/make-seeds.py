#!/usr/bin/python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/: a handful of
valid inputs of every kind each target reads, and invalid ones next to them.

    /usr/bin/python3 tests/fuzz/make-seeds.py     (after `make build/py/linkage/v1/report_pb2.py`)

Seeds are named for what they are; rewriting them is idempotent. Regression
inputs a fuzz run found are kept under their own names (regress-*) and never
touched here. The incidents named by command and event seeds are those
tests/fuzz/fuzz_router.h folds into its router state; those named by unit seeds
are the ones tests/fuzz/fuzz_unit.c folds into its dispatch state.
"""

import hashlib
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "build", "py"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

from linkage.v1 import command_pb2, event_pb2, ledger_pb2, report_pb2, unit_pb2  # noqa: E402

CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
T0 = 1800000000000000
MIN = 60000000


def incident_id(device, seq):
    """lk_incident_id: "inc-" and 10 bytes of SHA-256(device NUL sequence) in hex."""
    return "inc-" + hashlib.sha256(device.encode() + b"\0" + str(seq).encode()).hexdigest()[:20]


INC_GAS = incident_id("fuzz-dev-1", 1)
INC_GAS2 = incident_id("fuzz-dev-2", 1)
INC_RAIL = incident_id("fuzz-dev-3", 7)
INC_CLOSED = incident_id("fuzz-dev-4", 2)


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def report(**kw):
    r = report_pb2.Report(device_id="fuzz-seed", sequence=3, category=2, kind="gas_leak",
                          severity=2, description="gas smell in the stairwell",
                          observed_at_us=T0)
    r.location.compound_id = "spring-square"
    r.location.building = "7"
    r.location.unit = "1"
    r.location.floor = 12
    r.location.lat = 30.6781
    r.location.lon = 103.8543
    for k, v in kw.items():
        if k.startswith("loc_"):
            setattr(r.location, k[4:], v)
        else:
            setattr(r, k, v)
    return r


def reported_event(r, at=T0):
    inc = incident_id(r.device_id, r.sequence)
    ev = event_pb2.Event(event_id=inc + "/reported", incident_id=inc, type=event_pb2.REPORTED,
                         at_us=at, actor="device:" + r.device_id)
    ev.reported.report.CopyFrom(r)
    ev.reported.received_at_us = at
    return ev


def router_events():
    """Events as the ledger publishes them, about the fuzz state's incidents and new ones."""
    out = {}
    out["reported-new"] = reported_event(report())
    out["reported-merge-candidate"] = reported_event(
        report(device_id="fuzz-dev-9", sequence=1, loc_compound_id="zhouji-asia-bay",
               loc_building="1", severity=3), T0 + 5 * 1000000)
    out["reported-planned"] = reported_event(
        report(device_id="fuzz-dev-8", sequence=1, loc_compound_id="zhouji-yinhai-bay",
               category=7, kind="railing", severity=4), T0 + 6 * 1000000)
    out["reported-repeat"] = reported_event(
        report(device_id="fuzz-dev-1", sequence=1, loc_compound_id="zhouji-asia-bay",
               loc_building="1"))

    def ev(inc, typ, name, **body):
        e = event_pb2.Event(event_id="%s/%s" % (inc, name), incident_id=inc, type=typ,
                            at_us=T0 + 60 * 1000000, actor="svc:router")
        return e

    e = ev(INC_GAS, event_pb2.ESCALATED, "escalated/1")
    e.escalated.from_tier = event_pb2.COMMUNITY
    e.escalated.to_tier = event_pb2.STREET
    e.escalated.reason = "acknowledge deadline passed"
    e.escalated.organisation_id = "yongquan"
    e.escalated.acknowledge_by_us = T0 + 10 * MIN
    e.escalated.resolve_by_us = T0 + 60 * MIN
    out["escalated"] = e
    e = ev(INC_GAS, event_pb2.DE_ESCALATED, "de_escalated/1")
    e.de_escalated.from_tier = event_pb2.COMMUNITY
    e.de_escalated.to_tier = event_pb2.COMPOUND
    e.de_escalated.reason = "minor"
    out["de-escalated"] = e
    e = ev(INC_RAIL, event_pb2.ACKNOWLEDGED, "acknowledged/1")
    e.actor = "coordinator:li"
    e.acknowledged.note = "on it"
    out["acknowledged"] = e
    e = ev(INC_GAS2, event_pb2.MERGED, "merged")
    e.merged.into_incident_id = INC_GAS
    out["merged"] = e
    e = ev(INC_GAS, event_pb2.SEVERITY_CHANGED, "severity_changed/1")
    e.severity_changed.from_severity = 2
    e.severity_changed.to_severity = 1
    e.severity_changed.reason = "three reporters"
    out["severity-changed"] = e
    e = ev(INC_RAIL, event_pb2.CLOSED, "closed")
    e.closed.reason = "fixed"
    out["closed"] = e
    e = ev(INC_RAIL, event_pb2.RESOLVED, "resolved")
    e.resolved.summary = "fixed"
    out["resolved"] = e
    e = ev(INC_GAS, event_pb2.OVERDUE, "overdue/acknowledge/1")
    e.overdue.deadline = "acknowledge"
    e.overdue.due_us = T0
    e.overdue.tier = event_pb2.DISTRICT
    out["overdue"] = e
    e = ev(INC_RAIL, event_pb2.SUPPRESSED, "suppressed/1")
    e.suppressed.reason = "planned work"
    e.suppressed.by = "plan-fuzz-window"
    out["suppressed"] = e
    e = ev("plan-w2", event_pb2.PLANNED_WORK_DECLARED, "planned_work_declared")
    e.planned_work_declared.window_id = "w2"
    e.planned_work_declared.compound_id = "lijinggang"
    e.planned_work_declared.from_us = T0
    e.planned_work_declared.to_us = T0 + 60 * MIN
    e.planned_work_declared.reason = "works"
    out["planned-declared"] = e
    e = ev("plan-fuzz-window", event_pb2.PLANNED_WORK_LIFTED, "planned_work_lifted")
    e.planned_work_lifted.window_id = "fuzz-window"
    e.planned_work_lifted.reason = "done"
    out["planned-lifted"] = e
    e = ev(INC_GAS, event_pb2.COORDINATOR_NOTE, "coordinator_note/1")
    e.coordinator_note.text = "called the gas company"
    out["note"] = e
    e = ev(INC_GAS, event_pb2.ROUTED, "routed")
    e.routed.tier = event_pb2.DISTRICT
    e.routed.organisation_id = "wenjiang"
    e.routed.acknowledge_by_us = T0 - MIN
    e.routed.resolve_by_us = T0 + MIN
    out["routed-again"] = e
    # Malformed but decodable: a body that does not match the type, no body, no ids.
    e = ev(INC_GAS, event_pb2.ESCALATED, "escalated/2")
    e.closed.reason = "mismatch"
    out["bad-type-body-mismatch"] = e
    out["bad-empty"] = event_pb2.Event()
    e = event_pb2.Event(event_id="x", incident_id="", type=event_pb2.REPORTED)
    e.reported.received_at_us = 1
    out["bad-reported-without-report"] = e
    return out


def commands():
    out = {}

    def cmd(name, inc, **kw):
        c = command_pb2.Command(command_id="seed-" + name, actor="li", incident_id=inc)
        out[name] = c
        return c

    cmd("acknowledge", INC_GAS).acknowledge.note = "taking it"
    cmd("escalate", INC_GAS).escalate.reason = "needs the street"
    cmd("escalate-rail", INC_RAIL).escalate.reason = "needs the community"
    cmd("de-escalate", INC_GAS).de_escalate.reason = "contained"
    cmd("de-escalate-bottom", INC_RAIL).de_escalate.reason = "already at the bottom"
    cmd("merge", INC_RAIL).merge.into_incident_id = INC_GAS
    cmd("merge-self", INC_GAS).merge.into_incident_id = INC_GAS
    cmd("merge-into-merged", INC_RAIL).merge.into_incident_id = INC_GAS2
    cmd("close", INC_GAS).close.reason = "resolved"
    cmd("close-no-reason", INC_RAIL).close.SetInParent()
    cmd("close-closed", INC_CLOSED).close.reason = "again"
    cmd("note", INC_RAIL).note.text = "resident called back"
    cmd("note-unknown", "inc-00000000000000000000").note.text = "who"
    c = cmd("plan", "")
    w = c.declare_planned_work
    w.window_id = "w-seed"
    w.compound_id = "lijinggang"
    w.building = "3"
    w.kind = "railing"
    w.from_us = T0
    w.to_us = T0 + 60 * MIN
    w.reason = "repainting"
    c = cmd("plan-backwards", "")
    c.declare_planned_work.window_id = "w-back"
    c.declare_planned_work.compound_id = "no-such-compound"
    c.declare_planned_work.from_us = T0 + MIN
    c.declare_planned_work.to_us = T0
    c = cmd("plan-duplicate", "")
    c.declare_planned_work.window_id = "fuzz-window"
    c.declare_planned_work.compound_id = "zhouji-yinhai-bay"
    c.declare_planned_work.from_us = T0
    c.declare_planned_work.to_us = T0 + MIN
    c = cmd("lift", "")
    c.lift_planned_work.window_id = "fuzz-window"
    c.lift_planned_work.reason = "done"
    c = cmd("lift-unknown", "")
    c.lift_planned_work.window_id = "nope"
    out["no-body"] = command_pb2.Command(command_id="seed-no-body", actor="li", incident_id=INC_GAS)
    c = cmd("long-id", INC_GAS)
    c.command_id = "c" * 200
    c.acknowledge.note = "x"
    c = cmd("bad-utf8-actor", INC_GAS)
    c.note.text = "x"
    return out


def unit_messages():
    """UnitMessages about the assignments tests/fuzz/fuzz_unit.c folds into its state:
    INC_GAS open (fire acknowledged, grid worker on scene, committee declined, property
    dispatched), INC_RAIL resolved, INC_CLOSED closed, INC_GAS2 merged into INC_GAS."""
    out = {}
    K = unit_pb2.Answer

    def msg(name, unit, seq=1):
        m = unit_pb2.UnitMessage(unit_id=unit, seq=seq)
        out[name] = m
        return m

    def ans(name, unit, assignment, kind, note=""):
        m = msg(name, unit)
        m.answer.assignment_id = assignment
        m.answer.kind = kind
        m.answer.note = note
        return m

    msg("hello", "fire-wenjiang").hello.software = "fuzz-seed 1.0"
    msg("hello-unknown", "no-such-unit").hello.software = "x"
    msg("heartbeat", "grid-workers-zhouji-asia-bay", 7).heartbeat.SetInParent()
    msg("list", "fire-wenjiang", 8).list.SetInParent()
    msg("list-grid", "grid-workers-lijinggang", 9).list.SetInParent()
    msg("list-unknown", "nobody", 10).list.SetInParent()
    ans("answer-ack", "property-zhouji-asia-bay", INC_GAS + "/property_company/1",
        K.ACKNOWLEDGED, "on our way")
    ans("answer-on-scene", "fire-wenjiang", INC_GAS + "/fire_brigade/1", K.ON_SCENE)
    ans("answer-resolved", "grid-workers-zhouji-asia-bay", INC_GAS + "/grid_worker/1",
        K.RESOLVED, "valve shut")
    ans("answer-declined", "property-zhouji-asia-bay", INC_GAS + "/property_company/1",
        K.DECLINED, "no staff")
    ans("answer-backup", "fire-wenjiang", INC_GAS + "/fire_brigade/1", K.NEED_BACKUP)
    ans("answer-repeat-ack", "fire-wenjiang", INC_GAS + "/fire_brigade/1", K.ACKNOWLEDGED)
    ans("answer-verified", "grid-workers-lijinggang", INC_RAIL + "/grid_worker/1", K.VERIFIED)
    ans("answer-verified-incident", "grid-workers-lijinggang", INC_RAIL, K.VERIFIED, "核查完毕")
    ans("answer-unicode-note", "fire-wenjiang", INC_GAS + "/fire_brigade/1", K.ON_SCENE,
        "已到达现场，正在处置")
    # Refused: not the unit's, unknown, closed, merged, declined, resolved, bad kind and note.
    ans("bad-other-units", "fire-wenjiang", INC_GAS + "/property_company/1", K.ACKNOWLEDGED)
    ans("bad-unknown-assignment", "fire-wenjiang", INC_GAS + "/fire_brigade/9", K.ACKNOWLEDGED)
    ans("bad-unknown-unit", "nobody", INC_GAS + "/fire_brigade/1", K.ACKNOWLEDGED)
    ans("bad-closed", "fire-wenjiang", INC_CLOSED + "/fire_brigade/1", K.RESOLVED)
    ans("bad-merged", "fire-wenjiang", INC_GAS2 + "/fire_brigade/1", K.ON_SCENE)
    ans("bad-declined-ack", "committee-zhouji-asia-bay", INC_GAS + "/special_committee/1",
        K.ACKNOWLEDGED)
    ans("bad-resolved-decline", "fire-wenjiang", INC_RAIL + "/fire_brigade/1", K.DECLINED)
    ans("bad-verify-not-resolved", "grid-workers-zhouji-asia-bay", INC_GAS + "/grid_worker/1",
        K.VERIFIED)
    ans("bad-verify-not-grid", "fire-wenjiang", INC_RAIL + "/fire_brigade/1", K.VERIFIED)
    ans("bad-verify-not-covering", "grid-workers-zhouji-asia-bay", INC_RAIL, K.VERIFIED)
    ans("bad-kind-unspecified", "fire-wenjiang", INC_GAS + "/fire_brigade/1", 0)
    ans("bad-kind-unknown", "fire-wenjiang", INC_GAS + "/fire_brigade/1", 99)
    ans("bad-note-long", "fire-wenjiang", INC_GAS + "/fire_brigade/1", K.ON_SCENE, "x" * 501)
    ans("bad-no-assignment", "fire-wenjiang", "", K.ACKNOWLEDGED)
    ans("bad-long-assignment", "fire-wenjiang", "a" * 300, K.ACKNOWLEDGED)
    out["bad-no-body"] = unit_pb2.UnitMessage(unit_id="fire-wenjiang", seq=3)
    out["bad-empty"] = unit_pb2.UnitMessage()
    return out


def main():
    reports = {
        "valid-gas-leak": report(),
        "valid-minimal": report_pb2.Report(device_id="d", sequence=1, category=7, kind="k",
                                           severity=4,
                                           location=report_pb2.Location(compound_id="lijinggang")),
        "valid-unicode": report(description="楼道里有煤气味", kind="gas_leak"),
        "bad-unknown-compound": report(loc_compound_id="atlantis"),
        "bad-zero-sequence": report(sequence=0),
        "bad-unknown-category": report(category=99),
        "bad-empty": report_pb2.Report(),
    }
    for name, r in reports.items():
        write("report", name, r.SerializeToString())
    try:
        from cases import load_report_cases
        for c in load_report_cases():
            write("report", "case-" + c.name, c.frames[0])
    except Exception as e:  # the cases are a bonus; the seeds above stand on their own
        print("reports.tsv cases not used: %s" % e, file=sys.stderr)
    write("report", "bad-truncated", reports["valid-gas-leak"].SerializeToString()[:17])
    write("report", "bad-not-protobuf", b"\xff\xff\xff\xff\x0f")
    write("report", "bad-utf8-kind", report().SerializeToString() + b"\x22\x02\xc3\x28")

    evs = router_events()
    for name, e in evs.items():
        write("event", name, e.SerializeToString())
    write("event", "bad-truncated", evs["reported-new"].SerializeToString()[:30])

    for i, (name, e) in enumerate(sorted(evs.items()), 1):
        req = ledger_pb2.LedgerRequest(request_id=i)
        req.append.event.CopyFrom(e)
        write("ledger_request", "append-" + name, req.SerializeToString())
    req = ledger_pb2.LedgerRequest(request_id=100)
    req.replay.from_position = 1
    req.replay.limit = 1000
    write("ledger_request", "replay", req.SerializeToString())
    req = ledger_pb2.LedgerRequest(request_id=101)
    req.replay.from_position = 2**64 - 1
    req.replay.limit = 2**32 - 1
    write("ledger_request", "replay-huge", req.SerializeToString())
    write("ledger_request", "append-empty", ledger_pb2.LedgerRequest(
        request_id=102, append=ledger_pb2.AppendRequest()).SerializeToString())
    write("ledger_request", "no-body", ledger_pb2.LedgerRequest(request_id=103).SerializeToString())
    write("ledger_request", "bad-not-protobuf", b"\x12\xff\xff\xff\xff\x0f")

    for name, c in commands().items():
        data = c.SerializeToString()
        if name == "bad-utf8-actor":
            data += b"\x12\x02\xc3\x28"  # actor (field 2) again, invalid UTF-8; the last one wins
        write("command", name, data)
    write("command", "bad-not-protobuf", b"\x0a\xff")

    for name, m in unit_messages().items():
        write("unit", name, m.SerializeToString())
    ack = unit_messages()["answer-ack"]
    # note (Answer field 3) again as invalid UTF-8, in the answer (UnitMessage field 12): the last
    # note wins.
    sub = ack.answer.SerializeToString() + b"\x1a\x02\xc3\x28"
    write("unit", "bad-utf8-note", ack.SerializeToString() + b"\x62" + bytes([len(sub)]) + sub)
    write("unit", "bad-truncated", ack.SerializeToString()[:20])
    write("unit", "bad-not-protobuf", b"\x0a\xff")

    dist = os.path.join(ROOT, "tests", "fuzz", "corpus", "district")
    os.makedirs(dist, exist_ok=True)
    shutil.copyfile(os.path.join(ROOT, "deploy", "district", "wenjiang.yaml"),
                    os.path.join(dist, "wenjiang.yaml"))
    for sub in ("district", "plans"):
        src = os.path.join(ROOT, "tests", "data", sub)
        for f in sorted(os.listdir(src)):
            if f.endswith(".yaml"):
                shutil.copyfile(os.path.join(src, f), os.path.join(dist, sub + "-" + f))
    write("district", "empty", b"")
    write("district", "deep", b"a: " + b"[" * 100 + b"]" * 100 + b"\n")
    write("district", "anchors", b"a: &x [1, 2]\nb: *x\n")
    write("district", "binary", bytes(range(256)))


if __name__ == "__main__":
    main()
