"""CURVE on the public feed (README "The public feed").

The stack runs in the harness's CURVE mode (device and unit ports), so the gateway's feed
speaks CURVE too, with its feed endpoint bound to every address (0.0.0.0: allowed only with
CURVE). Checked:
- a city system whose key is registered (`linkagectl subscriber add`) hears heartbeats and
  events on the PUB and gets replays;
- a plain subscriber and one with an unregistered key (which knows the server key) hear
  nothing and get no replay;
- `linkagectl subscriber revoke`: the revoked system is dropped within seconds and cannot come
  back (no message, replays refused), the revocation is in the ledger, and another registered
  system keeps receiving after the drop (it reconnects);
- without CURVE the gateway refuses a feed bound to 0.0.0.0.
"""

import os
import sys
import time

os.environ["LINKAGE_TEST_CURVE"] = "1"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import zmq  # noqa: E402

import stack as S  # noqa: E402
from stack import make_report, wait_until  # noqa: E402
from linkage.v1 import feed_pb2  # noqa: E402

SILENCE_S = 1.5


class Sub:
    """A SUB on the feed and a DEALER on its replay endpoint, with the given keys (or plain)."""

    def __init__(self, st, keys):
        ctx = zmq.Context.instance()
        self.sub = ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        S.curve_client(self.sub, keys)
        self.sub.connect(st.feed_endpoint)
        self.req = ctx.socket(zmq.DEALER)
        self.req.setsockopt(zmq.LINGER, 0)
        S.curve_client(self.req, keys)
        self.req.connect(st.feed_replay_endpoint)

    def heard(self, timeout):
        """Messages received within timeout seconds (at least one ends the wait)."""
        got = []
        if self.sub.poll(int(timeout * 1000)):
            while True:
                try:
                    got.append(self.sub.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
        return got

    def drain(self):
        while True:
            try:
                self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return

    def replay(self, timeout=SILENCE_S):
        r = feed_pb2.FeedRequest(after_position=0, max_events=10, request_id=7)
        self.req.send_multipart([b"", r.SerializeToString()])
        if not self.req.poll(int(timeout * 1000)):
            return None
        b = feed_pb2.FeedBatch()
        b.ParseFromString(self.req.recv_multipart()[-1])
        return b

    def close(self):
        self.sub.close()
        self.req.close()


def body(st, c):
    def register(ident):
        pub, sec = zmq.curve_keypair()
        r = st.ctl("subscriber", "add", "--", ident, pub.decode())
        c.eq(r.returncode, 0, "subscriber add %s (%s)" % (ident, r.stderr.strip()))
        return (st.server_public, pub, sec)

    bureau = register("emergency-bureau")
    hotline = register("hotline-12345")
    # The gateway re-reads the registry every keys_refresh_ms (200 here).
    c.check(wait_until(lambda: int((st.gateway_status() or {}).get("feed_keys", "0")) >= 2, 10),
            "the gateway loads both subscriber keys")

    a = Sub(st, bureau)
    b = Sub(st, hotline)
    plain = Sub(st, None)
    stranger = Sub(st, (st.server_public,) + zmq.curve_keypair())
    c.check(wait_until(lambda: a.heard(0.5), 10), "a registered system hears the feed")
    c.check(wait_until(lambda: b.heard(0.5), 10), "a second registered system hears it")
    d = st.device(device_id="feed-curve-dev")
    ack, _ = d.submit(make_report("feed-curve-dev", 1))
    c.eq(S.status_name(ack), "ACCEPTED", "a report is accepted")
    got = wait_until(lambda: [m for m in a.heard(0.5) if m[0].startswith(b"inc/")], 10)
    c.check(got, "the registered system receives the incident's events")
    batch = a.replay()
    c.check(batch is not None and not batch.error and len(batch.items) > 0,
            "a registered system gets a replay", batch)
    c.check(not plain.heard(SILENCE_S), "a plain subscriber hears nothing")
    c.eq(plain.replay(), None, "a plain client gets no replay")
    c.check(not stranger.heard(SILENCE_S), "an unregistered key hears nothing")
    c.eq(stranger.replay(), None, "an unregistered key gets no replay")

    # Revocation: the bureau is dropped and cannot come back; the hotline reconnects.
    r = st.ctl("subscriber", "revoke", "emergency-bureau")
    c.eq(r.returncode, 0, "subscriber revoke (%s)" % r.stderr.strip())
    t0 = time.monotonic()

    def silent_now():
        a.drain()
        return not a.heard(1.2)

    c.check(wait_until(silent_now, 10), "the revoked system stops hearing the feed")
    note_s = time.monotonic() - t0
    S.note("revoked subscriber silent %.1f s after linkagectl subscriber revoke" % note_s)
    ack, _ = d.submit(make_report("feed-curve-dev", 2))
    c.check(not a.heard(SILENCE_S), "and hears nothing later")
    rb = a.replay()
    c.check(rb is None or rb.error, "its replays are refused", rb)
    got = wait_until(lambda: [m for m in b.heard(0.5) if m[0].startswith(b"inc/")], 10)
    c.check(got, "the other registered system hears new events after the drop")
    c.eq(st.scalar("select count(*) from ledger where type = 'key_revoked' "
                   "and incident_id = 'key-subscriber-emergency-bureau'"), "1",
         "the revocation is in the ledger")
    for s in (a, b, plain, stranger):
        s.close()

    # Without CURVE, a feed on every address is refused at start.
    st.stop_daemon("gateway")
    st.extra_env.update({"LINKAGE_CURVE": "false"})
    try:
        st.start_daemon("gateway", timeout=10)
        c.fail("the gateway starts with its feed on 0.0.0.0 and no CURVE")
    except RuntimeError as e:
        c.check("refusing to bind the feed without CURVE" in str(e),
                "the gateway refuses a public feed without CURVE", str(e)[-300:])


def main():
    plain_start = S.Stack.start

    def start(self, daemons=("ledger", "intake")):
        port = self.feed_endpoint.rsplit(":", 1)[1]
        # Bound on every address: allowed only with CURVE. Clients still dial loopback.
        self.extra_env["LINKAGE_FEED_ENDPOINT"] = "tcp://0.0.0.0:%s" % port
        return plain_start(self, daemons)

    S.Stack.start = start
    S.main(body, "feed_curve", daemons=("ledger", "intake", "router", "gateway"))


if __name__ == "__main__":
    main()
