#!/usr/bin/env bash
# Short libFuzzer run of the deepseek2 model reader (tests/fuzz_deepseek2.c) from the tiny
# random deepseek2 models test_deepseek2_tiny writes (both MLA layouts, with and without query
# compression, MoE with and without shared experts). FUZZ_SECONDS (default 20) sets the length.
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
secs=${FUZZ_SECONDS:-20}
name=fuzz_deepseek2
if ! command -v clang >/dev/null; then echo "SKIP $name: clang not installed"; exit 0; fi
mkdir -p "$BUILD/fuzz"
bin=$(cd "$BUILD/fuzz" && pwd)/fuzz_deepseek2
if ! out=$(clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
           -o "$bin" tests/fuzz_deepseek2.c -lm -lpthread 2>&1); then
  if grep -qi "fuzzer" <<< "$out"; then echo "SKIP $name: clang has no libFuzzer ($(head -1 <<< "$out"))"; exit 0; fi
  echo "FAIL $name: build failed: $(head -3 <<< "$out" | tr '\n' ' ')"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/seeds" "$work/corpus"
if [ -x "$BUILD/test_deepseek2_tiny" ] || make --no-print-directory -s "$BUILD/test_deepseek2_tiny" >/dev/null 2>&1; then
  DS_DEEPSEEK2_OUT="$work/seeds" "$BUILD/test_deepseek2_tiny" matches_llama_cpp >/dev/null 2>&1
  rm -f "$work"/seeds/*.bin
fi
if [ -z "$(ls -A "$work/seeds")" ]; then echo "SKIP $name: no seed files could be made"; exit 0; fi
log=$work/fuzz.log
(cd "$work" && timeout $((secs + 120)) "$bin" -max_total_time="$secs" -max_len=400000 -timeout=10 -rss_limit_mb=2048 \
   -print_final_stats=1 corpus seeds) > "$log" 2>&1
rc=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
if [ $rc -eq 0 ]; then
  echo "PASS $name: ${execs:-?} inputs in ${secs}s, no crash, hang or sanitizer report"
else
  keep=$BUILD/fuzz/fuzz_deepseek2_failure
  rm -rf "$keep"; mkdir -p "$keep"; cp "$log" "$keep/"; cp "$work"/crash-* "$work"/timeout-* "$work"/leak-* "$work"/oom-* "$keep/" 2>/dev/null
  echo "FAIL $name: exit $rc after ${execs:-?} inputs: $(grep -m1 -E 'ERROR|runtime error|deadly|timeout' "$log") (inputs and log in $keep)"
fi
