"""Issue 2's acceptance on the real daemons and a private PostgreSQL:

report -> ACCEPTED -> one `reported` row and one `incidents` row; retry ->
DUPLICATE with the same incident and no row; every rejection case of
tests/cases/reports.tsv -> REJECTED with its reason and no row; the daemons
keep serving after garbage, empty, 1 MiB, multi-frame and non-UTF-8 frames;
linkagectl report/status/verify; the ledger refuses UPDATE and DELETE, and
verify names the position of an altered and of a removed row.

Under CURVE (LINKAGE_TEST_CURVE=1, tests/lib/stack.py) each device has its
own registered key; the rejection cases and bad frames are sent with a key
registered for the cases' device id, so they meet the same checks as in plain
mode (lk_report_check runs before the key's device is compared). In that mode
also: a plain client gets no answer at all, and a report whose device_id is
not its key's device is REJECTED with the reason.
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import cases  # noqa: E402
import stack as S  # noqa: E402
from stack import event_pb2, report_pb2  # noqa: E402

R = report_pb2
ACK = report_pb2.ReportAck


def rows(st):
    return int(st.scalar("select count(*) from ledger"))


def check_accepted_report(st, c):
    dev = st.device(device_id="spine-dev-1")
    rep = S.make_report("spine-dev-1", 1, category=R.ACCIDENT_DISASTER, kind="lift_entrapment",
                        severity=R.SEVERITY_II, compound="zhouji-asia-bay", building="3",
                        unit="2", floor=17, description="lift stuck between floors 17 and 18")
    # BUSY is a legal answer while the ledger is still connecting; submit() honours it.
    ack, attempts = dev.submit(rep, timeout=20)
    if not c.eq(S.status_name(ack), "ACCEPTED", "a valid report is ACCEPTED"):
        return None
    inc = ack.incident_id
    c.eq(ack.sequence, 1, "ACCEPTED echoes the sequence")
    c.eq(inc, S.incident_id("spine-dev-1", 1), "incident id is derived from (device_id, sequence)")
    c.eq(ack.error, "", "ACCEPTED carries no error")

    got = st.sql("select type, event_id, encode(payload, 'hex') from ledger "
                 "where incident_id = '%s'" % inc)
    c.eq([r[0] for r in got], ["reported"], "exactly one `reported` row for the incident")
    if got:
        ev = event_pb2.Event()
        ev.ParseFromString(bytes.fromhex(got[0][2]))
        c.eq(ev.event_id, got[0][1], "row event_id is the payload's")
        c.eq(ev.type, event_pb2.REPORTED, "payload is a REPORTED event")
        c.eq(ev.WhichOneof("body"), "reported", "payload body is `reported`")
        c.eq(ev.reported.report.SerializeToString(deterministic=True),
             rep.SerializeToString(deterministic=True), "payload carries the report as sent")
    inc_rows = st.sql("select category, severity, compound_id, state from incidents "
                      "where incident_id = '%s'" % inc)
    c.eq(inc_rows, [["accident_disaster", "II", "zhouji-asia-bay", "reported"]],
         "one `incidents` row with category, severity, compound and state")
    positions = st.sql("select position from ledger order by position")
    c.eq([int(p[0]) for p in positions], list(range(1, len(positions) + 1)),
         "positions start at 1 and have no gap")

    before = rows(st)
    ack2 = dev.request(rep, timeout=10)
    c.eq(S.status_name(ack2), "DUPLICATE", "the same report again is DUPLICATE")
    if not isinstance(ack2, (bytes, type(None))):
        c.eq(ack2.incident_id, inc, "DUPLICATE names the same incident")
        c.eq(ack2.sequence, 1, "DUPLICATE echoes the sequence")
    changed = S.make_report("spine-dev-1", 1, category=R.SOCIAL_SAFETY, kind="fight",
                            severity=R.SEVERITY_IV, compound="spring-square")
    ack3 = dev.request(changed, timeout=10)
    c.eq(S.status_name(ack3), "DUPLICATE",
         "same (device_id, sequence) with other fields is DUPLICATE")
    if not isinstance(ack3, (bytes, type(None))):
        c.eq(ack3.incident_id, inc, "... and names the same incident")
    c.eq(rows(st), before, "retries add no row")
    c.eq(st.scalar("select count(*) from incidents where incident_id = '%s'" % inc), "1",
         "still one incidents row")
    dev.close()
    return inc


def check_rejections(st, c):
    try:
        table = cases.load_report_cases()
    except Exception as e:
        c.fail("tests/cases/reports.tsv loads", e)
        return
    c.check(len(table) > 0, "tests/cases/reports.tsv has cases")
    dev = st.device(device_id="cases-dev")  # the base report's device
    for case in table:
        before = rows(st)
        ack = dev.request(case.frames, timeout=10, sequence=None)
        name = "case %s (line %d)" % (case.name, case.line)
        if not c.eq(S.status_name(ack), case.status, "%s is %s" % (name, case.status)):
            continue
        c.check(case.reason.lower() in ack.error.lower(),
                name + " names the reason", "error %r lacks %r" % (ack.error, case.reason))
        if case.sequence:
            c.eq(ack.sequence, case.sequence, name + " echoes the sequence")
        c.eq(rows(st), before, name + " adds no row")
    dev.close()


def nested_location(compound):
    loc = report_pb2.Location()
    loc.floor = 3
    return loc.SerializeToString() + S.raw_field(1, compound)


def check_bad_frames(st, c):
    base = S.make_report("spine-bad", 1).SerializeToString()
    loc_bad = S.raw_field(6, nested_location(b"lijing\xffgang"))
    bad = [
        ("garbage bytes", [b"\xff\xfe\xfd this is not a protobuf \x00\x01\x02\x8f"]),
        ("random bytes", [bytes((i * 131 + 7) % 256 for i in range(300))]),
        ("an empty frame", [b""]),
        ("a 1 MiB frame", [base + S.raw_field(7, b"x" * (1 << 20))]),
        ("two frames", [base, base]),
        ("three frames", [base, b"", b"junk"]),
        ("non-UTF-8 description", [base + S.raw_field(7, b"gas \xc3\x28 smell")]),
        ("non-UTF-8 device_id", [base + S.raw_field(1, b"dev\xed\xa0\x80")]),
        ("non-UTF-8 kind", [base + S.raw_field(4, b"gas\xfe")]),
        ("non-UTF-8 compound_id", [base + loc_bad]),
        ("overlong UTF-8 in description", [base + S.raw_field(7, b"\xc0\xaf")]),
        ("truncated protobuf", [base[:len(base) // 2]]),
    ]
    for name, frames in bad:
        before = rows(st)
        dev = st.device(device_id="spine-bad")
        ack = dev.request(frames, timeout=10, sequence=None)
        dev.close()
        if c.eq(S.status_name(ack), "REJECTED", name + " is REJECTED"):
            c.check(ack.error != "", name + " says why")
        c.eq(rows(st), before, name + " adds no row")
        c.check(st.alive("intake") and st.alive("ledger"), "daemons alive after " + name)

    dev = st.device(device_id="spine-after-bad")
    ack, _ = dev.submit(S.make_report("spine-after-bad", 1), timeout=20)
    c.eq(S.status_name(ack), "ACCEPTED", "a valid report is ACCEPTED after the bad frames")
    dev.close()

    # A REQ device, as the contract allows, on the same daemons.
    req = st.device(kind=S.zmq.REQ, device_id="spine-req")
    ack = req.request(S.make_report("spine-req", 7), timeout=10)
    c.eq(S.status_name(ack), "ACCEPTED", "a REQ device's report is ACCEPTED")
    req.close()


def check_linkagectl(st, c):
    r = st.ctl("status", "--wait", "10", "ledger", "intake", timeout=30)  # no router here
    c.eq(r.returncode, 0, "linkagectl status --wait 10 exits 0")
    if r.returncode != 0:
        print(r.stdout + r.stderr)

    before = rows(st)
    r = st.ctl("report", "--device", "spine-ctl", "--seq", "1", "--retries", "10", "--category",
               "latent_hazard", "--severity", "IV", "--compound", "spring-square",
               "--kind", "blocked_fire_lane", "--description", "cars parked in the fire lane",
               timeout=60, env=st.client_env("device", "spine-ctl"))
    out = r.stdout + r.stderr
    c.eq(r.returncode, 0, "linkagectl report exits 0")
    c.check("status=ACCEPTED" in out, "linkagectl report prints status=ACCEPTED", out.strip())
    inc = S.incident_id("spine-ctl", 1)
    c.check(inc in out, "linkagectl report prints the incident id", out.strip())
    c.eq(rows(st), before + 1, "linkagectl report adds one row")
    c.eq(st.sql("select category, severity, compound_id, state from incidents "
                "where incident_id = '%s'" % inc),
         [["latent_hazard", "IV", "spring-square", "reported"]],
         "linkagectl's report is in incidents")

    r = st.ctl("verify", timeout=60)
    c.eq(r.returncode, 0, "linkagectl verify passes on an untouched ledger")
    if r.returncode != 0:
        print(r.stdout + r.stderr)


def check_curve_admission(st, c):
    """CURVE mode only: what plain mode cannot show."""
    before = rows(st)
    plain = S.Device(st.intake_endpoint)
    ack = plain.request(S.make_report("spine-plain", 1), timeout=1.5)
    plain.close()
    c.eq(ack, None, "CURVE: a plain (keyless) device gets no answer within 1.5 s")
    dev = st.device(device_id="spine-dev-1")
    ack = dev.request(S.make_report("spine-not-mine", 1), timeout=10)
    dev.close()
    want = "device_id spine-not-mine does not match the key's device spine-dev-1"
    c.check(S.status_name(ack) == "REJECTED" and ack.error == want,
            "CURVE: a report naming another device than its key's is REJECTED with the reason",
            ack)
    c.eq(rows(st), before, "CURVE: neither adds a row")


def names_position(text, pos):
    return re.search(r"position[^0-9\n]{0,4}%d\b" % pos, text) is not None


def check_append_only(st, c):
    n = rows(st)
    rc, _, err = st.psql("update ledger set type = 'closed' where position = 1")
    c.check(rc != 0, "UPDATE of a ledger row is refused", "psql exit %d" % rc)
    rc, _, err = st.psql("delete from ledger where position = 1")
    c.check(rc != 0, "DELETE of a ledger row is refused", "psql exit %d" % rc)
    rc, _, err = st.psql("truncate ledger")
    c.check(rc != 0, "TRUNCATE of the ledger is refused", "psql exit %d" % rc)
    c.eq(rows(st), n, "the ledger is unchanged")
    c.eq(st.scalar("select type from ledger where position = 1"), "reported",
         "row 1 is unchanged")


def check_tamper(st, c):
    n = rows(st)
    if not c.check(n >= 4, "enough rows to tamper with", n):
        return
    pos = 2
    hexpay = st.scalar("select encode(payload, 'hex') from ledger where position = %d" % pos)
    ev = event_pb2.Event()
    ev.ParseFromString(bytes.fromhex(hexpay))
    ev.reported.report.description = "nothing happened here"
    forged = ev.SerializeToString().hex()

    st.sql("alter table ledger disable trigger user")
    st.sql("update ledger set payload = decode('%s', 'hex') where position = %d" % (forged, pos))
    r = st.ctl("verify", timeout=60)
    out = r.stdout + r.stderr
    print("verify after altering position %d: %s" % (pos, out.strip()))
    c.check(r.returncode != 0, "verify fails after a payload is altered", out.strip())
    c.check(names_position(out, pos), "verify names the altered position %d" % pos, out.strip())

    st.sql("update ledger set payload = decode('%s', 'hex') where position = %d" % (hexpay, pos))
    r = st.ctl("verify", timeout=60)
    c.eq(r.returncode, 0, "verify passes again once the payload is restored")

    gone = n - 1  # a middle row: the last one has no successor to betray it
    st.sql("delete from ledger where position = %d" % gone)
    r = st.ctl("verify", timeout=60)
    out = r.stdout + r.stderr
    print("verify after removing position %d: %s" % (gone, out.strip()))
    c.check(r.returncode != 0, "verify fails after a row is removed", out.strip())
    c.check(names_position(out, gone) or names_position(out, gone + 1),
            "verify names the removed position %d" % gone, out.strip())
    st.sql("alter table ledger enable trigger user")


def body(st, c):
    inc = check_accepted_report(st, c)
    check_rejections(st, c)
    check_bad_frames(st, c)
    check_linkagectl(st, c)
    if st.curve:
        check_curve_admission(st, c)
    check_append_only(st, c)
    if inc is not None:
        check_tamper(st, c)
    for name in ("intake", "ledger"):
        c.eq(st.stop_daemon(name), 0, "linkage-%s exits 0 on SIGTERM" % name)


if __name__ == "__main__":
    S.main(body, "spine")
