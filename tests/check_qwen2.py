#!/usr/bin/env python3
# needs: numpy
"""The tiny random qwen2 model that build/test_qwen2_tiny writes with our GGUF writer, run by the
live llama.cpp (llama-cpp-python): it must load there, and our top-1 must equal llama.cpp's at
every one of the 256 positions (max |logit difference| <= 0.02: F32 weights, f16 KV cache).

The C test is run here in a temporary folder (DS_QWEN2_OUT) so the files compared are fresh.
Prints PASS/FAIL/SKIP lines like the C tests. The file layouts are described in
tests/test_qwen2_tiny.c.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

from logits_record import read_record, write_record  # noqa: F401  (make_ref_*.py import them from here)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_ABS_DIFF = 2e-2   # f16 KV cache on both sides (see tests/test_qwen2_tiny.c)


def make_files(out_dir):
    """Runs the C test with its output in out_dir; returns its stdout."""
    exe = os.path.join(ROOT, os.environ.get("BUILD", "build"), "test_qwen2_tiny")
    if not os.access(exe, os.X_OK):
        return None
    env = dict(os.environ, DS_QWEN2_OUT=out_dir)
    r = subprocess.run([exe], cwd=ROOT, env=env, capture_output=True, text=True)
    return r.stdout


def llama_logits(gguf_path, tokens):
    """llama.cpp's logits for tokens evaluated in one batch from an empty context."""
    from llama_cpp import Llama
    n = len(tokens)
    llm = Llama(model_path=gguf_path, n_ctx=n, n_batch=n, n_ubatch=n, n_threads=2, n_threads_batch=2,
                logits_all=True, verbose=False)
    llm.eval([int(t) for t in tokens])
    return np.array(llm.scores[:n], dtype=np.float32)


def main():
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        print("SKIP qwen2_tiny_llama_cpp_live: llama_cpp (llama-cpp-python) is not installed; "
              "test_qwen2_tiny still compares with the committed llama.cpp logits")
        return 0
    with tempfile.TemporaryDirectory() as d:
        out = make_files(d)
        gguf_path = os.path.join(d, "qwen2_tiny.gguf")
        if out is None or not os.path.exists(gguf_path):
            print("SKIP qwen2_tiny_llama_cpp_live: build/test_qwen2_tiny did not write the model (build it; see its own result)")
            return 0
        _, tokens, _ = read_record(os.path.join(d, "qwen2_tiny_input.bin"), b"DSQWIN01")
        try:
            ref = llama_logits(gguf_path, tokens)
        except Exception as e:  # llama.cpp refuses the file: our writer's fault
            print(f"FAIL qwen2_tiny_llama_cpp_loads_our_gguf: {e}")
            return 1
        print("PASS qwen2_tiny_llama_cpp_loads_our_gguf")
        ours_path = os.path.join(d, "qwen2_tiny_ours.bin")
        if not os.path.exists(ours_path):
            print("SKIP qwen2_tiny_llama_cpp_live: our engine did not run the model (see test_qwen2_tiny's result)")
            return 0
        _, _, ours = read_record(ours_path, b"DSQWOUR1")
    top_ref, top_ours = ref.argmax(1), ours.argmax(1)
    same = int((top_ref == top_ours).sum())
    diff = float(np.abs(ref - ours).max())
    srt = np.sort(ref, axis=1)
    print(f"qwen2 tiny (live llama.cpp): top-1 equal at {same}/{len(tokens)} positions, max |logit difference| {diff:.3g}, "
          f"llama.cpp's smallest top-2 gap {float((srt[:, -1] - srt[:, -2]).min()):.3g}", file=sys.stderr)
    if same != len(tokens):
        print(f"FAIL qwen2_tiny_llama_cpp_live: top-1 differs at {len(tokens) - same} of {len(tokens)} positions "
              f"(first at {int(np.argmax(top_ref != top_ours))})")
        return 1
    if diff > MAX_ABS_DIFF:
        print(f"FAIL qwen2_tiny_llama_cpp_live: max |logit difference| {diff:.3g} > {MAX_ABS_DIFF}")
        return 1
    print("PASS qwen2_tiny_llama_cpp_live")
    return 0


if __name__ == "__main__":
    sys.exit(main())
