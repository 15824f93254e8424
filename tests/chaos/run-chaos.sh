#!/bin/sh
# `make chaos`: the long versions of the chaos tests (LINKAGE_CHAOS_LONG=1): a minute of
# overload, bad peers in three alternating rounds of 10 s with the issue's 95% threshold, and
# test_chaos.py's faults (kill -9, PostgreSQL immediate stop, SIGSTOP, link cut / degrade /
# loss between network namespaces) in shuffled rounds for LINKAGE_CHAOS_SECONDS (300) under load.
# `make test` runs the same programs short (tests/run-all.sh). Prints each program's output
# and a total line, `N passed, N failed`.
set -u
cd "$(dirname "$0")/../.." || exit 2
PYTHON=${LINKAGE_PYTHON:-/usr/bin/python3}
export LINKAGE_CHAOS_LONG=1
pass=0
fail=0
for t in tests/chaos/test_*.py; do
  echo "== $t"
  out=$(mktemp /tmp/linkage-chaos.XXXXXX)
  timeout -k 10 900 "$PYTHON" "$t" </dev/null 2>&1 | tee "$out"
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  rm -f "$out"
  if [ -z "$last" ]; then
    fail=$((fail + 1))
    continue
  fi
  p=${last%% passed*}
  f=${last#*, }
  pass=$((pass + p))
  fail=$((fail + ${f%% failed}))
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
