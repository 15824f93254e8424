"""CAP 1.2 and Atom on the running gateway (README "CAP 1.2").

A report is sent, routed, escalated by a coordinator over the HTTP API and
closed. At each stage GET /cap/<id>.xml (a reader's token) must validate
against the CAP 1.2 schema with xmllint, and the thread must run Alert ->
Update -> Cancel, each message naming every earlier one in <references>
("sender,identifier,sent"). GET /cap/index.atom parses and lists the
incident; both need a token (401 without one), and an unknown incident is 404.
Every alert fetched is also checked against the ledger: its identifier names
the latest CAP-worthy event, and its references exactly the earlier ones.
linkage-dispatch is left out: with no unit connected it would report "no unit
available" and the router would escalate on its own, racing the coordinator.
"""

import os
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import event_pb2, report_pb2  # noqa: E402

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
SHARED_XSD = os.path.join(S.ROOT, "..", "shared", "schemas", "cap-1.2.xsd")
XSD = SHARED_XSD if os.path.exists(SHARED_XSD) else os.path.join(S.ROOT, "tests", "data",
                                                                  "cap-1.2.xsd")


def xmllint(body, *args):
    """(exit status, what xmllint said) for body checked with args."""
    with tempfile.NamedTemporaryFile(suffix=".xml", delete=False) as f:
        f.write(body)
        path = f.name
    try:
        r = subprocess.run(["xmllint", "--noout"] + list(args) + [path], capture_output=True,
                           text=True, timeout=30)
        return r.returncode, r.stderr.strip()
    except FileNotFoundError:
        return 127, "xmllint is not installed"
    finally:
        os.unlink(path)


CAP_TYPES = ("reported", "escalated", "de_escalated", "severity_changed", "merged", "closed")


def cap_events(st, inc):
    """[(identifier, sent, type)] of the incident's CAP-worthy events, in ledger order."""
    out = []
    rows = st.sql("select position, type, encode(payload, 'hex') from ledger "
                  "where incident_id = '%s' and type in (%s) order by position" %
                  (inc, ",".join("'%s'" % t for t in CAP_TYPES)))
    for pos, typ, hexed in rows:
        ev = event_pb2.Event()
        ev.ParseFromString(bytes.fromhex(hexed))
        sent = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ev.at_us // 1000000))
        out.append(("%s-%s" % (inc, pos), sent, typ))
    return out


def check_against_ledger(st, c, alert, inc, stage, sender):
    """The alert's identifier, sent, msgType and references as the ledger says they must be."""
    events = cap_events(st, inc)
    ident = text(alert, CAP + "identifier")
    idx = [i for i, (e, _, _) in enumerate(events) if e == ident]
    if not c.check(idx, "%s: the identifier names a CAP-worthy event of the ledger" % stage,
                   (ident, events)):
        return
    i = idx[0]
    c.eq(text(alert, CAP + "sent"), events[i][1], "%s: sent is that event's time" % stage)
    want_type = "Alert" if i == 0 else ("Cancel" if events[i][2] in ("closed", "merged")
                                        else "Update")
    c.eq(text(alert, CAP + "msgType"), want_type, "%s: msgType as the ledger says" % stage)
    c.eq((text(alert, CAP + "references") or "").split(),
         ["%s,%s,%s" % (sender, e, s) for e, s, _ in events[:i]],
         "%s: references are the ledger's earlier CAP-worthy events" % stage)


def fetch_cap(st, token, inc):
    """(status, parsed alert or None, body)."""
    status, _, body = st.http("GET", "/cap/%s.xml" % inc, token=token)
    if status != 200:
        return status, None, body
    try:
        return status, ET.fromstring(body), body
    except ET.ParseError:
        return status, None, body


def text(alert, path):
    e = alert.find(path)
    return e.text if e is not None else None


def param(alert, name):
    for p in alert.findall("%sinfo/%sparameter" % (CAP, CAP)):
        if text(p, CAP + "valueName") == name:
            return text(p, CAP + "value")
    return None


def wait_cap(st, token, inc, cond, timeout=15):
    """Polls /cap/<id>.xml until cond(alert) holds; returns (alert, body) of the last fetch."""
    last = [None, b""]

    def probe():
        status, alert, body = fetch_cap(st, token, inc)
        if alert is not None:
            last[0], last[1] = alert, body
            return cond(alert)
        return False

    S.wait_until(probe, timeout, interval=0.1)
    return last[0], last[1]


def check_message(st, c, inc, alert, body, stage, msg_type, earlier, sender):
    """Checks one stage's alert; returns its (identifier, sent)."""
    if not c.check(alert is not None, "%s: GET /cap/<id>.xml answers a CAP alert" % stage):
        return None
    check_against_ledger(st, c, alert, inc, stage, sender)
    rc, said = xmllint(body, "--schema", XSD)
    c.check(rc == 0, "%s: the alert validates against the CAP 1.2 schema" % stage, said)
    c.eq(text(alert, CAP + "msgType"), msg_type, "%s: msgType" % stage)
    c.eq(text(alert, CAP + "status"), "Actual", "%s: status Actual" % stage)
    c.eq(text(alert, CAP + "scope"), "Public", "%s: scope Public" % stage)
    ident, sent = text(alert, CAP + "identifier"), text(alert, CAP + "sent")
    refs = (text(alert, CAP + "references") or "").split()
    want = ["%s,%s,%s" % (sender, i, s) for i, s in earlier]
    c.eq(refs, want, "%s: references name every earlier message" % stage)
    c.check(ident not in [i for i, _ in earlier], "%s: a new identifier" % stage, ident)
    return ident, sent


def body(st, c):
    reader = st.token("cap-reader-%s" % uuid.uuid4().hex[:6], role="reader")
    coord = st.token("cap-coord-%s" % uuid.uuid4().hex[:6], role="coordinator")

    rep = S.make_report("cap-%s" % uuid.uuid4().hex[:8], 1,
                        category=report_pb2.ACCIDENT_DISASTER, kind="gas_leak",
                        severity=report_pb2.SEVERITY_III, compound="lijinggang", building="3",
                        description="gas smell on the stairs & <b>smoke</b>")
    ack, _ = st.device().submit(rep, timeout=20)
    if not c.eq(S.status_name(ack), "ACCEPTED", "the report is ACCEPTED"):
        return
    inc = ack.incident_id

    # Reported and routed: the gateway shows the tier once it folded the routed event.
    alert, raw = wait_cap(st, reader, inc, lambda a: param(a, "linkage:tier") is not None)
    c.check(alert is not None and param(alert, "linkage:tier") is not None,
            "the gateway's CAP shows the incident routed",
            raw[-400:] if raw else "")
    sender = text(alert, CAP + "sender") if alert is not None else ""
    first = check_message(st, c, inc, alert, raw, "reported", "Alert", [], sender)
    if first is None:
        return
    c.eq(text(alert, "%sinfo/%sseverity" % (CAP, CAP)), "Moderate", "severity III is Moderate")
    c.eq(text(alert, "%sinfo/%sdescription" % (CAP, CAP)),
         "gas smell on the stairs & <b>smoke</b>", "the description survives escaping")

    status, _, _ = st.http("POST", "/api/incidents/%s/escalate" % inc, token=coord,
                                data={"reason": "smell spreading to the next building",
                                      "command_id": uuid.uuid4().hex[:16]})
    c.eq(status, 200, "POST escalate answers 200")
    alert, raw = wait_cap(st, reader, inc,
                          lambda a: text(a, CAP + "identifier") != first[0])
    second = check_message(st, c, inc, alert, raw, "escalated", "Update", [first], sender)
    if second is None:
        return
    c.eq(param(alert, "linkage:tier"), "street", "escalated from community to street")

    status, _, _ = st.http("POST", "/api/incidents/%s/close" % inc, token=coord,
                                data={"reason": "valve shut, air clear",
                                      "command_id": uuid.uuid4().hex[:16]})
    c.eq(status, 200, "POST close answers 200")
    alert, raw = wait_cap(st, reader, inc, lambda a: text(a, CAP + "msgType") == "Cancel")
    third = check_message(st, c, inc, alert, raw, "closed", "Cancel", [first, second], sender)
    if third is not None:
        c.eq(text(alert, "%sinfo/%sresponseType" % (CAP, CAP)), "AllClear", "closed: AllClear")
        c.eq(text(alert, "%sinfo/%surgency" % (CAP, CAP)), "Past", "closed: urgency Past")
        c.check(first[1] <= second[1] <= third[1], "sent times follow the thread",
                (first[1], second[1], third[1]))

    status, headers, feed = st.http("GET", "/cap/index.atom", token=reader)
    c.eq(status, 200, "GET /cap/index.atom answers 200")
    c.check("xml" in headers.get("content-type", ""), "the feed is served as XML",
            headers.get("content-type"))
    try:
        root = ET.fromstring(feed)
    except ET.ParseError as e:
        c.fail("the Atom feed parses", e)
        root = None
    if root is not None:
        c.eq(root.tag, ATOM + "feed", "the feed is an Atom feed")
        hrefs = [ln.get("href") for ln in root.iter(ATOM + "link")
                 if ln.get("rel") == "alternate" and ln.get("type") == "application/cap+xml"]
        c.check(any(h.endswith("/cap/%s.xml" % inc) for h in hrefs),
                "the feed links the incident's CAP", hrefs[:5])

    status, _, _ = st.http("GET", "/cap/%s.xml" % inc)
    c.eq(status, 401, "GET /cap/<id>.xml without a token is 401")
    status, _, _ = st.http("GET", "/cap/index.atom")
    c.eq(status, 401, "GET /cap/index.atom without a token is 401")
    status, _, _ = st.http("GET", "/cap/inc-00000000000000000000.xml", token=reader)
    c.eq(status, 404, "an unknown incident is 404")


if __name__ == "__main__":
    S.main(body, "cap", daemons=("ledger", "intake", "router", "gateway"))
