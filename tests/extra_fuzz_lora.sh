#!/usr/bin/env bash
# Short libFuzzer run of LoRA adapter loading (tests/fuzz_lora.c) from seed adapters: GGUF ones
# test_lora_infer writes and a PEFT safetensors file. FUZZ_SECONDS (default 20) sets the length.
cd "$(dirname "$0")/.."
. tests/fuzz_lib.sh
fuzz_build fuzz_lora
if [ -x "$BUILD/test_lora_infer" ] || make --no-print-directory -s "$BUILD/test_lora_infer" >/dev/null 2>&1; then
  BUILD=$BUILD "$BUILD/test_lora_infer" formats >/dev/null 2>&1
  for f in "$BUILD/lora_fmt.gguf" "$BUILD/lora_peft/adapter_model.safetensors"; do [ -f "$f" ] && cp "$f" "$work/seeds/"; done
fi
fuzz_run fuzz_lora 65536
