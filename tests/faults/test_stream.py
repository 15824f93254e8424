"""Guarantee 6 on the committed stream: a consumer that reconnects with its
last position receives every later event once, in order.

A consumer (`linkagectl tail`, which is lk_stream over lk_ledger_client, the
same code the router and dispatch fold with) follows the stream while devices
keep reporting; the ledger is killed with SIGKILL and restarted under it, then
the consumer itself is killed with SIGKILL and restarted with --from its last
position + 1. Together its two runs must print exactly the ledger's positions
1..N, each once, in order, with the ledger's event ids.
"""

import os
import re
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import report_pb2  # noqa: E402

LINE = re.compile(r"^position=(\d+) .*event_id=(\S+)")


def start_tail(st, out, *args):
    return subprocess.Popen([os.path.join(S.BIN, "linkagectl"), "tail"] + list(args),
                            cwd=S.ROOT, env=st.env(), stdout=out, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def lines_of(path):
    with open(path) as f:
        return [m.groups() for m in map(LINE.match, f.read().splitlines()) if m]


def body(st, c):
    total = 1500
    stop = threading.Event()
    sent = [0]

    def devices():
        dev = st.device()
        seq = 0
        while not stop.is_set() and seq < total:
            seq += 1
            rep = S.make_report("stream-dev", seq, category=report_pb2.LATENT_HAZARD,
                                kind="crack_%d" % seq, severity=report_pb2.SEVERITY_IV,
                                building=str(seq % 30 + 1))
            dev.submit(rep, timeout=30)
            sent[0] = seq
        dev.close()

    first = os.path.join(st.tmp, "tail1.out")
    second = os.path.join(st.tmp, "tail2.out")
    with open(first, "w") as out:
        tail = start_tail(st, out, "--from", "1")
    feeder = threading.Thread(target=devices)
    feeder.start()
    c.check(S.wait_until(lambda: len(lines_of(first)) >= 300, 30), "the consumer follows")
    st.kill9("ledger")
    st.start_daemon("ledger")
    c.check(S.wait_until(lambda: len(lines_of(first)) >= 800, 30),
            "the consumer goes on after the ledger was killed under it")
    tail.send_signal(signal.SIGKILL)
    tail.wait()
    got1 = lines_of(first)
    last = int(got1[-1][0]) if got1 else 0
    S.note("consumer killed at position %d; ledger killed and restarted under it before" % last)
    with open(second, "w") as out:
        tail = start_tail(st, out, "--from", str(last + 1))
    feeder.join(120)
    stop.set()
    c.eq(sent[0], total, "every report acknowledged")
    head = int(st.scalar("select max(position) from ledger"))
    c.check(S.wait_until(lambda: (lines_of(second) or [("0", "")])[-1][0] == str(head), 30),
            "the restarted consumer reaches the head", head)
    tail.send_signal(signal.SIGINT)
    tail.wait(10)
    got = got1 + lines_of(second)
    positions = [int(p) for p, _ in got]
    c.eq(positions, list(range(1, head + 1)), "every position once, in order, across both runs")
    ledger = [tuple(r) for r in st.sql("select position, event_id from ledger order by position")]
    c.eq(got, ledger, "the events are the ledger's")
    S.note("%d events through two consumer runs and a ledger kill, none missing or repeated" %
           len(got))


if __name__ == "__main__":
    S.main(body, "stream")
