"""The scenario library, end to end: every tests/scenarios/*.yaml played by `linkagectl drill`
against a stack of its own (the real daemons on a private PostgreSQL), plan time scaled.

Each scenario gets its stack set so that the district's local time at minute 0 is the
scenario's `clock` (dispatch's utc_offset_min), and its `time_scale` (default 60: a plan
minute is a second). The drill prints one line per expectation and rule, "ok - ..." or
"FAIL - ...: expected ..., got ...", and ends with "N passed, N failed"; this program adds
them up. Scenarios run three at a time. A failure names the scenario, the file line, the
minute, what was expected and what the readers showed.

LINKAGE_SCENARIOS="a.yaml b.yaml" plays only those (file names under tests/scenarios/).
"""

import concurrent.futures
import glob
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
import yaml  # noqa: E402

SCENARIOS = os.path.join(S.ROOT, "tests", "scenarios")
PARALLEL = 3
print_lock = threading.Lock()


def utc_offset_for(clock):
    """The utc_offset_min that makes the local time now `clock` ("HH:MM"), within a minute."""
    h, m = (int(x) for x in clock.split(":"))
    now = time.gmtime()
    off = (h * 60 + m - (now.tm_hour * 60 + now.tm_min)) % 1440
    return off - 1440 if off >= 720 else off


def play(path):
    """Plays one scenario on a stack of its own; returns (name, passed, failed, output)."""
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    scale = float(doc.get("time_scale", 60))
    st = S.Stack(name="scn-" + name.split(".")[0][:20])
    try:
        st.extra_env.update({
            "LINKAGE_TIME_SCALE": repr(scale),
            "LINKAGE_UNIT_HEARTBEAT_MS": "200",
        })
        if doc.get("clock"):
            st.extra_env["LINKAGE_UTC_OFFSET_MIN"] = str(utc_offset_for(str(doc["clock"])))
        st.start(daemons=("ledger", "intake", "router", "dispatch", "gateway"))
        token = st.token("drill", "coordinator")
        env = st.env()
        r = subprocess.run([os.path.join(S.BIN, "linkagectl"), "drill", path, "--token", token,
                            "--gateway", st.base_url], cwd=S.ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
        out = r.stdout + r.stderr
        last = re.findall(r"^(\d+) passed, (\d+) failed$", r.stdout, re.M)
        if not last:
            st.keep = True
            return name, 0, 1, out + "\n(no count line; exit %d)" % r.returncode
        p, f = int(last[-1][0]), int(last[-1][1])
        if f:
            st.keep = True
        return name, p, f, out
    except Exception as e:  # a stack that would not start is this scenario's failure
        st.keep = True
        return name, 0, 1, "could not play: %r" % (e,)
    finally:
        st.teardown()


def main():
    only = os.environ.get("LINKAGE_SCENARIOS", "").split()
    files = sorted(glob.glob(os.path.join(SCENARIOS, "*.yaml")))
    if only:
        files = [f for f in files if os.path.basename(f) in only]
    c = S.Checks()
    c.check(len(files) >= (1 if only else 20), "the library has at least 20 scenarios",
            "%d found" % len(files))
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        for name, p, f, out in pool.map(play, files):
            with print_lock:
                for line in out.splitlines():
                    if line.startswith("FAIL") or line.startswith("# scenario"):
                        print(("  %s: " % name) + line, flush=True)
                if f and not any(x.startswith("FAIL") for x in out.splitlines()):
                    print("  %s: %s" % (name, out[-2000:]), flush=True)
                c.passed += p
                c.failed += f
                S.note("%s: %d passed, %d failed" % (name, p, f))
    S.note("%d scenarios in %.0f s" % (len(files), time.monotonic() - start))
    return c.done()


if __name__ == "__main__":
    sys.exit(main())
