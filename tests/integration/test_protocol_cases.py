"""The responder protocol and the router's commands as data (Mosquitto's one-conversation
tests): tests/cases/unit_messages.tsv against the running dispatch, tests/cases/commands.tsv
against the running router, each case sent on a fresh connection and its answer compared with
the table. Both tables document their own columns at their top. After each one-shot case
(UnitMessage.one_shot) the fixture's fire brigade console must still hold the unit's session.
"""

import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import command_pb2, event_pb2, report_pb2, unit_pb2  # noqa: E402,F401
import zmq  # noqa: E402
from google.protobuf import json_format  # noqa: E402

CASES = os.path.join(S.ROOT, "tests", "cases")


def load(name, columns):
    out, names = [], set()
    with open(os.path.join(CASES, name), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != columns:
                raise ValueError("%s:%d: %d columns, want %d" % (name, n, len(cols), columns))
            if cols[0] in names:
                raise ValueError("%s:%d: case %s repeated" % (name, n, cols[0]))
            names.add(cols[0])
            out.append([n] + cols)
    return out


def fill(text, values):
    for k, v in values.items():
        text = text.replace("{%s}" % k, v)
    return text


def dealer(st, unit_id=None):
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    S.curve_client(s, st.client_keys("unit", unit_id) if unit_id else None)
    s.connect(st.dispatch_endpoint)
    return s


def exchange(sock, body, timeout=5.0):
    """Sends one message; the answer to it, skipping the calls dispatch pushes meanwhile (it
    sends a unit its open calls after every Hello)."""
    sock.send_multipart([b"", body])
    end = time.monotonic() + timeout
    while sock.poll(max(1, int((end - time.monotonic()) * 1000))):
        frames = sock.recv_multipart()
        m = unit_pb2.DispatchMessage()
        m.ParseFromString(frames[-1])
        if m.WhichOneof("body") != "assignment":
            return m
    return None


def hello(sock, unit_id):
    m = unit_pb2.UnitMessage(unit_id=unit_id, seq=1, hello=unit_pb2.Hello(software="cases"))
    r = exchange(sock, m.SerializeToString())
    return r is not None and r.WhichOneof("body") == "welcome" and not r.welcome.error


def fixture(st, c):
    """A gas leak (III) in Zhouji Asia Bay whose fire brigade and committee are on line; and a
    closed incident. Returns the placeholder values and the fire brigade's console."""
    fire = st.unit("fire-wenjiang")
    st.unit("committee-zhouji-asia-bay")
    dev = st.device(device_id="cases-dev")
    ack, _ = dev.submit(S.make_report("cases-dev", 1, severity=report_pb2.SEVERITY_III,
                                      compound="zhouji-asia-bay", building="4"))
    closed_ack, _ = dev.submit(S.make_report("cases-dev", 2, severity=report_pb2.SEVERITY_IV,
                                             category=report_pb2.NEIGHBOUR_DISPUTE, kind="noise",
                                             compound="lijinggang", building="30"))
    dev.close()
    inc = ack.incident_id
    a = fire.wait_assignment(lambda x: x.incident_id == inc, timeout=15)
    c.check(a is not None, "the fixture's fire brigade is called")
    closed = closed_ack.incident_id
    S.wait_until(lambda: st.scalar("select tier from incidents where incident_id = '%s'" % closed),
                 10)
    rep = st.command(command_pb2.Command(command_id="fixture-close", actor="ops",
                                         incident_id=closed,
                                         close=command_pb2.CloseCommand(reason="fixture")))
    c.check(rep is not None and rep.status == command_pb2.CommandReply.OK,
            "the fixture's second incident is closed")
    return {"incident": inc, "fire": a.assignment_id if a else "none", "closed": closed}, fire


def session_kept(fire):
    """The console is still the unit's session: its own list is answered (a console taken over
    is refused instead), and it was never told it was taken over."""
    lst = fire.list(5)
    with fire.cond:
        errors = [w.error for w in fire.welcomes if w.error]
    return lst is not None and not errors, (lst is not None, errors)


def unit_cases(st, c, values, fire):
    for line, name, as_unit, message, expect, error in load("unit_messages.tsv", 5):
        message = fill(message, values)
        data = json.loads(message)
        if "hex" in data:
            body = bytes.fromhex(data["hex"])
        else:
            body = json_format.Parse(message, unit_pb2.UnitMessage()).SerializeToString()
        who = as_unit if as_unit != "-" else (data.get("unitId") or "fire-wenjiang")
        sock = dealer(st, who if S.CURVE else None)
        try:
            if as_unit != "-" and not hello(sock, as_unit):
                c.fail("%s (line %d): Hello as %s" % (name, line, as_unit))
                continue
            got = None
            for _ in range(20):  # BUSY: the same answer again, as the protocol says
                got = exchange(sock, body)
                if not (got and got.WhichOneof("body") == "answer_reply" and
                        got.answer_reply.status == unit_pb2.AnswerReply.BUSY):
                    break
                time.sleep(0.1)
        finally:
            sock.close()
        kind = got.WhichOneof("body") if got else None
        seen, err = "no answer", ""
        if kind == "welcome":
            seen, err = ("welcome_error" if got.welcome.error else "welcome_ok"), got.welcome.error
        elif kind == "answer_reply":
            r = got.answer_reply
            seen = {unit_pb2.AnswerReply.OK: "answer_ok",
                    unit_pb2.AnswerReply.REJECTED: "answer_rejected"}.get(r.status, "answer_busy")
            err = r.error
        elif kind == "assignments":
            seen = "list"
        ok = seen == expect and (error == "-" or error.lower() in err.lower())
        c.check(ok, "unit_messages.tsv:%d %s: %s%s" % (line, name, expect,
                                                        "" if error == "-" else " \"%s\"" % error),
                "got %s %r" % (seen, err))
        if data.get("oneShot"):
            kept, detail = session_kept(fire)
            c.check(kept, "unit_messages.tsv:%d %s: the fire brigade's console keeps its session"
                    % (line, name), detail)


def command_cases(st, c, values):
    for line, name, command, status, error in load("commands.tsv", 4):
        values["cid"] = "case-" + uuid.uuid4().hex[:12]
        cmd = json_format.Parse(fill(command, values), command_pb2.Command())
        rep = None
        for _ in range(50):  # BUSY: the same command again
            rep = st.command(cmd)
            if rep is None or rep.status != command_pb2.CommandReply.BUSY:
                break
            time.sleep(0.1)
        seen = command_pb2.CommandReply.Status.Name(rep.status) if rep else "no answer"
        err = rep.error if rep else ""
        ok = seen == status and (error == "-" or error.lower() in err.lower())
        c.check(ok, "commands.tsv:%d %s: %s%s" % (line, name, status,
                                                   "" if error == "-" else " \"%s\"" % error),
                "got %s %r" % (seen, err))


def body(st, c):
    values, fire = fixture(st, c)
    unit_cases(st, c, values, fire)
    command_cases(st, c, values)


if __name__ == "__main__":
    S.main(body, "protocol-cases", daemons=("ledger", "intake", "router", "dispatch"))
