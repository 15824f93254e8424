"""Chaos: the whole stack under
steady load while daemons, the database and the network fail, over and over.

Where things run. The test makes a network namespace joined to the root one
by a veth pair (tests/lib/netns.py):

    root namespace                                 namespace lkc<pid>a
    PostgreSQL (unix socket; the filesystem is shared)
    linkage-ledger  (7010/7011 on every address)  <-- veth -->  linkage-router (7003 on the veth)
    linkage-intake  (127.0.0.1)                                 linkage-dispatch (its 127.0.0.1)
    linkage-gateway (127.0.0.1; commands to the router over the veth)
    the devices                                                 the responder units

so a link fault separates router and dispatch (and the gateway's command
path) from the ledger, while devices, intake and the ledger go on.

The load: DEVICES devices, each sending a report every 1/RATE s, one at a
time, retried on silence (a fresh connection, as a device on a bad network)
and on BUSY (as told) until ACCEPTED or DUPLICATE. Every report has a kind of
its own, merging and the reporter threshold are off, so each report is one
incident and no incident holds back another's escalation: what the router
owes each incident follows from that incident's own events. Plan time runs
SCALE times faster (LINKAGE_TIME_SCALE), so acknowledge deadlines pass within
seconds. Every unit of the demo district is connected (tests/lib/stack.py's
Unit, inside the namespace) and answers acknowledged, on scene, resolved for
two incidents in three; the third is left unanswered, so its assignments
expire, are reassigned, and it climbs the tiers on missed deadlines.

The faults, one at a time, each followed by a wait for devices to be
acknowledged again:
  kill -9      a random daemon (ledger, intake, router, dispatch, gateway), restarted
  postgres     stopped in immediate mode, started again once devices noticed
  sigstop      ledger, intake, router or dispatch stopped past its peers' timeouts
               (the ledger past intake's resend and give-up, and in the long run past
               the 10 s give-up of router's and dispatch's ledger client), then SIGCONT
  link cut     the veth down for a while, then up
  link degrade a tbf qdisc on both ends (rate and queueing delay; no netem in this kernel)
  link delay   every packet of the veth held 50-300 ms each way, in order (NFQUEUE and
               build/chaos/delayq, netem's fixed `delay` where there is no netem)
  link loss    nftables in the namespace drops a share of the veth's packets both ways

The short version (`make test`) runs each kind once (kill -9 twice), about 40 s
of load; LINKAGE_CHAOS_LONG=1 (`make chaos`, tests/chaos/run-chaos.sh) repeats
shuffled rounds for LONG_SECONDS. LINKAGE_CHAOS_SEED replays a run's choices.

At the end, from the ledger: every ACCEPTED/DUPLICATE report has its
`reported` row, one per (device, sequence); every incident is routed once and
dispatched; every deadline fired once: per incident the escalations climb one
tier at a time and never twice from the same tier, none before the deadline
it answers, none missing (an open, unacknowledged incident has no deadline
more than GRACE_S in the past), at most one `overdue` per deadline; every
assignment is dispatched once, replaced at most once, never expired early;
`linkagectl verify` passes; the gateway, killed and restarted with the rest,
lists every incident.
"""

import os
import random
import signal
import threading
import time

import chaos as X
import stack as S
from stack import event_pb2, report_pb2, unit_pb2, zmq

ACK = report_pb2.ReportAck
E = event_pb2

LONG = X.LONG
LONG_SECONDS = int(os.environ.get("LINKAGE_CHAOS_SECONDS", "300"))
MIN_LOAD_S = LONG_SECONDS if LONG else 30
DEVICES = 4
RATE = 4.0               # reports per second per device
SCALE = 300.0            # plan minutes per real minute / 1: 15 plan minutes = 3 s
ATTEMPT_TIMEOUT = 1.0    # a device gives up on one attempt after this long
REPORT_DEADLINE = 90.0   # and on a report after this long, faults included
GIVE_UP_MS = 4000        # intake's ledger_give_up_ms: a ledger SIGSTOP of 5 s passes it
CLIENT_GIVE_UP_S = 10.0  # router's and dispatch's ledger client (ledger_client.h default)
GRACE_S = 5.0            # a passed deadline the router has not fired within this is lost
SEED = int(os.environ.get("LINKAGE_CHAOS_SEED", str(int(time.time()) % 100000)))

CATEGORIES = [(report_pb2.SOCIAL_SAFETY, report_pb2.SEVERITY_IV),
              (report_pb2.LATENT_HAZARD, report_pb2.SEVERITY_III),
              (report_pb2.SOCIAL_SAFETY, report_pb2.SEVERITY_III),
              (report_pb2.LATENT_HAZARD, report_pb2.SEVERITY_IV)]
COMPOUNDS = ["lijinggang", "zhouji-asia-bay", "zhouji-yinhai-bay", "spring-square"]
TIER_NAME = {E.COMPOUND: "compound", E.COMMUNITY: "community", E.STREET: "street",
             E.DISTRICT: "district"}


def answered(incident_id):
    """Two incidents in three get answered by their units; the rest are left to expire."""
    return int(incident_id[4:12], 16) % 3 != 0


def noon_offset_min():
    """utc_offset_min that makes it about noon in the district now, so every unit's
    duty hours (08:00-20:00 at the narrowest) cover the run."""
    now_min = int(time.time() // 60) % 1440
    return (720 - now_min + 720) % 1440 - 720


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.reports = 0     # distinct reports put to intake
        self.sent = 0        # attempts on the wire
        self.acked = 0       # reports with a final ACCEPTED or DUPLICATE
        self.accepted = 0
        self.duplicate = 0
        self.busy = 0
        self.timeouts = 0
        self.unfinished = 0  # reports without a final answer by the end
        self.wrong = []
        self.incidents = {}  # (device, seq) -> acknowledged incident id

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


def device_thread(st, t, idx, stop_send, hard_stop):
    device = "chaos-dev-%d" % idx
    dev = S.Device(st.intake_endpoint, zmq.DEALER, zmq.Context.instance())
    seq = 0
    next_at = time.monotonic()
    while True:
        # The load's pace (a report every 1/RATE s), not a synchronisation.
        if stop_send.wait(max(0.0, next_at - time.monotonic())):
            break
        next_at = max(next_at + 1.0 / RATE, time.monotonic())
        seq += 1
        category, severity = CATEGORIES[(idx + seq) % len(CATEGORIES)]
        rep = S.make_report(device, seq, category=category, severity=severity,
                            compound=COMPOUNDS[(idx + seq) % len(COMPOUNDS)],
                            building="%d" % (1 + seq % 9), kind="chaos_%d_%d" % (idx, seq),
                            description="chaos report %d of %s" % (seq, device))
        data = rep.SerializeToString()
        t.add(reports=1)
        final, _ = S.submit_until_final(dev, data, device, seq, t, hard_stop, REPORT_DEADLINE,
                                        ATTEMPT_TIMEOUT, 1.0)
        with t.lock:
            if final is None:
                t.unfinished += 1
                continue
            t.acked += 1
            if final.status == ACK.ACCEPTED:
                t.accepted += 1
            else:
                t.duplicate += 1
            if final.incident_id != S.incident_id(device, seq):
                t.wrong.append("%s/%d: incident %s, expected %s" %
                               (device, seq, final.incident_id, S.incident_id(device, seq)))
            t.incidents[(device, seq)] = final.incident_id
    dev.close()


class Responders:
    """One thread per unit: takes each new assignment and, for the incidents that
    get answered, sends acknowledged, on scene, resolved; an answer that gets no
    reply (dispatch down, stopped, restarting) is sent again later, one REJECTED
    (the assignment expired meanwhile, the incident closed) is dropped."""

    STEPS = ("acknowledged", "on_scene", "resolved")

    def __init__(self, units):
        self.units = units
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.assignments = 0
        self.ok = 0
        self.rejected = 0
        self.no_reply = 0
        self.threads = [threading.Thread(target=self._run, args=(u,), daemon=True)
                        for u in units]

    def start(self):
        for th in self.threads:
            th.start()
        return self

    def _run(self, u):
        work = []  # [assignment id, step, not before]
        while not self.stop.is_set():
            a = u.next_assignment(timeout=0.2)
            if a is not None:
                with self.lock:
                    self.assignments += 1
                if answered(a.incident_id):
                    work.append([a.assignment_id, 0, 0.0])
            now = time.monotonic()
            for item in list(work):
                if item[2] > now or self.stop.is_set():
                    continue
                rep = u.answer(item[0], self.STEPS[item[1]], timeout=2.0)
                with self.lock:
                    if rep is None:
                        self.no_reply += 1
                        item[2] = time.monotonic() + 0.5
                    elif rep.status == unit_pb2.AnswerReply.OK:
                        self.ok += 1
                        item[1] += 1
                        if item[1] == len(self.STEPS):
                            work.remove(item)
                    else:
                        self.rejected += 1
                        work.remove(item)

    def close(self):
        self.stop.set()
        for th in self.threads:
            th.join(10)


class Faults:
    """Injects the faults one at a time from a thread; counts them by kind."""

    def __init__(self, st, ns, t, rng, stop):
        self.st, self.ns, self.t, self.rng, self.stop = st, ns, t, rng, stop
        self.done = []          # (kind, detail)
        self.errors = []
        self.recovery = []      # seconds from the end of a fault to the next acknowledgements
        self.caught_up = {}     # kind -> seconds from its end until every incident reported
                                # by then is routed
        self.decks = {}         # what to pick from -> what is left of a shuffled round
        self.dropped = 0        # packets dropped by the loss rules
        self.delayed = 0        # packets held by the delay queue
        self.stopped = None     # a daemon held with SIGSTOP (for cleanup)
        self.finished = threading.Event()

    def hold(self, seconds):
        """A timed fault: the hold is the fault itself."""
        self.stop.wait(seconds)

    def wait_acked(self, n, timeout):
        target = self.t.acked + n
        return S.wait_until(lambda: self.t.acked >= target or self.stop.is_set(), timeout,
                            interval=0.05)

    def pick(self, what, choices):
        """The next of a shuffled round of choices: every one comes up before any repeats."""
        deck = self.decks.get(what)
        if not deck:
            deck = self.decks[what] = list(choices)
            self.rng.shuffle(deck)
        return deck.pop()

    def count(self, kind):
        try:
            return int(self.st.scalar("select count(*) from ledger where type = '%s'" % kind))
        except Exception:  # PostgreSQL restarting: not yet
            return -1

    def kill9(self):
        name = self.pick("kill9", S.DAEMONS)
        self.st.kill9(name)
        self.st.start_daemon(name)
        return name

    def postgres(self):
        self.st.stop_pg("immediate")
        # Down until devices have noticed (timeouts or BUSY), at most 5 s.
        seen = self.t.timeouts + self.t.busy
        S.wait_until(lambda: self.t.timeouts + self.t.busy >= seen + DEVICES or self.stop.is_set(),
                     5)
        self.st.start_pg()
        return "immediate"

    def sigstop(self):
        name = self.pick("sigstop", ("ledger", "intake", "router", "dispatch"))
        if name == "ledger":
            # Past intake's resend (1 s) and give-up; in the long run sometimes past the
            # router's and dispatch's ledger client give-up (10 s) too.
            secs = GIVE_UP_MS / 1000.0 + 1
            if LONG and self.rng.random() < 0.5:
                secs = CLIENT_GIVE_UP_S + 1.5
        elif name == "intake":
            secs = 3.0  # devices time out after 1 s, reconnect, resend
        else:
            secs = 5.0  # past the unit acknowledge windows (2-3 s here) and the stream's HWM
        pid = self.st.daemons[name].proc.pid
        os.kill(pid, signal.SIGSTOP)
        self.stopped = pid
        try:
            self.hold(secs)
        finally:
            os.kill(pid, signal.SIGCONT)
            self.stopped = None
        return "%s %.1fs" % (name, secs)

    def link_cut(self):
        secs = self.rng.uniform(3, 12) if LONG else 4.0
        self.ns.link_down()
        try:
            self.hold(secs)
        finally:
            self.ns.link_up()
        return "%.1fs" % secs

    def link_degrade(self):
        rate = self.rng.choice(("64kbit", "128kbit", "256kbit")) if LONG else "128kbit"
        self.ns.degrade(rate=rate, latency="300ms")
        try:
            self.hold(5.0)
        finally:
            self.ns.restore()
        return "tbf %s 300ms 5s" % rate

    def link_delay(self):
        ms = self.rng.choice((50, 150, 300)) if LONG else 150
        self.ns.delay(ms, X.DELAYQ)
        try:
            self.hold(5.0)
        finally:
            got = self.ns.no_delay()
        self.delayed += int(got.get("packets", 0))
        return ("%d ms each way 5s (%s packets held, at most %s at once, released up to %s us "
                "late)" % (ms, got.get("packets"), got.get("max_held"), got.get("late_us_max")))

    def link_loss(self):
        pct = self.rng.choice((10, 20, 30)) if LONG else 20
        self.ns.loss(pct)
        try:
            self.hold(5.0)
        finally:
            self.dropped += self.ns.no_loss()
        return "%d%% 5s" % pct

    def plan(self):
        kinds = ["kill9", "postgres", "sigstop", "link_cut", "link_degrade", "link_delay",
                 "link_loss", "kill9"]
        self.rng.shuffle(kinds)
        return kinds

    def run(self, until):
        try:
            rounds = 0
            while not self.stop.is_set():
                for kind in self.plan():
                    if self.stop.is_set():
                        break
                    # A loaded pipeline first: devices acknowledged for about a second.
                    if not self.wait_acked(int(DEVICES * RATE), 30):
                        self.errors.append("no acknowledgements before %s" % kind)
                    detail = getattr(self, kind)()
                    self.done.append((kind, detail))
                    S.note("fault %d: %s %s at %d acknowledged" %
                           (len(self.done), kind, detail, self.t.acked))
                    ended = time.monotonic()
                    reported = self.count("reported")
                    if not self.wait_acked(DEVICES, 60):
                        self.errors.append("no acknowledgement within 60 s after %s %s" %
                                           (kind, detail))
                    else:
                        self.recovery.append(time.monotonic() - ended)
                    if not S.wait_until(lambda: self.count("routed") >= reported, 60,
                                        interval=0.1):
                        self.errors.append("the router did not catch up within 60 s after "
                                           "%s %s" % (kind, detail))
                    else:
                        self.caught_up.setdefault(kind, []).append(time.monotonic() - ended)
                rounds += 1
                if not LONG or time.monotonic() >= until:
                    break
        except Exception as e:
            import traceback
            traceback.print_exc()
            self.errors.append("fault thread: %r" % e)
        finally:
            if self.stopped:
                os.kill(self.stopped, signal.SIGCONT)
            self.ns.heal()
            self.finished.set()


# ---------------------------------------------------------------- the ledger's view


def load_events(st):
    """Every committed event, decoded, in position order."""
    out = []
    for pos, hexed in st.sql("select position, encode(payload, 'hex') from ledger "
                             "order by position", timeout=600):
        ev = E.Event()
        ev.ParseFromString(bytes.fromhex(hexed))
        out.append((int(pos), ev))
    return out


def check_deadlines(events, now_us, c):
    """Folds each incident as the router does and checks that every deadline fired
    once: the escalations climb one tier at a time from the tier the incident is
    at, never from the same tier twice, never before the deadline they answer,
    and none is missing at the end; at most one overdue per deadline and epoch.
    Returns figures for the notes."""
    inc = {}
    twice, early, wrong_step, overdue_twice, overdue_early = [], [], [], [], []
    n_esc = n_overdue = n_nua = n_esc_nua = 0
    for pos, ev in events:
        body = ev.WhichOneof("body")
        i = inc.get(ev.incident_id)
        if body == "reported":
            inc[ev.incident_id] = {"tier": None, "ack_by": 0, "res_by": 0, "acked": False,
                                   "ended": False, "from": set(), "epoch": 0, "overdue": set(),
                                   "nua": False}
            continue
        if i is None:
            continue
        if body == "routed":
            i.update(tier=ev.routed.tier, ack_by=ev.routed.acknowledge_by_us,
                     res_by=ev.routed.resolve_by_us, acked=False, nua=False)
            i["epoch"] += 1
        elif body == "escalated":
            n_esc += 1
            x = ev.escalated
            if x.from_tier in i["from"]:
                twice.append(ev.event_id)
            i["from"].add(x.from_tier)
            if x.from_tier != i["tier"] or x.to_tier != x.from_tier + 1:
                wrong_step.append("%s: %s -> %s while at %s" % (ev.event_id, x.from_tier,
                                                                 x.to_tier, i["tier"]))
            # An escalation answers a deadline of its tier (and names it, with when it fell
            # due), or, naming none, a no_unit_available for the lead role at that tier.
            if x.deadline:
                due = i["ack_by"] if x.deadline == "acknowledge" else i["res_by"]
                if x.due_us != due or ev.at_us < due:
                    early.append("%s: at %d, due %d (says %d)" % (ev.event_id, ev.at_us, due,
                                                                  x.due_us))
            else:
                n_esc_nua += 1
                if not i["nua"] or ev.at_us < i["nua"]:
                    early.append("%s: \"%s\" without a lead no_unit_available at its tier"
                                 % (ev.event_id, x.reason))
            i.update(tier=x.to_tier, ack_by=x.acknowledge_by_us, res_by=x.resolve_by_us,
                     acked=False, nua=False)
            i["epoch"] += 1
        elif body in ("acknowledged", "unit_acknowledged"):
            i["acked"] = True
        elif body == "no_unit_available":
            n_nua += 1
            if not i["ended"] and ev.no_unit_available.lead and \
                    ev.no_unit_available.tier == i["tier"] and not i["nua"]:
                i["nua"] = ev.at_us
        elif body in ("resolved", "closed", "merged"):
            i["ended"] = True
        elif body == "overdue":
            n_overdue += 1
            key = (ev.overdue.deadline, i["epoch"])
            if key in i["overdue"]:
                overdue_twice.append(ev.event_id)
            i["overdue"].add(key)
            if ev.at_us < ev.overdue.due_us:
                overdue_early.append(ev.event_id)
    lost = []
    limit = now_us - int(GRACE_S * 1e6)
    for iid, i in inc.items():
        if i["ended"] or i["tier"] is None:
            continue
        if i["tier"] < E.DISTRICT:
            if not i["acked"] and 0 < i["ack_by"] < limit:
                lost.append("%s: acknowledge due %.1fs ago at %s tier" %
                            (iid, (now_us - i["ack_by"]) / 1e6, TIER_NAME[i["tier"]]))
            elif 0 < i["res_by"] < limit:
                lost.append("%s: resolve due %.1fs ago at %s tier" %
                            (iid, (now_us - i["res_by"]) / 1e6, TIER_NAME[i["tier"]]))
        else:
            if not i["acked"] and 0 < i["ack_by"] < limit and \
                    ("acknowledge", i["epoch"]) not in i["overdue"]:
                lost.append("%s: no overdue for the acknowledge deadline at district" % iid)
            if 0 < i["res_by"] < limit and ("resolve", i["epoch"]) not in i["overdue"]:
                lost.append("%s: no overdue for the resolve deadline at district" % iid)
    c.eq(twice[:5], [], "no incident escalated twice from the same tier")
    c.eq(wrong_step[:5], [], "every escalation climbs one tier from the incident's tier")
    c.eq(early[:5], [], "no escalation before the deadline it answers")
    c.eq(lost[:5], [], "no deadline lost: every one passed over %.0f s ago has fired" % GRACE_S)
    c.eq(overdue_twice[:5], [], "at most one overdue per deadline")
    c.eq(overdue_early[:5], [], "no overdue before its deadline")
    return {"escalated": n_esc, "overdue": n_overdue, "no_unit_available": n_nua,
            "escalated_after_nua": n_esc_nua,
            "ended": sum(1 for i in inc.values() if i["ended"]),
            "district": sum(1 for i in inc.values() if not i["ended"] and i["tier"] == E.DISTRICT)}


def check_assignments(events, c):
    """Every assignment dispatched once, replaced at most once, and an expiry
    (declined by svc:dispatch) never before its acknowledge deadline."""
    dispatched, replaced, declined = {}, {}, {}
    early = []
    for pos, ev in events:
        body = ev.WhichOneof("body")
        if body == "dispatched":
            d = ev.dispatched
            dispatched[d.assignment_id] = dispatched.get(d.assignment_id, []) + [d]
            if d.replaces:
                replaced[d.replaces] = replaced.get(d.replaces, 0) + 1
        elif body == "unit_declined":
            a = ev.unit_declined.assignment_id
            declined[a] = declined.get(a, 0) + 1
            if ev.actor == "svc:dispatch" and a in dispatched:
                due = dispatched[a][0].acknowledge_by_us
                if ev.at_us < due:
                    early.append("%s: expired at %d, due %d" % (a, ev.at_us, due))
    c.eq([a for a, v in dispatched.items() if len(v) > 1][:5], [],
         "every assignment dispatched once")
    c.eq([a for a, n in replaced.items() if n > 1][:5], [], "every assignment replaced at most once")
    c.eq([a for a, n in declined.items() if n > 1][:5], [], "every assignment declined at most once")
    c.eq(early[:5], [], "no assignment expired before its acknowledge deadline")
    expired = sum(1 for pos, ev in events if ev.WhichOneof("body") == "unit_declined"
                  and ev.actor == "svc:dispatch")
    return {"assignments": len(dispatched), "replaced": len(replaced), "expired": expired}


# ---------------------------------------------------------------- the run


def configure(st, ns):
    """Puts router and dispatch in the namespace and points everyone at each other."""
    p = st.ports
    ledger = "tcp://%s:%d" % (ns.root_ip, p["ledger"])
    stream = "tcp://%s:%d" % (ns.root_ip, p["stream"])
    router = "tcp://%s:%d" % (ns.ns_ip, p["router"])
    st.router_endpoint = router
    # The ledger binds every address of the root namespace: loopback for intake and the
    # gateway, the veth for the namespace.
    st.daemon_env["ledger"] = {"LINKAGE_LEDGER_ENDPOINT": "tcp://0.0.0.0:%d" % p["ledger"],
                               "LINKAGE_LEDGER_STREAM": "tcp://0.0.0.0:%d" % p["stream"]}
    for name in ("router", "dispatch"):
        st.daemon_prefix[name] = ns.argv_prefix()
        st.daemon_env[name] = {"LINKAGE_LEDGER_ENDPOINT": ledger, "LINKAGE_LEDGER_STREAM": stream}
    # The router's command port on the namespace's veth address (no loopback rule for it);
    # dispatch's unit port stays on the namespace's own loopback (unit ports need CURVE
    # elsewhere), where the units connect from inside.
    st.daemon_env["router"]["LINKAGE_ROUTER_ENDPOINT"] = router
    st.daemon_env["gateway"] = {"LINKAGE_ROUTER_ENDPOINT": router}
    st.daemon_ready["router"] = lambda: ns.port_open(p["router"], ns.ns_ip)
    st.daemon_ready["dispatch"] = lambda: ns.port_open(p["dispatch"])
    st.extra_env.update({
        "LINKAGE_TIME_SCALE": str(SCALE),
        "LINKAGE_MERGE_WINDOW_MIN": "0",
        "LINKAGE_REPORTER_THRESHOLD": "0",
        "LINKAGE_UTC_OFFSET_MIN": str(noon_offset_min()),
        "LINKAGE_LEDGER_GIVE_UP_MS": str(GIVE_UP_MS),
    })


def unit_ids():
    import yaml
    with open(os.path.join(S.ROOT, "deploy", "district", "wenjiang.yaml")) as f:
        return [u["id"] for u in yaml.safe_load(f)["units"]]


def body(st, c):
    rng = random.Random(SEED)
    S.note("chaos %s run, seed %d (LINKAGE_CHAOS_SEED replays the choices)" %
           ("long" if LONG else "short", SEED))
    ns = X.new_netns(c, "a")
    if ns is None:
        return
    c.check(True, "namespace %s with veth %s/%s (%s <-> %s)" %
            (ns.name, ns.veth_root, ns.veth_ns, ns.root_ip, ns.ns_ip))
    responders = None
    try:
        configure(st, ns)
        for name in S.DAEMONS:
            st.start_daemon(name)
        token = st.token("chaos-reader", role="reader")
        nsctx = ns.context()
        units = [st.unit(uid, ctx=nsctx) for uid in unit_ids()]
        c.check(all(S.wait_until(lambda u=u: u.registered, 10) for u in units),
                "all %d units registered with dispatch inside the namespace" % len(units))
        responders = Responders(units).start()
        run(st, c, ns, rng, responders, token)
    finally:
        for name in S.DAEMONS:  # an interrupted run may leave one stopped
            if st.alive(name):
                os.kill(st.daemons[name].proc.pid, signal.SIGCONT)
        if responders is not None:
            responders.close()
        ns.heal()
        for u in st.units:
            u.close()
        for name in ("router", "dispatch"):
            st.stop_daemon(name, timeout=5)
        ns.destroy()
        c.check(not ns.exists(), "namespace and veth pair removed")


def run(st, c, ns, rng, responders, token):
    t = Tally()
    stop_send, hard_stop, stop_faults = threading.Event(), threading.Event(), threading.Event()
    started = time.monotonic()
    devices = [threading.Thread(target=device_thread, args=(st, t, i, stop_send, hard_stop),
                                daemon=True) for i in range(DEVICES)]
    for th in devices:
        th.start()
    faults = Faults(st, ns, t, rng, stop_faults)
    fth = threading.Thread(target=faults.run, args=(started + MIN_LOAD_S,), daemon=True)
    fth.start()
    try:
        # The faults run their plan (the long run: rounds until LONG_SECONDS); the load
        # runs at least MIN_LOAD_S and as long as the faults.
        budget = MIN_LOAD_S + (240 if not LONG else 300)
        faults.finished.wait(budget)
        S.wait_until(lambda: time.monotonic() >= started + MIN_LOAD_S, MIN_LOAD_S)
    finally:
        stop_faults.set()
        fth.join(60)
        stop_send.set()
    for th in devices:
        th.join(REPORT_DEADLINE + 10)
    hard_stop.set()
    load_s = time.monotonic() - started
    c.check(not fth.is_alive() and faults.finished.is_set(), "the fault thread finished")
    c.eq(faults.errors, [], "every fault injected and recovered from")
    kinds = {}
    for kind, detail in faults.done:
        kinds[kind] = kinds.get(kind, 0) + 1
    want = {"kill9", "postgres", "sigstop", "link_cut", "link_degrade", "link_delay", "link_loss"}
    c.eq(sorted(want - set(kinds)), [], "every kind of fault injected")
    c.check(faults.delayed > 0, "the delay faults held the link's packets",
            "%d packets" % faults.delayed)
    c.eq(t.wrong[:10], [], "every answer to a device keeps the contract")
    c.eq(t.unfinished, 0, "every report got a final answer (ACCEPTED or DUPLICATE)")
    alive = [n for n in S.DAEMONS if not st.alive(n)]
    c.eq(alive, [], "every daemon alive after the faults")

    # -- acknowledged reports in the ledger, once each
    reported = {}
    for inc, hexed in st.sql("select incident_id, encode(payload, 'hex') from ledger "
                             "where type = 'reported'", timeout=300):
        ev = E.Event()
        ev.ParseFromString(bytes.fromhex(hexed))
        r = ev.reported.report
        reported.setdefault((r.device_id, r.sequence), []).append(inc)
    rows = sum(len(v) for v in reported.values())
    dup = sum(len(v) - 1 for v in reported.values())
    missing = [k for k in t.incidents if k not in reported]
    c.eq(missing[:10], [], "every acknowledged report has its `reported` row (none lost)")
    c.eq(dup, 0, "no (device, sequence) has two `reported` rows (no duplicate incident)")
    c.check(len(t.incidents) <= rows <= t.reports, "`reported` rows between acknowledged and sent",
            "rows %d, acknowledged %d, reports %d" % (rows, len(t.incidents), t.reports))
    incidents = sorted(i for v in reported.values() for i in v)

    # -- routed and dispatched, every one
    def count(kind):
        return int(st.scalar("select count(distinct incident_id) from ledger where type = '%s'" %
                             kind))
    routed_ok = S.wait_until(lambda: count("routed") >= len(incidents), 60, interval=0.5)
    c.check(routed_ok, "every incident routed", "%d of %d" % (count("routed"), len(incidents)))
    routed_rows = int(st.scalar("select count(*) from ledger where type = 'routed'"))
    c.eq(routed_rows, len(incidents), "one routed row per incident")
    disp_ok = S.wait_until(lambda: count("dispatched") >= len(incidents), 60, interval=0.5)
    c.check(disp_ok, "every incident dispatched", "%d of %d" % (count("dispatched"),
                                                                len(incidents)))
    if not disp_ok:
        print("not dispatched: %s" % st.sql(
            "select incident_id from ledger where type = 'reported' except "
            "select incident_id from ledger where type = 'dispatched' limit 5"))

    # -- deadlines and assignments, folded from the whole ledger
    now_us = int(time.time() * 1e6)
    events = load_events(st)
    dl = check_deadlines(events, now_us, c)
    asg = check_assignments(events, c)

    # -- the chain
    r = st.ctl("verify", timeout=600)
    c.eq(r.returncode, 0, "linkagectl verify passes")
    if r.returncode != 0:
        print(r.stdout + r.stderr)

    # -- the gateway, killed and restarted with the rest, sees every incident
    gw_ids = set()

    def gateway_sees_all():
        try:
            status, _, body_ = st.http("GET", "/api/incidents?closed=1", token=token, timeout=30)
        except OSError:
            return False
        if status != 200:
            return False
        import json
        gw_ids.clear()
        gw_ids.update(row["id"] for row in json.loads(body_)["incidents"])
        return gw_ids >= set(incidents)
    c.check(S.wait_until(gateway_sees_all, 30, interval=0.5), "the gateway lists every incident",
            "%d of %d" % (len(gw_ids & set(incidents)), len(incidents)))

    with responders.lock:
        answers = (responders.assignments, responders.ok, responders.rejected,
                   responders.no_reply)
    S.note("faults injected %d: %s" % (len(faults.done), ", ".join(
        "%s %d" % (k, kinds[k]) for k in sorted(kinds))))
    S.note("faults in order: %s" % "; ".join("%s %s" % f for f in faults.done))
    if faults.recovery:
        S.note("devices acknowledged again after a fault within %.2f s (median), %.2f s (max)" %
               (sorted(faults.recovery)[len(faults.recovery) // 2], max(faults.recovery)))
    S.note("router caught up (every incident reported before the fault's end routed), seconds "
           "after the end of each fault: %s" % "; ".join(
               "%s %s" % (k, " ".join("%.1f" % x for x in v))
               for k, v in sorted(faults.caught_up.items())))
    S.note("packets dropped by the loss faults: %d" % faults.dropped)
    S.note("packets held by the delay faults: %d" % faults.delayed)
    S.note("reports sent %d (%d attempts), acknowledged %d (ACCEPTED %d, DUPLICATE %d), in the "
           "ledger %d; BUSY %d, silent attempts %d; over %.0f s" %
           (t.reports, t.sent, t.acked, t.accepted, t.duplicate, rows, t.busy, t.timeouts, load_s))
    S.note("duplicates (second `reported` row of a device sequence): %d" % dup)
    S.note("incidents %d: routed %d, dispatched %d; %d assignments (%d replaced, %d expired); "
           "escalations %d (%d after no_unit_available), overdue %d; at the end %d resolved or "
           "closed, %d open at district tier" %
           (len(incidents), count("routed"), count("dispatched"), asg["assignments"],
            asg["replaced"], asg["expired"], dl["escalated"], dl["escalated_after_nua"],
            dl["overdue"], dl["ended"], dl["district"]))
    S.note("units: %d assignments received, %d answers OK, %d REJECTED, %d unanswered (resent)" %
           answers)
    S.note("ledger: %d events" % len(events))


if __name__ == "__main__":
    S.main(body, "chaos", daemons=())
