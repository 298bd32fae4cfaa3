#!/usr/bin/env bash
# A short libFuzzer run (15 s, FUZZ_SECONDS to change) of the fine-tuning JSONL loader, seeded
# with examples of each kind. Prints PASS/FAIL/SKIP lines.
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
secs=${FUZZ_SECONDS:-15}
out=$BUILD/fuzz
h=fuzz_sft
mkdir -p "$out"
if ! clang -O1 -g -fsanitize=fuzzer,address,undefined -I. -o "$out/$h" "tests/$h.c" -lm -lpthread 2>"$out/$h.build.log"; then
  echo "SKIP $h: clang with -fsanitize=fuzzer is not available (see $out/$h.build.log)"
  exit 0
fi
corpus=$out/corpus_$h
mkdir -p "$corpus"
printf '{"text": "Hello world"}\n\n{"prompt": "2+2=", "completion": "4"}\n' > "$corpus/seed_text"
printf '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi \\u00e9"}, {"role": "assistant", "content": "Hello"}]}\n' > "$corpus/seed_chat"
if "$out/$h" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=4096 "$corpus" >"$out/$h.log" 2>&1; then
  echo "PASS $h ($(grep -o 'Done [0-9]* runs' "$out/$h.log" | tail -1) in ${secs} s)"
else
  echo "FAIL $h: crash or sanitizer report, see $out/$h.log"
fi
