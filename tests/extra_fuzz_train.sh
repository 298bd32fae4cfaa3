#!/usr/bin/env bash
# Short libFuzzer run of the training parsers (tests/fuzz_train.c: config text and token shard
# headers) from a seed corpus: a config file and a small shard. FUZZ_SECONDS (default 20).
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
secs=${FUZZ_SECONDS:-20}
name=fuzz_train
if ! command -v clang >/dev/null; then echo "SKIP $name: clang not installed"; exit 0; fi
mkdir -p "$BUILD/fuzz"
bin=$(cd "$BUILD/fuzz" && pwd)/fuzz_train
if ! out=$(clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
           -o "$bin" tests/fuzz_train.c -lm -lpthread 2>&1); then
  if grep -qi "fuzzer" <<< "$out"; then echo "SKIP $name: clang has no libFuzzer ($(head -1 <<< "$out"))"; exit 0; fi
  echo "FAIL $name: build failed: $(head -3 <<< "$out" | tr '\n' ' ')"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/seeds" "$work/corpus"
{ printf '\001'; cat examples/shakespeare-tiny.cfg; printf 'layer.2.attn = mla\nlayers.ffn = dense\n'; } > "$work/seeds/config"
# a shard: selector byte 0, then header (magic, version 1, 2 bytes per token, vocab 300, count 4) and tokens
printf '\000DSTK\001\000\000\000\002\000\000\000\054\001\000\000\004\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\001\000\002\000\003\000\053\001' > "$work/seeds/shard"
log=$work/fuzz.log
(cd "$work" && timeout $((secs + 120)) "$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
   -print_final_stats=1 corpus seeds) > "$log" 2>&1
rc=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
if [ $rc -eq 0 ]; then
  echo "PASS $name: ${execs:-?} inputs in ${secs}s, no crash, hang or sanitizer report"
else
  keep=$BUILD/fuzz/fuzz_train_failure
  rm -rf "$keep"; mkdir -p "$keep"; cp "$log" "$keep/"; cp "$work"/crash-* "$work"/timeout-* "$work"/leak-* "$work"/oom-* "$keep/" 2>/dev/null
  echo "FAIL $name: exit $rc after ${execs:-?} inputs: $(grep -m1 -E 'ERROR|runtime error|deadly|timeout' "$log") (inputs and log in $keep)"
fi
