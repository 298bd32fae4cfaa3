#!/usr/bin/env python3
"""Reference figures for SmolLM2-135M-Instruct Q4_1, produced by llama.cpp (llama-cpp-python).

    python3 tests/make_ref_smollm2.py [MODEL]      (default: models/SmolLM2-135M-Instruct.Q4_1.gguf)

writes, under tests/fixtures/smollm2/ (all binary files little-endian):

gen.bin    greedy generations. Prompts are tokenized BY LLAMA.CPP and stored as ids, so our
           tokenizer plays no part. Each prompt is evaluated in one batch from an empty context,
           then N_GEN tokens are decoded one at a time, always taking the argmax (EOS included:
           decoding goes on past it, the ids are just the model's argmax).
             char magic[8] = "DSGEN001"; u32 n_prompts; u32 n_gen;
             per prompt: u32 n_tok; i32 tok[n_tok]; i32 gen[n_gen];
                         f32 gap[n_gen]   (llama.cpp's top-1 minus top-2 logit at that step)
tf.bin     teacher-forced distributions. The first N_CHUNKS * CHUNK tokens of text.txt (tokenized
           by llama.cpp, no BOS: the model's GGUF says add_bos_token = false) are evaluated in
           chunks of CHUNK tokens, each from an empty context at positions 0..CHUNK-1. For every
           position r (its logits predict token r + 1 of the chunk):
             char magic[8] = "DSTF0001"; u32 n_chunks; u32 chunk; u32 k; u32 n_vocab;
             i32 tokens[n_chunks * chunk];
             per position: i32 ids[k]   (the k most probable tokens, most probable first, so
                                         ids[0] is llama.cpp's top-1)
                           f32 logp[k]  (their natural-log probabilities)
                           f32 logp_rest (log of the probability of all other tokens together)
           With the k tokens kept one by one and the rest merged into one bucket, KL(llama || ours)
           computed over those k + 1 outcomes is a LOWER BOUND of the full-vocabulary KL (merging
           outcomes can only lower a KL divergence: the data-processing inequality).
           tests/check_smollm2.py computes the exact full-vocabulary KL when llama_cpp is present.
ppl.json   llama.cpp's perplexity of text.txt with the method of its `llama-perplexity` tool:
           the whole file, less one trailing newline (as its -f option reads it), is tokenized at once (BOS only if the vocabulary asks for it; for this
           model it does not), cut into floor(n_tokens / n_ctx) non-overlapping chunks of n_ctx
           tokens; each chunk is evaluated from an empty KV cache at positions 0..n_ctx-1 (with
           its first token replaced by BOS when the vocabulary adds BOS); the logits at positions
           n_ctx/2 .. n_ctx-2 score the next token (n_ctx/2 - 1 tokens per chunk: the first half
           of the chunk is context only); perplexity = exp(mean negative log-likelihood over all
           scored tokens).
meta.json  the prompts as text, the settings and the llama.cpp build that made the figures.

llama.cpp runs on the CPU with 2 threads; its output was checked to be bit-identical between
two evaluations of the same chunk, so the figures are deterministic for this build.
"""
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "smollm2")
N_GEN = 64
N_CHUNKS, CHUNK, TOP_K = 4, 512, 128
PPL_CTX = 256
THREADS = 2

CHATML_SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
# (text, parse special tokens): plain continuation, facts, code, a list, two chat turns
PROMPTS = [
    ("Once upon a time, in a small village by the sea, there lived", False),
    ("The capital of France is", False),
    ('def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n', False),
    ("Here is a list of five fruits:\n1.", False),
    (CHATML_SYSTEM + "<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n", True),
    (CHATML_SYSTEM + "<|im_start|>user\nWrite a haiku about autumn.<|im_end|>\n<|im_start|>assistant\n", True),
]


def load(model_path, n_ctx):
    from llama_cpp import Llama
    return Llama(model_path=model_path, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=THREADS,
                 n_threads_batch=THREADS, logits_all=True, verbose=False)


def eval_fresh(llm, tokens):
    """Logits (n, n_vocab) of tokens evaluated in one batch from an empty context."""
    llm.reset()
    llm.eval(list(tokens))
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


def log_softmax(logits):
    x = logits.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def greedy(llm, prompt_ids):
    """llama.cpp's greedy continuation and its top-1 minus top-2 logit at every step."""
    logits = eval_fresh(llm, prompt_ids)[-1]
    gen, gaps = [], []
    for _ in range(N_GEN):
        top2 = np.sort(logits)[-2:]
        tok = int(np.argmax(logits))
        gen.append(tok)
        gaps.append(float(top2[1] - top2[0]))
        llm.eval([tok])
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    return gen, gaps


def write_gen(llm, path):
    records = []
    for text, special in PROMPTS:
        ids = llm.tokenize(text.encode(), add_bos=False, special=special)
        gen, gaps = greedy(llm, ids)
        records.append((ids, gen, gaps))
        print(f"gen: {len(ids)} prompt tokens -> {llm.detokenize(gen)[:60]!r} min gap {min(gaps):.4f}", file=sys.stderr)
    with open(path, "wb") as f:
        f.write(b"DSGEN001" + struct.pack("<II", len(records), N_GEN))
        for ids, gen, gaps in records:
            f.write(struct.pack("<I", len(ids)))
            f.write(np.asarray(ids, "<i4").tobytes() + np.asarray(gen, "<i4").tobytes() + np.asarray(gaps, "<f4").tobytes())


def top_k_rows(logp, k):
    """ids of the k most probable tokens per row (most probable first), their log-probs, and the
    log of the remaining mass."""
    part = np.argpartition(-logp, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(logp, part, axis=1), axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1)
    lp = np.take_along_axis(logp, ids, axis=1)
    rest = logp.copy()
    np.put_along_axis(rest, ids, -np.inf, axis=1)
    m = rest.max(axis=1, keepdims=True)
    lrest = (m + np.log(np.exp(rest - m).sum(axis=1, keepdims=True)))[:, 0]
    return ids, lp, lrest


def write_tf(llm, tokens, path):
    n_vocab = llm.n_vocab()
    with open(path, "wb") as f:
        f.write(b"DSTF0001" + struct.pack("<IIII", N_CHUNKS, CHUNK, TOP_K, n_vocab))
        f.write(np.asarray(tokens[: N_CHUNKS * CHUNK], "<i4").tobytes())
        for c in range(N_CHUNKS):
            logp = log_softmax(eval_fresh(llm, tokens[c * CHUNK:(c + 1) * CHUNK]))
            ids, lp, lrest = top_k_rows(logp, TOP_K)
            for r in range(CHUNK):
                f.write(ids[r].astype("<i4").tobytes() + lp[r].astype("<f4").tobytes() + struct.pack("<f", lrest[r]))
            print(f"tf: chunk {c + 1}/{N_CHUNKS}", file=sys.stderr)


def perplexity(llm, tokens, n_ctx, bos):
    """llama-perplexity's figure (see the module comment)."""
    nll, count = 0.0, 0
    first = n_ctx // 2
    for c in range(len(tokens) // n_ctx):
        chunk = list(tokens[c * n_ctx:(c + 1) * n_ctx])
        if bos is not None:
            chunk[0] = bos
        logp = log_softmax(eval_fresh(llm, chunk))
        for j in range(first, n_ctx - 1):
            nll -= logp[j, chunk[j + 1]]
            count += 1
    return float(np.exp(nll / count)), len(tokens) // n_ctx, count


def main():
    import llama_cpp
    model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    os.makedirs(OUT, exist_ok=True)
    text = open(os.path.join(OUT, "text.txt"), "rb").read()
    llm = load(model, CHUNK)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model)))
    write_gen(llm, os.path.join(OUT, "gen.bin"))
    tokens = llm.tokenize(text, add_bos=False, special=False)
    assert len(tokens) >= N_CHUNKS * CHUNK, f"text.txt has only {len(tokens)} tokens"
    write_tf(llm, tokens, os.path.join(OUT, "tf.bin"))
    del llm
    llm = load(model, PPL_CTX)
    ppl_text = text[:-1] if text.endswith(b"\n") else text   # llama.cpp's -f drops one trailing newline
    ppl_tokens = llm.tokenize(ppl_text, add_bos=add_bos, special=False)
    ppl, n_chunks, scored = perplexity(llm, ppl_tokens, PPL_CTX, llm.token_bos() if add_bos else None)
    print(f"perplexity: {ppl:.6f} ({n_chunks} chunks of {PPL_CTX}, {scored} scored tokens)", file=sys.stderr)
    with open(os.path.join(OUT, "ppl.json"), "w") as f:
        json.dump({"text": "text.txt", "n_ctx": PPL_CTX, "n_tokens": len(ppl_tokens), "n_chunks": n_chunks,
                   "scored_tokens": scored, "add_bos": add_bos, "perplexity": ppl}, f, indent=1)
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump({"model": os.path.basename(model), "llama_cpp_python": llama_cpp.__version__,
                   "llama_cpp_system": llama_cpp.llama_print_system_info().decode(), "threads": THREADS,
                   "n_gen": N_GEN, "prompts": [{"text": t, "special": s} for t, s in PROMPTS],
                   "tf": {"n_chunks": N_CHUNKS, "chunk": CHUNK, "top_k": TOP_K,
                          "text": "first n_chunks * chunk tokens of text.txt (from tinyshakespeare, public domain)"}},
                  f, indent=1)


if __name__ == "__main__":
    main()
