"""The gateway's HTTP API on the real stack (README "linkage-gateway").

- Tokens: none -> 401, unknown -> 401, a reader acting -> 403, a revoked token refused
  within the refresh, ten bad attempts from one address -> 429 with Retry-After, even for a
  good token afterwards (checked last: it locks this test's address out).
- The projection: a report appears in /api/incidents and /api/incidents/{id} with its
  timeline, routed to its tier with a running deadline.
- Actions go to the router as Commands: acknowledge -> 200 and one `acknowledged` row with
  the coordinator as actor; the same command_id again -> the same event, still one row; a
  close without a reason -> 400, an unknown incident -> 404, acting on a closed one -> 409;
  planned-work windows declared, listed and lifted.
- Server-Sent Events: a stream opened after a position delivers every change after it with
  `id:` = ledger position; a client that reconnects with Last-Event-ID gets the changes it
  missed, and nothing it had.
- Bad requests change nothing: unknown paths 404, wrong methods 405, a body over 64 KiB 413,
  a JSON body 415, a bad position 400; the ledger has no row from any of them.
- kill -9 of the gateway: it rebuilds the same view from the ledger.
"""

import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import event_pb2, make_report, report_pb2, wait_until  # noqa: E402


class SSE:
    """A minimal EventSource: one HTTP connection, events parsed as they arrive."""

    def __init__(self, port, token, after=None, last_event_id=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        path = "/api/stream?token=" + token
        if after is not None:
            path += "&after=%d" % after
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", path, headers=headers)
        # http.client lets go of the socket once the response says Connection: close.
        self.sock = self.conn.sock
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.ctype = self.resp.getheader("Content-Type", "")
        self.buf = b""
        self.events = []  # (id, event, data)

    def poll(self, timeout):
        """Reads whatever arrives within timeout seconds; returns the events parsed so far."""
        self.sock.settimeout(timeout)
        try:
            chunk = self.resp.read1(65536)
        except (TimeoutError, OSError):
            chunk = b""
        self.buf += chunk
        while b"\n\n" in self.buf:
            block, self.buf = self.buf.split(b"\n\n", 1)
            fields = {}
            for line in block.decode().split("\n"):
                if not line or line.startswith(":"):
                    continue
                k, _, v = line.partition(":")
                fields[k] = v[1:] if v.startswith(" ") else v
            if "data" in fields:
                self.events.append((fields.get("id"), fields.get("event"), fields["data"]))
        return self.events

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events:
                if pred(e):
                    return e
            self.poll(0.1)
        return None

    def close(self):
        self.resp.close()
        self.sock.close()
        self.conn.close()


def jget(st, path, token):
    s, _, b = st.http("GET", path, token=token)
    return s, (json.loads(b) if b else None)


def ledger_count(st, where):
    return int(st.scalar("select count(*) from ledger where " + where))


def body(st, c):
    coord = st.token("ops-desk", "coordinator")
    reader = st.token("city-analytics", "reader")

    # -- tokens
    s, h, b = st.http("GET", "/api/incidents")
    c.eq(s, 401, "no token: 401")
    c.check("bearer" in h.get("www-authenticate", "").lower(), "401 names the Bearer scheme")
    s, _, _ = st.http("GET", "/api/incidents", token="lkt_" + "A" * 43)
    c.eq(s, 401, "unknown token: 401")
    s, me = jget(st, "/api/me", reader)
    c.eq((s, me and me.get("role")), (200, "reader"), "a reader token reads")
    s, h, b = st.http("GET", "/")
    c.eq(s, 200, "the dashboard page needs no token")
    c.check(b"<html" in b.lower(), "the page is HTML")
    c.check("default-src 'self'" in h.get("content-security-policy", ""),
            "the page is served with a content security policy")

    # -- a report in the projection
    dev = st.device()
    ack = dev.request(make_report("gw-dev-1", 1, severity=report_pb2.SEVERITY_III,
                                  compound="spring-square", building="2"))
    c.eq(S.status_name(ack), "ACCEPTED", "a device report is accepted")
    iid = ack.incident_id
    got = wait_until(lambda: (jget(st, "/api/incidents/" + iid, reader)[1] or {})
                     .get("tier") is not None and jget(st, "/api/incidents/" + iid, reader)[1],
                     10)
    c.check(got, "the incident appears routed in /api/incidents/{id}", got)
    if got:
        c.eq(got["compound"], "spring-square", "row: compound")
        c.eq(got["community"], "qingquan", "row: community from the district")
        c.eq(got["severity"], "III", "row: severity")
        c.check(got["deadline"] and got["deadline"]["kind"] == "acknowledge",
                "row: the acknowledge deadline runs", got.get("deadline"))
        c.eq([t["type"] for t in got["timeline"]][:2], ["reported", "routed"],
             "row: the timeline starts reported, routed")
    s, lst = jget(st, "/api/incidents", reader)
    c.check(s == 200 and any(r["id"] == iid for r in lst["incidents"]),
            "/api/incidents lists it")
    snapshot_pos = lst["position"]

    # -- a live stream from the snapshot's position
    sse = SSE(st.http_port, reader, after=snapshot_pos)
    c.eq(sse.status, 200, "SSE: 200")
    c.check(sse.ctype.startswith("text/event-stream"), "SSE: text/event-stream")

    # -- actions
    s, h, b = st.http("POST", "/api/incidents/%s/acknowledge" % iid, token=reader,
                      data={"note": "x"})
    c.eq(s, 403, "a reader may not act: 403")
    c.eq(ledger_count(st, "incident_id = '%s' and type = 'acknowledged'" % iid), 0,
         "the refused action wrote nothing")
    s, h, b = st.http("POST", "/api/incidents/%s/acknowledge" % iid, token=coord,
                      data={"note": "on my way", "command_id": "dash-ack-1"})
    res = json.loads(b)
    c.eq((s, res.get("status")), (200, "ok"), "acknowledge: 200 ok")
    s2, _, b2 = st.http("POST", "/api/incidents/%s/acknowledge" % iid, token=coord,
                        data={"note": "on my way", "command_id": "dash-ack-1"})
    c.eq((s2, json.loads(b2).get("event_id")), (200, res.get("event_id")),
         "the same command_id again: the same event")
    c.eq(ledger_count(st, "incident_id = '%s' and type = 'acknowledged'" % iid), 1,
         "one acknowledged row")
    row = st.sql("select payload from ledger where incident_id = '%s' and type = 'acknowledged'"
                 % iid)
    ev = event_pb2.Event()
    ev.ParseFromString(bytes.fromhex(st.scalar(
        "select encode(payload, 'hex') from ledger where incident_id = '%s' "
        "and type = 'acknowledged'" % iid)))
    c.eq(ev.actor, "coordinator:ops-desk", "the actor is the token's name")
    c.check(row, "acknowledged row read")

    e = sse.wait_for(lambda e: e[1] == "incident" and json.loads(e[2])["id"] == iid and
                     json.loads(e[2])["state"] == "acknowledged", 5)
    c.check(e, "SSE: the acknowledgement arrives as an incident event")
    if e:
        c.eq(int(e[0]), json.loads(e[2])["position"], "SSE: id is the ledger position")
    last_id = int(sse.events[-1][0]) if sse.events else snapshot_pos
    c.check(all(int(x[0]) > snapshot_pos for x in sse.events),
            "SSE: nothing at or before the position asked for")
    sse.close()

    # While the client is away: a note and a second incident.
    s, _, _ = st.http("POST", "/api/incidents/%s/note" % iid, token=coord,
                      data={"text": "gas company called"})
    c.eq(s, 200, "note: 200")
    ack2 = dev.request(make_report("gw-dev-1", 2, compound="lijinggang"))
    iid2 = ack2.incident_id
    wait_until(lambda: jget(st, "/api/incidents/" + iid2, reader)[0] == 200, 5)
    sse2 = SSE(st.http_port, reader, last_event_id=last_id)
    got2 = sse2.wait_for(lambda e: json.loads(e[2]).get("id") == iid2, 5)
    c.check(got2, "SSE resume: the incident reported while away arrives")
    mine = [json.loads(x[2]) for x in sse2.events if json.loads(x[2]).get("id") == iid]
    c.check(mine and mine[-1]["position"] > last_id,
            "SSE resume: the noted incident arrives in its state after the note")
    c.check(all(int(x[0]) > last_id for x in sse2.events),
            "SSE resume: nothing the client had")
    ids = [int(x[0]) for x in sse2.events]
    c.eq(ids, sorted(ids), "SSE resume: in position order")
    sse2.close()

    # -- refusals from the router
    s, _, b = st.http("POST", "/api/incidents/%s/close" % iid, token=coord, data={})
    c.eq(s, 400, "close without a reason: 400")
    s, _, b = st.http("POST", "/api/incidents/inc-00000000000000000000/escalate", token=coord,
                      data={"reason": "x"})
    c.eq(s, 404, "an unknown incident: 404")
    s, _, b = st.http("POST", "/api/incidents/%s/close" % iid, token=coord,
                      data={"reason": "made safe"})
    c.eq(s, 200, "close: 200")
    s, _, b = st.http("POST", "/api/incidents/%s/escalate" % iid, token=coord,
                      data={"reason": "again"})
    c.eq(s, 409, "acting on a closed incident: 409")
    c.check(b"closed" in b, "the 409 says why", b)

    # -- planned work
    now_ms = int(time.time() * 1000)
    s, _, b = st.http("POST", "/api/planned-work", token=coord,
                      data={"window_id": "water-off-1", "compound": "spring-square",
                            "building": "2", "from": str(now_ms), "to": str(now_ms + 3600000),
                            "reason": "pipe works"})
    c.eq(s, 200, "declare planned work: 200")
    s, w = jget(st, "/api/planned-work", reader)
    win = [x for x in (w or {}).get("windows", []) if x["id"] == "water-off-1"]
    c.check(win and not win[0]["lifted"], "the window is listed", w)
    s, _, b = st.http("POST", "/api/planned-work/water-off-1/lift", token=coord,
                      data={"reason": "done early"})
    c.eq(s, 200, "lift: 200")
    ok = wait_until(lambda: any(x["id"] == "water-off-1" and x["lifted"]
                                for x in jget(st, "/api/planned-work", reader)[1]["windows"]), 5)
    c.check(ok, "the window is listed as lifted")

    # -- bad requests change nothing
    rows_before = ledger_count(st, "true")
    for method, path, data, headers, want, name in [
            ("GET", "/api/nothing", None, None, 404, "unknown path"),
            ("GET", "/api/incidents/%s/acknowledge" % iid2, None, None, 405, "GET on an action"),
            ("POST", "/api/incidents/%s/acknowledge" % iid2, b"x=" + b"a" * 70000,
             {"Content-Type": "application/x-www-form-urlencoded"}, 413, "a 70 KB body"),
            ("POST", "/api/incidents/%s/acknowledge" % iid2, b'{"note": "x"}',
             {"Content-Type": "application/json"}, 415, "a JSON body"),
            ("GET", "/api/stream?after=minus-one", None, None, 400, "a bad position"),
            ("GET", "/api/incidents/inc%20x", None, None, 404, "an id with a space"),
    ]:
        s, _, b = st.http(method, path, token=coord, data=data, headers=headers)
        c.eq(s, want, "bad request (%s): %d" % (name, want))
        c.check(b.startswith(b"{\"error\":"), "bad request (%s): a JSON error" % name, b[:80])
    c.eq(ledger_count(st, "true"), rows_before, "bad requests wrote nothing")

    # -- kill -9: the view comes back from the ledger
    before = jget(st, "/api/incidents/" + iid2, reader)[1]
    st.kill9("gateway")
    st.start_daemon("gateway")
    after = wait_until(lambda: (jget(st, "/api/incidents/" + iid2, reader)[1] or {})
                       .get("position") == before["position"] and
                       jget(st, "/api/incidents/" + iid2, reader)[1], 10)
    c.check(after and after["state"] == before["state"] and after["tier"] == before["tier"],
            "after kill -9 the gateway rebuilds the same row", (before, after))

    # -- revocation, then the failed-attempt limit (last: it locks this address out)
    r = st.ctl("token", "revoke", "city-analytics")
    c.eq(r.returncode, 0, "revoke the reader token")
    ok = wait_until(lambda: st.http("GET", "/api/me", token=reader)[0] == 401, 5)
    c.check(ok, "a revoked token is refused within the refresh")
    codes = [st.http("GET", "/api/me", token="lkt_bad%02d" % i)[0] for i in range(12)]
    c.check(429 in codes, "ten failed attempts then 429", codes)
    s, h, _ = st.http("GET", "/api/me", token=coord)
    c.eq(s, 429, "the address is refused even with a good token")
    c.check(int(h.get("retry-after", "0")) > 0, "429 says when to retry", h)


if __name__ == "__main__":
    S.main(body, "gateway", daemons=("ledger", "intake", "router", "gateway"))
