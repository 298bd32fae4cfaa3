#!/usr/bin/env python3
"""Single-thread encode throughput of `deepseek tokenize` against Hugging Face `tokenizers`,
side by side in one run, with SmolLM2's tokenizer (the GGUF for us, the same vocabulary,
merges and pre-tokenizer for the reference).

Texts: English (tinyshakespeare, $DS_TEST_DATA) and mixed multilingual text (the parity
corpus' Chinese, Japanese, Korean, Arabic, Hindi, emoji and mixed-script parts). The reference
encodes 100 KB documents one at a time on one thread (RAYON_NUM_THREADS=1), so Python's
per-call overhead is negligible; ours encodes the whole file on one thread. Best of N runs.

usage: python3 tools/bench_tokenizer.py [--reps N]"""
import os
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import check_tokenizer as ct  # noqa: E402


def hf_rate(tk, text, reps, doc=100_000):
    docs = [text[i:i + doc] for i in range(0, len(text), doc)]
    nbytes = len(text.encode())
    best = 1e30
    for _ in range(reps):
        t0 = time.perf_counter()
        for d in docs:
            tk.encode(d)
        best = min(best, time.perf_counter() - t0)
    return nbytes / 1e6 / best


def our_rate(exe, model, path, reps):
    out = subprocess.run([exe, "tokenize", "-m", model, "-f", path, "--bench", str(reps)], capture_output=True, text=True, check=True).stdout
    return float(out.split("MB/s")[1])


def main():
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
    exe = ct.ensure_cli()
    parts = dict(ct.corpus())
    multi = b"".join(parts[k] for k in ["chinese", "japanese", "korean", "arabic", "hindi", "emoji", "mixed", "latin-greek-cyrillic"])
    texts = [("english", parts["english"]), ("multilingual", multi)]
    with tempfile.TemporaryDirectory() as tmp:
        hf = ct.hf_tokenizers(tmp)["smollm-gguf"][1]
        print(f"{'text':14s} {'MB':>6s} {'ours MB/s':>10s} {'HF MB/s':>10s} {'ratio':>7s}")
        for name, data in texts:
            path = os.path.join(tmp, name + ".txt")
            open(path, "wb").write(data)
            text = data.decode("utf-8", errors="replace")
            assert hf.encode(text[:100_000]).ids is not None
            ours = our_rate(exe, ct.model_path(), path, reps)
            theirs = hf_rate(hf, text, reps)
            print(f"{name:14s} {len(data) / 1e6:6.2f} {ours:10.2f} {theirs:10.2f} {ours / theirs:6.1f}x")


if __name__ == "__main__":
    main()
