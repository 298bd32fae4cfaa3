#!/usr/bin/env bash
# Short libFuzzer run of the safetensors reader (tests/fuzz_safetensors.c) from a seed corpus of
# small valid files: one from the safetensors Python package (when installed), one from our
# writer (test_lora_infer's), and hand-made headers. FUZZ_SECONDS (default 20) sets the length.
cd "$(dirname "$0")/.."
. tests/fuzz_lib.sh
PYTHON=${PYTHON:-python3}
fuzz_build fuzz_safetensors
seed() { # header data-bytes file
  local h=$1 n=${#1}
  printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x00\\x00\\x00\\x00' $((n & 255)) $((n >> 8 & 255)) $((n >> 16 & 255)) $((n >> 24 & 255)))" > "$3"
  printf '%s' "$h" >> "$3"
  head -c "$2" /dev/zero >> "$3"
}
seed '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"format":"pt"}}' 16 "$work/seeds/hand.safetensors"
seed '{"x\u00e9":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},"y":{"dtype":"I64","shape":[],"data_offsets":[6,14]}}' 14 "$work/seeds/escapes.safetensors"
[ -f "$BUILD/lora_st.safetensors" ] && cp "$BUILD/lora_st.safetensors" "$work/seeds/ours.safetensors"
"$PYTHON" - "$work/seeds/package.safetensors" <<'PY' 2>/dev/null
import sys
import numpy as np
from safetensors.numpy import save_file
save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "h": np.ones(4, np.float16), "i": np.arange(3)},
          sys.argv[1], metadata={"format": "pt"})
PY
fuzz_run fuzz_safetensors 4096
