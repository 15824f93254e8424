#!/bin/sh
# Runs every test program and prints one total line, `N passed, N failed`.
#
#   tests/run-all.sh          unit tests, then integration, wire, fault and chaos tests (short)
#   tests/run-all.sh unit     unit tests only
#
# Unit tests are the binaries $BUILD/tests/test_* (BUILD defaults to build);
# the Python tests find the daemons under $BIN (defaults to bin), so
# `make asan` (BUILD=build-asan BIN=build-asan/bin) tests the sanitised build.
# Every program prints `N passed, N failed` as its last line. A program that
# crashes, times out, exits non-zero with no failure counted, or prints no
# count line counts as one failure, and its output is shown. Lines a program
# starts with "# " are notes (figures) and are always shown.
#
# The suites in CURVE_SUITES then run a second time with CURVE on the device and
# unit ports (LINKAGE_TEST_CURVE=1: tests/lib/stack.py makes a server key pair and
# registers a key for every device and unit), listed as "NAME [curve]"; their
# counts are in the total. LINKAGE_CURVE_SUITES="..." replaces the list ("" for
# none). Everything else runs plain, whatever the caller's environment says.
set -u

cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
export BUILD BIN
# Debian's interpreter has python3-zmq and python3-protobuf; the PATH one may not.
PYTHON=${LINKAGE_PYTHON:-/usr/bin/python3}
what=${1:-all}
unset LINKAGE_TEST_CURVE
CURVE_SUITES=${LINKAGE_CURVE_SUITES-integration/test_spine.py integration/test_dispatch.py \
integration/test_ctl_unit.py integration/test_protocol_cases.py \
wire/test_wire.py faults/test_crash.py chaos/test_bad_peers.py}

total_pass=0
total_fail=0
out=$(mktemp /tmp/linkage-run-all.XXXXXX)
trap 'rm -f "$out"' EXIT INT TERM

# run NAME TIMEOUT_S COMMAND...
run() {
  name=$1
  limit=$2
  shift 2
  start=$(date +%s)
  timeout -k 10 "$limit" "$@" </dev/null >"$out" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  final=$(tail -n 1 "$out")
  p=0
  f=0
  why=""
  if [ -n "$last" ] && [ "$last" = "$final" ]; then
    p=${last%% passed*}
    f=${last#*, }
    f=${f%% failed}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      f=1
      why=" (exit $rc)"
    fi
    [ "$rc" -eq 124 ] && why=" (timed out after ${limit}s)"
  else
    f=$((f + 1))
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      why=" (timed out after ${limit}s, no final count line)"
    elif [ "$rc" -gt 128 ]; then
      why=" (killed by signal $((rc - 128)), no final count line)"
    else
      why=" (exit $rc, no final count line)"
    fi
    [ -n "$last" ] && p=${last%% passed*}
  fi
  grep -E '^# ' "$out" | sed 's/^/    /'
  if [ "$f" -ne 0 ]; then
    # Indented, so the only unindented count line is the total at the end.
    echo "  ---- output of $name (last 150 lines)"
    tail -n 150 "$out" | sed 's/^/  | /'
    echo "  ----"
  fi
  printf '%-40s %s passed, %s failed%s [%ss]\n' "$name" "$p" "$f" "$why" "$secs"
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
}

found=0
for t in "$BUILD"/tests/test_*; do
  [ -f "$t" ] && [ -x "$t" ] || continue
  found=1
  run "unit/$(basename "$t")" 120 "$t"
done
# The fuzz targets over their committed corpora (tests/fuzz/replay.c), as unit tests.
for t in "$BUILD"/tests/fuzz_replay_*; do
  [ -f "$t" ] && [ -x "$t" ] || continue
  run "fuzz/$(basename "$t")" 120 "$t"
done
if [ "$found" -eq 0 ]; then
  echo "no unit test binaries under $BUILD/tests (run make first)"
  total_fail=$((total_fail + 1))
fi

if [ "$what" != "unit" ]; then
  for dir in integration wire faults chaos; do
    for t in tests/$dir/test_*.py; do
      [ -f "$t" ] || continue
      run "$dir/$(basename "$t")" 300 "$PYTHON" "$t"
    done
  done
  for s in $CURVE_SUITES; do
    if [ -f "tests/$s" ]; then
      run "$s [curve]" 300 env LINKAGE_TEST_CURVE=1 "$PYTHON" "tests/$s"
    else
      echo "$s [curve]: no such test (LINKAGE_CURVE_SUITES)"
      total_fail=$((total_fail + 1))
    fi
  done
fi

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
