"""Every daemon's GET /metrics on the real stack: valid Prometheus text, and figures an operator
can act on.

The whole stack runs; a device sends three reports (severities II, III and IV in three
compounds), one retry of the first and one report for a compound that does not exist. Then:
  - each daemon's /metrics answers 200 with the 0.0.4 content type, and `promtool check
    metrics` finds nothing to say about it; other paths answer 404, POST 405;
  - intake counts 3 accepted, 1 duplicate, 1 rejected, 0 busy;
  - the ledger's committed events, commits and the histograms' counts agree with the table;
  - the router's open incidents by tier and severity are those of the `incidents` view, and a
    coordinator's escalate command moves one up a tier and counts as cause="command";
  - dispatch counts one dispatch per `dispatched` event in the ledger, open assignments the
    same, and a unit that says Hello turns from absent to present;
  - the gateway's open incidents agree with the router, a feed subscriber and a live
    dashboard stream are counted while connected;
  - under `linkagectl run`, which announces the metrics addresses, a daemon killed with
    SIGKILL comes back saying linkage_service_restarts 1.
"""

import http.client
import os
import re
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import command_pb2, make_report, report_pb2, wait_until  # noqa: E402

import zmq  # noqa: E402

R = report_pb2
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset of (label, value)): float} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("not a sample line: %r" % line)
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(samples, name, **labels):
    """The sample's value, or None when absent."""
    return samples.get((name, frozenset(labels.items())))


def total(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)


def scrape(st, name):
    status, ctype, body = st.metrics(name)
    if status != 200:
        raise RuntimeError("linkage-%s /metrics answered %d" % (name, status))
    return ctype, body, parse(body)


def scrape_quiet(st, name):
    try:
        return scrape(st, name)[2]
    except (OSError, RuntimeError, ValueError):
        return None


def promtool(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def send(st, c, dev, rep, want, name):
    ack, _ = dev.submit(rep)
    c.eq(S.status_name(ack), want, name)
    return ack


def http_status(port, method, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        return conn.getresponse().status
    finally:
        conn.close()


def check_format(st, c):
    for name in S.DAEMONS:
        ctype, body, samples = scrape(st, name)
        c.eq(ctype, CONTENT_TYPE, "%s: the 0.0.4 text format's content type" % name)
        rc, said = promtool(body)
        c.check(rc == 0 and said == "", "%s: promtool check metrics finds nothing" % name,
                said or "exit %d" % rc)
        c.eq(value(samples, "linkage_service_info", service=name), 1.0,
             "%s: linkage_service_info names it" % name)
        c.eq(value(samples, "linkage_service_restarts"), 0.0,
             "%s: not restarted (no supervisor)" % name)
        c.check((value(samples, "process_resident_memory_bytes") or 0) > 0,
                "%s: its resident memory is shown" % name)
    port = st.metrics_ports["ledger"]
    c.eq(http_status(port, "GET", "/"), 404, "another path answers 404")
    c.eq(http_status(port, "POST", "/metrics"), 405, "POST answers 405")


def check_intake(st, c):
    s = scrape(st, "intake")[2]
    for status, n in (("accepted", 3), ("duplicate", 1), ("rejected", 1), ("busy", 0)):
        c.eq(value(s, "linkage_intake_reports_total", status=status), float(n),
             "intake: %d %s" % (n, status))
    c.eq(value(s, "linkage_intake_inflight_reports"), 0.0, "intake: nothing waits for the ledger")


def check_ledger(st, c):
    s = scrape(st, "ledger")[2]
    rows = float(st.scalar("select count(*) from ledger"))
    head = float(st.scalar("select coalesce(max(position), 0) from ledger"))
    c.eq(value(s, "linkage_ledger_events_committed_total"), rows,
         "ledger: events committed = rows in the table")
    c.eq(value(s, "linkage_ledger_head_position"), head, "ledger: the head is the table's")
    c.eq(value(s, "linkage_ledger_appends_total", status="committed"), rows,
         "ledger: as many appends answered committed")
    commits = value(s, "linkage_ledger_commits_total") or 0
    c.check(1 <= commits <= rows, "ledger: between 1 and one commit per event", commits)
    c.eq(value(s, "linkage_ledger_batch_size_count"), commits, "ledger: one batch size per commit")
    c.eq(value(s, "linkage_ledger_commit_duration_seconds_count"), commits,
         "ledger: one commit duration per commit")
    c.eq(value(s, "linkage_ledger_batch_size_bucket", le="+Inf"), commits,
         "ledger: the +Inf bucket holds every batch")
    c.check((value(s, "linkage_ledger_batch_size_sum") or 0) >= rows,
            "ledger: the batches carried every committed event")
    c.check((value(s, "linkage_ledger_commit_duration_seconds_sum") or 0) > 0,
            "ledger: commits took time")
    c.eq(value(s, "linkage_ledger_queue_depth", queue="append"), 0.0, "ledger: the queue is empty")
    c.eq(value(s, "linkage_ledger_postgres_up"), 1.0, "ledger: PostgreSQL is up")


def open_by_view(st):
    """{(tier, severity): n} of open incidents, from the `incidents` view."""
    rows = st.sql("select coalesce(tier, 'unrouted'), severity, count(*) from incidents "
                  "where state not in ('resolved', 'closed') group by 1, 2")
    return {(t, v): float(n) for t, v, n in rows}


def open_by_router(s):
    out = {}
    for (name, labels), v in s.items():
        if name == "linkage_router_open_incidents" and v:
            d = dict(labels)
            out[(d["tier"], d["severity"])] = v
    return out


def router_agrees(st):
    s = scrape_quiet(st, "router")
    return s is not None and open_by_router(s) == open_by_view(st)


def check_router(st, c, incidents):
    c.check(wait_until(lambda: router_agrees(st), 15),
            "router: open incidents by tier and severity are the view's",
            "router %r, view %r" % (open_by_router(scrape(st, "router")[2]), open_by_view(st)))
    s = scrape(st, "router")[2]
    c.eq(total(s, "linkage_router_open_incidents"), float(len(incidents)),
         "router: every incident opened is open")
    c.eq(value(s, "linkage_router_decisions_total", type="routed"), float(len(incidents)),
         "router: one routing decision each")
    c.eq(value(s, "linkage_router_overdue_incidents"), 0.0, "router: nothing overdue yet")
    c.eq(value(s, "linkage_router_caught_up"), 1.0, "router: caught up")
    before = st.scalar("select tier from incidents where incident_id = '%s'" % incidents[0])
    cmd = command_pb2.Command(command_id=uuid.uuid4().hex[:16], actor="zhang-wei",
                              incident_id=incidents[0],
                              escalate=command_pb2.EscalateCommand(reason="metrics test"))
    rep = st.command(cmd)
    c.check(rep is not None and rep.status == command_pb2.CommandReply.OK,
            "router: a coordinator escalates one", rep)
    after = wait_until(lambda: (st.scalar("select tier from incidents where incident_id = '%s'"
                                          % incidents[0]) != before) and router_agrees(st), 15)
    c.check(after, "router: the gauge follows the escalation to the next tier")
    s = scrape(st, "router")[2]
    c.eq(value(s, "linkage_router_escalations_total", cause="command"), 1.0,
         "router: one escalation, cause=command")
    c.eq(value(s, "linkage_router_escalations_total", cause="acknowledge_deadline"), 0.0,
         "router: none for a missed deadline")
    c.eq(value(s, "linkage_router_commands_total", result="ok"), 1.0, "router: one command ok")


def dispatch_agrees(st):
    s = scrape_quiet(st, "dispatch")
    if s is None:
        return False
    n = float(st.scalar("select count(*) from ledger where type = 'dispatched'"))
    return n > 0 and value(s, "linkage_dispatch_dispatches_total") == n and \
        value(s, "linkage_dispatch_open_assignments") == n


def check_dispatch(st, c):
    c.check(wait_until(lambda: dispatch_agrees(st), 20),
            "dispatch: one dispatch per dispatched event, each an open assignment",
            scrape_quiet(st, "dispatch"))
    s = scrape(st, "dispatch")[2]
    units = total(s, "linkage_dispatch_units")
    c.check(units > 0, "dispatch: the district's units are counted", units)
    c.eq(value(s, "linkage_dispatch_units", presence="present"), 0.0,
         "dispatch: no unit present before any Hello")
    unit = st.unit("duty-lijinggang")
    c.check(unit.registered, "dispatch: a unit says Hello")

    def present():
        m = scrape_quiet(st, "dispatch")
        return m is not None and value(m, "linkage_dispatch_units", presence="present") == 1.0
    c.check(wait_until(present, 10), "dispatch: the unit is present")
    s = scrape(st, "dispatch")[2]
    c.eq(value(s, "linkage_dispatch_units", presence="absent"), units - 1,
         "dispatch: the others absent")


def check_gateway(st, c):
    def agrees():
        g, r = scrape_quiet(st, "gateway"), scrape_quiet(st, "router")
        return g is not None and r is not None and \
            value(g, "linkage_gateway_open_incidents") == total(r, "linkage_router_open_incidents")
    c.check(wait_until(agrees, 15), "gateway: open incidents agree with the router")
    s = scrape(st, "gateway")[2]
    c.eq(value(s, "linkage_gateway_feed_subscribers"), 0.0, "gateway: no feed subscriber yet")
    c.eq(value(s, "linkage_gateway_sse_clients"), 0.0, "gateway: no live stream yet")

    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(st.feed_endpoint)

    def feed_subscribers(n):
        m = scrape_quiet(st, "gateway")
        return m is not None and value(m, "linkage_gateway_feed_subscribers") == n
    c.check(wait_until(lambda: feed_subscribers(1.0), 10), "gateway: a feed subscriber counted")
    sub.close()
    c.check(wait_until(lambda: feed_subscribers(0.0), 10), "gateway: and uncounted when gone")

    token = st.token("metrics-reader", role="reader")
    conn = http.client.HTTPConnection("127.0.0.1", st.http_port, timeout=10)
    try:
        conn.request("GET", "/api/stream?token=" + token, headers={"Accept": "text/event-stream"})
        resp = conn.getresponse()
        c.eq(resp.status, 200, "gateway: a live dashboard stream opens")

        def sse_clients(n):
            m = scrape_quiet(st, "gateway")
            return m is not None and value(m, "linkage_gateway_sse_clients") == n
        c.check(wait_until(lambda: sse_clients(1.0), 10), "gateway: the live stream is counted")
    finally:
        conn.close()
    s = scrape(st, "gateway")[2]
    c.check((value(s, "linkage_gateway_http_requests_total") or 0) >= 1,
            "gateway: HTTP requests counted")


def check_supervisor_restart(st, c):
    """linkagectl run on the same ports (the stack's environment): a daemon killed with SIGKILL
    comes back, and says it was restarted once."""
    for name in reversed(S.DAEMONS):
        st.stop_daemon(name)
    log = open(os.path.join(st.tmp, "supervisor.log"), "w")
    sup = subprocess.Popen([os.path.join(S.BIN, "linkagectl"), "run"], cwd=S.ROOT, env=st.env(),
                           stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    log.close()
    try:
        up = wait_until(lambda: all(scrape_quiet(st, n) is not None for n in S.DAEMONS), 30,
                        interval=0.1)
        c.check(up, "linkagectl run: every daemon serves /metrics")
        url = "http://127.0.0.1:%d/metrics" % st.metrics_ports["intake"]

        def announced():
            with open(os.path.join(st.tmp, "supervisor.log"), errors="replace") as f:
                return url in f.read()
        c.check(wait_until(announced, 15), "linkagectl run: announces where metrics are", url)
        pid = st.daemon_status("intake").get("pid")
        c.check(pid, "linkagectl run: intake's pid from its status")
        if not up or not pid:
            return
        os.kill(int(pid), signal.SIGKILL)

        def restarted():
            m = scrape_quiet(st, "intake")
            return m is not None and value(m, "linkage_service_restarts") == 1.0
        c.check(wait_until(restarted, 20, interval=0.1),
                "linkagectl run: intake killed with SIGKILL comes back with "
                "linkage_service_restarts 1")
        m = scrape_quiet(st, "ledger")
        c.eq(value(m, "linkage_service_restarts") if m else None, 0.0,
             "linkagectl run: the ledger, never restarted, says 0")
    finally:
        sup.send_signal(signal.SIGTERM)
        try:
            sup.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(sup.pid, signal.SIGKILL)
            sup.wait()
        c.eq(sup.returncode, 0, "linkagectl run: stops cleanly")


def body(st, c):
    ready = wait_until(lambda: all(scrape_quiet(st, n) is not None for n in S.DAEMONS), 20)
    c.check(ready, "every daemon serves /metrics")
    dev = st.device(device_id="metrics-dev")
    reports = [
        make_report("metrics-dev", 1, category=R.ACCIDENT_DISASTER, kind="gas_leak",
                    severity=R.SEVERITY_II, compound="lijinggang"),
        make_report("metrics-dev", 2, category=R.ACCIDENT_DISASTER, kind="lift_entrapment",
                    severity=R.SEVERITY_III, compound="zhouji-asia-bay"),
        make_report("metrics-dev", 3, category=R.LATENT_HAZARD, kind="wall_crack",
                    severity=R.SEVERITY_IV, compound="spring-square"),
    ]
    incidents = []
    for r in reports:
        ack = send(st, c, dev, r, "ACCEPTED", "report %d accepted" % r.sequence)
        if ack is not None:
            incidents.append(ack.incident_id)
    send(st, c, dev, reports[0], "DUPLICATE", "its retry is a duplicate")
    send(st, c, dev, make_report("metrics-dev", 4, compound="no-such-compound"), "REJECTED",
         "a report for an unknown compound is rejected")
    dev.close()

    check_format(st, c)
    check_intake(st, c)
    check_router(st, c, incidents)
    check_dispatch(st, c)
    check_ledger(st, c)
    check_gateway(st, c)
    # After all the traffic above, the outputs are still clean.
    for name in S.DAEMONS:
        rc, said = promtool(scrape(st, name)[1])
        c.check(rc == 0 and said == "", "%s: still clean after traffic" % name, said)
    check_supervisor_restart(st, c)


if __name__ == "__main__":
    S.main(body, "metrics", daemons=S.DAEMONS)
