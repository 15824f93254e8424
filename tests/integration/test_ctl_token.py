"""`linkagectl token add|revoke|list` on a private PostgreSQL.

The ledger starts first and creates the table `tokens` with its schema.
Then:

- add prints the token once, as the last line alone ("lkt_" + 43 base64url
  characters), exit 0; the table holds only SHA-256 of it (the digest
  matches hashlib's, no column and no row text holds the token or its
  random part), with the role and created_at; st.token() (the harness
  helper the gateway tests use) works the same way;
- a second add for an active name is refused with exit 1 and prints no
  token; bad names (space, quote, empty, 65 characters, non-ASCII) and bad
  or missing roles are usage errors (exit 2) that add no row;
- list prints name, role, created_at, revoked_at per token and never a
  token or a digest;
- revoke sets revoked_at (exit 0), a second revoke and a revoke of an
  unknown name exit 1; the name can then be given a new, different token,
  and the revoked row stays;
- on a database the ledger never touched, linkagectl creates the table
  itself (the same definition).
"""

import hashlib
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402

TOKEN_RE = re.compile(r"^lkt_[A-Za-z0-9_-]{43}$")
LIST_RE = re.compile(r"^name=(\S+) role=(reader|reporter|coordinator) "
                     r"created_at=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) "
                     r"revoked_at=(-|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$")


def rows(st):
    return st.sql("select name, role, encode(token_sha256, 'hex'), revoked_at is not null "
                  "from tokens order by created_at, name")


def listing(st, c, what):
    r = st.ctl("token", "list")
    c.check(r.returncode == 0, "token list exits 0 (%s)" % what, r.stderr.strip())
    out = {}
    for line in r.stdout.splitlines():
        m = LIST_RE.match(line)
        if not c.check(m is not None, "list line well formed (%s)" % what, line):
            continue
        out.setdefault(m.group(1), []).append((m.group(2), m.group(3), m.group(4)))
    return r.stdout, out


def body(st, c):
    c.eq(st.scalar("select to_regclass('tokens') is not null"), "t",
         "the ledger's schema created table tokens")
    cols = [r[0] for r in st.sql("select column_name from information_schema.columns "
                                 "where table_name = 'tokens' order by ordinal_position")]
    c.eq(cols, ["name", "role", "token_sha256", "created_at", "revoked_at"],
         "tokens has no column for the token itself")

    # ---- add
    r = st.ctl("token", "add", "ops-desk", "--role", "coordinator")
    lines = r.stdout.strip().splitlines()
    tok = lines[-1] if lines else ""
    c.check(r.returncode == 0, "token add exits 0", "exit %d: %s" % (r.returncode, r.stderr))
    c.check(TOKEN_RE.match(tok), "the last line is the token alone", repr(r.stdout))
    c.eq(r.stdout.count(tok), 1, "the token is printed once")
    c.check(tok not in r.stderr, "the token is not on stderr")

    t2 = st.token("city-open311", "reporter")
    t3 = st.token("wall-screen", "reader")
    c.check(TOKEN_RE.match(t2) and TOKEN_RE.match(t3), "st.token() returns tokens", (t2, t3))
    c.eq(len({tok, t2, t3}), 3, "every token is different")

    got = rows(st)
    want = [["ops-desk", "coordinator", hashlib.sha256(tok.encode()).hexdigest(), "f"],
            ["city-open311", "reporter", hashlib.sha256(t2.encode()).hexdigest(), "f"],
            ["wall-screen", "reader", hashlib.sha256(t3.encode()).hexdigest(), "f"]]
    c.eq(got, want, "the table holds name, role and sha256(token), not revoked")
    c.eq(st.scalar("select count(*) from tokens where octet_length(token_sha256) = 32"), "3",
         "each digest is 32 bytes")
    c.eq(st.scalar("select count(*) from tokens where created_at > now() - interval '5 minutes'"),
         "3", "created_at is set")
    # The whole row as text, and the digest in hex and base64: neither the token nor its
    # random part appears anywhere.
    dump = "\n".join("\t".join(x) for x in st.sql(
        "select t::text, encode(token_sha256, 'hex'), encode(token_sha256, 'base64') "
        "from tokens t"))
    for t in (tok, t2, t3):
        c.check(t not in dump and t[4:] not in dump and t[4:20] not in dump,
                "no plaintext of %s... in the table" % t[:8])
    c.check("lkt_" not in dump, "no token prefix in the table")

    # ---- refusals of add
    r = st.ctl("token", "add", "ops-desk", "--role", "reader")
    c.eq(r.returncode, 1, "a second add for an active name exits 1")
    c.check("already has an active token" in r.stderr, "... and says why", r.stderr.strip())
    c.check("lkt_" not in r.stdout, "... and prints no token", r.stdout)
    bad_names = ["two words", 'quo"te', "back\\slash", "", "x" * 65, "王"]
    for name in bad_names:
        r = st.ctl("token", "add", name, "--role", "reader")
        c.check(r.returncode == 2 and "NAME must be" in r.stderr,
                "bad name %r refused" % name[:12], "exit %d: %s" % (r.returncode, r.stderr))
    r = st.ctl("token", "add", "x" * 64, "--role", "reader")
    c.eq(r.returncode, 0, "a 64-character name is fine")
    for role in (["--role", "admin"], ["--role", "Coordinator"], ["--role", ""], []):
        r = st.ctl("token", "add", "someone", *role)
        c.check(r.returncode == 2 and "--role must be" in r.stderr,
                "bad role %r refused" % (role[1:] or "missing"),
                "exit %d: %s" % (r.returncode, r.stderr))
    r = st.ctl("token", "add", "someone", "--role", "reader", "extra")
    c.eq(r.returncode, 2, "an extra argument is a usage error")
    r = st.ctl("token", "revoke", "someone", "--role", "reader")
    c.eq(r.returncode, 2, "--role with revoke is a usage error")
    r = st.ctl("token", "frobnicate")
    c.eq(r.returncode, 2, "an unknown verb is a usage error")
    c.eq(st.scalar("select count(*) from tokens"), "4", "refused adds added no row")

    # ---- list
    out, lst = listing(st, c, "before revoke")
    c.eq(sorted(lst), sorted(["ops-desk", "city-open311", "wall-screen", "x" * 64]),
         "list names every token")
    c.eq([x[0] for x in lst.get("ops-desk", [])], ["coordinator"], "list shows the role")
    c.eq([x[2] for x in lst.get("ops-desk", [])], ["-"], "list shows not revoked as -")
    for t in (tok, t2, t3):
        c.check(t[4:] not in out and hashlib.sha256(t.encode()).hexdigest() not in out,
                "list shows neither the token nor its digest (%s...)" % t[:8])

    # ---- revoke
    r = st.ctl("token", "revoke", "ops-desk")
    c.check(r.returncode == 0 and "revoked token name=ops-desk" in r.stdout, "revoke exits 0",
            "exit %d: %s %s" % (r.returncode, r.stdout, r.stderr))
    c.eq(st.scalar("select revoked_at is not null from tokens where name = 'ops-desk'"), "t",
         "revoke sets revoked_at")
    c.eq(st.scalar("select count(*) from tokens where revoked_at is not null"), "1",
         "revoke touches only that token")
    r = st.ctl("token", "revoke", "ops-desk")
    c.check(r.returncode == 1 and "no active token" in r.stderr, "a second revoke exits 1",
            "exit %d: %s" % (r.returncode, r.stderr))
    r = st.ctl("token", "revoke", "nobody")
    c.check(r.returncode == 1 and "no active token named \"nobody\"" in r.stderr,
            "revoking an unknown name exits 1", "exit %d: %s" % (r.returncode, r.stderr))
    r = st.ctl("token", "revoke", "bad name")
    c.eq(r.returncode, 2, "revoke checks the name too")
    _, lst = listing(st, c, "after revoke")
    od = lst.get("ops-desk", [])
    c.check(len(od) == 1 and od[0][2] != "-", "list shows when it was revoked", od)

    # ---- a revoked name can be given a new token; the old row stays
    new = st.token("ops-desk", "coordinator")
    c.check(TOKEN_RE.match(new) and new != tok, "a revoked name gets a new, different token")
    od = st.sql("select encode(token_sha256, 'hex'), revoked_at is not null from tokens "
                "where name = 'ops-desk' order by created_at")
    c.eq(od, [[hashlib.sha256(tok.encode()).hexdigest(), "t"],
              [hashlib.sha256(new.encode()).hexdigest(), "f"]],
         "the revoked row stays beside the new one")
    r = st.ctl("token", "add", "ops-desk", "--role", "coordinator")
    c.eq(r.returncode, 1, "the new token is the one active token of the name")

    # ---- help
    r = st.ctl("token", "--help")
    c.check(r.returncode == 0 and "linkagectl token add NAME --role" in r.stdout,
            "token --help", r.stdout[:200])
    r = st.ctl("--help")
    c.check(re.search(r"^\s+token\s", r.stdout, re.M) is not None, "linkagectl --help lists token")

    # ---- a database the ledger never touched: linkagectl creates the table
    st.sql("create database fresh_tokens")
    fresh = re.sub(r"dbname=\S+", "dbname=fresh_tokens", st.pg)
    r = st.ctl("token", "add", "early", "--role", "reader", "--pg", fresh)
    lines = r.stdout.strip().splitlines()
    c.check(r.returncode == 0 and lines and TOKEN_RE.match(lines[-1]),
            "token add works before the ledger created the schema",
            "exit %d: %s" % (r.returncode, r.stderr))
    r = st.ctl("token", "list", "--pg", fresh)
    c.check(r.returncode == 0 and r.stdout.startswith("name=early role=reader "),
            "and the token is listed there", r.stdout)


if __name__ == "__main__":
    S.main(body, "ctl_token", daemons=("ledger",))
