"""Running it as an operator would, following the README: `make run`'s script (deploy/run.sh)
in a network namespace of its own (so the default ports are free whatever else runs), with its
private cluster and run directory in a temporary directory.

- A second start in the same run directory exits non-zero within seconds, saying a stack is
  already running there and naming the pid that holds it; the first stack's cluster, sockets and
  dashboard token are untouched: it still accepts a report, and its token still works.
- `linkagectl status` and `linkagectl verify` from "another shell" find the stack with no
  variable but the run directory: make run leaves linkage.conf there.
- A supervisor in another run directory whose daemons find their ports taken stops with a clear
  line instead of restarting them in a loop, and the first stack is unharmed.
- Ctrl-C stops the first stack, removes linkage.conf and frees the lock.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
import netns as N  # noqa: E402

CTL = os.path.join(S.BIN, "linkagectl")


def main():
    c = S.Checks()
    tmp = tempfile.mkdtemp(prefix="linkage-make-run-", dir="/tmp")
    os.chmod(tmp, 0o755)
    ns = N.Netns("m")
    first = None
    log1 = os.path.join(tmp, "first.log")
    try:
        N.sweep_stale()
        ns.create()
        pre = ns.argv_prefix()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINKAGE_")}
        env.update({"LINKAGE_RUN_DIR": os.path.join(tmp, "run"),
                    "LINKAGE_PG_DIR": os.path.join(tmp, "pg"), "LINKAGE_LOG_LEVEL": "warn"})

        def ctl(*args, extra=None, timeout=30):
            e = dict(env)
            e.update(extra or {})
            return subprocess.run(pre + [CTL] + list(args), cwd=S.ROOT, env=e,
                                  capture_output=True, text=True, timeout=timeout)

        with open(log1, "w") as out:
            first = subprocess.Popen(pre + ["deploy/run.sh"], cwd=S.ROOT, env=env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        up = S.wait_until(lambda: first.poll() is not None or ctl("status").returncode == 0, 90,
                          interval=0.5)
        if not c.check(up and first.poll() is None, "make run's stack comes up",
                       open(log1).read()[-2000:]):
            return c.done()
        text = open(log1).read()
        tok = re.search(r"#token=(\S+)", text)
        c.check(tok, "it prints the dashboard's URL with a token", text[-500:])
        c.check(os.path.exists(os.path.join(tmp, "run", "linkage.conf")),
                "it leaves linkage.conf in its run directory")

        t0 = time.monotonic()
        second = subprocess.run(pre + ["deploy/run.sh"], cwd=S.ROOT, env=env, capture_output=True,
                                text=True, timeout=60)
        took = time.monotonic() - t0
        err = second.stdout + second.stderr
        c.check(second.returncode != 0, "a second make run in the same run directory fails",
                err[-500:])
        c.check("already running" in err and ("pid %d" % first.pid) in err,
                "saying a stack is already running there, with the pid that holds it",
                err[-500:])
        c.check(took < 10, "within seconds", "%.1f s" % took)
        S.note("second start refused in %.2f s: %s" % (took, err.strip().splitlines()[-1][:200]))

        c.eq(ctl("status").returncode, 0, "the first stack still answers linkagectl status")
        rep = ctl("report", "--device", "op-dev", "--seq", "1", "--compound", "lijinggang",
                  "--category", "accident_disaster", "--kind", "gas_leak", "--severity", "III")
        c.check(rep.returncode == 0 and "ACCEPTED" in rep.stdout,
                "and accepts a report", rep.stdout + rep.stderr)
        ver = ctl("verify")
        c.check(ver.returncode == 0, "linkagectl verify finds the private cluster with no "
                "LINKAGE_PG set", ver.stdout[-300:] + ver.stderr[-300:])
        if tok:
            probe = subprocess.run(
                pre + ["/usr/bin/python3", "-c",
                       "import urllib.request,sys;r=urllib.request.urlopen(urllib.request.Request("
                       "'http://127.0.0.1:8080/api/me',headers={'Authorization':'Bearer '+sys.argv[1]}"
                       "),timeout=5);print(r.status)", tok.group(1)],
                capture_output=True, text=True, timeout=30)
            c.eq(probe.stdout.strip(), "200", "the first stack's dashboard token still works")

        # Another run directory, the same ports: the daemons cannot bind.
        t0 = time.monotonic()
        other = ctl("run", extra={"LINKAGE_RUN_DIR": os.path.join(tmp, "run2"),
                                  "LINKAGE_PG": open(os.path.join(tmp, "run", "linkage.conf"))
                                  .read().split("pg = ", 1)[1].splitlines()[0]}, timeout=60)
        took = time.monotonic() - t0
        out = other.stdout + other.stderr
        c.check(other.returncode != 0 and "is taken" in out,
                "a stack whose ports are taken stops with a clear error", out[-600:])
        c.check(took < 15, "instead of restarting its daemons in a loop", "%.1f s" % took)
        c.eq(ctl("status").returncode, 0, "and the first stack is unharmed")

        os.killpg(first.pid, signal.SIGINT)
        try:
            rc = first.wait(timeout=60)
        except subprocess.TimeoutExpired:
            rc = None
        c.eq(rc, 0, "Ctrl-C stops the stack cleanly")
        c.check(not os.path.exists(os.path.join(tmp, "run", "linkage.conf")),
                "and removes linkage.conf")
        again = subprocess.run(["flock", "-n", os.path.join(tmp, "run", "linkage.lock"), "true"],
                               capture_output=True, timeout=10)
        c.eq(again.returncode, 0, "the run directory's lock is free again")
    finally:
        if first is not None and first.poll() is None:
            os.killpg(first.pid, signal.SIGTERM)
            try:
                first.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(first.pid, signal.SIGKILL)
        subprocess.run([os.path.join(S.ROOT, "deploy", "pg.sh"), "stop", os.path.join(tmp, "pg"),
                        "immediate"], capture_output=True, timeout=60)
        ns.destroy()
        if c.failed and os.environ.get("LINKAGE_KEEP_TMP"):
            print("# kept %s (LINKAGE_KEEP_TMP)" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return c.done()


if __name__ == "__main__":
    sys.exit(main())
