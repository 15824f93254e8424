"""The real stack for integration, fault and wire tests.

A Stack owns one temporary directory under /tmp holding a private PostgreSQL
cluster (deploy/pg.sh), the daemons' control sockets and their captured
output. It starts the built daemons (bin/linkage-ledger, bin/linkage-intake,
or $BIN/...) as subprocesses on ports chosen free for this run, and can kill,
restart and stop any of them, stop PostgreSQL in immediate mode and start it
again, and run SQL through psql. Teardown always stops everything. The directory is removed when the stack is torn down, pass or fail (a failure prints the
daemons' last log lines first; LINKAGE_KEEP_TMP=1 keeps it).

Tests synchronise with wait_until(cond, timeout): short polls of a condition,
never a bare sleep.

Checks counts passed and failed checks and prints `N passed, N failed` last,
the line tests/run-all.sh parses. Lines starting with "# " are notes the
runner shows even when a program passes.

CURVE mode (LINKAGE_TEST_CURVE=1 in the environment; tests/run-all.sh runs
some suites a second time so): the stack makes a server key pair under its
directory with `linkagectl keys gen --out` and runs intake and dispatch with
LINKAGE_CURVE=true and keys_refresh_ms 200; every Device and Unit it hands
out (st.device(device_id=...), st.unit(id)) gets its own client key pair,
registered for that id with `linkagectl device add` / `unit add`, and the
stack waits until the daemon's registry holds it before the client connects.
A CURVE key is tied to one device id, so in this mode a Device is for one
device id: st.device() needs device_id. st.secure(sock, kind, id) makes a
raw socket a registered client, st.client_env(kind, id) gives linkagectl
report/unit the key file. In plain mode all of these change nothing.
"""

import atexit
import glob
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
BIN = os.path.join(ROOT, os.environ.get("BIN", "bin"))
PY_OUT = os.path.join(BUILD, "py")
# The generated modules may exist only in the default build tree (make test
# generates them under $(BUILD), but a hand run may not have).
for _p in (os.path.join(ROOT, "build", "py"), PY_OUT):  # PY_OUT ends up first
    if os.path.isdir(_p) and _p not in sys.path:
        sys.path.insert(0, _p)

import zmq  # noqa: E402

from linkage.v1 import command_pb2, event_pb2, ledger_pb2, report_pb2, unit_pb2  # noqa: E402,F401

DAEMONS = ("ledger", "intake", "router", "dispatch", "gateway")

# CURVE on the device and unit ports for this run (see the module's doc).
CURVE = os.environ.get("LINKAGE_TEST_CURVE", "").lower() in ("1", "true", "yes", "on")
# Which daemon admits the keys of each kind, and so must hold a new key before its client connects.
KEY_DAEMON = {"device": "intake", "unit": "dispatch"}


# ---------------------------------------------------------------- checks


class Checks:
    """Counts checks; done() prints the count line and returns the exit code."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, name, detail=""):
        if cond:
            self.passed += 1
            print("ok - %s" % name, flush=True)
        else:
            self.failed += 1
            print("FAIL - %s%s" % (name, (": " + str(detail)) if detail != "" else ""), flush=True)
        return bool(cond)

    def eq(self, got, want, name):
        return self.check(got == want, name, "got %r, want %r" % (got, want))

    def fail(self, name, detail=""):
        return self.check(False, name, detail)

    def done(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 0 if self.failed == 0 else 1


def note(msg):
    """A line the runner shows even when the program passes."""
    print("# " + msg, flush=True)


def wait_until(cond, timeout, interval=0.02):
    """Polls cond() until it returns a true value or timeout seconds pass.
    Returns the last value of cond()."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def free_ports(n):
    """n distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- domain helpers


def incident_id(device_id, sequence):
    """The documented derivation (include/linkage/event.h): "inc-" + 20 hex
    digits of SHA-256(device_id || 0x00 || sequence as decimal)."""
    h = hashlib.sha256(device_id.encode() + b"\x00" + str(sequence).encode()).hexdigest()
    return "inc-" + h[:20]


def chain_hash(prev, position, event):
    """include/linkage/hash.h: SHA-256(prev || position as 8 bytes BE || event)."""
    return hashlib.sha256(prev + position.to_bytes(8, "big") + event).digest()


def make_report(device_id, sequence, category=report_pb2.ACCIDENT_DISASTER, kind="gas_leak",
                severity=report_pb2.SEVERITY_II, compound="lijinggang", building="",
                unit="", floor=0, description="gas smell on the stairs",
                observed_at_us=None):
    r = report_pb2.Report()
    r.device_id = device_id
    r.sequence = sequence
    r.category = category
    r.kind = kind
    r.severity = severity
    r.location.compound_id = compound
    if building:
        r.location.building = building
    if unit:
        r.location.unit = unit
    r.location.floor = floor
    r.location.lat = 30.68
    r.location.lon = 103.83
    r.description = description
    r.observed_at_us = int(time.time() * 1e6) if observed_at_us is None else observed_at_us
    return r


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def raw_field(number, data):
    """A length-delimited protobuf field with arbitrary bytes: how we put
    invalid UTF-8 into a string field, which Python protobuf refuses to do.
    Appended to a serialised message it overrides that field (last one wins)."""
    return _varint((number << 3) | 2) + _varint(len(data)) + data


STATUS_NAMES = {v: k for k, v in report_pb2.ReportAck.Status.items()}


def status_name(ack):
    if ack is None:
        return "no reply"
    if isinstance(ack, bytes):
        return "undecodable reply"
    return STATUS_NAMES.get(ack.status, str(ack.status))


def submit_until_final(dev, data, device, seq, tally, stop, deadline_s, attempt_timeout,
                       busy_cap_s):
    """Sends one report's frame (data, of device and seq) until it is ACCEPTED or DUPLICATE, as a
    device on a bad network does: on a fresh connection after a silence (the old DEALER's queued
    resends would otherwise pile up), again after BUSY's retry_after_ms (at most busy_cap_s),
    until deadline_s has passed or stop (an Event) is set. Counts sent, timeouts and busy on
    tally (add(**counts), lock, wrong: a list it appends contract breaches to). Returns (the final
    ack or None, attempts)."""
    ack_busy = report_pb2.ReportAck.BUSY
    done = (report_pb2.ReportAck.ACCEPTED, report_pb2.ReportAck.DUPLICATE)
    deadline = time.monotonic() + deadline_s
    attempts = 0
    while time.monotonic() < deadline and not stop.is_set():
        dev.send_frames([data])
        attempts += 1
        tally.add(sent=1)
        ack = dev.recv_ack(attempt_timeout, sequence=seq)
        if ack is None:
            tally.add(timeouts=1)
            dev.reconnect()
            continue
        if isinstance(ack, bytes):
            with tally.lock:
                tally.wrong.append("%s/%d: undecodable reply %r" % (device, seq, ack[:40]))
            continue
        if ack.status == ack_busy:
            tally.add(busy=1)
            stop.wait(min(max(ack.retry_after_ms, 5) / 1000.0, busy_cap_s))  # as told
            continue
        if ack.status in done:
            return ack, attempts
        with tally.lock:
            tally.wrong.append("%s/%d: %s %r" % (device, seq, status_name(ack), ack.error))
        break
    return None, attempts


# ---------------------------------------------------------------- device client


def curve_client(sock, keys):
    """Makes sock (not yet connected) a CURVE client. keys: (server public key, public key,
    secret key) in Z85, as Stack.client_keys returns them; None leaves sock plain."""
    if keys is not None:
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = keys
    return sock


class Device:
    """A device on the intake: DEALER (default) or REQ.

    A DEALER sends an empty delimiter then the body frames, so it can send
    multi-frame messages and keep several requests in flight; replies that
    belong to an earlier attempt are skipped by sequence. A REQ socket is
    recreated after a timeout (it cannot send again before a reply).

    curve: the CURVE client keys every connection (reconnect() too) uses, or
    None for a plain device; device_id: the id those keys are registered for
    (Stack.device sets both)."""

    def __init__(self, endpoint, kind=zmq.DEALER, ctx=None, curve=None, device_id=None):
        self.endpoint = endpoint
        self.kind = kind
        self.ctx = ctx or zmq.Context.instance()
        self.curve = curve
        self.device_id = device_id
        self.sock = None
        self.reconnect()

    def reconnect(self):
        if self.sock is not None:
            self.sock.close(linger=0)
        self.sock = self.ctx.socket(self.kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        curve_client(self.sock, self.curve)
        self.sock.connect(self.endpoint)

    def close(self):
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None

    def send_frames(self, frames):
        frames = list(frames)
        if self.kind == zmq.DEALER:
            frames = [b""] + frames
        self.sock.send_multipart(frames)

    def recv_ack(self, timeout, sequence=None):
        """The next ReportAck (skipping those for another sequence when
        sequence is given), the raw bytes if the reply does not decode, or
        None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000) + 1):
                if self.kind == zmq.REQ:
                    self.reconnect()
                return None
            frames = self.sock.recv_multipart()
            if self.kind == zmq.DEALER:
                if len(frames) < 2 or frames[0] != b"":
                    return b"".join(frames)
                frames = frames[1:]
            if len(frames) != 1:
                return b"".join(frames)
            ack = report_pb2.ReportAck()
            try:
                ack.ParseFromString(frames[0])
            except Exception:
                return frames[0]
            if sequence is not None and ack.sequence != sequence:
                continue
            return ack

    def request(self, body, timeout=10.0, sequence=None):
        """Sends one Report (message, bytes, or list of frames) and waits for
        its ack."""
        if isinstance(body, report_pb2.Report):
            if sequence is None:
                sequence = body.sequence
            body = body.SerializeToString()
        frames = body if isinstance(body, list) else [body]
        self.send_frames(frames)
        return self.recv_ack(timeout, sequence)

    def submit(self, report, timeout=15.0, attempt_timeout=1.0):
        """Sends until the answer is final (not BUSY, not silence) or timeout.
        Returns (ack or None, attempts)."""
        deadline = time.monotonic() + timeout
        data = report.SerializeToString()
        attempts = 0
        while time.monotonic() < deadline:
            attempts += 1
            ack = self.request(data, timeout=attempt_timeout, sequence=report.sequence)
            if ack is None:
                continue
            if not isinstance(ack, bytes) and ack.status == report_pb2.ReportAck.BUSY:
                # Back off as told: the contract's own pacing, not synchronisation.
                time.sleep(min(max(ack.retry_after_ms, 10), 1000) / 1000.0)
                continue
            return ack, attempts
        return None, attempts


# ---------------------------------------------------------------- responder unit client


ANSWER_KINDS = {"acknowledged": 1, "on_scene": 2, "resolved": 3, "declined": 4,
                "need_backup": 5, "verified": 6}


class Unit:
    """A responder unit on linkage-dispatch (proto/linkage/v1/unit.proto).

    A background thread owns the DEALER: it says Hello, sends a Heartbeat every
    heartbeat_ms the Welcome names (unless heartbeat=False; heartbeat() sends
    one by hand), says Hello again when dispatch answers a message with a
    refused Welcome saying "send Hello first" after a successful one (dispatch
    restarted and forgot the session), and keeps
    what dispatch sends. Assignments are deduplicated by assignment id, as the
    protocol asks of a unit; every copy received is still recorded (received),
    so a test can count repeats. The test thread talks to the worker through
    an inproc pipe and reads the state under a condition variable.

    hello=False leaves the Hello to the test (say_hello()). curve: CURVE client
    keys registered for unit_id (Stack.unit sets them), or None for plain."""

    def __init__(self, endpoint, unit_id, heartbeat=True, hello=True, software="tests/lib/stack.py",
                 ctx=None, curve=None):
        self.endpoint = endpoint
        self.unit_id = unit_id
        self.software = software
        self.heartbeat_on = heartbeat
        self.ctx = ctx or zmq.Context.instance()
        self.cond = threading.Condition()
        self.welcomes = []        # every Welcome, in order
        self.registered = False   # the last Welcome had no error
        self.ever_registered = False
        self.heartbeat_ms = 0
        self.rehellos = 0
        self.assignments = {}     # assignment id -> the latest copy
        self.order = []           # assignment ids, first seen first
        self.received = []        # every Assignment received, repeats included
        self.taken = 0            # next_assignment() has returned order[:taken]
        self.replies = {}         # seq -> AnswerReply
        self.lists = []           # AssignmentList messages
        self.garbage = []         # frames that did not decode
        self.seq = 0
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        curve_client(self.sock, curve)
        self.sock.connect(endpoint)
        addr = "inproc://unit-%s-%x" % (unit_id, id(self))
        self._pipe = self.ctx.socket(zmq.PAIR)
        self._pipe.setsockopt(zmq.LINGER, 0)
        self._pipe.bind(addr)
        self._peer = self.ctx.socket(zmq.PAIR)
        self._peer.setsockopt(zmq.LINGER, 0)
        self._peer.connect(addr)
        self._thread = threading.Thread(target=self._run, name="unit-" + unit_id, daemon=True)
        self._closed = False
        self._thread.start()
        if hello:
            self.say_hello()

    # -- the worker thread (only it touches self.sock and self._peer)

    def _message(self, **body):
        m = unit_pb2.UnitMessage(unit_id=self.unit_id, **body)
        return m

    def _run(self):
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._peer, zmq.POLLIN)
        next_hb = None
        while True:
            now = time.monotonic()
            wait = 200 if next_hb is None else max(0, int((next_hb - now) * 1000))
            events = dict(poller.poll(min(wait, 200)))
            if self._peer in events:
                data = self._peer.recv()
                if data == b"":
                    break
                self.sock.send_multipart([b"", data])
            if self.sock in events:
                while True:
                    try:
                        frames = self.sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._handle(frames)
            with self.cond:
                hb_ms = self.heartbeat_ms if (self.heartbeat_on and self.ever_registered) else 0
            if hb_ms:
                now = time.monotonic()
                if next_hb is None or now >= next_hb:
                    if next_hb is not None:
                        self.sock.send_multipart(
                            [b"", self._message(heartbeat=unit_pb2.Heartbeat()).SerializeToString()])
                    next_hb = now + hb_ms / 1000.0
        self.sock.close(linger=0)
        self._peer.close(linger=0)

    def _handle(self, frames):
        if len(frames) != 2 or frames[0] != b"":
            with self.cond:
                self.garbage.append(frames)
                self.cond.notify_all()
            return
        msg = unit_pb2.DispatchMessage()
        try:
            msg.ParseFromString(frames[1])
        except Exception:
            with self.cond:
                self.garbage.append(frames)
                self.cond.notify_all()
            return
        body = msg.WhichOneof("body")
        rehello = False
        with self.cond:
            if body == "welcome":
                w = msg.welcome
                self.welcomes.append(w)
                if w.error:
                    # Refused after a successful Welcome with "send Hello first": dispatch
                    # forgot this session (it restarted). A session taken over by another
                    # connection is told so and left alone, or two would take turns.
                    rehello = self.ever_registered and "send Hello first" in w.error
                    self.registered = False
                else:
                    self.registered = self.ever_registered = True
                    self.heartbeat_ms = w.heartbeat_ms
            elif body == "assignment":
                a = msg.assignment
                self.received.append(a)
                if a.assignment_id not in self.assignments:
                    self.order.append(a.assignment_id)
                self.assignments[a.assignment_id] = a
            elif body == "answer_reply":
                self.replies[msg.answer_reply.seq] = msg.answer_reply
            elif body == "assignments":
                self.lists.append(msg.assignments)
            else:
                self.garbage.append(frames)
            self.cond.notify_all()
        if rehello:
            self.rehellos += 1
            self.sock.send_multipart([b"", self._message(
                hello=unit_pb2.Hello(software=self.software)).SerializeToString()])

    # -- the test thread's side

    def _send(self, msg):
        if self._closed:
            raise RuntimeError("unit %s is closed" % self.unit_id)
        self._pipe.send(msg.SerializeToString())

    def _wait(self, cond, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = cond()
                left = deadline - time.monotonic()
                if v or left <= 0:
                    return v
                self.cond.wait(min(left, 0.2))

    def say_hello(self, timeout=5.0):
        """Sends Hello; returns the Welcome that answers it, or None."""
        with self.cond:
            n = len(self.welcomes)
        self._send(self._message(hello=unit_pb2.Hello(software=self.software)))
        if not self._wait(lambda: len(self.welcomes) > n, timeout):
            return None
        with self.cond:
            return self.welcomes[n]

    def heartbeat(self):
        self._send(self._message(heartbeat=unit_pb2.Heartbeat()))

    def answer(self, assignment_id, kind, note="", timeout=10.0, retry_busy=True):
        """Sends an Answer (kind: a name of ANSWER_KINDS or the enum value) and
        returns its AnswerReply, or None on timeout. BUSY is retried with the
        same answer until timeout, as the protocol asks."""
        k = ANSWER_KINDS[kind] if isinstance(kind, str) else kind
        deadline = time.monotonic() + timeout
        while True:
            with self.cond:
                self.seq += 1
                seq = self.seq
            self._send(self._message(seq=seq, answer=unit_pb2.Answer(
                assignment_id=assignment_id, kind=k, note=note)))
            left = max(0.0, deadline - time.monotonic())
            if not self._wait(lambda: seq in self.replies, left):
                return None
            with self.cond:
                rep = self.replies[seq]
            if rep.status != unit_pb2.AnswerReply.BUSY or not retry_busy:
                return rep
            if time.monotonic() >= deadline:
                return rep
            time.sleep(0.05)  # the protocol's own pacing for BUSY, not synchronisation

    def next_assignment(self, timeout=10.0):
        """The next assignment not yet returned (new ids only), or None."""
        if not self._wait(lambda: len(self.order) > self.taken, timeout):
            return None
        with self.cond:
            aid = self.order[self.taken]
            self.taken += 1
            return self.assignments[aid]

    def wait_assignment(self, pred, timeout=10.0):
        """The first assignment held that satisfies pred, or None."""
        def find():
            for aid in self.order:
                if pred(self.assignments[aid]):
                    return self.assignments[aid]
            return None
        return self._wait(find, timeout)

    def copies(self, assignment_id):
        """How many times this assignment was received."""
        with self.cond:
            return sum(1 for a in self.received if a.assignment_id == assignment_id)

    def list(self, timeout=5.0):
        """Asks for this unit's assignments; returns the list of Assignment, or None."""
        with self.cond:
            n = len(self.lists)
        self._send(self._message(list=unit_pb2.ListAssignments()))
        if not self._wait(lambda: len(self.lists) > n, timeout):
            return None
        with self.cond:
            return list(self.lists[n].assignments)

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._pipe.send(b"")
        self._thread.join(5)
        self._pipe.close(linger=0)


# ---------------------------------------------------------------- the stack


def _pg_bindir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", d)])
    if not dirs:
        raise RuntimeError("no PostgreSQL under /usr/lib/postgresql; run deploy/install-deps.sh")
    return dirs[-1]


class Daemon:
    def __init__(self, name, path, log):
        self.name = name
        self.path = path
        self.log = log
        self.proc = None
        self.starts = 0


class Stack:
    """Use as a context manager, or call start() and teardown()."""

    def __init__(self, checks=None, name="stack"):
        self.checks = checks
        self.tmp = tempfile.mkdtemp(prefix="linkage-%s-" % name, dir="/tmp")
        # The cluster runs as user postgres; it must be able to reach its dir.
        os.chmod(self.tmp, 0o755)
        self.pg_dir = os.path.join(self.tmp, "pg")
        self.run_dir = os.path.join(self.tmp, "run")
        os.makedirs(self.run_dir)
        # One call, so no port is handed out twice.
        ports = free_ports(8 + len(DAEMONS))
        self.ports = dict(zip(("intake", "ledger", "stream", "router", "dispatch", "gateway", "feed",
                               "feed_replay"), ports[:8]))
        # Every daemon serves GET /metrics; a port of its own per stack, so stacks side by side
        # (and a `make run` stack on the default ports) never collide.
        self.metrics_ports = dict(zip(DAEMONS, ports[8:]))
        # The gateway's HTTP port is the one start_daemon waits for.
        self.http_port = self.ports["gateway"]
        self.base_url = "http://127.0.0.1:%d" % self.http_port
        self.feed_endpoint = "tcp://127.0.0.1:%d" % self.ports["feed"]
        self.feed_replay_endpoint = "tcp://127.0.0.1:%d" % self.ports["feed_replay"]
        self.router_endpoint = "tcp://127.0.0.1:%d" % self.ports["router"]
        self.dispatch_endpoint = "tcp://127.0.0.1:%d" % self.ports["dispatch"]
        self.units = []
        self.extra_env = {}
        # Optional per-daemon hooks, empty by default (tests/chaos/test_chaos.py runs some
        # daemons in a network namespace): name -> argv prefix (e.g. nsenter), name -> env
        # overrides, name -> a callable saying the daemon is up (default: its port on loopback).
        self.daemon_prefix = {}
        self.daemon_env = {}
        self.daemon_ready = {}
        self.intake_endpoint = "tcp://127.0.0.1:%d" % self.ports["intake"]
        self.ledger_endpoint = "tcp://127.0.0.1:%d" % self.ports["ledger"]
        self.stream_endpoint = "tcp://127.0.0.1:%d" % self.ports["stream"]
        self.pg = None
        self.pg_bin = _pg_bindir()
        self.daemons = {n: Daemon(n, os.path.join(BIN, "linkage-" + n),
                                  os.path.join(self.tmp, n + ".log")) for n in DAEMONS}
        self.torn_down = False
        self.keep = False
        # CURVE mode: the server's key file and public key (made by start()), and each client's
        # key pair by (kind, id), registered once.
        self.curve = CURVE
        self.server_key_file = None
        self.server_public = None
        self.client_pairs = {}
        self.key_lock = threading.Lock()
        atexit.register(self.teardown)

    # -- environment

    def env(self):
        e = dict(os.environ)
        e.update({
            "LINKAGE_PG": self.pg or "",
            "LINKAGE_RUN_DIR": self.run_dir,
            "LINKAGE_INTAKE_ENDPOINT": self.intake_endpoint,
            "LINKAGE_LEDGER_ENDPOINT": self.ledger_endpoint,
            "LINKAGE_LEDGER_STREAM": self.stream_endpoint,
            "LINKAGE_ROUTER_ENDPOINT": self.router_endpoint,
            "LINKAGE_DISPATCH_ENDPOINT": self.dispatch_endpoint,
            "LINKAGE_HTTP_PORT": str(self.http_port),
            "LINKAGE_FEED_ENDPOINT": self.feed_endpoint,
            "LINKAGE_FEED_REPLAY_ENDPOINT": self.feed_replay_endpoint,
            "LINKAGE_TOKENS_REFRESH_MS": "200",
        })
        for name, port in self.metrics_ports.items():
            e["LINKAGE_%s_METRICS_LISTEN" % name.upper()] = "127.0.0.1:%d" % port
        if self.curve and self.server_key_file:
            # Before extra_env, so a test can still turn CURVE off for one daemon.
            e.update({
                "LINKAGE_CURVE": "true",
                "LINKAGE_CURVE_SECRET_FILE": self.server_key_file,
                "LINKAGE_CURVE_SERVER_KEY_FILE": self.server_key_file,  # linkagectl's clients
                "LINKAGE_KEYS_REFRESH_MS": "200",
            })
        e.update(self.extra_env)
        e.setdefault("LINKAGE_LOG_LEVEL", "info")
        return e

    # -- PostgreSQL

    def start_pg(self):
        r = subprocess.run([os.path.join(ROOT, "deploy", "pg.sh"), "start", self.pg_dir],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("deploy/pg.sh start failed (%d): %s%s" %
                               (r.returncode, r.stdout, r.stderr))
        self.pg = r.stdout.strip().splitlines()[-1]
        return self.pg

    def stop_pg(self, mode="fast"):
        subprocess.run([os.path.join(ROOT, "deploy", "pg.sh"), "stop", self.pg_dir, mode],
                       capture_output=True, text=True, timeout=120)

    def pg_running(self):
        r = subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(self.pg_bin, "pg_ctl"),
                            "-D", os.path.join(self.pg_dir, "data"), "status"]
                           if os.getuid() == 0 else
                           [os.path.join(self.pg_bin, "pg_ctl"), "-D",
                            os.path.join(self.pg_dir, "data"), "status"],
                           capture_output=True, text=True)
        return r.returncode == 0

    def psql(self, sql, timeout=60):
        """Runs sql; returns (returncode, stdout, stderr)."""
        r = subprocess.run([os.path.join(self.pg_bin, "psql"), self.pg, "-X", "-A", "-t", "-q",
                            "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                           capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr

    def sql(self, sql, timeout=60):
        """Rows of sql as lists of strings; raises on error."""
        rc, out, err = self.psql(sql, timeout)
        if rc != 0:
            raise RuntimeError("psql failed: %s\n%s" % (sql, err.strip()))
        return [line.split("\t") for line in out.splitlines() if line != ""]

    def scalar(self, sql):
        rows = self.sql(sql)
        return rows[0][0] if rows else None

    # -- daemons

    def start_daemon(self, name, timeout=30):
        d = self.daemons[name]
        if not os.access(d.path, os.X_OK):
            raise RuntimeError("%s is not built" % d.path)
        d.starts += 1
        with open(d.log, "a") as f:
            f.write("=== start %d of %s at %.3f\n" % (d.starts, name, time.time()))
        logf = open(d.log, "a")
        env = self.env()
        env.update(self.daemon_env.get(name, {}))
        d.proc = subprocess.Popen(list(self.daemon_prefix.get(name, [])) + [d.path], cwd=ROOT,
                                  env=env, stdin=subprocess.DEVNULL, stdout=logf,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        port = self.ports[name]
        ready = self.daemon_ready.get(name) or (lambda: port_open(port))
        up = wait_until(lambda: d.proc.poll() is not None or ready(), timeout)
        if d.proc.poll() is not None:
            raise RuntimeError("linkage-%s exited with %s at start:\n%s" %
                               (name, d.proc.returncode, self.log_tail(name)))
        if not up:
            raise RuntimeError("linkage-%s did not listen on %d within %ss:\n%s" %
                               (name, port, timeout, self.log_tail(name)))
        if self.curve and name in KEY_DAEMON.values() and env.get("LINKAGE_CURVE") == "true":
            # A CURVE run that silently ran plain would prove nothing.
            on = wait_until(lambda: self.daemon_status(name).get("curve") == "1", 10)
            if not on:
                raise RuntimeError("linkage-%s does not say curve=1 in its status: %r" %
                                   (name, self.daemon_status(name)))
        return d.proc

    def kill9(self, name):
        d = self.daemons[name]
        if d.proc is not None and d.proc.poll() is None:
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()

    def restart(self, name):
        self.kill9(name)
        return self.start_daemon(name)

    def stop_daemon(self, name, timeout=10):
        """SIGTERM, then SIGKILL after timeout. Returns the exit code of the
        SIGTERM stop, or None if it had to be killed (or was not running)."""
        d = self.daemons[name]
        if d.proc is None or d.proc.poll() is not None:
            return None
        d.proc.send_signal(signal.SIGTERM)
        try:
            return d.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            return None

    def alive(self, name):
        d = self.daemons[name]
        return d.proc is not None and d.proc.poll() is None

    def log_tail(self, name, lines=40):
        try:
            with open(self.daemons[name].log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_text(self, name):
        try:
            with open(self.daemons[name].log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self, daemons=("ledger", "intake")):
        if self.curve:
            self.start_curve()
        self.start_pg()
        for name in daemons:
            self.start_daemon(name)
        return self

    # -- tools

    def ctl(self, *args, timeout=60, env=None):
        """Runs bin/linkagectl with the stack's environment (plus env, a dict)."""
        e = self.env()
        e.update(env or {})
        return subprocess.run([os.path.join(BIN, "linkagectl")] + [str(a) for a in args],
                              cwd=ROOT, env=e, capture_output=True, text=True,
                              timeout=timeout)

    def daemon_status(self, name, timeout=2.0):
        """A daemon's status line (its control socket) as a dict; {} when it does not answer."""
        s = zmq.Context.instance().socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect("ipc://%s/%s.ctl" % (self.run_dir, name))
        try:
            s.send(b"status")
            if not s.poll(int(timeout * 1000)):
                return {}
            line = s.recv().decode(errors="replace")
            return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        finally:
            s.close()

    # -- CURVE mode (the module's doc)

    def start_curve(self):
        """The server's key pair, with the tool operators use."""
        path = os.path.join(self.tmp, "server.key")
        r = self.ctl("keys", "gen", "--out", path)
        if r.returncode != 0:
            raise RuntimeError("linkagectl keys gen --out failed (%d): %s%s" %
                               (r.returncode, r.stdout, r.stderr))
        with open(path) as f:
            pub = [ln.split("=", 1)[1].strip() for ln in f if ln.startswith("public")]
        if not pub:
            raise RuntimeError("%s holds no public key" % path)
        self.server_key_file = path
        self.server_public = pub[0].encode()
        note("CURVE on the device and unit ports (LINKAGE_TEST_CURVE=1): every device and "
             "unit has its own registered key")

    def register(self, kind, ids, timeout=15):
        """CURVE mode: gives each id of ids (kind "device" or "unit") its own key pair,
        registered with `linkagectl <kind> add`, once; then waits until the running daemon
        that admits that kind holds every registered key (its status line's keys=N).
        Plain mode: nothing."""
        if not self.curve:
            return
        with self.key_lock:
            new = [i for i in ids if (kind, i) not in self.client_pairs]
            for ident in new:
                pub, sec = zmq.curve_keypair()
                # "--": a Z85 key may begin with "-", which getopt would take for an option.
                r = self.ctl(kind, "add", "--", ident, pub.decode())
                if r.returncode != 0:
                    raise RuntimeError("linkagectl %s add %s failed (%d): %s" %
                                       (kind, ident, r.returncode, r.stderr.strip()))
                self.client_pairs[(kind, ident)] = (pub, sec)
            if not new:
                return
            daemon = KEY_DAEMON[kind]
            if not self.alive(daemon):
                return  # it reads the registry at start, before it binds
            want = int(self.scalar("select count(*) from keys where kind = '%s' "
                                   "and revoked_at is null" % kind))
            held = wait_until(lambda: int(self.daemon_status(daemon).get("keys", -1)) >= want,
                              timeout, interval=0.05)
            if not held:
                raise RuntimeError("linkage-%s did not load the %d registered %s keys within "
                                   "%ss: %r" % (daemon, want, kind, timeout,
                                                self.daemon_status(daemon)))

    def client_keys(self, kind, ident):
        """CURVE mode: (server public, public, secret) of ident's registered key pair
        (registering it first); None in plain mode."""
        if not self.curve:
            return None
        self.register(kind, [ident])
        pub, sec = self.client_pairs[(kind, ident)]
        return (self.server_public, pub, sec)

    def secure(self, sock, kind, ident):
        """Makes a raw socket (before connect) a client registered as ident; plain: as is."""
        return curve_client(sock, self.client_keys(kind, ident))

    def client_env(self, kind, ident):
        """Environment for linkagectl report/unit speaking as ident: in CURVE mode its key
        file (LINKAGE_CURVE_CLIENT_KEY_FILE); {} in plain mode."""
        keys = self.client_keys(kind, ident)
        if keys is None:
            return {}
        path = os.path.join(self.tmp, "%s-%s.key" % (kind, ident))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("public = %s\nsecret = %s\n" % (keys[1].decode(), keys[2].decode()))
        return {"LINKAGE_CURVE_CLIENT_KEY_FILE": path}

    def device(self, kind=zmq.DEALER, device_id=None):
        """A Device on this stack's intake. In CURVE mode it needs device_id: its key is
        registered for that id, and a report naming another id is REJECTED."""
        if self.curve and device_id is None:
            raise ValueError("CURVE mode: a key is tied to one device id; "
                             "use st.device(device_id=...)")
        return Device(self.intake_endpoint, kind, curve=self.client_keys("device", device_id),
                      device_id=device_id)

    def command(self, cmd, timeout=10.0):
        """Sends one linkage.v1.Command to the router; returns the CommandReply or None."""
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.router_endpoint)
        try:
            s.send_multipart([b"", cmd.SerializeToString()])
            if not s.poll(int(timeout * 1000)):
                return None
            frames = s.recv_multipart()
            rep = command_pb2.CommandReply()
            rep.ParseFromString(frames[-1])
            return rep
        finally:
            s.close()

    def token(self, name, role="coordinator"):
        """Creates an HTTP API token with `linkagectl token add` and returns it."""
        before = self.token_refreshes()
        r = self.ctl("token", "add", name, "--role", role)
        if r.returncode != 0:
            raise RuntimeError("linkagectl token add failed (%d): %s%s" %
                               (r.returncode, r.stdout, r.stderr))
        if before is not None:
            # The gateway re-reads the registry every tokens_refresh_ms: two reloads after
            # the insert, one of them has begun after it, so the token is known.
            wait_until(lambda: (self.token_refreshes() or 0) >= before + 2, 10)
        return r.stdout.strip().splitlines()[-1]

    def gateway_status(self):
        """The gateway's status line as a dict, or None when it does not answer."""
        if not self.alive("gateway"):
            return None
        r = self.ctl("status", "gateway", timeout=10)
        if r.returncode != 0:
            return None
        return dict(kv.split("=", 1) for kv in r.stdout.split() if "=" in kv)

    def token_refreshes(self):
        st = self.gateway_status()
        return int(st["token_refreshes"]) if st and "token_refreshes" in st else None

    def metrics(self, name, timeout=5.0):
        """GET /metrics of a daemon: (status, content type, body text)."""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.metrics_ports[name], timeout=timeout)
        try:
            c.request("GET", "/metrics")
            r = c.getresponse()
            return r.status, r.getheader("Content-Type"), r.read().decode("utf-8")
        finally:
            c.close()

    def http(self, method, path, token=None, data=None, headers=None, timeout=10.0):
        """One HTTP request to the gateway. data: a dict (sent form-encoded) or bytes.
        Returns (status, headers as a dict with lower-case names, body bytes)."""
        import http.client
        import urllib.parse
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        body = None
        if isinstance(data, dict):
            body = urllib.parse.urlencode(data).encode()
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif data is not None:
            body = data
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def unit(self, unit_id, **kw):
        """A responder Unit connected to this stack's dispatch (closed at teardown); in CURVE
        mode with a key registered for unit_id."""
        kw.setdefault("curve", self.client_keys("unit", unit_id))
        u = Unit(self.dispatch_endpoint, unit_id, **kw)
        self.units.append(u)
        return u

    def ledger_socket(self):
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.ledger_endpoint)
        return s

    # -- teardown

    def teardown(self):
        if self.torn_down:
            return
        self.torn_down = True
        for u in self.units:
            try:
                u.close()
            except Exception as e:  # teardown must go on
                print("teardown: closing unit %s: %s" % (u.unit_id, e), file=sys.stderr)
        for name in reversed(DAEMONS):
            try:
                self.stop_daemon(name, timeout=5)
            except Exception as e:  # teardown must go on
                print("teardown: stopping %s: %s" % (name, e), file=sys.stderr)
        try:
            if self.pg is not None:
                self.stop_pg("fast")
        except Exception as e:
            print("teardown: stopping postgres: %s" % e, file=sys.stderr)
        failed = self.keep or (self.checks is not None and self.checks.failed > 0)
        if failed:
            for name in DAEMONS:
                if self.daemons[name].starts == 0:
                    continue
                print("---- linkage-%s output (last lines; %s)" % (name, self.daemons[name].log))
                tail = self.log_tail(name, 60)
                print(tail, end="" if tail.endswith("\n") else "\n")
        # Removed pass or fail (the logs' tails are printed above); LINKAGE_KEEP_TMP=1 keeps a
        # failed run's directory for inspection.
        if failed and os.environ.get("LINKAGE_KEEP_TMP"):
            print("---- kept %s for inspection (LINKAGE_KEEP_TMP)" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and exc_type is not SystemExit:
            self.keep = True
        self.teardown()
        return False


class Interrupted(Exception):
    pass


def _on_term(signum, frame):
    # Turn SIGTERM (e.g. from `timeout` in the runner) into an exception that
    # counts as a failed check and unwinds through teardown, so no daemon or
    # cluster is left behind.
    raise Interrupted("interrupted by signal %d" % signum)


signal.signal(signal.SIGTERM, _on_term)


def main(body, name, daemons=("ledger", "intake"), env=None):
    """Runs body(stack, checks) inside a stack; an exception is one failed
    check. Exits with the checks' code."""
    checks = Checks()
    code = 1
    try:
        with Stack(checks, name) as stack:
            stack.extra_env.update(env or {})
            try:
                stack.start(daemons)
            except Exception as e:
                checks.fail("stack starts", e)
                stack.keep = True
            else:
                try:
                    body(stack, checks)
                except Exception as e:
                    import traceback
                    traceback.print_exc()
                    checks.fail("test body raised", repr(e))
    finally:
        code = checks.done()
    sys.exit(code)
