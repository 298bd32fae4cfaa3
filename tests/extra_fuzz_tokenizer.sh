#!/usr/bin/env bash
# Short libFuzzer runs (15 s each, FUZZ_SECONDS to change) of the tokenizer harnesses:
# encode/decode round trips and the tokenizer.json loader. Prints PASS/FAIL/SKIP lines.
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
secs=${FUZZ_SECONDS:-15}
out=$BUILD/fuzz
mkdir -p "$out"
tiny='{"added_tokens":[{"id":9,"content":"<|end|>","special":true}],"normalizer":null,"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}]},"model":{"type":"BPE","vocab":{"h":0,"e":1,"l":2,"o":3,"\u0120":4,"he":5,"ll":6,"hell":7,"hello":8},"merges":["h e","l l",["he","ll"],"hell o"]}}'
for h in fuzz_tokenizer fuzz_tokenizer_json; do
  if ! clang -O1 -g -fsanitize=fuzzer,address,undefined -I. -o "$out/$h" "tests/$h.c" -lm -lpthread 2>"$out/$h.build.log"; then
    echo "SKIP $h: clang with -fsanitize=fuzzer is not available (see $out/$h.build.log)"
    continue
  fi
  corpus=$out/corpus_$h
  mkdir -p "$corpus"
  if [ "$h" = fuzz_tokenizer_json ]; then
    printf '%s' "$tiny" > "$corpus/seed_tiny.json"
    printf '%s' "${tiny//ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true/ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}" > "$corpus/seed_bl.json"
  else
    printf '\x00Hello world 123\n' > "$corpus/seed_en"
    printf '\x04\xe4\xb8\xad\xe6\x96\x87 12345 \xf0\x9f\x98\x80' > "$corpus/seed_cjk"
  fi
  if "$out/$h" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=4096 "$corpus" >"$out/$h.log" 2>&1; then
    echo "PASS $h ($(grep -o 'Done [0-9]* runs' "$out/$h.log" | tail -1) in ${secs} s)"
  else
    echo "FAIL $h: crash or sanitizer report, see $out/$h.log"
  fi
done
