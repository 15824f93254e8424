"""What each kind of bad peer costs linkage-intake, with no legitimate load:
intake's CPU (all its threads, from /proc) while 100 bad peers of one kind act
every INTERVAL_US, for each kind in turn, then all kinds mixed. A measuring
tool for the README's figures, not a test (tests/run-all.sh runs test_*.py):

    /usr/bin/python3 tests/chaos/junk_cost.py [INTERVAL_US]     (default 100000)

With LINKAGE_TEST_CURVE=1 the ZeroMQ bad peers present unknown keys (see
build/chaos/overload's doc). The stack is pinned to the upper half of the CPUs
and the generator to the lower half, as in test_bad_peers.py.
"""

import os
import signal
import sys
import time

import chaos as X
import stack as S
import test_bad_peers as B

KINDS = ("raw_tcp", "random_frames", "oversized", "empty_frames", "no_delimiter", "all")
SECONDS = 5.0


def body(st, c):
    interval = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    if B.STACK_CPUS is not None:
        X.pin_stack(st, B.STACK_CPUS)
    env = {}
    if st.curve:
        env = {"LINKAGE_OVERLOAD_SERVER_KEY": st.server_public.decode(),
               "LINKAGE_OVERLOAD_RETRY_US": str(B.JUNK_RETRY_MS * 1000)}
    pid = st.daemons["intake"].proc.pid
    for kind in KINDS:
        junk = X.start_generator("junk", st.intake_endpoint, 0, B.CONNS, interval,
                                 *([] if kind == "all" else [kind]), cpus=B.LOAD_CPUS, env=env)
        if not c.eq(junk.stdout.readline().strip(), "ready=1", "%s peers running" % kind):
            junk.kill()
            return
        time.sleep(0.5)
        c0, t0 = B.cpu_s(pid), time.monotonic()
        time.sleep(SECONDS)
        c1, t1 = B.cpu_s(pid), time.monotonic()
        junk.send_signal(signal.SIGTERM)
        j = X.finish_generator(junk, 30)
        core = (c1 - c0) / (t1 - t0)
        S.note("%-13s intake %4.1f%% of a core: %s junk messages/s, %s TCP connects, "
               "%s new CURVE sockets in %s s" % (kind, 100 * core, j["junk_per_s"],
                                                j["tcp_connects"], j["curve_retries"],
                                                j["seconds"]))
        c.check(st.alive("intake"), "intake alive after the %s peers" % kind)


if __name__ == "__main__":
    S.main(body, "junk-cost")
