"""Loader of tests/cases/reports.tsv: intake's rejection cases as data.

The file documents its own format at its top (name, JSON overrides of a base
report, expected status, expected error substring). load_report_cases()
returns one Case per line, with the frames to send already encoded.
"""

import json
import os
from collections import namedtuple

import stack as S
from stack import report_pb2

CASES = os.path.join(S.ROOT, "tests", "cases", "reports.tsv")

Case = namedtuple("Case", "name line frames status reason sequence")


def _value(v):
    """A JSON override value as a Python value, or ("raw", bytes) for hex."""
    if isinstance(v, dict):
        if "repeat" in v:
            return v["repeat"] * int(v["times"])
        if "hex" in v:
            return ("raw", bytes.fromhex(v["hex"]))
        if "float" in v:
            return float(v["float"])
        raise ValueError("unknown override value %r" % (v,))
    return v


def _field_number(msg, name):
    return msg.DESCRIPTOR.fields_by_name[name].number


def build_report(base, overrides):
    """The serialised Report: base with overrides applied (see the file's head)."""
    r = report_pb2.Report()
    loc = base.get("location")
    for k, v in base.items():
        if k != "location":
            setattr(r, k, v)
    if loc is not None:
        for k, v in loc.items():
            setattr(r.location, k, v)
    raw = b""
    for key, v in overrides.items():
        v = _value(v)
        parts = key.split(".")
        if len(parts) > 2 or (len(parts) == 2 and parts[0] != "location"):
            raise ValueError("override key %r reaches no field" % key)
        msg = r.location if len(parts) == 2 else r
        name = parts[-1]
        if name not in msg.DESCRIPTOR.fields_by_name:
            raise ValueError("override key %r names no field" % key)
        if v is None:
            msg.ClearField(name)
        elif isinstance(v, tuple):
            msg.ClearField(name)
            field = S.raw_field(_field_number(msg, name), v[1])
            if len(parts) == 2:
                # A second Location holding only this field; protobuf merges it.
                field = S.raw_field(_field_number(r, "location"), field)
            raw += field
        else:
            setattr(msg, name, v)
    return r.SerializeToString() + raw, r.sequence


def load_report_cases(path=CASES):
    base = None
    out = []
    names = set()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("#! base\t"):
                base = json.loads(line.split("\t", 1)[1])
                continue
            if line.startswith("#") or line.strip() == "":
                continue
            cols = line.split("\t")
            if len(cols) != 4:
                raise ValueError("%s:%d: %d columns, want 4" % (path, n, len(cols)))
            if base is None:
                raise ValueError("%s:%d: case before the '#! base' line" % (path, n))
            name, overrides, status, reason = cols
            if name in names:
                raise ValueError("%s:%d: case %s repeated" % (path, n, name))
            names.add(name)
            if status not in report_pb2.ReportAck.Status.keys():
                raise ValueError("%s:%d: unknown status %r" % (path, n, status))
            body, seq = build_report(base, json.loads(overrides))
            out.append(Case(name, n, [body], status, reason, seq))
    if base is None:
        raise ValueError("%s: no '#! base' line" % path)
    return out


if __name__ == "__main__":
    for c in load_report_cases():
        print(c.line, c.name, c.status, repr(c.reason), len(c.frames[0]), c.sequence)
