#!/usr/bin/env bash
# The `deepseek` program under careless and hostile use: for each file argument of run, chat,
# perplexity (and its --kl-divergence-base), tokenize, info, bench, imatrix, quant-eval,
# quantize --imatrix, train-tokenizer and the --lora / export-lora / lora-convert
# adapters a missing file, a folder, /dev/null, a
# text file, a truncated and a bit-flipped model; malformed and out-of-range numbers for each
# numeric option; invalid UTF-8 and NUL bytes in every text input; empty inputs; context
# lengths past the model's. Each case checks the exit status, that stderr names the problem in
# one line "deepseek CMD: ...", and that an output file is never left half-written or
# clobbered (bit flips: the magic, the tensor count, the first key's length). All of it runs twice: with ./deepseek and with the CLI built with ASan+UBSan
# ($BUILD/san/deepseek), where any sanitizer report is a failure.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
TINY=examples/shakespeare-tiny.gguf                     # llama, context 256, no chat template
SMOL=${DS_TEST_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- inputs ---------------------------------------------------------------------------------
mkdir "$tmp/dir"
printf 'just some text, not a model\n' > "$tmp/text.txt"
head -c 3000 "$TINY" > "$tmp/truncated.gguf"
cp "$TINY" "$tmp/badmagic.gguf"; printf 'GGUX' | dd of="$tmp/badmagic.gguf" conv=notrunc 2>/dev/null
cp "$TINY" "$tmp/badcount.gguf"; printf '\377\377\377\377\377\377\377\177' | dd of="$tmp/badcount.gguf" bs=1 seek=8 conv=notrunc 2>/dev/null
cp "$TINY" "$tmp/badkey.gguf"; printf '\377\377\377\377\377\377\377\377' | dd of="$tmp/badkey.gguf" bs=1 seek=24 conv=notrunc 2>/dev/null
printf 'caf\351 \377\376 ok \0 nul\0 and \300\200 more \355\240\200 text\n' > "$tmp/bad_utf8.txt"
# every byte invalid: U+FFFD is three bytes, so more tokens than bytes
head -c 3000 /dev/zero | tr '\0' '\377' > "$tmp/many_ff.txt"
for i in $(seq 1 400); do printf 'The king \377 spoke \0 of night %d and day.\n' "$i"; done > "$tmp/ppl_bad.txt"
: > "$tmp/empty.txt"

cases() { # the program to test: $1
  local ds=$1 tag=$2 f
  # file arguments of every subcommand that reads a model
  for f in "$tmp/missing.gguf" "$tmp/dir" /dev/null "$tmp/text.txt" "$tmp/truncated.gguf" "$tmp/badmagic.gguf" "$tmp/badcount.gguf" "$tmp/badkey.gguf"; do
    local what; what=$(basename "$f")
    expect "$tag run_model_$what" fail "" "$ds" run -m "$f" -p hi -n 1
    expect "$tag chat_model_$what" fail "" "$ds" chat -m "$f" -n 1
    expect "$tag perplexity_model_$what" fail "" "$ds" perplexity -m "$f" -f "$tmp/text.txt"
    expect "$tag tokenize_model_$what" fail "" "$ds" tokenize -m "$f" -p hi
    expect "$tag info_model_$what" fail "" "$ds" info -m "$f"
    expect "$tag bench_model_$what" fail "" "$ds" bench -m "$f" -p 1 -n 1 -r 1
    expect "$tag imatrix_model_$what" fail "" "$ds" imatrix -m "$f" -f "$tmp/text.txt" -o "$tmp/im.gguf"
    expect "$tag quant_eval_base_$what" fail "" "$ds" quant-eval -m "$f" --quant "$TINY" -f "$tmp/text.txt" --no-speed
    expect "$tag quant_eval_quant_$what" fail "" "$ds" quant-eval -m "$TINY" --quant "$f" -f "$tmp/text.txt" --no-speed
    expect "$tag perplexity_kl_base_$what" fail "" "$ds" perplexity -m "$TINY" --kl-divergence-base "$f" -f "$tmp/text.txt"
    expect "$tag quantize_imatrix_$what" fail "" "$ds" quantize "$TINY" "$tmp/q.gguf" Q4_0 --imatrix "$f"
    if [ -e "$tmp/q.gguf" ] || [ -e "$tmp/im.gguf" ]; then result "$tag imatrix_no_output_$what" "an output was left behind"; fi
    expect "$tag run_lora_$what" fail "" "$ds" run -m "$TINY" --lora "$f" -p hi -n 1
    expect "$tag export_lora_$what" fail "" "$ds" export-lora -m "$TINY" --lora "$f" -o "$tmp/merged.gguf"
    expect "$tag lora_convert_$what" fail "" "$ds" lora-convert "$f" "$tmp/converted.gguf"
  done
  expect "$tag quant_eval_no_quant" fail "--quant" "$ds" quant-eval -m "$TINY" --quant -f "$tmp/text.txt"
  expect "$tag imatrix_text_too_short" fail "tokens" "$ds" imatrix -m "$TINY" -f "$tmp/text.txt" -o "$tmp/im.gguf" -c 64
  expect "$tag quantize_imatrix_of_a_model" fail "in_sum2" "$ds" quantize "$TINY" "$tmp/q.gguf" Q4_0 --imatrix "$TINY"
  expect "$tag run_lora_is_a_model" fail "not \"adapter\"" "$ds" run -m "$TINY" --lora "$TINY" -p hi -n 1
  expect "$tag run_lora_empty_scale" fail "" "$ds" run -m "$TINY" --lora "$TINY:" -p hi -n 1
  if [ -e "$tmp/merged.gguf" ] || [ -e "$tmp/converted.gguf" ]; then result "$tag lora_no_output_on_failure" "an output file was left behind"; else result "$tag lora_no_output_on_failure"; fi
  expect "$tag tokenize_badmagic_not_json" fail "neither a GGUF" "$ds" tokenize -m "$tmp/badmagic.gguf" -p hi
  expect "$tag run_missing_not_doubled" fail "" "$ds" run -m "$tmp/missing.gguf" -p hi
  if grep -q "missing.gguf.*missing.gguf" "$tmp/err"; then result "$tag run_error_prefix_once" "the path is named twice: $(head -n 1 "$tmp/err")"; else result "$tag run_error_prefix_once"; fi
  # text file arguments
  for f in "$tmp/missing.txt" "$tmp/dir"; do
    local what; what=$(basename "$f")
    expect "$tag run_prompt_$what" fail "" "$ds" run -m "$TINY" -f "$f" -n 1
    expect "$tag perplexity_text_$what" fail "" "$ds" perplexity -m "$TINY" -f "$f"
    expect "$tag tokenize_text_$what" fail "" "$ds" tokenize -m "$TINY" -f "$f"
    expect "$tag train_tokenizer_text_$what" fail "" "$ds" train-tokenizer -f "$f" --vocab-size 300 -o "$tmp/tok.json"
  done
  expect "$tag run_prompt_empty" fail "empty" "$ds" run -m "$TINY" -f /dev/null -n 1
  expect "$tag perplexity_text_empty" fail "tokens" "$ds" perplexity -m "$TINY" -f /dev/null -c 16
  expect "$tag tokenize_text_empty" 0 "" "$ds" tokenize -m "$TINY" -f /dev/null
  printf 'a\nb\n' > "$tmp/nopairs.txt"
  expect "$tag train_tokenizer_no_pairs" 0 "" "$ds" train-tokenizer -f "$tmp/nopairs.txt" --vocab-size 300 -o "$tmp/tok_np.json"
  expect "$tag train_tokenizer_empty" fail "empty" "$ds" train-tokenizer -f "$tmp/empty.txt" --vocab-size 300 -o "$tmp/tok.json"
  # invalid UTF-8 and NUL bytes in every text input
  expect "$tag run_prompt_bad_utf8" 0 "" "$ds" run -m "$TINY" -f "$tmp/bad_utf8.txt" -n 8 --temp 0
  expect "$tag run_prompt_stdin" 0 "" "$ds" run -m "$TINY" -f - -n 4 --temp 0 < "$tmp/bad_utf8.txt"
  expect "$tag run_prompt_arg_bad_utf8" 0 "" "$ds" run -m "$TINY" -p "$(printf 'caf\351 \377')" -n 4 --temp 0
  expect "$tag run_prompt_arg_empty" fail "empty" "$ds" run -m "$TINY" -p "" -n 1
  expect "$tag run_stop_bad_utf8" 0 "" "$ds" run -m "$TINY" -p hi -n 8 --stop "$(printf '\377x')" --stop "$(printf 'a\303')"
  expect "$tag run_stop_empty" 2 "--stop" "$ds" run -m "$TINY" -p hi -n 8 --stop ""
  expect "$tag tokenize_arg_bad_utf8" 0 "" "$ds" tokenize -m "$TINY" -p "$(printf 'caf\351 \377\376')"
  expect "$tag tokenize_arg_empty" 0 "" "$ds" tokenize -m "$TINY" -p "" --ids
  expect "$tag tokenize_decode_bad_ids" fail "token id" "$ds" tokenize -m "$TINY" -p "1 2 99999999999 x" --decode
  expect "$tag perplexity_bad_utf8" 0 "" "$ds" perplexity -m "$TINY" -f "$tmp/ppl_bad.txt" -c 64 --chunks 2
  expect "$tag data_tokenizer_bad_utf8" 0 "" "$ds" data -t "$TINY" -o "$tmp/bad_shards" "$tmp/many_ff.txt"
  expect "$tag tokenize_bad_utf8" 0 "" "$ds" tokenize -m "$TINY" -f "$tmp/bad_utf8.txt" --ids
  expect "$tag tokenize_stdin" 0 "" "$ds" tokenize -m "$TINY" -f - --count < "$tmp/bad_utf8.txt"
  expect "$tag train_tokenizer_bad_utf8" 0 "" "$ds" train-tokenizer -f "$tmp/bad_utf8.txt" --vocab-size 270 -o "$tmp/tok_ok.json"
  # output paths: checked before the work; a failed run leaves an existing output as it was
  expect "$tag train_tokenizer_out_no_folder" fail "does not exist" "$ds" train-tokenizer -f "$tmp/text.txt" --vocab-size 300 -o "$tmp/nope/tok.json"
  expect "$tag train_tokenizer_out_is_dir" fail "directory" "$ds" train-tokenizer -f "$tmp/text.txt" --vocab-size 300 -o "$tmp/dir"
  echo keep > "$tmp/keep.json"
  expect "$tag train_tokenizer_failure_keeps_output" fail "" "$ds" train-tokenizer -f "$tmp/empty.txt" --vocab-size 300 -o "$tmp/keep.json"
  [ "$(cat "$tmp/keep.json")" = keep ] || result "$tag train_tokenizer_output_untouched" "a failed run changed the existing output"
  # numbers: malformed and out of range, each option
  local v opt
  for v in abc "" 1e 0x10 " 5" 99999999999999 -99999999999999 nan; do
    for opt in -n --top-k --seed -t -c; do expect "$tag run_${opt}_[$v]" 2 "$opt" "$ds" run -m "$TINY" -p hi "$opt" "$v"; done
    for opt in --temp --top-p --min-p --repeat-penalty; do expect "$tag run_${opt}_[$v]" 2 "$opt" "$ds" run -m "$TINY" -p hi "$opt" "$v"; done
    for opt in -c -t --chunks; do expect "$tag perplexity_${opt}_[$v]" 2 "$opt" "$ds" perplexity -m "$TINY" -f "$tmp/text.txt" "$opt" "$v"; done
    for opt in -p -n -t -r; do expect "$tag bench_${opt}_[$v]" 2 "$opt" "$ds" bench -m "$TINY" "$opt" "$v"; done
    for opt in --vocab-size --min-frequency; do expect "$tag train_tokenizer_${opt}_[$v]" 2 "$opt" "$ds" train-tokenizer -f "$tmp/text.txt" -o "$tmp/t.json" --vocab-size 300 "$opt" "$v"; done
    expect "$tag tokenize_--bench_[$v]" 2 "--bench" "$ds" tokenize -m "$TINY" -p hi --bench "$v"
  done
  expect "$tag run_-t_1000" 2 "\[1, 512\]" "$ds" run -m "$TINY" -p hi -t 1000
  expect "$tag run_--top-p_100" 2 "\[0, 1\]" "$ds" run -m "$TINY" -p hi --top-p 100
  expect "$tag run_--min-p_2" 2 "\[0, 1\]" "$ds" run -m "$TINY" -p hi --min-p 2
  expect "$tag run_option_without_value" 2 "needs a value" "$ds" run -m "$TINY" -p
  expect "$tag run_unknown_option" 2 "unknown option" "$ds" run -m "$TINY" -p hi --bogus
  # context lengths past the model's (256)
  expect "$tag run_context_past_model" 2 "context" "$ds" run -m "$TINY" -p hi -c 4096 -n 1
  expect "$tag perplexity_context_past_model" 2 "context" "$ds" perplexity -m "$TINY" -f "$tmp/ppl_bad.txt" -c 100000
  expect "$tag version" 0 "" "$ds" --version
  # chat (needs a model with a chat template)
  if [ -f "$SMOL" ]; then
    expect "$tag chat_system_bad_utf8" 0 "" "$ds" chat -m "$SMOL" -n 1 -c 256 --temp 0 -t 2 --system "$(printf 'caf\351 \377')" < "$tmp/bad_utf8.txt"
    { printf 'hi\n\n\n'; head -c 2100000 /dev/zero | tr '\0' 'a'; printf '\nnul \0 byte\ncaf\351 \377\nbye\n'; } > "$tmp/chat_in.txt"
    expect "$tag chat_long_nul_and_bad_utf8_lines" 0 "" "$ds" chat -m "$SMOL" -n 2 -c 256 --temp 0 -t 2 < "$tmp/chat_in.txt"
    # the 2 MB line is refused; the NUL line is sent as text (answered like the others)
    if [ "$(grep -c 'not sent' "$tmp/err")" -eq 1 ] && grep -q 'longer than' "$tmp/err" && [ "$(grep -o '> ' "$tmp/err" | wc -l)" -ge 5 ]; then result "$tag chat_refuses_and_goes_on"
    else result "$tag chat_refuses_and_goes_on" "the long message was not the only one refused with the chat going on: $(tr '\n' '|' < "$tmp/err" | head -c 300)"; fi
    { head -c 1000000 /dev/zero | tr '\0' 'b'; printf '\nhello\n'; } > "$tmp/chat_1mb.txt"
    expect "$tag chat_1mb_line" 0 "" "$ds" chat -m "$SMOL" -n 2 -c 256 --temp 0 -t 2 < "$tmp/chat_1mb.txt"
    grep -q 'not sent' "$tmp/err" && result "$tag chat_1mb_line_refused" || result "$tag chat_1mb_line_refused" "no refusal on stderr"
    # the prompt of run is plain text unless --special: "<|im_start|>" is several tokens, then one
    expect "$tag run_prompt_plain_text" 0 "" "$ds" run -m "$SMOL" -p "<|im_start|>" -n 1 --temp 0 -t 2
    grep -qE 'prompt ([2-9]|[1-9][0-9]+) tokens' "$tmp/err" && result "$tag run_markup_is_text" || result "$tag run_markup_is_text" "$(grep -m1 prompt "$tmp/err")"
    expect "$tag run_prompt_special" 0 "" "$ds" run -m "$SMOL" -p "<|im_start|>" -n 1 --temp 0 -t 2 --special
    grep -q 'prompt 1 tokens' "$tmp/err" && result "$tag run_special_is_one_token" || result "$tag run_special_is_one_token" "$(grep -m1 prompt "$tmp/err")"
    if [ "$tag" = plain ]; then chat_ctrl_c "$ds" "$tag"; fi
  else
    echo "SKIP $tag chat_hostile: no model at $SMOL"
  fi
}

# Ctrl-C during a reply stops the reply, and the chat takes the next message
chat_ctrl_c() {
  local ds=$1 tag=$2 pid rc
  rm -f "$tmp/fifo"; mkfifo "$tmp/fifo"
  "$ds" chat -m "$SMOL" -n 1000 -c 2048 --temp 0.7 --seed 3 -t 1 < "$tmp/fifo" > "$tmp/out" 2> "$tmp/err" &
  pid=$!
  exec 7> "$tmp/fifo"
  echo "Write a very long story about a king, his three sons and their journeys, in many chapters." >&7
  sleep 2; kill -INT $pid 2>/dev/null; sleep 0.5
  echo "Thanks." >&7
  exec 7>&-
  wait $pid; rc=$?
  if [ $rc -eq 0 ] && grep -q 'interrupted' "$tmp/err" && [ "$(grep -o '> ' "$tmp/err" | wc -l)" -ge 3 ]; then result "$tag chat_ctrl_c_stops_the_reply"
  else result "$tag chat_ctrl_c_stops_the_reply" "exit status $rc; stderr: $(tr '\n' '|' < "$tmp/err" | head -c 300)"; fi
}

result() { # name [why]: PASS without a reason, FAIL with one
  if [ $# -lt 2 ]; then echo "PASS $1"; else echo "FAIL $1: $2"; fi
}

# expect NAME WANT PATTERN CMD...: WANT is an exit status or "fail" (1 or 2); a failure must
# print exactly one line on stderr, "deepseek ...", matching PATTERN; no sanitizer report ever
expect() {
  local name=$1 want=$2 pat=$3 rc lines first
  shift 3
  "$@" > "$tmp/out" 2> "$tmp/err"; rc=$?
  if grep -qE 'runtime error|AddressSanitizer|LeakSanitizer' "$tmp/err"; then
    result "$name" "sanitizer report: $(grep -m1 -E 'runtime error|ERROR' "$tmp/err")"; return
  fi
  if [ "$want" = fail ]; then
    if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then result "$name" "exit status $rc, want 1 or 2"; return; fi
  elif [ $rc -ne "$want" ]; then
    result "$name" "exit status $rc, want $want: $(head -c 300 "$tmp/err" | tr '\n' '|')"; return
  fi
  if [ $rc -ne 0 ]; then
    lines=$(wc -l < "$tmp/err"); first=$(head -n 1 "$tmp/err")
    if [ "$lines" -ne 1 ] || [[ "$first" != "deepseek "* ]]; then result "$name" "$lines lines on stderr, want one 'deepseek ...': $(head -c 300 "$tmp/err" | tr '\n' '|')"; return; fi
    if [ -n "$pat" ] && ! grep -qE -e "$pat" "$tmp/err"; then result "$name" "stderr does not say '$pat': $first"; return; fi
  fi
  result "$name"
}

if [ ! -x ./deepseek ] && ! make -s deepseek >/dev/null 2>&1; then echo "FAIL cli_hostile: ./deepseek does not build"; exit 0; fi
cases ./deepseek plain < /dev/null | awk '/^FAIL/ {f++; print; next} /^SKIP/ {print; next} {p++} END {if (!f) print "PASS cli_hostile (" p " cases)"}'
if [ -n "${DS_HOSTILE_NO_SAN:-}" ]; then
  echo "SKIP cli_hostile_asan_ubsan: DS_HOSTILE_NO_SAN is set"
elif make -s "$BUILD/san/deepseek" >/dev/null 2>&1; then
  ASAN_OPTIONS=detect_leaks=1 cases "$BUILD/san/deepseek" san < /dev/null | awk '/^FAIL/ {f++; print; next} /^SKIP/ {print; next} {p++} END {if (!f) print "PASS cli_hostile_asan_ubsan (" p " cases)"}'
else
  echo "SKIP cli_hostile_asan_ubsan: $BUILD/san/deepseek does not build (no sanitizer runtime?)"
fi
