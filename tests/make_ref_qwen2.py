#!/usr/bin/env python3
"""Writes tests/fixtures/qwen2/llama.bin: llama.cpp's logits (llama-cpp-python, 2 threads, one
batch from an empty context) for the tiny random qwen2 model and 256-token input that
build/test_qwen2_tiny generates from a fixed seed and writes with our GGUF writer.

    make build/test_qwen2_tiny && python3 tests/make_ref_qwen2.py

Layout (little-endian): char magic[8] = "DSQWREF1"; u64 content hash (from the C generator);
u32 n_pos; u32 n_vocab; i32 tokens[n_pos]; f32 logits[n_pos * n_vocab].
The hash lets test_qwen2_tiny notice a fixture made from another model.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_qwen2 import ROOT, llama_logits, make_files, read_record, write_record  # noqa: E402


def main():
    with tempfile.TemporaryDirectory() as d:
        if make_files(d) is None:
            sys.exit("make_ref_qwen2: build build/test_qwen2_tiny first")
        h, tokens, _ = read_record(os.path.join(d, "qwen2_tiny_input.bin"), b"DSQWIN01")
        logits = llama_logits(os.path.join(d, "qwen2_tiny.gguf"), tokens)
    out = os.path.join(ROOT, "tests", "fixtures", "qwen2")
    os.makedirs(out, exist_ok=True)
    write_record(os.path.join(out, "llama.bin"), b"DSQWREF1", h, tokens, logits)
    srt = logits.copy()
    srt.sort(axis=1)
    print(f"wrote {out}/llama.bin: {logits.shape}, hash {h:016x}, {len(set(logits.argmax(1)))} distinct top-1 ids, "
          f"smallest top-2 gap {float((srt[:, -1] - srt[:, -2]).min()):.4g}")


if __name__ == "__main__":
    main()
