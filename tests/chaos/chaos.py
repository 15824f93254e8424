"""Helpers shared by the chaos tests: the load generator, RSS sampling, the
ledger checks of what was acknowledged.

LINKAGE_CHAOS_LONG=1 (set by `make chaos`, tests/chaos/run-chaos.sh) selects
the long versions; without it each test runs its short version for `make test`.
"""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402

LONG = os.environ.get("LINKAGE_CHAOS_LONG", "") == "1"
OVERLOAD = os.path.join(S.BUILD, "chaos", "overload")
DELAYQ = os.path.join(S.BUILD, "chaos", "delayq")


def parse_kv(text):
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def new_netns(c, letter):
    """A fresh namespace (tests/lib/netns.py), after removing those left by killed runs;
    None, with a failed check saying why, if it cannot be made."""
    import netns as N
    swept = N.sweep_stale()
    if swept:
        S.note("removed namespaces left by killed runs: %s" % " ".join(swept))
    ns = N.Netns(letter)
    try:
        ns.create()
    except Exception as e:
        c.fail("the network namespace and veth pair are created", e)
        return None
    return ns


def num(d, k):
    return float(d.get(k, "nan"))


def start_generator(*args, cpus=None, env=None, prefix=()):
    """Starts build/chaos/overload with args; returns the Popen (stdout piped).
    cpus: the set of CPUs it may run on (all if None); env: added to the environment;
    prefix: argv before it (a namespace's nsenter)."""
    if not os.access(OVERLOAD, os.X_OK):
        raise RuntimeError("%s is not built (make all)" % OVERLOAD)
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus is not None else None
    return subprocess.Popen(list(prefix) + [OVERLOAD] + [str(a) for a in args],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=pin,
                            env=dict(os.environ, **(env or {})))


def _children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == ppid:
                    out.append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return out


def _pin_process(pid, cpus):
    """Pins every thread of pid (affinity is per thread; threads started later
    inherit their creator's). Returns the number of threads pinned."""
    n = 0
    try:
        tids = [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        return 0
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
            n += 1
        except OSError:
            pass
    return n


def pin_stack(st, cpus):
    """Pins the running daemons and the private PostgreSQL (postmaster and
    its children; backends forked later inherit the postmaster's affinity)
    to cpus. Returns the number of threads pinned."""
    n = 0
    for d in st.daemons.values():
        if d.proc is not None and d.proc.poll() is None:
            n += _pin_process(d.proc.pid, cpus)
    with open(os.path.join(st.pg_dir, "data", "postmaster.pid")) as f:
        pm = int(f.readline())
    n += _pin_process(pm, cpus)
    for c in _children(pm):
        n += _pin_process(c, cpus)
    return n


def finish_generator(proc, timeout):
    """Waits for a generator; returns its key=value output as a dict. Raises on
    failure (with its stderr)."""
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError("overload exited %d: %s %s" % (proc.returncode, out, err))
    return parse_kv(out)


def vm_rss_kib(pid):
    """VmRSS of pid in KiB, or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples VmRSS of named pids every interval seconds in a thread;
    keeps each one's peak and the series."""

    def __init__(self, pids, interval=0.1):
        self.pids = dict(pids)
        self.interval = interval
        self.peak = {n: 0 for n in self.pids}
        self.series = {n: [] for n in self.pids}
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.monotonic()
        while not self.stop_ev.is_set():
            for n, pid in self.pids.items():
                v = vm_rss_kib(pid)
                if v is not None:
                    self.series[n].append((time.monotonic() - t0, v))
                    self.peak[n] = max(self.peak[n], v)
            self.stop_ev.wait(self.interval)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.thread.join(5)

    def samples(self):
        return sum(len(s) for s in self.series.values())


def mib(kib):
    return kib / 1024.0


def check_acked_in_ledger(st, c, ackfile):
    """Every line of ackfile ("device sequence incident_id", one per
    ACCEPTED/DUPLICATE answer) names the derived incident, and each such
    incident has exactly one `reported` row. Returns (acked, reported rows)."""
    acked = set()
    wrong_id = []
    with open(ackfile) as f:
        for line in f:
            dev, seq, inc = line.split()
            if inc != S.incident_id(dev, int(seq)) and len(wrong_id) < 10:
                wrong_id.append(line.strip())
            acked.add(inc)
    c.eq(wrong_id, [], "every acknowledged incident id is the documented derivation")
    ids = ackfile + ".ids"
    with open(ids, "w") as f:
        for inc in acked:
            f.write(inc + "\n")
    # The acknowledged ids go into a temporary table of one psql session, and the
    # ledger's (incident_id, position) index answers the join.
    query = ("select (select count(*) from acked), "
             "(select count(*) from acked a where not exists (select 1 from ledger l "
             "where l.incident_id = a.incident_id and l.type = 'reported')), "
             "(select count(*) from (select l.incident_id from ledger l join acked a "
             "using (incident_id) where l.type = 'reported' group by l.incident_id "
             "having count(*) > 1) t), "
             "(select count(*) from ledger where type = 'reported')")
    r = subprocess.run([os.path.join(st.pg_bin, "psql"), st.pg, "-X", "-A", "-t", "-q", "-F", "\t",
                        "-v", "ON_ERROR_STOP=1",
                        "-c", "create temp table acked (incident_id text primary key)",
                        "-c", "\\copy acked from '%s'" % ids, "-c", query],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        c.fail("ledger query of the acknowledged ids", r.stderr)
        return len(acked), -1
    n, missing, twice, rows = (int(x) for x in r.stdout.strip().split("\t"))
    c.eq(n, len(acked), "every acknowledged id loaded for the check")
    c.eq(missing, 0, "every ACCEPTED/DUPLICATE report is in the ledger")
    c.eq(twice, 0, "no acknowledged report is in the ledger twice")
    return len(acked), rows
