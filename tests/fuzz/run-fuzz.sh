#!/bin/sh
# Builds every fuzz target with clang and libFuzzer into build-fuzz/ and runs
# each for FUZZ_SECONDS (default 60), printing executions and findings.
#
#   tests/fuzz/run-fuzz.sh                  every target (`make fuzz`)
#   FUZZ_SECONDS=300 tests/fuzz/run-fuzz.sh report command
#
# Each target starts from its committed seeds, tests/fuzz/corpus/<name>/, which
# it only reads; what it learns goes to build-fuzz/corpus/<name>/ and is kept
# for the next run. Crashes, leaks and timeouts land in
# build-fuzz/findings/<name>/. Worth keeping one as a regression seed: minimise
# it (build-fuzz/fuzz/fuzz_<name> -minimize_crash=1 -runs=10000 FILE), fix the
# bug, and copy it to tests/fuzz/corpus/<name>/regress-<what>; `make test`
# then replays it for good. Exits 1 if any target found something.
set -u

cd "$(dirname "$0")/../.." || exit 2
SECONDS_EACH=${FUZZ_SECONDS:-60}
OUT=build-fuzz
CC_FUZZ=${FUZZ_CC:-clang}

if [ $# -gt 0 ]; then
  targets="$*"
else
  targets=$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')
fi

bins=""
for t in $targets; do bins="$bins $OUT/fuzz/fuzz_$t"; done
# The project's sources again, with clang and the sanitizers; libFuzzer is linked only into the
# targets (fuzzer-no-link instruments the libraries for coverage without a second main).
mkdir -p $OUT
make --no-print-directory BUILD=$OUT BIN=$OUT/bin CC="$CC_FUZZ" OPT="-O1 -g -fno-omit-frame-pointer" \
  SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" $bins >$OUT/build.log 2>&1 || {
  echo "fuzz build failed (last lines of $OUT/build.log):"
  tail -n 30 $OUT/build.log
  exit 2
}

total_found=0
printf '%-16s %12s %10s %8s %8s  %s\n' target executions exec/s corpus found findings
for t in $targets; do
  corpus=$OUT/corpus/$t
  findings=$OUT/findings/$t
  mkdir -p "$corpus" "$findings"
  before=$(ls "$findings" | wc -l)
  log=$OUT/fuzz_$t.log
  # ASan's leak check is on by default; UBSan findings abort (no recovery) and count as crashes.
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    $OUT/fuzz/fuzz_$t -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$findings/" \
    "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  size=$(ls "$corpus" | wc -l)
  after=$(ls "$findings" | wc -l)
  found=$((after - before))
  [ "$rc" -ne 0 ] && [ "$found" -eq 0 ] && found=1
  total_found=$((total_found + found))
  what=$(ls -t "$findings" | head -n "$found" | tr '\n' ' ')
  printf '%-16s %12s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "$size" "$found" "$what"
  if [ "$found" -ne 0 ]; then
    echo "  ---- $log (the report)"
    grep -E -A40 '^==[0-9]+==ERROR|runtime error|^SUMMARY' "$log" | head -n 60 | sed 's/^/  | /'
    echo "  ----"
  fi
done
echo "fuzz: $total_found finding(s)"
[ "$total_found" -eq 0 ]
