"""Running the daemons as systemd services (README "Deploying").

(a) The service protocol on a real daemon. linkage-ledger runs on a private PostgreSQL with
NOTIFY_SOCKET naming a unix datagram socket this test owns (systemd's side of sd_notify) and
WATCHDOG_USEC set, as systemd sets them for a unit with Type=notify and WatchdogSec=:
- READY=1 arrives once it listens, with STATUS= (its status line) and MAINPID= its pid, sent by
  that pid (the kernel's credentials: what NotifyAccess=main checks);
- WATCHDOG=1 comes again and again, never further apart than the watchdog interval;
- STATUS= is sent again when the status changed (a report committed moves the head), and never
  twice the same;
- SIGSTOP: no WATCHDOG=1 while it is stopped (what makes systemd kill and restart a wedged
  daemon), and they come back after SIGCONT;
- SIGTERM: STOPPING=1, then a clean exit 0;
- intake, started beside it without NOTIFY_SOCKET, says nothing of systemd.

(b) `make install DESTDIR=<tmp> PREFIX=/usr`: every binary, every unit, the target, the
sysusers file, the settings under /etc/linkage (env file mode 0600, district, nftables limit),
the dashboard's www/index.html and the pristine examples; the units name binaries, files and
directories that exist in that tree and carry the protocol, restart, ordering and hardening
settings; every variable of the example env file is a setting some daemon has;
`systemd-analyze verify --root=<tmp>` accepts the units without a warning (binaries checked in the
tree); a second install keeps the operator's files; `make uninstall` removes what install put
outside /etc. The directory is removed pass or fail.
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402

WATCHDOG_S = 1.0
DAEMONS = S.DAEMONS
UNITS = ["linkage-%s.service" % d for d in DAEMONS] + ["linkage-limit.service", "linkage.target"]


class NotifySocket:
    """systemd's end of sd_notify: a unix datagram socket, every message kept with the time it
    arrived and the sender's pid (SO_PASSCRED)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.cond = threading.Condition()
        self.msgs = []  # (monotonic time, sender pid, {key: value})
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.closed:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            except OSError:
                break
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:12])[0]
            fields = {}
            for line in data.decode(errors="replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            with self.cond:
                self.msgs.append((time.monotonic(), pid, fields))
                self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return list(self.msgs)

    def wait(self, pred, timeout):
        """The first message (t, pid, fields) satisfying pred, or None after timeout."""
        def find():
            for m in self.snapshot():
                if pred(m):
                    return m
            return None
        return S.wait_until(find, timeout, interval=0.02)

    def close(self):
        self.closed = True
        self.thread.join(2)
        self.sock.close()


def with_key(key, value=None):
    return lambda m: key in m[2] and (value is None or m[2][key] == value)


def watchdog_times(msgs, start, end):
    return [t for t, _, f in msgs if f.get("WATCHDOG") == "1" and start <= t < end]


def test_protocol(c):
    with S.Stack(c, "systemd") as st:
        ns = NotifySocket(os.path.join(st.tmp, "notify.sock"))
        try:
            st.daemon_env["ledger"] = {"NOTIFY_SOCKET": ns.path,
                                       "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))}
            try:
                st.start(("ledger", "intake"))
            except Exception as e:
                c.fail("the ledger and intake start", e)
                st.keep = True
                return
            proc = st.daemons["ledger"].proc
            ready = ns.wait(with_key("READY", "1"), 10)
            if not c.check(ready, "READY=1 arrives", ns.snapshot()):
                return
            t_ready, pid, f = ready
            c.eq(f.get("MAINPID"), str(proc.pid), "READY carries MAINPID= the daemon's pid")
            c.eq(pid, proc.pid, "the daemon's own pid sends it (NotifyAccess=main)")
            c.check(re.match(r"head=\d+ ", f.get("STATUS", "")),
                    "READY carries STATUS= the daemon's status line", f)
            S.note("READY=1 STATUS=%s" % f.get("STATUS"))
            c.eq(len([m for m in ns.snapshot() if m[2].get("READY")]), 1, "READY=1 is sent once")

            # The watchdog: again and again, never further apart than the interval.
            time.sleep(2.5 * WATCHDOG_S)  # the observation window itself, not synchronisation
            now = time.monotonic()
            wd = watchdog_times(ns.snapshot(), t_ready, now)
            gaps = [b - a for a, b in zip([t_ready] + wd, wd + [now])]
            c.check(len(wd) >= 4, "WATCHDOG=1 comes repeatedly (at half the interval)",
                    "%d in %.1f s" % (len(wd), now - t_ready))
            c.check(max(gaps) < WATCHDOG_S, "never further apart than WATCHDOG_USEC",
                    "largest gap %.3f s" % max(gaps))
            c.check(all(m[1] == proc.pid for m in ns.snapshot()),
                    "every message comes from the daemon's pid")

            # STATUS= again once the status changed: a committed report moves the head.
            dev = st.device(device_id="sd-dev-1")
            ack, _ = dev.submit(S.make_report("sd-dev-1", 1))
            dev.close()
            c.eq(S.status_name(ack), "ACCEPTED", "a report is accepted")
            moved = ns.wait(lambda m: re.search(r"\bhead=[1-9]", m[2].get("STATUS", "")), 10)
            c.check(moved, "STATUS= is sent again after the status changed",
                    [m[2] for m in ns.snapshot() if "STATUS" in m[2]])
            statuses = [m[2]["STATUS"] for m in ns.snapshot() if "STATUS" in m[2]]
            c.check(all(a != b for a, b in zip(statuses, statuses[1:])),
                    "never the same STATUS= twice in a row", statuses)
            if moved:
                S.note("then STATUS=%s" % moved[2]["STATUS"])

            # A wedged loop stops petting the watchdog; that is what systemd restarts on.
            proc.send_signal(signal.SIGSTOP)
            t_stop = time.monotonic()
            time.sleep(2.5 * WATCHDOG_S)  # the silence being measured
            proc.send_signal(signal.SIGCONT)
            t_cont = time.monotonic()
            # A datagram sent just before SIGSTOP may still be read just after it.
            during = watchdog_times(ns.snapshot(), t_stop + 0.1, t_cont)
            c.eq(len(during), 0, "no WATCHDOG=1 while the daemon is stopped (SIGSTOP, %.1f s)" %
                 (t_cont - t_stop))
            back = ns.wait(lambda m: m[0] > t_cont and m[2].get("WATCHDOG") == "1",
                           2 * WATCHDOG_S)
            c.check(back, "WATCHDOG=1 again after SIGCONT")

            # SIGTERM: STOPPING=1 and a clean exit.
            code = st.stop_daemon("ledger", timeout=10)
            c.check(ns.wait(with_key("STOPPING", "1"), 5), "STOPPING=1 on SIGTERM")
            c.eq(code, 0, "then the daemon exits 0")
            c.check("told systemd" in st.log_text("ledger") and
                    "told systemd" not in st.log_text("intake"),
                    "intake, without NOTIFY_SOCKET, says nothing of systemd")
        finally:
            ns.close()


# ---------------------------------------------------------------- make install


def unit_config(path):
    """A unit file as {section: [(key, value)]}, repeated keys kept in order."""
    out = {}
    section = None
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                out.setdefault(section, [])
            elif "=" in line and section:
                k, v = line.split("=", 1)
                out[section].append((k.strip(), v.strip()))
    return out


def values(cfg, section, key):
    return [v for k, v in cfg.get(section, []) if k == key]


def daemon_settings():
    """Every LINKAGE_<KEY> some daemon reads (their --help-config)."""
    names = {"LINKAGE_RUN_DIR", "LINKAGE_LOG_LEVEL"}  # read by the skeleton, not a table
    for d in DAEMONS:
        r = subprocess.run([os.path.join(S.BIN, "linkage-" + d), "--help-config"],
                           capture_output=True, text=True, timeout=30)
        names.update(re.findall(r"env (LINKAGE_[A-Z0-9_]+)", r.stdout))
    return names


def make(tmp, target):
    return subprocess.run(["make", "-s", target, "DESTDIR=" + tmp, "PREFIX=/usr"], cwd=S.ROOT,
                          capture_output=True, text=True, timeout=600)


def test_install(c):
    tmp = tempfile.mkdtemp(prefix="linkage-install-", dir="/tmp")
    try:
        r = make(tmp, "install")
        if not c.eq(r.returncode, 0, "make install DESTDIR=<tmp> PREFIX=/usr succeeds"):
            print(r.stdout[-2000:], r.stderr[-2000:])
            return
        root = lambda p: os.path.join(tmp, p.lstrip("/"))  # noqa: E731
        progs = ["/usr/bin/linkage-%s" % d for d in DAEMONS] + ["/usr/bin/linkagectl"]
        files = (progs + ["/usr/lib/systemd/system/" + u for u in UNITS] +
                 ["/usr/lib/sysusers.d/linkage.conf", "/etc/linkage/linkage.env",
                  "/etc/linkage/district.yaml", "/etc/linkage/linkage-limit.nft",
                  "/usr/share/linkage/www/index.html", "/usr/share/linkage/www/app.js",
                  "/usr/share/linkage/www/style.css", "/usr/share/linkage/examples/linkage.env",
                  "/usr/share/linkage/examples/district.yaml",
                  "/usr/share/linkage/examples/linkage-limit.nft"])
        missing = [f for f in files if not os.path.isfile(root(f))]
        c.eq(missing, [], "the tree holds every binary, unit, setting file and www/index.html")
        c.check(all(os.access(root(p), os.X_OK) for p in progs if p not in missing),
                "the binaries are executable")
        c.eq(oct(os.stat(root("/etc/linkage/linkage.env")).st_mode & 0o777), "0o600",
             "the env file (it may hold a password) is root's alone")

        # The units point into the tree, and say what the README says they say.
        for u in UNITS:
            if not os.path.isfile(root("/usr/lib/systemd/system/" + u)):
                continue
            text = open(root("/usr/lib/systemd/system/" + u)).read()
            cfg = unit_config(root("/usr/lib/systemd/system/" + u))
            c.check("@" not in re.sub(r"(?m)^#.*$", "", text), "%s: every @PATH@ filled in" % u)
            for key in ("ExecStart", "ExecStartPre", "ExecStop"):
                for v in values(cfg, "Service", key):
                    exe = v.lstrip("-@+!:").split()[0]
                    if exe.startswith("/usr/sbin/nft"):
                        continue  # the system's, not ours
                    c.check(os.access(root(exe), os.X_OK),
                            "%s: %s=%s exists in the tree" % (u, key, exe))
            for v in values(cfg, "Service", "EnvironmentFile"):
                c.check(os.path.isfile(root(v.lstrip("-"))),
                        "%s: EnvironmentFile=%s exists in the tree" % (u, v))
            env = dict(v.split("=", 1) for v in values(cfg, "Service", "Environment"))
            if "LINKAGE_DISTRICT" in env:
                c.check(os.path.isfile(root(env["LINKAGE_DISTRICT"])),
                        "%s: its district file exists in the tree" % u)
            if "LINKAGE_WWW_DIR" in env:
                c.check(os.path.isfile(os.path.join(root(env["LINKAGE_WWW_DIR"]), "index.html")),
                        "%s: its www directory holds index.html" % u)
            nft = [v for v in values(cfg, "Service", "ExecStart") if " -f " in v]
            for v in nft:
                c.check(os.path.isfile(root(v.split(" -f ", 1)[1].strip())),
                        "%s: the nftables file it loads exists in the tree" % u)
            name = u[len("linkage-"):-len(".service")] if u.startswith("linkage-") else None
            if name not in DAEMONS:
                continue
            svc = dict(cfg.get("Service", []))
            want = {"Type": "notify", "NotifyAccess": "main", "Restart": "always",
                    "User": "linkage", "ProtectSystem": "strict", "ProtectHome": "yes",
                    "NoNewPrivileges": "yes", "PrivateTmp": "yes", "RuntimeDirectory": "linkage",
                    "RuntimeDirectoryPreserve": "yes"}
            c.eq({k: svc.get(k) for k in want}, want,
                 "%s: notify, restart always, user linkage, hardened" % u)
            c.check("WatchdogSec" in svc and "RestartSec" in svc and
                    re.match(r"^\d+ms$", svc["RestartSec"]) and
                    int(svc["RestartSec"][:-2]) < 1000,
                    "%s: a watchdog, and back within a second after a crash" % u, svc)
            c.check("2" in svc.get("RestartPreventExitStatus", "").split() and
                    "78" in svc.get("RestartPreventExitStatus", "").split(),
                    "%s: not restarted after a settings error (2) or a taken address (78)" % u)
            c.eq(env.get("LINKAGE_RUN_DIR"), "/run/linkage",
                 "%s: control sockets in its RuntimeDirectory" % u)
            after = " ".join(values(cfg, "Unit", "After")).split()
            c.check("postgresql.service" in after and
                    (name == "ledger" or "linkage-ledger.service" in after),
                    "%s: ordered after PostgreSQL%s" % (u, "" if name == "ledger" else
                                                        " and the ledger"), after)
            c.eq(values(cfg, "Unit", "PartOf"), ["linkage.target"], "%s: PartOf=linkage.target" % u)
        tgt = root("/usr/lib/systemd/system/linkage.target")
        if os.path.isfile(tgt):
            wants = " ".join(values(unit_config(tgt), "Unit", "Wants")).split()
            c.eq(sorted(set(UNITS[:-1]) - set(wants)), [], "linkage.target wants every unit")

        # The example env file names only settings that exist.
        known = daemon_settings()
        names = re.findall(r"(?m)^#?(LINKAGE_[A-Z0-9_]+)=", open(root("/etc/linkage/linkage.env"))
                           .read())
        c.check(len(names) >= 5 and not [n for n in names if n not in known],
                "every variable of the example env file is a daemon's setting",
                [n for n in names if n not in known])

        # A reinstall keeps the operator's settings.
        with open(root("/etc/linkage/linkage.env"), "a") as fh:
            fh.write("LINKAGE_LOG_LEVEL=debug\n")
        r = make(tmp, "install")
        c.check(r.returncode == 0 and "LINKAGE_LOG_LEVEL=debug" in
                open(root("/etc/linkage/linkage.env")).read(),
                "a second make install keeps /etc/linkage/linkage.env as edited",
                r.stdout[-500:] + r.stderr[-500:])

        verify(c, tmp)
        sysusers(c, tmp)

        r = make(tmp, "uninstall")
        left = [f for f in files if os.path.exists(root(f)) and not f.startswith("/etc/")]
        c.check(r.returncode == 0 and not left and
                os.path.isfile(root("/etc/linkage/linkage.env")),
                "make uninstall removes all but /etc/linkage", left)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def verify(c, tmp):
    """systemd-analyze verify on the installed tree, as systemd itself would load the units."""
    exe = shutil.which("systemd-analyze")
    if not exe:
        S.note("systemd-analyze is not installed: the units were checked by the parser above only")
        return
    unitdir = os.path.join(tmp, "usr/lib/systemd/system")
    # The distribution's units our units refer to (sysinit.target, multi-user.target, ...), and
    # its nft, which linkage-limit.service runs: verify looks for both under --root.
    for d in ("/lib/systemd/system", "/usr/lib/systemd/system"):
        if os.path.isdir(d):
            for n in os.listdir(d):
                if not os.path.lexists(os.path.join(unitdir, n)):
                    src = os.path.join(d, n)
                    if os.path.isdir(src) and not os.path.islink(src):
                        shutil.copytree(src, os.path.join(unitdir, n), symlinks=True)
                    else:
                        shutil.copy2(src, os.path.join(unitdir, n), follow_symlinks=False)
    nft = os.path.join(tmp, "usr/sbin/nft")
    os.makedirs(os.path.dirname(nft), exist_ok=True)
    if os.path.exists("/usr/sbin/nft"):
        shutil.copy2("/usr/sbin/nft", nft)
    else:
        with open(nft, "w") as fh:
            fh.write("#!/bin/sh\n")
        os.chmod(nft, 0o755)
    r = subprocess.run([exe, "verify", "--man=no", "--generators=no", "--root=" + tmp] + UNITS,
                       capture_output=True, text=True, timeout=120)
    out = (r.stdout + r.stderr).strip()
    c.check(r.returncode == 0 and out == "",
            "systemd-analyze verify --root=<tmp> accepts every unit, no warning", out[-2000:])
    # It must be able to fail: a unit whose binary is missing from the tree.
    probe = os.path.join(tmp, "usr/bin/linkage-router")
    os.rename(probe, probe + ".away")
    r = subprocess.run([exe, "verify", "--man=no", "--generators=no", "--root=" + tmp,
                        "linkage-router.service"], capture_output=True, text=True, timeout=120)
    os.rename(probe + ".away", probe)
    c.check(r.returncode != 0 and "linkage-router" in r.stderr,
            "and refuses one whose binary is missing from the tree", r.stderr[-500:])


def sysusers(c, tmp):
    exe = shutil.which("systemd-sysusers")
    if not exe:
        S.note("systemd-sysusers is not installed: linkage.conf not checked")
        return
    r = subprocess.run([exe, "--root=" + tmp, "--dry-run"], capture_output=True, text=True,
                       timeout=60)
    c.check(r.returncode == 0 and re.search(r"user '?linkage'?", r.stdout + r.stderr),
            "systemd-sysusers would create the user linkage", (r.stdout + r.stderr)[-500:])


def main():
    c = S.Checks()
    try:
        for body in (test_protocol, test_install):
            try:
                body(c)
            except Exception as e:
                import traceback
                traceback.print_exc()
                c.fail("%s raised" % body.__name__, repr(e))
    finally:
        code = c.done()
    sys.exit(code)


if __name__ == "__main__":
    main()
