# fuzz_lib.sh - what the tests/extra_fuzz_*.sh scripts share; source it from the repository root.
#   fuzz_build NAME         builds tests/NAME.c with libFuzzer + ASan + UBSan into $BUILD/fuzz/NAME
#                           and makes $work/seeds and $work/corpus; prints SKIP/FAIL and exits
#                           when clang or libFuzzer is missing or the build fails
#   fuzz_run NAME MAX_LEN   runs it for $secs seconds over corpus + seeds, prints PASS or FAIL
#                           (a failure keeps its inputs and log in $BUILD/fuzz/NAME_failure)
BUILD=${BUILD:-build}
secs=${FUZZ_SECONDS:-20}

fuzz_build() {
  local name=$1 out
  if ! command -v clang >/dev/null; then echo "SKIP $name: clang not installed"; exit 0; fi
  mkdir -p "$BUILD/fuzz"
  bin=$(cd "$BUILD/fuzz" && pwd)/$name
  if ! out=$(clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
             -o "$bin" "tests/$name.c" -lm -lpthread 2>&1); then
    if grep -qi "fuzzer" <<< "$out"; then echo "SKIP $name: clang has no libFuzzer ($(head -1 <<< "$out"))"; exit 0; fi
    echo "FAIL $name: build failed: $(head -3 <<< "$out" | tr '\n' ' ')"; exit 0
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/seeds" "$work/corpus"
}

fuzz_run() {
  local name=$1 max_len=$2 log rc execs keep
  if [ -z "$(ls -A "$work/seeds")" ]; then echo "SKIP $name: no seed files could be made"; return; fi
  log=$work/fuzz.log
  (cd "$work" && timeout $((secs + 120)) "$bin" -max_total_time="$secs" -max_len="$max_len" -timeout=20 -rss_limit_mb=2048 \
     -print_final_stats=1 corpus seeds) > "$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  if [ $rc -eq 0 ]; then
    echo "PASS $name: ${execs:-?} inputs in ${secs}s, no crash, hang or sanitizer report"
  else
    keep=$BUILD/fuzz/${name}_failure
    rm -rf "$keep"; mkdir -p "$keep"; cp "$log" "$keep/"; cp "$work"/crash-* "$work"/timeout-* "$work"/leak-* "$work"/oom-* "$keep/" 2>/dev/null
    echo "FAIL $name: exit $rc after ${execs:-?} inputs: $(grep -m1 -E 'ERROR|runtime error|deadly|timeout' "$log") (inputs and log in $keep)"
  fi
}
