"""CURVE on the device port (intake) and the unit port (dispatch).

The stack runs with LINKAGE_CURVE=true and a server key pair from
`linkagectl keys gen --out`. Devices and units are pyzmq sockets with CURVE
client keys (zmq.curve_keypair()):

- a key nobody registered gets no connection: no answer within a timeout,
  and neither does a plain (non-CURVE) client;
- a key registered with `linkagectl device add` gets ACCEPTED, and so does
  `linkagectl report` given the device's key file;
- a report whose device_id is not the key's device is REJECTED with the
  reason;
- `linkagectl device revoke` shuts the key out without a restart: the open
  connection's next report is REJECTED "key revoked" within keys_refresh_ms
  or so (measured and printed), a new connection with it gets nothing, and
  the ledger holds one key_revoked event (a second revoke records nothing
  new), and `linkagectl verify` still passes;
- on dispatch, a Hello as the key's unit is welcomed, a Hello naming
  another unit is refused with the reason, an unregistered unit key gets
  nothing, and after `linkagectl unit revoke` the unit's connection is
  refused and the unit no longer counts as present;
- a daemon that would bind the device or unit port on 0.0.0.0 without CURVE
  refuses to start, with the message; so does one with CURVE on and no
  secret key.
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402

import zmq  # noqa: E402
from linkage.v1 import report_pb2, unit_pb2  # noqa: E402

DEVICE = "dev-curve-1"
UNIT = "grid-workers-lijinggang"
OTHER_UNIT = "grid-workers-zhouji-asia-bay"
SILENCE_S = 2.0


class CurveDevice(S.Device):
    """A DEALER device speaking CURVE with the given client key pair."""

    def __init__(self, endpoint, server_pub, pub, sec):
        self.keys = (server_pub, pub, sec)
        S.Device.__init__(self, endpoint)

    def reconnect(self):
        if self.sock is not None:
            self.sock.close(linger=0)
        self.sock = self.ctx.socket(self.kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        server_pub, pub, sec = self.keys
        if server_pub is not None:
            self.sock.curve_serverkey = server_pub
            self.sock.curve_publickey = pub
            self.sock.curve_secretkey = sec
        self.sock.connect(self.endpoint)


def read_public(path):
    with open(path) as f:
        for line in f:
            if line.startswith("public"):
                return line.split("=", 1)[1].strip().encode()
    return None


def write_pair(path, pub, sec):
    with open(path, "w") as f:
        f.write("public = %s\nsecret = %s\n" % (pub.decode(), sec.decode()))


def unit_socket(endpoint, server_pub, pub, sec):
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.curve_serverkey = server_pub
    s.curve_publickey = pub
    s.curve_secretkey = sec
    s.connect(endpoint)
    return s


def hello(sock, unit_id, timeout):
    """Sends a Hello; returns the Welcome, or None on silence."""
    um = unit_pb2.UnitMessage(unit_id=unit_id, seq=1)
    um.hello.software = "tests/integration/test_curve.py"
    sock.send_multipart([b"", um.SerializeToString()])
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sock.poll(int(left * 1000) + 1):
            return None
        frames = sock.recv_multipart()
        dm = unit_pb2.DispatchMessage()
        dm.ParseFromString(frames[-1])
        if dm.WhichOneof("body") == "welcome":
            return dm.welcome


def refuses_to_start(st, c, name, env_extra, want):
    """Runs one daemon alone with env_extra; it must exit non-zero saying want."""
    env = st.env()
    env["LINKAGE_RUN_DIR"] = os.path.join(st.tmp, "run-refuse-" + name)
    os.makedirs(env["LINKAGE_RUN_DIR"], exist_ok=True)
    env.update(env_extra)
    try:
        r = subprocess.run([os.path.join(S.BIN, "linkage-" + name)], cwd=S.ROOT, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        c.fail("%s with %s exits at start" % (name, env_extra), "still running after 20 s")
        return
    out = r.stdout + r.stderr
    c.check(r.returncode != 0, "%s with %s refuses to start (exit %d)" %
            (name, env_extra, r.returncode), out[-500:])
    c.check(want in out, "%s says %r" % (name, want), out[-500:])


def body(st, c):
    keyfile = os.path.join(st.tmp, "server.key")
    r = st.ctl("keys", "gen", "--out", keyfile)
    c.eq(r.returncode, 0, "linkagectl keys gen --out exits 0")
    server_pub = read_public(keyfile)
    c.check(server_pub is not None and r.stdout.strip() == "public = " + server_pub.decode(),
            "keys gen prints the public key it wrote", r.stdout)
    c.eq(os.stat(keyfile).st_mode & 0o777, 0o600, "the key file is private")
    r = st.ctl("keys", "gen")
    lines = r.stdout.split("\n")
    c.check(r.returncode == 0 and lines[0].startswith("public = ") and
            lines[1].startswith("secret = ") and len(lines[1]) == len("secret = ") + 40,
            "keys gen prints a Z85 pair", r.stdout)

    st.extra_env.update({"LINKAGE_CURVE": "true", "LINKAGE_CURVE_SECRET_FILE": keyfile})
    st.start_daemon("ledger")

    dev_pub, dev_sec = zmq.curve_keypair()
    r = st.ctl("device", "add", DEVICE, dev_pub.decode())
    c.eq(r.returncode, 0, "device add exits 0 (%s)" % r.stderr.strip())
    r = st.ctl("device", "add", "dev-curve-2", dev_pub.decode())
    c.check(r.returncode == 1 and "already registered" in r.stderr,
            "a key cannot be tied to a second device", r.stderr)
    r = st.ctl("device", "add", DEVICE, "not-a-key")
    c.eq(r.returncode, 1, "device add refuses a malformed key")
    # About one key in 85 begins with '-'; it is an operand, not an option.
    dash_key = "-" + "0" * 39
    r = st.ctl("device", "add", "dev-dash-key", dash_key)
    c.eq(r.returncode, 0, "device add takes a key that begins with '-' (%s)" % r.stderr.strip())
    c.eq(st.scalar("select count(*) from keys where id = 'dev-dash-key' and public_key = '%s'"
                   % dash_key), "1", "that key is registered as given")
    r = st.ctl("device", "revoke", "dev-dash-key")
    c.eq(r.returncode, 0, "and revoked")
    st.start_daemon("intake")

    # An unregistered key: ZAP refuses the handshake, nothing comes back.
    stranger_pub, stranger_sec = zmq.curve_keypair()
    d = CurveDevice(st.intake_endpoint, server_pub, stranger_pub, stranger_sec)
    ack = d.request(S.make_report(DEVICE, 1), timeout=SILENCE_S)
    c.eq(ack, None, "an unregistered key gets no reply within %.0f s" % SILENCE_S)
    d.close()
    plain = CurveDevice(st.intake_endpoint, None, None, None)
    ack = plain.request(S.make_report(DEVICE, 1), timeout=SILENCE_S)
    c.eq(ack, None, "a plain (non-CURVE) client gets no reply")
    plain.close()

    # The registered device.
    d = CurveDevice(st.intake_endpoint, server_pub, dev_pub, dev_sec)
    ack, _ = d.submit(S.make_report(DEVICE, 1), timeout=15)
    c.check(ack is not None and not isinstance(ack, bytes) and
            ack.status == report_pb2.ReportAck.ACCEPTED,
            "a registered device's report is ACCEPTED", ack)
    # linkagectl report as the same device, with its key pair in a keys gen file.
    devfile = os.path.join(st.tmp, "device.key")
    write_pair(devfile, dev_pub, dev_sec)
    report_args = ("report", "--device", DEVICE, "--seq", "2", "--compound", "lijinggang",
                   "--category", "latent_hazard", "--severity", "III", "--timeout", "3000")
    r = st.ctl(*report_args)
    c.check(r.returncode != 0 and "status=ACCEPTED" not in r.stdout,
            "linkagectl report without a key gets no answer", r.stdout + r.stderr)
    st.extra_env.update({"LINKAGE_CURVE_CLIENT_KEY_FILE": devfile,
                         "LINKAGE_CURVE_SERVER_KEY_FILE": keyfile})
    r = st.ctl(*report_args)
    c.check(r.returncode == 0 and "status=ACCEPTED" in r.stdout,
            "linkagectl report with the device's key is ACCEPTED", r.stdout + r.stderr)
    del st.extra_env["LINKAGE_CURVE_CLIENT_KEY_FILE"]
    ack = d.request(S.make_report("dev-someone-else", 1), timeout=5)
    want = "device_id dev-someone-else does not match the key's device %s" % DEVICE
    c.check(ack is not None and not isinstance(ack, bytes) and
            ack.status == report_pb2.ReportAck.REJECTED and ack.error == want,
            "a device_id not matching the key is REJECTED with the reason", ack)

    # Revocation, without a restart: the open connection's next message is refused.
    intake_pid = st.daemons["intake"].proc.pid
    t0 = time.monotonic()
    r = st.ctl("device", "revoke", DEVICE)
    c.check(r.returncode == 0 and ("revoked device %s key=%s" % (DEVICE, dev_pub.decode()))
            in r.stdout, "device revoke exits 0 and names the key", r.stdout + r.stderr)
    seq = [10]

    def refused():
        seq[0] += 1
        a = d.request(S.make_report(DEVICE, seq[0]), timeout=1.0, sequence=seq[0])
        return a is not None and not isinstance(a, bytes) and \
            a.status == report_pb2.ReportAck.REJECTED and a.error == "key revoked"
    shut = S.wait_until(refused, 15, interval=0.05)
    elapsed = time.monotonic() - t0
    c.check(shut, "the revoked key's open connection is refused (REJECTED \"key revoked\")")
    S.note("revoked key shut out %.2f s after linkagectl device revoke (keys_refresh_ms 2000)"
           % elapsed)
    c.check(elapsed < 6, "shut out within a few seconds (%.2f s)" % elapsed)
    c.eq(st.daemons["intake"].proc.pid, intake_pid, "intake was not restarted")
    d.close()
    d = CurveDevice(st.intake_endpoint, server_pub, dev_pub, dev_sec)
    ack = d.request(S.make_report(DEVICE, 99), timeout=SILENCE_S)
    c.eq(ack, None, "a new connection with the revoked key gets nothing")
    d.close()
    rows = st.sql("select type, actor from ledger where incident_id = 'key-device-%s'" % DEVICE)
    c.eq(len(rows), 1, "the ledger holds one key_revoked event")
    c.check(rows and rows[0][0] == "key_revoked" and rows[0][1].startswith("operator:"),
            "type key_revoked, actor operator:...", rows)
    r = st.ctl("device", "revoke", DEVICE)
    c.eq(r.returncode, 0, "revoking again exits 0")
    c.eq(st.scalar("select count(*) from ledger where type = 'key_revoked' "
                   "and incident_id = 'key-device-%s'" % DEVICE), "1", "and records nothing new")
    r = st.ctl("device", "revoke", "dev-never-added")
    c.check(r.returncode == 1 and "no key registered" in r.stderr,
            "revoking an unknown device says so (exit 1)", r.stderr)
    r = st.ctl("verify")
    c.eq(r.returncode, 0, "linkagectl verify passes with key_revoked in the chain")
    r = st.ctl("device", "add", DEVICE, dev_pub.decode())
    c.eq(r.returncode, 1, "a revoked key cannot be added again")

    # Dispatch's unit port.
    unit_pub, unit_sec = zmq.curve_keypair()
    r = st.ctl("unit", "add", UNIT, unit_pub.decode())
    c.eq(r.returncode, 0, "unit add exits 0 (%s)" % r.stderr.strip())
    st.start_daemon("dispatch")
    u = unit_socket(st.dispatch_endpoint, server_pub, unit_pub, unit_sec)
    w = hello(u, UNIT, 10)
    c.check(w is not None and w.error == "", "a Hello as the key's unit is welcomed", w)
    w = hello(u, OTHER_UNIT, 5)
    c.check(w is not None and w.error ==
            "unit_id %s does not match the key's unit %s" % (OTHER_UNIT, UNIT),
            "a Hello naming another unit is refused with the reason", w)
    u.close()
    sp, ss = zmq.curve_keypair()
    u = unit_socket(st.dispatch_endpoint, server_pub, sp, ss)
    c.eq(hello(u, UNIT, SILENCE_S), None, "an unregistered unit key gets nothing")
    u.close()
    unitfile = os.path.join(st.tmp, "unit.key")
    write_pair(unitfile, unit_pub, unit_sec)
    st.extra_env["LINKAGE_CURVE_CLIENT_KEY_FILE"] = unitfile
    r = st.ctl("unit", UNIT, "list", "--timeout", "3000")
    c.eq(r.returncode, 0, "linkagectl unit UNIT list with the unit's key (%s)" % r.stderr.strip())
    del st.extra_env["LINKAGE_CURVE_CLIENT_KEY_FILE"]
    u = unit_socket(st.dispatch_endpoint, server_pub, unit_pub, unit_sec)
    w = hello(u, UNIT, 5)
    c.check(w is not None and w.error == "", "the unit says Hello again before its key is revoked")

    def units_present():
        m = re.search(r"name=dispatch .*units_present=(\d+)", st.ctl("status").stdout)
        return int(m.group(1)) if m else -1
    c.eq(units_present(), 1, "dispatch counts the unit present")
    r = st.ctl("unit", "revoke", UNIT)
    c.eq(r.returncode, 0, "unit revoke exits 0 (%s)" % r.stderr.strip())

    def unit_refused():
        um = unit_pb2.UnitMessage(unit_id=UNIT, seq=2)
        um.heartbeat.SetInParent()
        u.send_multipart([b"", um.SerializeToString()])
        if not u.poll(1000):
            return False
        dm = unit_pb2.DispatchMessage()
        dm.ParseFromString(u.recv_multipart()[-1])
        return dm.WhichOneof("body") == "answer_reply" and dm.answer_reply.error == "key revoked"
    c.check(S.wait_until(unit_refused, 15, interval=0.05),
            "the revoked unit key's connection is refused (\"key revoked\")")
    c.eq(units_present(), 0, "a unit whose key is revoked is no longer present (no pushes to it)")
    u.close()

    # Exposed without CURVE: refuse to start.
    port = S.free_ports(1)[0]
    ep = "tcp://0.0.0.0:%d" % port
    refuses_to_start(st, c, "intake", {"LINKAGE_CURVE": "false", "LINKAGE_INTAKE_ENDPOINT": ep},
                     "refusing to bind %s without CURVE: set curve=true" % ep)
    refuses_to_start(st, c, "dispatch",
                     {"LINKAGE_CURVE": "false", "LINKAGE_DISPATCH_ENDPOINT": ep},
                     "refusing to bind %s without CURVE: set curve=true" % ep)
    refuses_to_start(st, c, "intake",
                     {"LINKAGE_CURVE": "true", "LINKAGE_CURVE_SECRET_FILE": "",
                      "LINKAGE_INTAKE_ENDPOINT": "tcp://127.0.0.1:%d" % port},
                     "curve_secret_file is not set")


if __name__ == "__main__":
    S.main(body, "curve", daemons=())
