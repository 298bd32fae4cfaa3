#!/usr/bin/env bash
# Short libFuzzer run of model loading and a first evaluation (tests/fuzz_infer.c), seeded with
# the tiny random models test_infer writes (F32 and Q8_0), and those with an SDA layer.
# FUZZ_SECONDS (default 20).
cd "$(dirname "$0")/.."
. tests/fuzz_lib.sh
fuzz_build fuzz_infer
if [ -x "$BUILD/test_infer" ] || make --no-print-directory -s "$BUILD/test_infer" >/dev/null 2>&1; then
  BUILD=$work/seeds "$BUILD/test_infer" test_tiny_config >/dev/null 2>&1
  BUILD=$work/seeds "$BUILD/test_infer" test_rewind >/dev/null 2>&1
fi
# the same tiny models with an SDA layer (a learned gate, and the layer's own keys as the gate)
if [ -x "$BUILD/test_sda" ] || make --no-print-directory -s "$BUILD/test_sda" >/dev/null 2>&1; then
  for f in "$work"/seeds/*.gguf; do "$BUILD/test_sda" --write-seeds "$f" "${f%.gguf}-sda" >/dev/null 2>&1; done
fi
fuzz_run fuzz_infer 400000
