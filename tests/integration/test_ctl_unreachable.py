"""No linkagectl command hangs on an endpoint that does not answer or does not let it in.

Every command that talks to a daemon is run under a generous limit (30 s, a loaded machine) and
must end by itself, non-zero, with one line on stderr that names the endpoint and what to do:

(a) nothing listens: every endpoint points at a port nobody has bound and the run directory is
    empty. status, report, unit list / ack / listen, ack and call (router commands), tail and
    device revoke (whose keys are revoked in the database all the same) each end with
    "no answer from <endpoint> in N s: nothing accepts connections there; is the stack
    running ..." (status: its daemons "did not answer" in the run directory), exit 75 (status 1).

(b) a stack with CURVE on its links (link_curve, the stack's link key) and on the device and unit
    ports, and commands without the keys, or with the wrong ones: report and unit list/ack/listen
    without a client key, ack/call without the link key (LINKAGE_LINK_* unset: the reported case,
    `make run` with LINKAGE_CURVE=1 and an operator's shell without the link variables), and
    with a key the servers do not know. Each is refused at the handshake, which libzmq never
    retries: the command says so at once (exit 2) with the variables to set. tail, whose ledger
    client cannot see the handshake, ends after its 10 s with the general hint (exit 75).
    `device revoke` without the link key revokes the key (the device's next connection is
    refused) and ends in well under a second, exit 75, saying the ledger did not record it and
    why; `device add` (the database only) and `status` (control sockets) still work.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ["LINKAGE_TEST_CURVE"] = "1"  # CURVE on the device and unit ports for part (b)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import zmq  # noqa: E402

import stack as S  # noqa: E402

LIMIT_S = 30  # generous: a command that is still running then hangs
LINK_VARS = ("LINKAGE_LINK_CURVE", "LINKAGE_LINK_KEY_FILE")


def ctl_path():
    return os.path.join(S.BIN, "linkagectl")


def run_all(cmds, env):
    """Starts every command at once (most of them wait on a timeout: in parallel the whole
    part takes as long as the slowest) and collects {name: (rc, stdout, stderr, seconds)};
    rc None for a command still running after LIMIT_S, which is then killed."""
    procs = {}
    for name, args, extra in cmds:
        e = dict(env)
        for k, v in (extra or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        procs[name] = (time.monotonic(), subprocess.Popen(
            [ctl_path()] + [str(a) for a in args], cwd=S.ROOT, env=e, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    out = {}
    for name, (t0, p) in procs.items():
        try:
            so, se = p.communicate(timeout=max(1.0, LIMIT_S - (time.monotonic() - t0)))
            out[name] = (p.returncode, so, se, time.monotonic() - t0)
        except subprocess.TimeoutExpired:
            p.kill()
            so, se = p.communicate()
            out[name] = (None, so, se, time.monotonic() - t0)
    return out


def expect(c, res, name, rc, *phrases):
    got_rc, so, se, secs = res[name]
    if got_rc is None:
        c.fail("%s ends by itself within %d s" % (name, LIMIT_S), "still running; stderr %r" % se)
        return
    lines = [ln for ln in se.splitlines() if ln.strip()]
    missing = [ph for ph in phrases if ph not in se]
    c.check(got_rc == rc and not missing,
            "%s: exit %d after %.1f s with a line saying why" % (name, rc, secs),
            "exit %r, missing %r; stdout %r stderr %r" % (got_rc, missing, so, se))
    S.note("%s (%.1f s): %s" % (name, secs, lines[-1] if lines else "(no stderr)"))


def nothing_listens(st, c):
    dead = S.free_ports(1)[0]
    ep = "tcp://127.0.0.1:%d" % dead
    empty = tempfile.mkdtemp(prefix="linkage-empty-run-", dir="/tmp")
    env = st.env()
    for k in LINK_VARS + ("LINKAGE_CURVE_CLIENT_KEY_FILE",):
        env.pop(k, None)
    env.update({"LINKAGE_RUN_DIR": empty, "LINKAGE_INTAKE_ENDPOINT": ep,
                "LINKAGE_LEDGER_ENDPOINT": ep, "LINKAGE_LEDGER_STREAM": ep,
                "LINKAGE_ROUTER_ENDPOINT": ep, "LINKAGE_DISPATCH_ENDPOINT": ep,
                "LINKAGE_LOG_LEVEL": "error"})
    r = st.ctl("device", "add", "--", "dead-port-dev", zmq.curve_keypair()[0].decode(), env=env)
    c.eq(r.returncode, 0, "(a) device add needs the database only (%s)" % r.stderr.strip())
    try:
        res = run_all([
            ("(a) status", ["status"], None),
            ("(a) report", ["report", "--device", "d-1", "--seq", 1, "--compound", "lijinggang",
                            "--category", "latent_hazard", "--severity", "IV"], None),
            ("(a) unit list", ["unit", "fire-wenjiang", "list"], None),
            ("(a) unit ack", ["unit", "fire-wenjiang", "ack", "inc-x/fire_brigade/1"], None),
            ("(a) unit listen", ["unit", "fire-wenjiang", "listen"], None),
            ("(a) ack", ["ack", "inc-00000000000000000000"], None),
            ("(a) call", ["call", "inc-00000000000000000000", "--role", "fire_brigade"], None),
            ("(a) tail", ["tail"], None),
            ("(a) device revoke", ["device", "revoke", "dead-port-dev"], None),
        ], env)
        nothing = "nothing accepts connections there"
        expect(c, res, "(a) status", 1, "did not answer", empty)
        for name in ("(a) report", "(a) unit list", "(a) unit ack", "(a) unit listen", "(a) ack",
                     "(a) call"):
            expect(c, res, name, 75, "no answer from " + ep, nothing, "is the stack running")
        expect(c, res, "(a) tail", 75, "no answer from " + ep, "is the stack running",
               "LINKAGE_LINK_CURVE=true")
        expect(c, res, "(a) device revoke", 75, "no answer from " + ep, nothing,
               "did not record it; run revoke again")
        c.eq(st.scalar("select count(*) from keys where id = 'dead-port-dev' and revoked_at is "
                       "not null"), "1", "(a) device revoke revoked the key all the same")
    finally:
        shutil.rmtree(empty, ignore_errors=True)


def write_pair(path):
    pub, sec = zmq.curve_keypair()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("public = %s\nsecret = %s\n" % (pub.decode(), sec.decode()))
    return path


def wrong_keys(st, c):
    plain = st.env()
    for k in LINK_VARS + ("LINKAGE_CURVE_CLIENT_KEY_FILE",):
        plain.pop(k, None)
    plain["LINKAGE_LOG_LEVEL"] = "error"
    stranger = write_pair(os.path.join(st.tmp, "stranger.key"))  # registered nowhere
    wrong_link = write_pair(os.path.join(st.tmp, "wrong-link.key"))
    st.register("unit", ["fire-wenjiang"])
    dev = "curve-dev-" + "%x" % int(time.time() * 1000)
    dev_env = st.client_env("device", dev)  # registered: revoked below
    report = ["report", "--device", dev, "--seq", 1, "--compound", "lijinggang",
              "--category", "latent_hazard", "--severity", "IV"]
    r = st.ctl(*report, env=dict(plain, **dev_env))
    c.check(r.returncode == 0 and r.stdout.startswith("status=ACCEPTED"),
            "(b) the device's own key gets its report in", r.stdout + r.stderr)
    intake, dispatch = st.intake_endpoint, st.dispatch_endpoint
    router, ledger = st.router_endpoint, st.ledger_endpoint
    link_wrong = {"LINKAGE_LINK_CURVE": "true", "LINKAGE_LINK_KEY_FILE": wrong_link}
    res = run_all([
        ("(b) report without a key", report, None),
        ("(b) report with an unregistered key",
         report, {"LINKAGE_CURVE_CLIENT_KEY_FILE": stranger}),
        ("(b) unit list without a key", ["unit", "fire-wenjiang", "list"], None),
        ("(b) unit ack with an unregistered key", ["unit", "fire-wenjiang", "ack", "inc-x/f/1"],
         {"LINKAGE_CURVE_CLIENT_KEY_FILE": stranger}),
        ("(b) unit listen without a key", ["unit", "fire-wenjiang", "listen"], None),
        ("(b) ack without the link key", ["ack", "inc-00000000000000000000"], None),
        ("(b) call with the wrong link key",
         ["call", "inc-00000000000000000000", "--role", "fire_brigade"], link_wrong),
        ("(b) tail without the link key", ["tail"], None),
        ("(b) status", ["status", "ledger", "intake", "router", "dispatch"], None),
    ], plain)
    for name, ep in (("(b) report without a key", intake), ("(b) unit list without a key", dispatch),
                     ("(b) unit listen without a key", dispatch)):
        expect(c, res, name, 2, ep + " refused the handshake", "LINKAGE_CURVE_SERVER_KEY_FILE",
               "LINKAGE_CURVE_CLIENT_KEY_FILE")
    for name, ep, kind in (("(b) report with an unregistered key", intake, "device"),
                           ("(b) unit ack with an unregistered key", dispatch, "unit")):
        expect(c, res, name, 2, ep + " refused our key", "linkagectl %s add" % kind)
    expect(c, res, "(b) ack without the link key", 2, router + " refused the handshake",
           "LINKAGE_LINK_CURVE=true", "LINKAGE_LINK_KEY_FILE", "linkage.conf")
    # The link's server key is derived from the link key file: a wrong file expects another
    # server, whose handshake fails again and again without a reason.
    expect(c, res, "(b) call with the wrong link key", 2, router + " failed the handshake",
           "the stack's own link key")
    expect(c, res, "(b) tail without the link key", 75, "no answer from " + ledger,
           "LINKAGE_LINK_CURVE=true")
    c.eq(res["(b) status"][0], 0, "(b) status answers: control sockets have no CURVE")
    for name in ("(b) report without a key", "(b) unit list without a key",
                 "(b) ack without the link key", "(b) call with the wrong link key"):
        c.check(res[name][3] < 3.0, "%s: refused at once, not after a timeout (%.1f s)"
                % (name, res[name][3]))

    # The reported case: revoke without the link variables.
    t0 = time.monotonic()
    try:
        r = subprocess.run([ctl_path(), "device", "revoke", dev], cwd=S.ROOT, env=plain,
                           capture_output=True, text=True, timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        c.fail("(b) device revoke without the link key ends by itself within %d s" % LIMIT_S)
        return
    secs = time.monotonic() - t0
    S.note("(b) device revoke without the link key (%.1f s): %s" % (secs, r.stderr.strip()))
    c.check(r.returncode == 75 and ledger + " refused the handshake" in r.stderr and
            "LINKAGE_LINK_KEY_FILE" in r.stderr and "did not record it" in r.stderr,
            "(b) device revoke without the link key: exit 75 at once, saying why and what to set",
            (r.returncode, secs, r.stderr))
    c.check(secs < 3.0, "(b) device revoke without the link key ends in %.1f s" % secs)

    def shut_out():
        x = st.ctl(*report[:4] + [2] + report[5:], env=dict(plain, **dev_env), timeout=LIMIT_S)
        return x if x.returncode == 2 and "refused our key" in x.stderr else None
    x = S.wait_until(shut_out, 15, interval=0.1)
    c.check(x is not None, "(b) the revoked device is shut out: its next connection is refused "
            "at the handshake, and linkagectl report says so")
    # With the link key the revoke records what did not reach the ledger.
    r = st.ctl("device", "revoke", dev)
    c.check(r.returncode == 0 and "revoked device %s" % dev in r.stdout,
            "(b) device revoke with the link key records the revocation", r.stdout + r.stderr)
    c.eq(st.scalar("select count(*) from ledger where type = 'key_revoked' and incident_id = "
                   "'key-device-%s'" % dev), "1", "(b) one key_revoked event in the ledger")


def body(st, c):
    nothing_listens(st, c)
    wrong_keys(st, c)


def main():
    # The link key must exist before the daemons start (as in integration/test_link_curve.py).
    plain_start = S.Stack.start

    def start(self, daemons=("ledger", "intake")):
        path = os.path.join(self.tmp, "link.key")
        r = self.ctl("keys", "gen", "--out", path)
        if r.returncode != 0:
            raise RuntimeError("keys gen: %s" % r.stderr)
        self.extra_env.update({"LINKAGE_LINK_CURVE": "true", "LINKAGE_LINK_KEY_FILE": path})
        return plain_start(self, daemons)

    S.Stack.start = start
    S.main(body, "ctl_unreachable", daemons=("ledger", "intake", "router", "dispatch"))


if __name__ == "__main__":
    main()
