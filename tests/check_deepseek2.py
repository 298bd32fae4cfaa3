#!/usr/bin/env python3
# needs: numpy
"""The tiny random deepseek2 models that build/test_deepseek2_tiny writes with our GGUF writer,
run by the live llama.cpp (llama-cpp-python): each must load there, and our top-1 must equal
llama.cpp's at every one of the 256 positions with max |logit difference| <= 1e-2 (F32 weights,
F32 KV cache on both sides).

The C test is run here in a temporary folder (DS_DEEPSEEK2_OUT) so the files compared are fresh.
Prints PASS/FAIL/SKIP lines like the C tests. The file layouts are described in
tests/test_deepseek2_tiny.c.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

from logits_record import read_record, write_record  # noqa: F401  (make_ref_*.py import them from here)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = ["v2_softmax", "lite_sigmoid_split", "v3_sigmoid", "v2_yarn"]
MAX_ABS_DIFF = 1e-2


def make_files(out_dir):
    """Runs the C test with its output in out_dir; returns its stdout, None without the binary."""
    exe = os.path.join(ROOT, os.environ.get("BUILD", "build"), "test_deepseek2_tiny")
    if not os.access(exe, os.X_OK):
        return None
    env = dict(os.environ, DS_DEEPSEEK2_OUT=out_dir)
    r = subprocess.run([exe, "matches_llama_cpp"], cwd=ROOT, env=env, capture_output=True, text=True)
    return r.stdout


def llama_logits(gguf_path, tokens):
    """llama.cpp's logits for tokens in one batch from an empty context, F32 KV cache."""
    from llama_cpp import Llama
    n = len(tokens)
    llm = Llama(model_path=gguf_path, n_ctx=n, n_batch=n, n_ubatch=n, n_threads=2, n_threads_batch=2,
                logits_all=True, verbose=False, type_k=0, type_v=0, flash_attn=False)
    llm.eval([int(t) for t in tokens])
    return np.array(llm.scores[:n], dtype=np.float32)


def compare(name, ref, ours):
    top_ref, top_ours = ref.argmax(1), ours.argmax(1)
    same = int((top_ref == top_ours).sum())
    diff = float(np.abs(ref - ours).max())
    srt = np.sort(ref, axis=1)
    print(f"deepseek2 {name} (live llama.cpp): top-1 equal at {same}/{len(ref)} positions, max |logit difference| {diff:.3g}, "
          f"llama.cpp's smallest top-2 gap {float((srt[:, -1] - srt[:, -2]).min()):.3g}", file=sys.stderr)
    if same != len(ref):
        return f"top-1 differs at {len(ref) - same} of {len(ref)} positions (first at {int(np.argmax(top_ref != top_ours))})"
    if diff > MAX_ABS_DIFF:
        return f"max |logit difference| {diff:.3g} > {MAX_ABS_DIFF}"
    return ""


def main():
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        print("SKIP deepseek2_llama_cpp_live: llama_cpp (llama-cpp-python) is not installed; "
              "test_deepseek2_tiny still compares with the committed llama.cpp logits")
        return 0
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        if make_files(d) is None:
            print("SKIP deepseek2_llama_cpp_live: build/test_deepseek2_tiny is not built")
            return 0
        for name in VARIANTS:
            gguf_path = os.path.join(d, name + ".gguf")
            if not os.path.exists(gguf_path):
                print(f"SKIP deepseek2_{name}_llama_cpp_live: the C test did not write the model (see its own result)")
                continue
            _, tokens, _ = read_record(os.path.join(d, name + "_input.bin"), b"DSDKIN01")
            try:
                ref = llama_logits(gguf_path, tokens)
            except Exception as e:  # llama.cpp refuses the file: our writer's fault
                print(f"FAIL deepseek2_{name}_llama_cpp_loads_our_gguf: {e}")
                bad = 1
                continue
            print(f"PASS deepseek2_{name}_llama_cpp_loads_our_gguf")
            ours_path = os.path.join(d, name + "_ours.bin")
            if not os.path.exists(ours_path):
                print(f"SKIP deepseek2_{name}_llama_cpp_live: our engine did not run the model")
                continue
            why = compare(name, ref, read_record(ours_path, b"DSDKOUR1")[2])
            print(f"FAIL deepseek2_{name}_llama_cpp_live: {why}" if why else f"PASS deepseek2_{name}_llama_cpp_live")
            bad |= bool(why)
    return bad


if __name__ == "__main__":
    sys.exit(main())
