"""CURVE on the links between daemons (README "Authentication", link_curve).

The whole stack runs with link_curve on (the stack's own key pair in link_key_file) and with
CURVE on the device and unit ports (the harness's CURVE mode, whatever the caller's
environment says). Checked:
- the spine works over the secured links: a device's report is acknowledged (intake -> ledger),
  routed (the router's stream and appends), dispatched, and shown by the gateway;
- coordinators' commands reach the router over a link: linkagectl with the link key, and the
  gateway's actions over HTTP; linkagectl tail follows the stream with it;
- the gateway relays an Open311 report to intake's CURVE device port with the link key, which
  intake admits as a relay for any device id;
- outsiders get nothing: a plain client and a CURVE client with its own key (which knows the
  servers' public key) get no answer from the ledger's requests or the router's commands and
  no message from the stream, not even a heartbeat, and nothing is written;
- a daemon with link_curve on and no key file refuses to start.
"""

import os
import sys

os.environ["LINKAGE_TEST_CURVE"] = "1"  # CURVE on the device and unit ports too
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import zmq  # noqa: E402

import stack as S  # noqa: E402
from stack import command_pb2, ledger_pb2, make_report, wait_until  # noqa: E402

SILENCE_S = 1.5


def link_key(st):
    path = os.path.join(st.tmp, "link.key")
    r = st.ctl("keys", "gen", "--out", path)
    if r.returncode != 0:
        raise RuntimeError("keys gen: %s" % r.stderr)
    with open(path) as f:
        pub = [ln.split("=", 1)[1].strip() for ln in f if ln.startswith("public")][0]
    return path, pub.encode()


def silent(sock, send=None, timeout=SILENCE_S):
    """True when nothing arrives on sock within timeout (after sending send, if given)."""
    if send is not None:
        sock.send_multipart(send)
    return not sock.poll(int(timeout * 1000))


def outsider(kind, endpoint, server_pub=None):
    s = zmq.Context.instance().socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    if server_pub is not None:
        pub, sec = zmq.curve_keypair()
        s.curve_serverkey = server_pub
        s.curve_publickey = pub
        s.curve_secretkey = sec
    if kind == zmq.SUB:
        s.setsockopt(zmq.SUBSCRIBE, b"")
    s.connect(endpoint)
    return s


def body(st, c):
    d = st.device(device_id="link-dev-1")
    ack, _ = d.submit(make_report("link-dev-1", 1, compound="spring-square"))
    c.eq(S.status_name(ack), "ACCEPTED", "a report is acknowledged over the secured ledger link")
    iid = ack.incident_id if ack else ""
    routed = wait_until(lambda: st.scalar("select count(*) from ledger where incident_id = '%s' "
                                          "and type = 'routed'" % iid) == "1", 15)
    c.check(routed, "the router routes it (stream and appends over the link)")
    disp = wait_until(lambda: int(st.scalar("select count(*) from ledger where incident_id = '%s' "
                                            "and type in ('dispatched', 'no_unit_available')"
                                            % iid)) > 0, 15)
    c.check(disp, "dispatch acts on it")
    tok = st.token("link-ops", "coordinator")
    shown = wait_until(lambda: st.http("GET", "/api/incidents/" + iid, token=tok)[0] == 200, 10)
    c.check(shown, "the gateway shows it (its stream over the link)")

    # Commands over the link: linkagectl, and the gateway's HTTP actions.
    r = st.ctl("note", iid, "checked over a secured link")
    c.eq(r.returncode, 0, "linkagectl note reaches the router with the link key (%s)"
         % r.stderr.strip()[-200:])
    s, _, b = st.http("POST", "/api/incidents/%s/acknowledge" % iid, token=tok,
                      data={"note": "on it"})
    c.eq(s, 200, "the gateway's action reaches the router over the link (%s)" % b[:120])
    r = st.ctl("tail", "--from", "0", "--count", "3", "--timeout", "10")
    c.eq(r.returncode, 0, "linkagectl tail follows the stream with the link key")
    c.eq(len([ln for ln in r.stdout.splitlines() if ln.strip()]), 3, "tail printed three events")

    # The gateway relays an Open311 report to intake's CURVE port with the link key.
    rep = st.token("link-hotline", "reporter")
    s, _, b = st.http("POST", "/open311/v2/requests.json", token=rep,
                      data={"service_code": "property_service", "address_id": "lijinggang",
                            "device_id": "hotline-12345", "attribute[sequence]": "1",
                            "description": "lift stuck"})
    c.eq(s, 201, "an Open311 report is relayed to intake's CURVE port (%s)" % b[:160])

    # Outsiders: plain, and CURVE with a key of their own.
    rows = st.scalar("select count(*) from ledger")
    server_pub = st.link_public
    req = ledger_pb2.LedgerRequest(request_id=1)
    req.replay.from_position = 1
    req.replay.limit = 10
    for name, pub in (("a plain client", None), ("a client with its own key", server_pub)):
        s = outsider(zmq.DEALER, st.ledger_endpoint, pub)
        c.check(silent(s, [b"", req.SerializeToString()]),
                "%s gets no answer from the ledger" % name)
        s.close()
        s = outsider(zmq.SUB, st.stream_endpoint, pub)
        c.check(silent(s), "%s hears nothing on the stream, not even a heartbeat" % name)
        s.close()
        cmd = command_pb2.Command(command_id="outsider-%d" % (pub is not None), actor="mallory",
                                  incident_id=iid)
        cmd.close.reason = "not yours"
        s = outsider(zmq.DEALER, st.router_endpoint, pub)
        c.check(silent(s, [b"", cmd.SerializeToString()]),
                "%s gets no answer from the router" % name)
        s.close()
    c.eq(st.scalar("select count(*) from ledger where type = 'closed'"), "0",
         "no outsider closed anything")
    c.check(int(st.scalar("select count(*) from ledger")) >= int(rows),
            "the ledger is intact")
    refused = st.log_text("ledger").count("zap: connection refused")
    c.check(refused >= 1, "the ledger logs the refused handshakes", refused)

    # link_curve without a key file: the daemon refuses to start.
    st.stop_daemon("router")
    st.extra_env["LINKAGE_LINK_KEY_FILE"] = ""
    try:
        st.start_daemon("router", timeout=10)
        c.fail("router starts with link_curve and no key file")
    except RuntimeError as e:
        c.check("link_key_file is not set" in str(e), "router refuses: link_key_file not set",
                str(e)[-300:])


def main():
    # The link key must exist before the daemons start: made in the stack's tmp dir first.
    plain_start = S.Stack.start

    def start(self, daemons=("ledger", "intake")):
        path, pub = link_key(self)
        self.link_public = pub
        self.extra_env.update({"LINKAGE_LINK_CURVE": "true", "LINKAGE_LINK_KEY_FILE": path})
        return plain_start(self, daemons)

    S.Stack.start = start
    S.main(body, "link_curve", daemons=("ledger", "intake", "router", "dispatch", "gateway"))


if __name__ == "__main__":
    main()
