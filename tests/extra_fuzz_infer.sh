#!/usr/bin/env bash
# Short libFuzzer run of model loading and a first evaluation (tests/fuzz_infer.c), seeded with
# the tiny random models test_infer writes (F32 and Q8_0). FUZZ_SECONDS (default 20).
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
secs=${FUZZ_SECONDS:-20}
name=fuzz_infer
if ! command -v clang >/dev/null; then echo "SKIP $name: clang not installed"; exit 0; fi
mkdir -p "$BUILD/fuzz"
bin=$(cd "$BUILD/fuzz" && pwd)/fuzz_infer
if ! out=$(clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
           -o "$bin" tests/fuzz_infer.c -lm -lpthread 2>&1); then
  if grep -qi "fuzzer" <<< "$out"; then echo "SKIP $name: clang has no libFuzzer ($(head -1 <<< "$out"))"; exit 0; fi
  echo "FAIL $name: build failed: $(head -3 <<< "$out" | tr '\n' ' ')"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/seeds" "$work/corpus"
if [ -x "$BUILD/test_infer" ] || make --no-print-directory -s "$BUILD/test_infer" >/dev/null 2>&1; then
  BUILD=$work/seeds "$BUILD/test_infer" test_tiny_config >/dev/null 2>&1
  BUILD=$work/seeds "$BUILD/test_infer" test_rewind >/dev/null 2>&1
fi
if [ -z "$(ls -A "$work/seeds")" ]; then echo "SKIP $name: no seed models could be written"; exit 0; fi
log=$work/fuzz.log
(cd "$work" && timeout $((secs + 120)) "$bin" -max_total_time="$secs" -max_len=400000 -timeout=20 -rss_limit_mb=2048 \
   corpus seeds) > "$log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then echo "PASS $name: $(grep -o 'Done [0-9]* runs' "$log" | head -1) in ${secs}s"
else echo "FAIL $name: libFuzzer exit $rc: $(grep -m1 -E 'ERROR|SUMMARY|deadly' "$log")"; fi
