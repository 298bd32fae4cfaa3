#!/usr/bin/env python3
# needs: numpy gguf
"""Adapters written by ds_trainer_save_lora load in llama.cpp (llama-cpp-python's lora_path) and
the gguf package: tests/test_lora.c leaves a tiny base (F32 and Q4_1), an adapter with non-zero
pairs and the trainer's next-token probabilities with it (build/test_lora_export_<type>.*);
llama.cpp's probabilities with base + adapter must match ours, and differ clearly from the base's
alone (so an adapter it ignored would fail). Also the adapter's keys and ggml shapes."""
import os, sys
import numpy as np

build = os.environ.get("BUILD", "build")
V, T = 256, 8


def logprobs(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    lg = np.array(llm.scores[: len(tokens)], dtype=np.float64)
    lg = lg - lg.max(-1, keepdims=True)
    return lg - np.log(np.exp(lg).sum(-1, keepdims=True))


def main():
    name = "check_lora_finetune"
    try:
        import gguf
        from llama_cpp import Llama
    except Exception as e:  # pragma: no cover
        print(f"SKIP {name}: {e}")
        return 0
    bad = 0
    for typ, tol in (("F32", 2e-3), ("Q4_1", 5e-2)):  # llama.cpp keeps K and V in f16, and for Q4_1 rounds activations to 8 bits
        base = os.path.join(build, "test_lora_f32.gguf" if typ == "F32" else f"test_lora_{typ}.gguf")
        adapter = os.path.join(build, f"test_lora_export_{typ}.gguf")
        ours = os.path.join(build, f"test_lora_export_{typ}.probs")
        if not all(os.path.exists(p) for p in (base, adapter, ours)):
            print(f"SKIP {name}_{typ}: run build/test_lora first")
            continue
        r = gguf.GGUFReader(adapter)
        f = {k: r.fields[k] for k in r.fields}
        kv = lambda k: bytes(f[k].parts[f[k].data[0]]).decode() if k in f else None
        shapes = {t.name: [int(x) for x in t.shape] for t in r.tensors}
        ok = (kv("general.type") == "adapter" and kv("adapter.type") == "lora" and kv("general.architecture") == "llama"
              and abs(float(f["adapter.lora.alpha"].parts[-1][0]) - 8.0) < 1e-6
              and shapes.get("blk.0.attn_q.weight.lora_a") == [64, 4] and shapes.get("blk.0.attn_q.weight.lora_b") == [4, 64]
              and shapes.get("blk.1.ffn_down.weight.lora_a") == [96, 4] and shapes.get("blk.1.ffn_down.weight.lora_b") == [4, 64])
        if not ok:
            print(f"FAIL {name}_{typ}_file: keys or shapes {shapes}")
            bad += 1
            continue
        toks = [int(x) for x in np.fromfile(ours, dtype="<i4", count=T)]
        probs = np.fromfile(ours, dtype="<f4", offset=4 * T).reshape(T, V).astype(np.float64)
        with_lora = logprobs(Llama(model_path=base, lora_path=adapter, n_ctx=16, logits_all=True, verbose=False, n_threads=1), toks)
        plain = logprobs(Llama(model_path=base, n_ctx=16, logits_all=True, verbose=False, n_threads=1), toks)
        mine = np.log(np.maximum(probs, 1e-30))
        diff = np.abs(with_lora - mine).max()
        effect = np.abs(plain - mine).max()
        if diff < tol and effect > 20 * tol:
            print(f"PASS {name}_{typ}_llama_cpp (max |log p diff| {diff:.2e}; the adapter moves log p by up to {effect:.2f})")
        else:
            print(f"FAIL {name}_{typ}_llama_cpp: max |log p diff| {diff:.3e} (bound {tol}), adapter effect {effect:.3e}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
