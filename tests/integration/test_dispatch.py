"""Issue 4's acceptance on the real daemons: coordinated handling by responder units.

Every unit of the demo district connects as a Python Unit (tests/lib/stack.py)
before anything is reported. Then:
  - a gas leak in Zhouji Asia Bay (special committee) is routed at community tier
    and dispatched to the special committee and the property company (the
    compound roster), the grid workers and the fire brigade, which leads; each
    unit gets its Assignment on its socket and answers acknowledged, on scene,
    resolved; the lead resolving last makes the incident `resolved`, the grid
    worker's VERIFIED closes it; the ledger holds the timeline with actors and
    times, and the `incidents` view follows it;
  - the same leak in Zhouji Yinhai Bay (traditional) and Lijinggang (established
    community) calls the rosters their modes give; left unverified, both close
    automatically after the verification window;
  - a health centre that never answers is replaced by the street's at its
    acknowledge deadline; a grid worker that never answers where no other grid
    worker covers the compound ends in `no_unit_available`, and the router
    escalates at once;
  - dispatch killed with SIGKILL after dispatching and before any answer: on
    restart the units get the same assignments again, nothing is dispatched
    twice or under a new id, and answers after the restart are accepted;
  - wrong unit, unknown assignment, unknown unit id, no Hello, malformed and
    oversized frames get clear errors and change nothing.
Time runs 300x (LINKAGE_TIME_SCALE): a plan minute is 0.2 s. The units' local
time is set to midday through LINKAGE_UTC_OFFSET_MIN so duty hours never decide
the outcome.

Under CURVE (LINKAGE_TEST_CURVE=1, tests/lib/stack.py) every unit and device
has its own registered key (the unit from elsewhere too: it is admitted, and
refused by dispatch as a unit not in the district); the raw socket sending bad
frames speaks with the fire brigade's key, and a plain one gets nothing at all.
The restart test then also shows the units' CURVE sessions coming back.
"""

import os
import sys
import time
import uuid

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import event_pb2, report_pb2, unit_pb2  # noqa: E402
import zmq  # noqa: E402

R = report_pb2
OK = unit_pb2.AnswerReply.OK
REJECTED = unit_pb2.AnswerReply.REJECTED
SCALE = 300.0
VERIFY_WINDOW_MIN = 20  # 4 s at SCALE
RUN = uuid.uuid4().hex[:8]


def midday_offset():
    """A UTC offset (minutes) that makes the district's local time about 12:00 now."""
    t = time.gmtime()
    off = (12 * 60 - (t.tm_hour * 60 + t.tm_min)) % 1440
    return off - 1440 if off > 720 else off


def events_of(st, inc, types=None):
    """(position, Event) of one incident in position order."""
    sql = "select position, encode(payload, 'hex') from ledger where incident_id = '%s'" % inc
    if types:
        sql += " and type in (%s)" % ",".join("'%s'" % t for t in types)
    out = []
    for pos, hexed in st.sql(sql + " order by position"):
        ev = event_pb2.Event()
        ev.ParseFromString(bytes.fromhex(hexed))
        out.append((int(pos), ev))
    return out


def count(st, inc, typ):
    return int(st.scalar("select count(*) from ledger where incident_id = '%s' and type = '%s'" %
                         (inc, typ)))


def state_of(st, inc):
    return st.scalar("select state from incidents where incident_id = '%s'" % inc)


def dispatched(st, inc, tier=None):
    """role -> Dispatched body (with the event's actor and at_us), for one incident."""
    out = {}
    for _, ev in events_of(st, inc, ["dispatched"]):
        if tier is None or ev.dispatched.tier == tier:
            out[ev.dispatched.role] = ev
    return out


def dispatch_status(st):
    """The daemon's status line as a dict, or {} when it does not answer."""
    s = zmq.Context.instance().socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect("ipc://%s/dispatch.ctl" % st.run_dir)
    try:
        s.send(b"status")
        if not s.poll(2000):
            return {}
        line = s.recv().decode()
        return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    finally:
        s.close()


def report(st, c, device, compound, kind="gas_leak", category=R.ACCIDENT_DISASTER,
           severity=R.SEVERITY_IV, building="12", description="strong gas smell in the stairwell"):
    rep = S.make_report(device, 1, category=category, kind=kind, severity=severity,
                        compound=compound, building=building, description=description)
    ack, _ = st.device(device_id=device).submit(rep, timeout=20)
    c.eq(S.status_name(ack), "ACCEPTED", "%s report in %s accepted" % (kind, compound))
    return ack.incident_id if ack is not None and not isinstance(ack, bytes) else None


def assignment_for(unit, inc, timeout=10.0, role=None):
    return unit.wait_assignment(lambda a: a.incident_id == inc and (role is None or a.role == role),
                                timeout)


def answer_all(c, units, inc, kind, what):
    """Each unit answers kind on its assignment of inc; checks OK."""
    for u in units:
        a = assignment_for(u, inc, 5)
        if not c.check(a is not None, "%s holds an assignment of %s" % (u.unit_id, what)):
            continue
        rep = u.answer(a.assignment_id, kind, note="%s by %s" % (kind, u.unit_id))
        c.eq(rep and rep.status, OK, "%s answers %s: OK" % (u.unit_id, kind))


# ---------------------------------------------------------------- scenarios


def check_asia_bay(st, c, U):
    """The issue's example, end to end."""
    inc = report(st, c, "gas-asia-%s" % RUN, "zhouji-asia-bay")
    if not inc:
        return
    want = {"special_committee": "committee-zhouji-asia-bay",
            "property_company": "property-zhouji-asia-bay",
            "grid_worker": "grid-workers-zhouji-asia-bay",
            "fire_brigade": "fire-wenjiang"}
    c.check(S.wait_until(lambda: len(dispatched(st, inc, event_pb2.COMMUNITY)) >= 4, 10),
            "four units dispatched at community tier", dispatched(st, inc))
    c.eq(st.scalar("select tier from incidents where incident_id = '%s'" % inc), "community",
         "the gas leak is routed at community tier")
    d = dispatched(st, inc, event_pb2.COMMUNITY)
    c.eq({r: e.dispatched.unit_id for r, e in d.items()}, want,
         "special committee mode: committee + property company (roster), grid workers, fire brigade")
    c.eq(sorted(r for r, e in d.items() if e.dispatched.lead), ["fire_brigade"],
         "the fire brigade leads, and only it")
    for role, e in sorted(d.items()):
        c.eq((e.actor, e.event_id, e.dispatched.assignment_id),
             ("svc:dispatch", "%s/dispatched/%s/1" % (inc, role), "%s/%s/1" % (inc, role)),
             "dispatched %s: actor, event id and assignment id" % role)
        c.check(e.dispatched.acknowledge_by_us > e.at_us, "%s has an acknowledge deadline" % role)

    units = [U[u] for u in want.values()]
    for role, uid in want.items():
        a = assignment_for(U[uid], inc)
        if c.check(a is not None, "%s receives its Assignment on its socket" % uid):
            c.eq((a.assignment_id, a.role, a.lead, a.location.compound_id, a.kind, a.state),
                 ("%s/%s/1" % (inc, role), role, role == "fire_brigade", "zhouji-asia-bay",
                  "gas_leak", "dispatched"), "%s's assignment carries the incident" % uid)

    answer_all(c, units, inc, "acknowledged", "the Asia Bay leak")
    c.eq(state_of(st, inc), "acknowledged", "incidents view: acknowledged")
    answer_all(c, units, inc, "on_scene", "the Asia Bay leak")
    c.eq(state_of(st, inc), "on_scene", "incidents view: on_scene")
    # The other units finish first; the lead's resolution completes the incident.
    answer_all(c, [u for u in units if u.unit_id != "fire-wenjiang"], inc, "resolved",
               "the Asia Bay leak")
    answer_all(c, [U["fire-wenjiang"]], inc, "resolved", "the Asia Bay leak")
    c.check(S.wait_until(lambda: count(st, inc, "resolved") == 1, 10),
            "the lead resolving last makes the incident resolved")
    evs = events_of(st, inc)
    pos = {e.event_id: p for p, e in evs}
    res = [(p, e) for p, e in evs if e.type == event_pb2.RESOLVED]
    lead_done = pos.get("%s/unit_resolved/fire_brigade/1" % inc)
    if res:
        c.check(lead_done is not None and res[0][0] > lead_done,
                "resolved comes after the lead's unit_resolved", (res[0][0], lead_done))
        c.eq((res[0][1].actor, res[0][1].event_id), ("svc:dispatch", "%s/resolved" % inc),
             "resolved by svc:dispatch")
    c.eq(state_of(st, inc), "resolved", "incidents view: resolved")

    grid = U["grid-workers-zhouji-asia-bay"]
    verified = S.wait_until(
        lambda: (lambda r: r if r and r.status == OK else None)(
            grid.answer("%s/grid_worker/1" % inc, "verified", note="valve replaced, no smell")),
        10, interval=0.1)
    c.check(verified is not None, "the grid worker's VERIFIED is accepted")
    c.check(S.wait_until(lambda: count(st, inc, "closed") == 1, 10), "the incident closes")
    closed = events_of(st, inc, ["closed"])
    if closed:
        ev = closed[0][1]
        c.eq((ev.actor, ev.event_id), ("unit:grid-workers-zhouji-asia-bay", "%s/closed/dispatch" % inc),
             "closed by the grid worker, event id <incident>/closed/dispatch")
        c.check("verified on site by unit:grid-workers-zhouji-asia-bay" in ev.closed.reason,
                "the reason names the verifying unit", ev.closed.reason)
    c.eq(state_of(st, inc), "closed", "incidents view: closed")

    # The whole timeline, with actors and times.
    evs = events_of(st, inc)
    kinds = [event_pb2.EventType.Name(e.type).lower() for _, e in evs]
    S.note("asia bay timeline: " + " ".join(kinds))
    want_types = ["reported", "routed"] + ["dispatched"] * 4 + ["unit_acknowledged"] * 4 + \
        ["unit_on_scene"] * 4 + ["unit_resolved"] * 4 + ["resolved", "closed"]
    c.eq([k for k in kinds if k not in ("escalated",)], want_types, "the ledger holds the timeline")
    wrong = [(k, e.actor) for k, (_, e) in zip(kinds, evs) if e.actor != expected_actor(e)]
    c.eq(wrong, [], "actors: device, svc:router, svc:dispatch, unit:<id> of the answering unit")
    ats = [e.at_us for _, e in evs]
    c.check(all(a > 0 for a in ats) and ats[-1] >= ats[0], "every event has its time")
    by_assignment = {e.dispatched.assignment_id: e.at_us for _, e in evs
                     if e.type == event_pb2.DISPATCHED}
    late = [e.event_id for _, e in evs if e.type in ANSWERS
            and getattr(e, e.WhichOneof("body")).assignment_id in by_assignment
            and e.at_us < by_assignment[getattr(e, e.WhichOneof("body")).assignment_id]]
    c.eq(late, [], "every answer is timed after its dispatch")
    check_time_columns(st, c, inc)

    lst = U["fire-wenjiang"].list()
    mine = [a for a in (lst or []) if a.incident_id == inc]
    c.eq([(a.assignment_id, a.state) for a in mine], [("%s/fire_brigade/1" % inc, "resolved")],
         "ListAssignments shows the fire brigade's assignment resolved")
    rep = U["fire-wenjiang"].answer("%s/fire_brigade/1" % inc, "on_scene")
    c.eq(rep and rep.status, REJECTED, "an answer on a closed incident is rejected")
    return inc


ANSWERS = (event_pb2.UNIT_ACKNOWLEDGED, event_pb2.UNIT_ON_SCENE, event_pb2.UNIT_RESOLVED,
           event_pb2.UNIT_DECLINED, event_pb2.BACKUP_REQUESTED)


def expected_actor(e):
    if e.type == event_pb2.REPORTED:
        return "device:" + e.reported.report.device_id
    if e.type in (event_pb2.ROUTED, event_pb2.ESCALATED):
        return "svc:router"
    if e.type in (event_pb2.DISPATCHED, event_pb2.RESOLVED, event_pb2.NO_UNIT_AVAILABLE):
        return "svc:dispatch"
    if e.type in ANSWERS:
        return "unit:" + getattr(e, e.WhichOneof("body")).unit_id
    if e.type == event_pb2.CLOSED:
        return "unit:grid-workers-zhouji-asia-bay"
    return e.actor


def check_time_columns(st, c, inc):
    """D3 adds time-to columns to the incidents view; check them when they are there."""
    cols = [r[0] for r in st.sql("select column_name from information_schema.columns where "
                                 "table_name = 'incidents' and column_name like '%time_to%' "
                                 "order by ordinal_position")]
    if not cols:
        S.note("the incidents view has no time-to columns yet; not checked")
        return
    row = st.sql("select %s from incidents where incident_id = '%s'" % (", ".join(cols), inc))
    vals = dict(zip(cols, row[0])) if row else {}
    c.check(vals and all(v != "" for v in vals.values()),
            "incidents view time-to columns are filled (%s)" % ", ".join(cols), vals)


def check_modes(st, c, U):
    """The same leak in a traditional and an established-community compound."""
    cases = [("zhouji-yinhai-bay", {"property_company": "property-zhouji-yinhai-bay",
                                    "owners_committee": "owners-zhouji-yinhai-bay",
                                    "community_duty": "duty-jiangpu-road",
                                    "grid_worker": "grid-workers-zhouji-yinhai-bay",
                                    "fire_brigade": "fire-wenjiang"}),
             ("lijinggang", {"community_duty": "duty-lijinggang",
                             "grid_worker": "grid-workers-lijinggang",
                             "fire_brigade": "fire-wenjiang"})]
    incs = []
    for compound, want in cases:
        inc = report(st, c, "gas-%s-%s" % (compound, RUN), compound)
        if not inc:
            continue
        incs.append((inc, compound, want))
    for inc, compound, want in incs:
        c.check(S.wait_until(lambda: len(dispatched(st, inc, event_pb2.COMMUNITY)) >= len(want), 10),
                "%s: %d units dispatched" % (compound, len(want)))
        d = dispatched(st, inc, event_pb2.COMMUNITY)
        c.eq({r: e.dispatched.unit_id for r, e in d.items()}, want,
             "%s (%s mode) calls its roster" % (compound, "traditional" if "yinhai" in compound
                                               else "established community"))
        c.eq([r for r, e in d.items() if e.dispatched.lead], ["fire_brigade"],
             "%s: the fire brigade leads" % compound)
        units = [U[u] for u in want.values()]
        answer_all(c, units, inc, "acknowledged", compound)
        answer_all(c, units, inc, "resolved", compound)
    for inc, compound, _ in incs:
        c.check(S.wait_until(lambda: count(st, inc, "resolved") == 1, 10),
                "%s: resolved once every unit resolved" % compound)
    # Nobody verifies: the window (VERIFY_WINDOW_MIN plan minutes) closes them.
    for inc, compound, _ in incs:
        c.check(S.wait_until(lambda: count(st, inc, "closed") == 1, 15),
                "%s: closed automatically after the verification window" % compound)
        ev = events_of(st, inc, ["closed"])
        res = events_of(st, inc, ["resolved"])
        if ev and res:
            e = ev[0][1]
            c.eq(e.actor, "svc:dispatch", "%s: closed by svc:dispatch" % compound)
            c.check("not verified within %d minutes" % VERIFY_WINDOW_MIN in e.closed.reason,
                    "%s: the reason says why" % compound, e.closed.reason)
            window_us = VERIFY_WINDOW_MIN * 60e6 / SCALE
            c.check(e.at_us >= res[0][1].at_us + window_us - 1000,
                    "%s: not closed before the window ends" % compound,
                    (e.at_us - res[0][1].at_us) / 1e6)


def start_replacement(st, c, U):
    """A public-health cluster in Lijinggang: the compound's health station never answers."""
    inc = report(st, c, "fever-%s" % RUN, "lijinggang", kind="fever_cluster",
                 category=R.PUBLIC_HEALTH, severity=R.SEVERITY_III, building="5",
                 description="six residents of building 5 with fever")
    if not inc:
        return None
    c.check(S.wait_until(lambda: len(dispatched(st, inc)) >= 3, 10), "public health: 3 units called")
    d = dispatched(st, inc)
    c.eq({r: (e.dispatched.unit_id, e.dispatched.lead) for r, e in d.items()},
         {"health_centre": ("health-lijinggang", True), "community_duty": ("duty-lijinggang", False),
          "grid_worker": ("grid-workers-lijinggang", False)},
         "health station (lead, most specific coverage), duty officer, grid workers")
    answer_all(c, [U["duty-lijinggang"], U["grid-workers-lijinggang"]], inc, "acknowledged",
               "the fever cluster")
    c.check(assignment_for(U["health-lijinggang"], inc) is not None,
            "the health station receives its assignment (and ignores it)")
    return inc


def finish_replacement(st, c, U, inc):
    first = "%s/health_centre/1" % inc
    second = "%s/health_centre/2" % inc
    ack_by = [e.dispatched.acknowledge_by_us for _, e in events_of(st, inc, ["dispatched"])
              if e.dispatched.assignment_id == first][0]
    c.check(S.wait_until(lambda: count(st, inc, "unit_declined") >= 1, 15),
            "the unanswered assignment expires")
    dec = events_of(st, inc, ["unit_declined"])
    if dec:
        e = dec[0][1]
        c.eq((e.actor, e.unit_declined.assignment_id, e.unit_declined.unit_id),
             ("svc:dispatch", first, "health-lijinggang"), "declined by svc:dispatch")
        c.check("no answer before the acknowledge deadline" in e.unit_declined.note,
                "with the reason", e.unit_declined.note)
        c.check(e.at_us >= ack_by, "not before its acknowledge deadline", (e.at_us - ack_by) / 1e6)
    a = assignment_for(U["health-yongquan"], inc, 10)
    c.check(a is not None, "the street's health centre receives the replacement")
    ev = [e for _, e in events_of(st, inc, ["dispatched"]) if e.dispatched.assignment_id == second]
    if c.check(len(ev) == 1, "dispatched %s" % second):
        c.eq((ev[0].dispatched.unit_id, ev[0].dispatched.replaces, ev[0].dispatched.lead),
             ("health-yongquan", first, True), "the next unit of the role replaces the first")
    if a:
        c.eq(a.assignment_id, second, "its assignment id is <incident>/health_centre/2")
        rep = U["health-yongquan"].answer(second, "acknowledged")
        c.eq(rep and rep.status, OK, "the replacement acknowledges")
    rep = U["health-lijinggang"].answer(first, "acknowledged", note="too late")
    c.eq(rep and rep.status, REJECTED, "an answer on the expired assignment is rejected")


def start_no_unit(st, c, U):
    """A gas leak in Spring Square whose grid workers never answer: nobody else covers it."""
    inc = report(st, c, "gas-spring-%s" % RUN, "spring-square", building="3")
    if not inc:
        return None
    want = {"property_company": "property-spring-square", "owners_committee": "owners-spring-square",
            "community_duty": "duty-qingquan", "grid_worker": "grid-workers-spring-square",
            "fire_brigade": "fire-wenjiang"}
    c.check(S.wait_until(lambda: len(dispatched(st, inc, event_pb2.COMMUNITY)) >= 5, 10),
            "spring square: 5 units called")
    # The others report on scene without acknowledging first: an acknowledgement would stop the
    # router's acknowledge chain, and with it the escalation this case is about.
    answer_all(c, [U[u] for r, u in want.items() if r != "grid_worker"], inc, "on_scene",
               "the Spring Square leak")
    return inc


def finish_no_unit(st, c, U, inc):
    c.check(S.wait_until(lambda: count(st, inc, "no_unit_available") >= 1, 15),
            "no_unit_available when no grid worker is left")
    ev = events_of(st, inc, ["no_unit_available"])
    if ev:
        e = ev[0][1]
        c.eq((e.actor, e.event_id, e.no_unit_available.role),
             ("svc:dispatch", "%s/no_unit_available/grid_worker/community" % inc, "grid_worker"),
             "no_unit_available names the role and the tier")
        c.check(e.no_unit_available.reason != "", "and a reason", e.no_unit_available.reason)
        declined = events_of(st, inc, ["unit_declined"])
        c.check(declined and declined[0][1].unit_declined.assignment_id ==
                "%s/grid_worker/1" % inc and declined[0][0] < ev[0][0],
                "after the grid workers' assignment expired")
    # The grid workers do not lead a gas leak: their absence is shown, not escalated.
    c.check(S.wait_until(lambda: st.scalar("select array_to_string(missing_roles, ',') from "
                                           "incidents where incident_id = '%s'" % inc)
                         == "grid_worker", 5),
            "the incidents view shows the grid workers missing")
    c.check(S.wait_until(lambda: any(e.escalated.from_tier == event_pb2.COMMUNITY
                                     for _, e in events_of(st, inc, ["escalated"])), 10),
            "the router escalates when the community's acknowledge deadline passes")
    esc = [(p, e) for p, e in events_of(st, inc, ["escalated"])]
    if esc and ev:
        # The router's own acknowledge deadline is 10 plan minutes (2 s) after routing.
        lag = (esc[0][1].at_us - ev[0][1].at_us) / 1e6
        e = esc[0][1].escalated
        c.check(e.reason == "acknowledge deadline missed at community tier" and e.deadline ==
                "acknowledge" and esc[0][1].at_us >= e.due_us,
                "not because of the missing grid workers, and not before the deadline",
                (lag, e.reason, e.deadline))
        S.note("no_unit_available (grid_worker) -> escalated %.0f ms later: %s" % (lag * 1000,
                                                                                 e.reason))
    # A new tier is a new call-out: the grid workers are called again there.
    c.check(S.wait_until(lambda: [1 for _, e in events_of(st, inc, ["dispatched"])
                                  if e.dispatched.role == "grid_worker" and
                                  e.dispatched.tier == event_pb2.STREET], 10),
            "the grid workers are called again at street tier")
    # At street tier the street's emergency office is called.
    c.check(S.wait_until(lambda: "street_emergency_office" in dispatched(st, inc), 10),
            "at street tier the street emergency office is called")


def check_errors(st, c, U, closed_inc):
    grid = U["grid-workers-zhouji-asia-bay"]
    rep = grid.answer("inc-00000000000000000000/grid_worker/1", "acknowledged")
    c.eq(rep and rep.status, REJECTED, "an answer for an unknown assignment is rejected")
    c.check(rep is not None and rep.error != "", "with a clear error", rep and rep.error)
    S.note("unknown assignment: %s" % (rep and rep.error))
    # Another unit's assignment (on a fresh, open incident).
    inc = report(st, c, "gas-wrong-%s" % RUN, "zhouji-asia-bay", building="30")
    if inc:
        a = assignment_for(U["fire-wenjiang"], inc, 10)
        c.check(a is not None, "fire brigade assigned to the second Asia Bay leak")
        if a:
            before = count(st, inc, "unit_acknowledged")
            rep = U["property-zhouji-asia-bay"].answer(a.assignment_id, "acknowledged")
            c.eq(rep and rep.status, REJECTED, "an answer from the wrong unit is rejected")
            c.check(rep is not None and rep.error != "", "with a clear error", rep and rep.error)
            S.note("wrong unit: %s" % (rep and rep.error))
            c.eq(count(st, inc, "unit_acknowledged"), before, "and writes nothing")
            rep = U["property-zhouji-asia-bay"].answer(a.assignment_id, 99)
            c.eq(rep and rep.status, REJECTED, "an unknown answer kind is rejected")
        # Close it down so it does not disturb the rest.
        for uid in ("committee-zhouji-asia-bay", "property-zhouji-asia-bay",
                    "grid-workers-zhouji-asia-bay", "fire-wenjiang"):
            a = assignment_for(U[uid], inc, 5)
            if a:
                U[uid].answer(a.assignment_id, "acknowledged")
                U[uid].answer(a.assignment_id, "resolved")

    stranger = st.unit("unit-from-elsewhere", heartbeat=False, hello=False)
    w = stranger.say_hello()
    c.check(w is not None and w.error != "" and "unknown unit" in w.error,
            "a unit id not in the district gets a Welcome with an error", w and w.error)
    rep = stranger.answer("%s/grid_worker/1" % closed_inc, "verified")
    c.eq(rep and rep.status, REJECTED, "and cannot answer")

    # A second connection saying Hello as the same unit takes it over; the first is told so at its
    # next heartbeat and does not take it back.
    old = U["police-yongquan"]
    second = st.unit("police-yongquan")
    c.check(second.registered, "a second Hello for a unit is welcomed")
    c.check(S.wait_until(lambda: not old.registered, 5), "the first connection hears it was taken over",
            old.welcomes[-1:])
    c.check(old.welcomes and "took it over" in old.welcomes[-1].error and old.rehellos == 0,
            "with a clear error, and leaves it", old.welcomes[-1:])
    second.close()

    silent = st.unit("grid-workers-spring-square", heartbeat=False, hello=False)
    rep = silent.answer("x/grid_worker/1", "acknowledged")
    c.eq(rep and rep.status, REJECTED, "an answer before Hello is rejected")
    c.check(rep is not None and "Hello" in rep.error, "saying to send Hello first",
            rep and rep.error)
    silent.close()

    if st.curve:
        plain = zmq.Context.instance().socket(zmq.DEALER)
        plain.setsockopt(zmq.LINGER, 0)
        plain.connect(st.dispatch_endpoint)
        plain.send_multipart([b"", b"\xff\xfe not a protobuf"])
        c.eq(plain.poll(1500), 0, "CURVE: a plain (keyless) peer gets nothing at all in 1.5 s")
        plain.close()
    raw = zmq.Context.instance().socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    st.secure(raw, "unit", "fire-wenjiang")  # CURVE: a registered key; plain: as is
    raw.connect(st.dispatch_endpoint)
    try:
        def reply():
            if not raw.poll(5000):
                return None
            frames = raw.recv_multipart()
            m = unit_pb2.DispatchMessage()
            m.ParseFromString(frames[-1])
            return m
        raw.send_multipart([b"", b"\xff\xfe not a protobuf"])
        m = reply()
        c.check(m is not None and m.answer_reply.status == REJECTED and
                "malformed" in m.answer_reply.error, "garbage gets a REJECTED malformed reply",
                m)
        raw.send_multipart([b"", b"a", b"b"])
        m = reply()
        c.check(m is not None and m.answer_reply.status == REJECTED, "extra frames are rejected", m)
        raw.send_multipart([b"", unit_pb2.UnitMessage(unit_id="fire-wenjiang").SerializeToString()])
        m = reply()
        c.check(m is not None and m.answer_reply.status == REJECTED and "body" in m.answer_reply.error,
                "a message without a body is rejected", m)
        # A frame over 64 KiB: libzmq drops the connection; dispatch carries on.
        big = unit_pb2.UnitMessage(unit_id="fire-wenjiang", answer=unit_pb2.Answer(
            assignment_id="x", kind=1, note="n" * 70000))
        raw.send_multipart([b"", big.SerializeToString()])
    finally:
        raw.close()
    rep = U["fire-wenjiang"].answer("inc-00000000000000000000/fire_brigade/1", "acknowledged")
    c.eq(rep and rep.status, REJECTED, "after the oversized frame dispatch still answers")
    c.check(st.alive("dispatch"), "dispatch is alive after bad frames")


def check_restart(st, c, U):
    """kill -9 dispatch after it dispatched and before any answer."""
    inc = report(st, c, "crack-%s" % RUN, "zhouji-yinhai-bay", kind="wall_crack",
                 category=R.LATENT_HAZARD, severity=R.SEVERITY_IV, building="7",
                 description="crack across the load-bearing wall")
    if not inc:
        return
    want = {"property_company": "property-zhouji-yinhai-bay",
            "owners_committee": "owners-zhouji-yinhai-bay",
            "community_duty": "duty-jiangpu-road",
            "grid_worker": "grid-workers-zhouji-yinhai-bay"}
    c.check(S.wait_until(lambda: len(dispatched(st, inc)) >= 4, 10),
            "latent hazard at compound tier: the traditional roster and grid workers dispatched")
    d = dispatched(st, inc)
    c.eq({r: e.dispatched.unit_id for r, e in d.items()}, want, "the units of the roster")
    ids = {e.dispatched.assignment_id for e in d.values()}
    before = {uid: U[uid].copies("%s/%s/1" % (inc, role)) for role, uid in want.items()}
    st.kill9("dispatch")
    st.start_daemon("dispatch")
    resent = S.wait_until(lambda: all(U[uid].copies("%s/%s/1" % (inc, role)) > before[uid]
                                      for role, uid in want.items()), 15)
    c.check(resent, "after the restart every unit gets its assignment again",
            {uid: (before[uid], U[uid].copies("%s/%s/1" % (inc, role)))
             for role, uid in want.items()})
    c.check(S.wait_until(lambda: dispatch_status(st).get("live") == "1", 10),
            "the restarted dispatch is live")
    for role, uid in want.items():
        got = [a.assignment_id for a in U[uid].received if a.incident_id == inc]
        c.eq(set(got), {"%s/%s/1" % (inc, role)}, "%s: only the same assignment id" % uid)
    answer_all(c, [U[u] for u in want.values()], inc, "acknowledged", "the crack")
    rows = st.sql("select count(*), count(distinct event_id) from ledger where incident_id = '%s' "
                  "and type = 'dispatched'" % inc)
    c.eq(rows[0], ["4", "4"], "no dispatched row is duplicated")
    c.eq({e.dispatched.assignment_id for e in dispatched(st, inc).values()}, ids,
         "nothing was dispatched under a new assignment id")
    c.eq(state_of(st, inc), "acknowledged", "the incident is acknowledged after the restart")
    rehellos = sum(u.rehellos for u in U.values())
    S.note("restart: %d units said Hello again" % rehellos)


def body(st, c):
    with open(os.path.join(S.ROOT, "deploy", "district", "wenjiang.yaml")) as f:
        district = yaml.safe_load(f)
    U = {}
    st.register("unit", [u["id"] for u in district["units"]])  # CURVE: one wait for all keys
    for u in district["units"]:
        U[u["id"]] = st.unit(u["id"])
    welcomed = S.wait_until(lambda: all(u.registered for u in U.values()), 10)
    c.check(welcomed, "every unit of the district is welcomed",
            [u.unit_id for u in U.values() if not u.registered])
    c.check(S.wait_until(lambda: dispatch_status(st).get("units_present") == str(len(U)), 5),
            "dispatch counts them present", dispatch_status(st))
    closed_inc = check_asia_bay(st, c, U)
    check_errors(st, c, U, closed_inc)
    check_modes(st, c, U)
    rep_inc = start_replacement(st, c, U)
    nou_inc = start_no_unit(st, c, U)
    if nou_inc:
        finish_no_unit(st, c, U, nou_inc)
    if rep_inc:
        finish_replacement(st, c, U, rep_inc)
    check_restart(st, c, U)
    status = dispatch_status(st)
    S.note("dispatch status: " + " ".join("%s=%s" % kv for kv in sorted(status.items())))
    rc = st.ctl("verify")
    c.check(rc.returncode == 0, "the ledger's chain verifies", rc.stdout + rc.stderr)
    # Under `make asan` a leak or a sanitizer report makes the exit code non-zero.
    c.eq(st.stop_daemon("dispatch"), 0, "dispatch stops cleanly on SIGTERM")
    log = st.log_text("dispatch")
    c.check("Sanitizer" not in log and "runtime error" not in log, "no sanitizer report",
            st.log_tail("dispatch"))


if __name__ == "__main__":
    S.main(body, "dispatch", daemons=("ledger", "intake", "router", "dispatch"),
           env={"LINKAGE_TIME_SCALE": str(SCALE),
                "LINKAGE_UNIT_HEARTBEAT_MS": "200",
                "LINKAGE_VERIFY_WINDOW_MIN": str(VERIFY_WINDOW_MIN),
                "LINKAGE_UTC_OFFSET_MIN": str(midday_offset())})
