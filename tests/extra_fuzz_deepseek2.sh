#!/usr/bin/env bash
# Short libFuzzer run of the deepseek2 model reader (tests/fuzz_deepseek2.c) from the tiny
# random deepseek2 models test_deepseek2_tiny writes (both MLA layouts, with and without query
# compression, MoE with and without shared experts). FUZZ_SECONDS (default 20) sets the length.
cd "$(dirname "$0")/.."
. tests/fuzz_lib.sh
fuzz_build fuzz_deepseek2
if [ -x "$BUILD/test_deepseek2_tiny" ] || make --no-print-directory -s "$BUILD/test_deepseek2_tiny" >/dev/null 2>&1; then
  DS_DEEPSEEK2_OUT="$work/seeds" "$BUILD/test_deepseek2_tiny" matches_llama_cpp >/dev/null 2>&1
  rm -f "$work"/seeds/*.bin
fi
fuzz_run fuzz_deepseek2 400000
