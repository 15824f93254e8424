"""Issue 3's acceptance on the real daemons: tiered routing and escalation.

A severity IV latent hazard in a traditional-mode compound is routed to the
compound tier; left unacknowledged it escalates to community at its deadline,
then to street; a coordinator's acknowledge stops the acknowledge chain.
Incidents committed while the router is down (and while it waits for the
ledger) are routed, once, when it returns.
Then the router is killed with SIGKILL while a thousand incidents have
deadlines pending, kept down until about half of them passed, and started
again: every passed deadline escalates exactly once, none early, none lost.
Time runs 3000x (LINKAGE_TIME_SCALE) so plan minutes pass in milliseconds.
"""

import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import command_pb2, event_pb2, report_pb2  # noqa: E402

R = report_pb2
SCALE = 3000.0  # 120 plan minutes (a IV latent hazard's compound deadline) -> 2.4 s
TIER = {event_pb2.COMPOUND: "compound", event_pb2.COMMUNITY: "community",
        event_pb2.STREET: "street", event_pb2.DISTRICT: "district"}


def events_of(st, incident_ids=None, types=None):
    """Decoded events in position order: list of (position, Event)."""
    where = []
    if incident_ids is not None:
        where.append("incident_id in (%s)" % ",".join("'%s'" % i for i in incident_ids))
    if types:
        where.append("type in (%s)" % ",".join("'%s'" % t for t in types))
    sql = "select position, encode(payload, 'hex') from ledger"
    if where:
        sql += " where " + " and ".join(where)
    out = []
    for pos, hexed in st.sql(sql + " order by position"):
        ev = event_pb2.Event()
        ev.ParseFromString(bytes.fromhex(hexed))
        out.append((int(pos), ev))
    return out


def send_all(st, reports, timeout=60):
    """Pipelines reports over one DEALER; returns {sequence: ack}."""
    dev = st.device()
    acks = {}
    pending = {r.sequence: r for r in reports}
    deadline = time.monotonic() + timeout
    for r in reports:
        dev.send_frames([r.SerializeToString()])
    while pending and time.monotonic() < deadline:
        ack = dev.recv_ack(1.0)
        if ack is None or isinstance(ack, bytes):
            for r in pending.values():  # resend what is still unanswered: intake is idempotent
                dev.send_frames([r.SerializeToString()])
            continue
        if ack.status == R.ReportAck.BUSY:
            time.sleep(ack.retry_after_ms / 1000.0)
            dev.send_frames([pending[ack.sequence].SerializeToString()])
            continue
        if ack.sequence in pending:
            acks[ack.sequence] = ack
            del pending[ack.sequence]
    dev.close()
    return acks


def tier_of(st, inc):
    return st.scalar("select tier from incidents where incident_id = '%s'" % inc)


def command(st, incident_id, **body):
    cmd = command_pb2.Command(command_id=uuid.uuid4().hex[:16], actor="zhang-wei",
                              incident_id=incident_id, **body)
    return st.command(cmd)


def check_chain(st, c):
    run = uuid.uuid4().hex[:8]
    rep = S.make_report("chain-%s" % run, 1, category=R.LATENT_HAZARD, kind="wall_crack",
                        severity=R.SEVERITY_IV, compound="zhouji-yinhai-bay", building="12")
    ack, _ = st.device().submit(rep, timeout=20)
    if not c.eq(S.status_name(ack), "ACCEPTED", "the report is ACCEPTED"):
        return
    inc = ack.incident_id
    c.check(S.wait_until(lambda: tier_of(st, inc) == "compound", 10),
            "a severity IV report in a traditional compound is routed to compound tier")
    routed = events_of(st, [inc], ["routed"])
    if c.eq(len(routed), 1, "one routed event"):
        r = routed[0][1].routed
        c.eq(r.organisation_id, "zhouji-yinhai-bay", "the compound itself answers at compound tier")
        c.eq(r.acknowledge_by_us - routed[0][1].at_us > 0, True, "an acknowledge deadline is set")
    c.check(S.wait_until(lambda: tier_of(st, inc) == "community", 10),
            "left unacknowledged it escalates to community")
    c.check(S.wait_until(lambda: tier_of(st, inc) == "street", 10), "then to street")
    esc = [e for _, e in events_of(st, [inc], ["escalated"])]
    c.check(len(esc) >= 2, "two escalations in the ledger", len(esc))
    if len(esc) >= 2:
        c.eq((esc[0].escalated.from_tier, esc[0].escalated.to_tier),
             (event_pb2.COMPOUND, event_pb2.COMMUNITY), "first: compound -> community")
        c.eq(esc[0].escalated.organisation_id, "jiangpu-road", "the community office takes it")
        c.eq(esc[1].escalated.organisation_id, "yongquan", "then the street office")
        c.check("acknowledge deadline missed" in esc[0].escalated.reason, "the reason is stated",
                esc[0].escalated.reason)
        c.eq(esc[0].actor, "svc:router", "the router is the actor")

    # A second incident, acknowledged by a coordinator in time: no escalation.
    rep2 = S.make_report("chain-%s" % run, 2, category=R.LATENT_HAZARD, kind="wall_crack",
                         severity=R.SEVERITY_IV, compound="zhouji-yinhai-bay", building="14")
    ack2, _ = st.device().submit(rep2, timeout=20)
    inc2 = ack2.incident_id
    c.check(S.wait_until(lambda: tier_of(st, inc2) == "compound", 10), "second incident routed")
    reply = command(st, inc2, acknowledge=command_pb2.AcknowledgeCommand(note="on my way"))
    c.eq(reply and reply.status, command_pb2.CommandReply.OK, "acknowledge command answers OK")
    acked = events_of(st, [inc2], ["acknowledged"])
    c.eq(len(acked), 1, "an acknowledged event is committed")
    if acked:
        c.eq(acked[0][1].actor, "coordinator:zhang-wei", "the coordinator is the actor")
    c.eq(st.scalar("select state from incidents where incident_id = '%s'" % inc2), "acknowledged",
         "the incidents view shows it acknowledged")
    # Past the acknowledge deadline (2.4 s), with margin: still at compound, never escalated.
    routed2 = events_of(st, [inc2], ["routed"])[0][1].routed
    S.wait_until(lambda: time.time() * 1e6 > routed2.acknowledge_by_us + 1.5e6, 10)
    c.eq(len(events_of(st, [inc2], ["escalated"])), 0, "acknowledging stops the chain")
    c.eq(tier_of(st, inc2), "compound", "still at compound tier")

    # Commands on unknown and closed incidents get clear errors.
    reply = command(st, "inc-00000000000000000000", acknowledge=command_pb2.AcknowledgeCommand())
    c.eq(reply and reply.status, command_pb2.CommandReply.REJECTED, "unknown incident rejected")
    c.check(reply is not None and "unknown incident" in reply.error, "with a clear error",
            reply and reply.error)
    close = command_pb2.Command(command_id="close-" + run, actor="zhang-wei", incident_id=inc2,
                                close=command_pb2.CloseCommand(reason="crack sealed, checked"))
    reply = st.command(close)
    c.eq(reply and reply.status, command_pb2.CommandReply.OK, "close answers OK")
    # The same command again (a client retrying after a lost reply) answers as the first did,
    # although the incident is now closed, and writes nothing.
    S.wait_until(lambda: st.scalar("select count(*) from ledger where incident_id = '%s' and "
                                   "type = 'closed'" % inc2) == "1", 5)
    again = st.command(close)
    c.eq(again and (again.status, again.event_id, again.position),
         reply and (command_pb2.CommandReply.OK, reply.event_id, reply.position),
         "a retried command answers OK with the same event and position")
    c.eq(st.scalar("select count(*) from ledger where incident_id = '%s' and type = 'closed'" %
                   inc2), "1", "and writes nothing")
    now = int(time.time() * 1e6)
    declare = command_pb2.Command(
        command_id="plan-" + run, actor="zhang-wei",
        declare_planned_work=event_pb2.PlannedWork(window_id="w-" + run, compound_id="lijinggang",
                                                   kind="no_water", from_us=now,
                                                   to_us=now + 3600 * 10**6, reason="pipe works"))
    first, second = st.command(declare), None
    S.wait_until(lambda: st.scalar("select count(*) from ledger where incident_id = 'plan-w-%s'" %
                                   run) == "1", 5)
    second = st.command(declare)
    c.eq((first and first.status, second and second.status),
         (command_pb2.CommandReply.OK, command_pb2.CommandReply.OK),
         "a retried planned-work declaration answers OK twice")
    reply = command(st, inc2, escalate=command_pb2.EscalateCommand(reason="again"))
    c.eq(reply and reply.status, command_pb2.CommandReply.REJECTED, "a closed incident refuses")
    c.check(reply is not None and "closed" in reply.error, "saying it is closed",
            reply and reply.error)
    c.eq(st.scalar("select state from incidents where incident_id = '%s'" % inc2), "closed",
         "the incidents view shows it closed")


def check_restart(st, c):
    run = uuid.uuid4().hex[:8]
    n, batches = 1000, 4
    reports = []
    t0 = time.time()
    # Four waves half a second apart, so the deadlines are spread over time.
    for b in range(batches):
        S.wait_until(lambda: time.time() >= t0 + 0.5 * b, 5)
        # A kind of its own per incident: nothing merges, and no incident that climbs to street
        # tier inhibits the others (both are tested on their own, in the unit tests).
        wave = [S.make_report("restart-%s-%d" % (run, i % 50), i + 1, category=R.LATENT_HAZARD,
                              kind="damp_wall_%d" % i, severity=R.SEVERITY_IV,
                              compound="spring-square", building="w%d" % i)
                for i in range(b * n // batches, (b + 1) * n // batches)]
        reports += wave
        acks = send_all(st, wave)
        c.eq(len(acks), len(wave), "wave %d acknowledged" % (b + 1))
    incs = sorted({S.incident_id(r.device_id, r.sequence) for r in reports})
    count_routed = lambda: int(st.scalar(
        "select count(*) from ledger where type = 'routed' and incident_id like 'inc-%%' and "
        "incident_id in (%s)" % ",".join("'%s'" % i for i in incs)))
    c.check(S.wait_until(lambda: count_routed() == n, 30), "all %d incidents routed" % n,
            count_routed())
    st.kill9("router")
    routed = {e.incident_id: e.routed for _, e in events_of(st, incs, ["routed"])}
    due = sorted(r.acknowledge_by_us for r in routed.values())
    median = due[len(due) // 2]
    # Keep the router down until half of the deadlines have passed.
    S.wait_until(lambda: time.time() * 1e6 > median + 50000, 30)
    passed_while_down = sum(1 for d in due if d < time.time() * 1e6)
    restart_at = time.time()
    st.start_daemon("router")
    S.note("router down while %d of %d acknowledge deadlines passed; restarted" %
           (passed_while_down, n))
    c.check(passed_while_down >= n // 2, "at least half the deadlines passed while it was down")

    def first_escalations():
        return [e for _, e in events_of(st, incs, ["escalated"])
                if e.escalated.from_tier == event_pb2.COMPOUND]

    got = S.wait_until(lambda: len(first_escalations()) >= n, 60)
    esc = first_escalations()
    caught_up = time.time() - restart_at
    c.eq(len(esc), n, "every incident escalated from compound (none lost)")
    per_inc = {}
    for e in esc:
        per_inc[e.incident_id] = per_inc.get(e.incident_id, 0) + 1
    c.eq(max(per_inc.values()) if per_inc else 0, 1, "each exactly once")
    early = [e.incident_id for e in esc if e.at_us < routed[e.incident_id].acknowledge_by_us]
    c.eq(len(early), 0, "none early (escalated at or after its deadline)")
    deadlines_ok = [e for e in esc if e.escalated.acknowledge_by_us ==
                    routed[e.incident_id].acknowledge_by_us +
                    (e.escalated.acknowledge_by_us - routed[e.incident_id].acknowledge_by_us)]
    c.eq(len(deadlines_ok), n, "new deadlines recorded")
    # New deadlines run from the missed deadline, not from the restart.
    base = [e.escalated.acknowledge_by_us - routed[e.incident_id].acknowledge_by_us for e in esc]
    c.eq(len(set(base)), 1, "every new deadline is the missed one plus the community clock")
    S.note("restart: %d escalations present %.2f s after the restart" % (len(esc), caught_up))
    c.check(got, "escalations complete within the wait")
    rc = st.ctl("verify")
    c.check(rc.returncode == 0, "verify passes after the restart", rc.stdout + rc.stderr)


def check_routed_while_down(st, c):
    """Guarantee 3: incidents committed while the router was down are routed when it returns,
    also when it starts before the ledger does."""
    run = uuid.uuid4().hex[:8]
    st.kill9("router")
    reports = [S.make_report("down-%s" % run, i + 1, category=R.PROPERTY_SERVICE,
                             kind="no_water_%d" % i, severity=R.SEVERITY_IV,
                             compound="lijinggang", building="%d" % (i + 1)) for i in range(20)]
    acks = send_all(st, reports[:10])
    c.eq(len(acks), 10, "reports accepted while the router is down")
    # Now the ledger goes too, and the router starts first: it must wait, not decide on nothing.
    st.kill9("ledger")
    st.start_daemon("router")
    st.start_daemon("ledger")
    acks.update(send_all(st, reports[10:]))
    c.eq(len(acks), 20, "reports accepted after the ledger is back")
    incs = ["'%s'" % S.incident_id(r.device_id, r.sequence) for r in reports]
    count = lambda: st.sql("select count(*), count(distinct incident_id) from ledger where "
                           "type = 'routed' and incident_id in (%s)" % ",".join(incs))[0]
    c.check(S.wait_until(lambda: count() == ["20", "20"], 20),
            "every incident committed while the router was down is routed, once", count())


def body(st, c):
    check_chain(st, c)
    check_routed_while_down(st, c)
    check_restart(st, c)


if __name__ == "__main__":
    S.main(body, "router", daemons=("ledger", "intake", "router"),
           env={"LINKAGE_TIME_SCALE": str(SCALE)})
