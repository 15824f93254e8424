"""A network namespace joined to the root one by a veth pair, for the chaos
tests: daemons run inside it (argv_prefix()), and the test cuts, degrades
and makes lossy the one link between the two sides.

    root namespace                         namespace NAME
    <name>a  10.213.X.Y+1/30  <--veth-->  <name>b  10.213.X.Y+2/30, lo up

Faults on the link, each undone by the matching call:
  link_down() / link_up()    the root end down: no carrier on either end
  degrade(rate, latency)     a tbf qdisc on both ends: packets wait for the
                             rate and are dropped past `latency` in the queue
  delay(ms)                  every packet of the veth held ms milliseconds each
                             way, in order: this kernel has no netem, so
                             iptables (through nftables' compat layer; the
                             kernel has no nft `queue` either) hands them to
                             build/chaos/delayq over NFQUEUE, which holds and
                             releases them
  loss(percent)              nftables in the namespace drops that share of the
                             veth's packets both ways (`numgen random`); needs
                             the nft tool (Debian package nftables)

Everything is removed by destroy(), which also runs at exit and on the
signals stack.py turns into exceptions; a namespace left by a run that was
killed with SIGKILL is removed by the next run (sweep_stale()). Names carry
the creating pid, so concurrent runs never share one.

Threads of this process can act inside the namespace: run_in(fn) calls fn
on a thread that joined it (setns(2) changes only the calling thread), and
context() makes a zmq.Context whose I/O threads live there (libzmq starts
them from the thread that creates the context's first socket, and a new
thread inherits its creator's namespaces).
"""

import atexit
import ctypes
import os
import re
import shutil
import socket
import subprocess
import threading

CLONE_NEWNET = 0x40000000
PREFIX = "lkc"  # lkc<pid><letter>: every name this module makes
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(RuntimeError):
    pass


def _run(argv, check=True, timeout=30):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise NetnsError("`%s` failed (%d): %s" % (" ".join(argv), r.returncode,
                                                    (r.stderr or r.stdout).strip()))
    return r


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def sweep_stale():
    """Removes namespaces and veths of this module whose creating process is
    gone (a run killed with SIGKILL could not clean up). Returns their names."""
    gone = []
    r = _run(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"(%s(\d+)[a-z])\b" % PREFIX, line)
        if m and not _pid_alive(int(m.group(2))):
            _kill_inside(m.group(1))
            _run(["ip", "netns", "del", m.group(1)], check=False)
            gone.append(m.group(1))
    r = _run(["ip", "-o", "link", "show"], check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"\d+: (%s(\d+)[a-z]+)[@:]" % PREFIX, line)
        if m and not _pid_alive(int(m.group(2))):
            _run(["ip", "link", "del", m.group(1)], check=False)
            gone.append(m.group(1))
    return gone


def _kill_inside(name):
    """SIGKILLs what still runs in namespace `name`: only processes this
    module's runs started there (the namespace is private to one run)."""
    r = _run(["ip", "netns", "pids", name], check=False)
    for p in r.stdout.split():
        try:
            os.kill(int(p), 9)
        except (ProcessLookupError, ValueError):
            pass


class Netns:
    def __init__(self, letter="a"):
        pid = os.getpid()
        self.name = "%s%d%s" % (PREFIX, pid, letter)
        self.veth_root = self.name + "r"  # at most 3+7+2 = 12 characters (IFNAMSIZ 16)
        self.veth_ns = self.name + "n"
        # A /30 of 10.213.0.0/16 from the pid: distinct for concurrent runs.
        base = (pid % 16384) * 4
        self.subnet = (base >> 8, base & 0xFF)
        self.root_ip = "10.213.%d.%d" % (self.subnet[0], self.subnet[1] + 1)
        self.ns_ip = "10.213.%d.%d" % (self.subnet[0], self.subnet[1] + 2)
        self.path = "/run/netns/" + self.name
        self.created = False
        self.is_down = False
        self.degraded = False
        self.lossy = False
        self.delayq = None  # the running build/chaos/delayq during delay()

    # -- life

    def create(self):
        """Creates the namespace, the veth pair and the addresses. Raises
        NetnsError saying what failed (never skips): the chaos suite needs it."""
        if os.geteuid() != 0:
            raise NetnsError("network namespaces need root (ip netns add); running as uid %d" %
                             os.geteuid())
        for tool in ("ip", "nsenter", "tc"):
            if shutil.which(tool) is None:
                raise NetnsError("`%s` is not installed (iproute2, util-linux)" % tool)
        atexit.register(self.destroy)
        self.created = True
        try:
            _run(["ip", "netns", "add", self.name])
            _run(["ip", "link", "add", self.veth_root, "type", "veth", "peer", "name",
                  self.veth_ns])
            _run(["ip", "link", "set", self.veth_ns, "netns", self.name])
            _run(["ip", "addr", "add", self.root_ip + "/30", "dev", self.veth_root])
            _run(["ip", "link", "set", self.veth_root, "up"])
            self.ns_exec(["ip", "addr", "add", self.ns_ip + "/30", "dev", self.veth_ns])
            self.ns_exec(["ip", "link", "set", self.veth_ns, "up"])
            self.ns_exec(["ip", "link", "set", "lo", "up"])
        except Exception:
            self.destroy()
            raise
        return self

    def destroy(self):
        """Removes the namespace and the veth pair; safe to call again."""
        if not self.created:
            return
        self.created = False
        _kill_inside(self.name)
        _run(["ip", "netns", "del", self.name], check=False)
        # Deleting the namespace deletes its veth end and so the pair; this is for a
        # pair whose end never made it into the namespace.
        if os.path.exists("/sys/class/net/" + self.veth_root):
            _run(["ip", "link", "del", self.veth_root], check=False)

    def exists(self):
        return os.path.exists(self.path) or os.path.exists("/sys/class/net/" + self.veth_root)

    # -- running things inside

    def argv_prefix(self):
        """Prepended to a command, runs it inside the namespace. nsenter execs the
        command (no fork), so the pid is the program's own: signals reach it."""
        return ["nsenter", "--net=" + self.path, "--"]

    def ns_exec(self, argv, check=True):
        return _run(self.argv_prefix() + list(argv), check=check)

    def run_in(self, fn, timeout=30):
        """fn() on a thread inside the namespace; returns its result or raises
        its exception."""
        box = {}

        def body():
            try:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        e = ctypes.get_errno()
                        raise NetnsError("setns(%s): %s" % (self.path, os.strerror(e)))
                finally:
                    os.close(fd)
                box["v"] = fn()
            except BaseException as e:  # handed to the caller
                box["e"] = e

        t = threading.Thread(target=body, name="in-" + self.name, daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            raise NetnsError("call inside %s did not return within %ss" % (self.name, timeout))
        if "e" in box:
            raise box["e"]
        return box.get("v")

    def port_open(self, port, host="127.0.0.1"):
        """Whether something listens on host:port as seen from inside."""
        def probe():
            try:
                with socket.create_connection((host, port), timeout=0.2):
                    return True
            except OSError:
                return False
        return self.run_in(probe)

    def context(self):
        """A zmq.Context whose sockets connect from inside the namespace."""
        import zmq

        def make():
            ctx = zmq.Context()
            s = ctx.socket(zmq.PAIR)  # starts the I/O threads here
            s.close(linger=0)
            return ctx
        return self.run_in(make)

    # -- faults on the link

    def link_down(self):
        _run(["ip", "link", "set", self.veth_root, "down"])
        self.is_down = True

    def link_up(self):
        _run(["ip", "link", "set", self.veth_root, "up"])
        self.is_down = False

    def degrade(self, rate="256kbit", burst="4kb", latency="200ms"):
        for argv in (["tc"], self.argv_prefix() + ["tc"]):
            dev = self.veth_root if len(argv) == 1 else self.veth_ns
            _run(argv + ["qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst",
                         burst, "latency", latency])
        self.degraded = True

    def restore(self):
        for argv in (["tc"], self.argv_prefix() + ["tc"]):
            dev = self.veth_root if len(argv) == 1 else self.veth_ns
            _run(argv + ["qdisc", "del", "dev", dev, "root"], check=False)
        self.degraded = False

    def loss(self, percent):
        if shutil.which("nft") is None:
            raise NetnsError("`nft` is not installed (Debian package nftables): cannot drop a "
                             "share of packets (this kernel has no netem)")
        rules = ("table inet lkchaos {\n"
                 " chain in { type filter hook input priority 0; policy accept;\n"
                 "  iifname \"%s\" numgen random mod 100 < %d counter drop\n }\n"
                 " chain out { type filter hook output priority 0; policy accept;\n"
                 "  oifname \"%s\" numgen random mod 100 < %d counter drop\n }\n"
                 "}\n" % (self.veth_ns, percent, self.veth_ns, percent))
        r = subprocess.run(self.argv_prefix() + ["nft", "-f", "-"], input=rules,
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise NetnsError("nft -f failed (%d): %s" % (r.returncode, r.stderr.strip()))
        self.lossy = True

    def no_loss(self):
        """Removes the loss rules; returns how many packets they dropped."""
        dropped = 0
        r = self.ns_exec(["nft", "list", "table", "inet", "lkchaos"], check=False)
        for m in re.finditer(r"counter packets (\d+)", r.stdout):
            dropped += int(m.group(1))
        self.ns_exec(["nft", "delete", "table", "inet", "lkchaos"], check=False)
        self.lossy = False
        return dropped

    DELAY_QUEUE = 7  # NFQUEUE numbers are per namespace

    def _delay_rules(self, op):
        for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
            r = self.ns_exec(["iptables", op, chain, flag, self.veth_ns, "-j", "NFQUEUE",
                              "--queue-num", str(self.DELAY_QUEUE)], check=False)
            if r.returncode != 0 and op == "-A":
                raise NetnsError("iptables %s %s failed (%d): %s" %
                                 (op, chain, r.returncode, r.stderr.strip()))

    def delay(self, ms, delayq):
        """Holds every packet on the veth ms milliseconds each way (see the module's
        doc); delayq is the path of build/chaos/delayq."""
        if shutil.which("iptables") is None:
            raise NetnsError("`iptables` is not installed (Debian package iptables): cannot "
                             "queue packets for a fixed delay (this kernel has no netem)")
        if not os.access(delayq, os.X_OK):
            raise NetnsError("%s is not built (make all)" % delayq)
        proc = subprocess.Popen(self.argv_prefix() + [delayq, str(self.DELAY_QUEUE), str(ms)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # A queue rule without a program bound drops the packets: rules only once it is.
        if proc.stdout.readline().strip() != "ready=1":
            proc.kill()
            out, err = proc.communicate(timeout=10)
            raise NetnsError("delayq did not start: %s %s" % (out.strip(), err.strip()))
        self.delayq = proc
        try:
            self._delay_rules("-A")
        except Exception:
            self.no_delay()
            raise

    def no_delay(self):
        """Removes the delay, rules first, then the program (which lets go of what it
        holds); returns its figures (packets, max_held, late_us_max) as a dict."""
        self._delay_rules("-D")
        proc, self.delayq = self.delayq, None
        if proc is None:
            return {}
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        return dict(ln.split("=", 1) for ln in out.split() if "=" in ln)

    def heal(self):
        """Undoes every link fault (a run interrupted mid-fault)."""
        if self.delayq is not None:
            self.no_delay()
        if self.is_down:
            self.link_up()
        if self.degraded:
            self.restore()
        if self.lossy:
            self.no_loss()
