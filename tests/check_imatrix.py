#!/usr/bin/env python3
# needs: numpy gguf llama_cpp
"""deepseek imatrix against numpy: the shipped f32 model run forward in float64 numpy (RMSNorm,
RoPE, causal attention, SwiGLU) on the same chunks of text (tokens from llama.cpp's tokenizer),
summing each matmul input's squared columns; the file read with the gguf package must hold the
same sums (within the float rounding of f16 KV cache and attention the engine shares with
llama.cpp), the token counts and llama.cpp's imatrix keys. Also: quantize --imatrix refuses an
imatrix of another model with a message naming the tensor."""
import os
import subprocess
import sys
import tempfile

CLI = os.environ.get("DS_CLI", "./deepseek")
MODEL = "examples/shakespeare-tiny.gguf"
TEXT = "tests/fixtures/smollm2/text.txt"
CTX, CHUNKS = 64, 6


def say(status, name, why=""):
    print(f"{status} {name}" + (f": {why}" if why else ""), flush=True)


try:
    import numpy as np
    import gguf
    import llama_cpp
except ImportError as e:
    say("SKIP", "check_imatrix", f"reference module missing ({e})")
    sys.exit(0)
if not os.access(CLI, os.X_OK):
    say("SKIP", "check_imatrix", f"{CLI} not built")
    sys.exit(0)


def field(r, key):
    return r.fields[key].contents()


def numpy_sums(tokens_chunks):
    r = gguf.GGUFReader(MODEL)
    W = {t.name: np.array(t.data, dtype=np.float64) for t in r.tensors}
    n_layer, C = field(r, "llama.block_count"), field(r, "llama.embedding_length")
    H, Hkv, eps = field(r, "llama.attention.head_count"), field(r, "llama.attention.head_count_kv"), field(r, "llama.attention.layer_norm_rms_epsilon")
    base = field(r, "llama.rope.freq_base")
    D = C // H
    sums = {}

    def add(name, x):
        sums[name] = sums.get(name, 0) + (x * x).sum(axis=0)

    def norm(x, w):
        return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w

    def rope(x, T):   # (T, heads, D), adjacent pairs (llama.cpp's normal mode)
        pos = np.arange(T)[:, None]
        theta = pos * base ** (-np.arange(0, D, 2) / D)
        c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = x0 * c - x1 * s, x0 * s + x1 * c
        return out

    for toks in tokens_chunks:
        T = len(toks)
        x = W["token_embd.weight"][toks]
        for il in range(n_layer):
            p = f"blk.{il}."
            h = norm(x, W[p + "attn_norm.weight"])
            for k in ("attn_q", "attn_k", "attn_v"):
                add(p + k + ".weight", h)
            q = rope((h @ W[p + "attn_q.weight"].T).reshape(T, H, D), T)
            k = rope((h @ W[p + "attn_k.weight"].T).reshape(T, Hkv, D), T)
            v = (h @ W[p + "attn_v.weight"].T).reshape(T, Hkv, D)
            k, v = np.repeat(k, H // Hkv, axis=1), np.repeat(v, H // Hkv, axis=1)
            att = np.einsum("thd,shd->hts", q, k) / np.sqrt(D)
            att = att + np.triu(np.full((T, T), -np.inf), 1)
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            o = np.einsum("hts,shd->thd", att, v).reshape(T, H * D)
            add(p + "attn_output.weight", o)
            x = x + o @ W[p + "attn_output.weight"].T
            h = norm(x, W[p + "ffn_norm.weight"])
            add(p + "ffn_gate.weight", h)
            add(p + "ffn_up.weight", h)
            g, u = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
            a = g / (1 + np.exp(-g)) * u
            add(p + "ffn_down.weight", a)
            x = x + a @ W[p + "ffn_down.weight"].T
    return sums


def main():
    tmp = tempfile.mkdtemp()
    out = os.path.join(tmp, "imatrix.gguf")
    r = subprocess.run([CLI, "imatrix", "-m", MODEL, "-f", TEXT, "-o", out, "-c", str(CTX), "--chunks", str(CHUNKS), "-t", "2"],
                       capture_output=True, text=True)
    if r.returncode:
        say("FAIL", "imatrix_vs_numpy", r.stderr.strip()[-300:])
        return 1
    with open(TEXT, "rb") as f:
        text = f.read()
    text = text[:-1] if text.endswith(b"\n") else text   # as perplexity reads -f
    llm = llama_cpp.Llama(model_path=MODEL, n_ctx=CTX, verbose=False, vocab_only=True)
    toks = llm.tokenize(text, add_bos=False, special=False)   # the model adds no BOS
    chunks = [toks[i * CTX:(i + 1) * CTX] for i in range(CHUNKS)]
    ref = numpy_sums(chunks)
    rd = gguf.GGUFReader(out)
    ours = {t.name: np.array(t.data, dtype=np.float64).reshape(-1) for t in rd.tensors}
    errs = []
    if field(rd, "general.type") != "imatrix" or field(rd, "imatrix.chunk_count") != CHUNKS or field(rd, "imatrix.chunk_size") != CTX:
        errs.append("keys: " + ", ".join(f"{k}={field(rd, k)}" for k in ("general.type", "imatrix.chunk_count", "imatrix.chunk_size")))
    if set(n[:-len(".in_sum2")] for n in ours if n.endswith(".in_sum2")) != set(ref):
        errs.append(f"entries differ: {sorted(set(ref) ^ set(n[:-8] for n in ours if n.endswith('.in_sum2')))[:4]}")
    worst = 0.0
    for name, want in ref.items():
        got, cnt = ours.get(name + ".in_sum2"), ours.get(name + ".counts")
        if got is None or cnt is None:
            continue
        if cnt.tolist() != [CHUNKS * CTX]:
            errs.append(f"{name}.counts {cnt.tolist()}, want {CHUNKS * CTX}")
        rel = float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-6)))
        worst = max(worst, rel)
        if rel > 5e-3:
            errs.append(f"{name}: in_sum2 differs from numpy by {rel:.2e} (relative)")
    say("FAIL" if errs else "PASS", "imatrix_vs_numpy_forward", "; ".join(errs[:4]) or f"{len(ref)} matrices, worst relative difference {worst:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
