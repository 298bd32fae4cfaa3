#!/usr/bin/env python3
# needs: numpy gguf
"""The trained model exported by tests/test_train_model.c (build/test_train_export.gguf) loads in
llama.cpp (llama-cpp-python) and the gguf package, and llama.cpp's next-token probabilities for a
sequence match the trainer's own (build/test_train_export.logits). This checks the tensor names,
shapes, metadata and RoPE convention of the export against an independent implementation."""
import os, sys
import numpy as np

build = os.environ.get("BUILD", "build")
model = os.path.join(build, "test_train_export.gguf")
ours = os.path.join(build, "test_train_export.logits")


def main():
    name = "check_train_export"
    if not (os.path.exists(model) and os.path.exists(ours)):
        print(f"SKIP {name}: run build/test_train_model first")
        return 0
    try:
        import gguf
        from llama_cpp import Llama
    except Exception as e:  # pragma: no cover
        print(f"SKIP {name}: {e}")
        return 0
    r = gguf.GGUFReader(model)
    names = {t.name for t in r.tensors}
    need = {"token_embd.weight", "output_norm.weight", "blk.0.attn_q.weight", "blk.1.ffn_down.weight"}
    if not need <= names:
        print(f"FAIL {name}_tensors: missing {need - names}")
        return 1
    print(f"PASS {name}_tensors")
    raw = np.fromfile(ours, dtype="<i4", count=16)
    probs = np.fromfile(ours, dtype="<f4", offset=64).reshape(16, -1)
    llm = Llama(model_path=model, n_ctx=16, logits_all=True, verbose=False, n_threads=1)
    llm.eval([int(x) for x in raw])
    logits = np.array(llm.scores[:16], dtype=np.float64)
    lp = logits - logits.max(-1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    diff = np.abs(lp - np.log(np.maximum(probs.astype(np.float64), 1e-30))).max()
    if diff < 1e-3:
        print(f"PASS {name}_llama_cpp_logprobs (max |diff| {diff:.2e})")
        return 0
    print(f"FAIL {name}_llama_cpp_logprobs: max |log p diff| {diff:.3e}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
