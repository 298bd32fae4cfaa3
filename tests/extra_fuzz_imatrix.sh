#!/usr/bin/env bash
# Short libFuzzer run of the importance-matrix reader (tests/fuzz_imatrix.c) from seeds made by
# `deepseek imatrix` on the shipped model and by the gguf Python package (llama-imatrix's layout).
# FUZZ_SECONDS (default 20) sets the length.
cd "$(dirname "$0")/.."
. tests/fuzz_lib.sh
PYTHON=${PYTHON:-python3}
fuzz_build fuzz_imatrix
if [ -x ./deepseek ]; then
  ./deepseek imatrix -m examples/shakespeare-tiny.gguf -f tests/fixtures/smollm2/text.txt -o "$work/seeds/ours.gguf" -c 32 --chunks 2 -t 1 >/dev/null 2>&1
fi
"$PYTHON" - "$work/seeds/package.gguf" <<'PY' 2>/dev/null
import sys
import numpy as np
import gguf
w = gguf.GGUFWriter(sys.argv[1], "imatrix")
w.add_type("imatrix"); w.add_array("imatrix.datasets", ["x"]); w.add_uint32("imatrix.chunk_count", 1); w.add_uint32("imatrix.chunk_size", 4)
w.add_tensor("blk.0.attn_q.weight.in_sum2", np.arange(8, dtype=np.float32).reshape(1, 8))
w.add_tensor("blk.0.attn_q.weight.counts", np.array([[4.0]], dtype=np.float32))
w.add_tensor("blk.0.ffn_up.weight.in_sum2", np.ones((2, 4), dtype=np.float32))
w.add_tensor("blk.0.ffn_up.weight.counts", np.array([[2.0], [3.0]], dtype=np.float32))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
PY
fuzz_run fuzz_imatrix 65536
