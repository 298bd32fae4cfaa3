#!/usr/bin/env bash
# Short libFuzzer run of the GGUF reader (tests/fuzz_gguf.c) from a seed corpus of small valid
# files: ours (test_gguf --write-sample / --write-small), one from the gguf Python package, and
# the first 64 KiB of the real model. FUZZ_SECONDS (default 20) sets the length.
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
secs=${FUZZ_SECONDS:-20}
name=fuzz_gguf
if ! command -v clang >/dev/null; then echo "SKIP $name: clang not installed"; exit 0; fi
mkdir -p "$BUILD/fuzz"
bin=$(cd "$BUILD/fuzz" && pwd)/fuzz_gguf
if ! out=$(clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
           -o "$bin" tests/fuzz_gguf.c -lm -lpthread 2>&1); then
  if grep -qi "fuzzer" <<< "$out"; then echo "SKIP $name: clang has no libFuzzer ($(head -1 <<< "$out"))"; exit 0; fi
  echo "FAIL $name: build failed: $(head -3 <<< "$out" | tr '\n' ' ')"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/seeds" "$work/corpus"
if [ -x "$BUILD/test_gguf" ] || make --no-print-directory -s "$BUILD/test_gguf" >/dev/null 2>&1; then
  "$BUILD/test_gguf" --write-sample "$work/seeds/sample.gguf"
  "$BUILD/test_gguf" --write-small "$work/seeds/small.gguf"
fi
"$PYTHON" - "$work/seeds/package.gguf" <<'PY' 2>/dev/null
import sys
import numpy as np
import gguf
w = gguf.GGUFWriter(sys.argv[1], "llama")
w.add_uint32("llama.block_count", 2); w.add_float32("x.f", 1.5); w.add_bool("x.b", True)
w.add_array("x.arr", [1, 2, 3]); w.add_array("x.sarr", ["a", "bc", ""]); w.add_int64("x.i64", -7)
w.add_tensor("t0", np.arange(8, dtype=np.float32).reshape(2, 4))
w.add_tensor("t1", np.arange(4, dtype=np.float16))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
PY
[ -f "${DS_TEST_MODEL:-}" ] && head -c 65536 "$DS_TEST_MODEL" > "$work/seeds/model_head.gguf"
if [ -z "$(ls -A "$work/seeds")" ]; then echo "SKIP $name: no seed files could be made"; exit 0; fi
log=$work/fuzz.log
(cd "$work" && timeout $((secs + 120)) "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
   -print_final_stats=1 corpus seeds) > "$log" 2>&1
rc=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
if [ $rc -eq 0 ]; then
  echo "PASS $name: ${execs:-?} inputs in ${secs}s, no crash, hang or sanitizer report"
else
  keep=$BUILD/fuzz/fuzz_gguf_failure
  rm -rf "$keep"; mkdir -p "$keep"; cp "$log" "$keep/"; cp "$work"/crash-* "$work"/timeout-* "$work"/leak-* "$work"/oom-* "$keep/" 2>/dev/null
  echo "FAIL $name: exit $rc after ${execs:-?} inputs: $(grep -m1 -E 'ERROR|runtime error|deadly|timeout' "$log") (inputs and log in $keep)"
fi
