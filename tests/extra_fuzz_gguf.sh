#!/usr/bin/env bash
# Short libFuzzer run of the GGUF reader (tests/fuzz_gguf.c) from a seed corpus of small valid
# files: ours (test_gguf --write-sample / --write-small), one from the gguf Python package, and
# the first 64 KiB of the real model. FUZZ_SECONDS (default 20) sets the length.
cd "$(dirname "$0")/.."
. tests/fuzz_lib.sh
PYTHON=${PYTHON:-python3}
fuzz_build fuzz_gguf
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
fuzz_run fuzz_gguf 65536
