#!/usr/bin/env python3
"""`deepseek train-tokenizer` against Hugging Face's BpeTrainer: the same text and settings must
give the same vocabulary and merges, for each pre-tokenizer; the tokenizer.json we write must
load in `tokenizers` and encode as we do; the GGUF we write must load back with the same ids.
Prints PASS/FAIL/SKIP lines (timings are printed, never asserted)."""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_tokenizer as ct  # noqa: E402

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def hf_pre(name):
    from tokenizers import Regex, pre_tokenizers as P
    bl = P.ByteLevel(add_prefix_space=False, use_regex=False)
    return {
        "gpt2": P.ByteLevel(add_prefix_space=False, use_regex=True),
        "smollm": P.Sequence([P.Digits(individual_digits=True), P.ByteLevel(add_prefix_space=False, use_regex=True)]),
        "llama3": P.Sequence([P.Split(Regex(ct.PAT_LLAMA3), "isolated"), bl]),
        "qwen2": P.Sequence([P.Split(Regex(ct.PAT_QWEN2), "isolated"), bl]),
        "deepseek-v3": P.Sequence([P.Split(Regex(p), "isolated") for p in ct.PAT_DSV3] + [bl]),
    }[name]


def hf_train(path, pre, vocab, minf, out):
    from tokenizers import Tokenizer, decoders, models, trainers, pre_tokenizers as P
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = hf_pre(pre)
    tk.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL, initial_alphabet=P.ByteLevel.alphabet(), min_frequency=minf, show_progress=False)
    t0 = time.perf_counter()
    tk.train([path], tr)
    dt = time.perf_counter() - t0
    tk.save(out)
    return dt


def merges_of(path):
    m = json.load(open(path, encoding="utf-8"))["model"]
    return [tuple(x) if isinstance(x, list) else tuple(x.split(" ")) for x in m["merges"]], m["vocab"]


def main():
    try:
        import tokenizers  # noqa: F401
    except ImportError as e:
        print(f"SKIP tokenizer_train: {e}")
        return 0
    exe = ct.ensure_cli()
    parts = dict(ct.corpus(0.05))
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        eng = os.path.join(tmp, "english.txt")
        open(eng, "wb").write(parts["english"] if len(parts["english"]) > 10000 else b"")
        data = os.environ.get("DS_TEST_DATA", "")
        if os.path.exists(data):
            eng = data
        multi = os.path.join(tmp, "multi.txt")
        open(multi, "wb").write(b"".join(parts[k] for k in ["mixed", "chinese", "japanese", "numbers", "code", "emoji", "whitespace"]))
        cases = [("gpt2", eng, 4096, 0), ("smollm", eng, 4096, 0), ("llama3", eng, 4096, 2), ("qwen2", multi, 3000, 0), ("deepseek-v3", multi, 3000, 0), ("gpt2", eng, 20000, 40)]
        for pre, text, vocab, minf in cases:
            name = f"tokenizer_train_{pre}_{os.path.basename(text).split('.')[0]}_{vocab}_min{minf}"
            ours, theirs = os.path.join(tmp, "ours.json"), os.path.join(tmp, "hf.json")
            t0 = time.perf_counter()
            cmd = [exe, "train-tokenizer", "-f", text, "--vocab-size", str(vocab), "--pre", pre, "--min-frequency", str(minf)]
            for s in SPECIAL:
                cmd += ["--special", s]
            cmd += ["-o", ours]
            subprocess.run(cmd, check=True, capture_output=True)
            dt_ours = time.perf_counter() - t0
            dt_hf = hf_train(text, pre, vocab, minf, theirs)
            (om, ov), (hm, hv) = merges_of(ours), merges_of(theirs)
            if om != hm or ov != hv:
                bad += 1
                i = next((k for k in range(min(len(om), len(hm))) if om[k] != hm[k]), min(len(om), len(hm)))
                print(f"FAIL {name}: {len(om)} merges vs HF {len(hm)}; first difference at {i}: ours {om[i:i + 1]} HF {hm[i:i + 1]}; vocab equal: {ov == hv}")
                continue
            # our tokenizer.json in HF, and our GGUF back in ours: the same ids on a sample
            from tokenizers import Tokenizer
            sample = os.path.join(tmp, "sample.txt")
            sdata = open(multi, "rb").read()[:200_000] + open(text, "rb").read()[:200_000]
            open(sample, "wb").write(sdata)
            want = Tokenizer.from_file(ours).encode(sdata.decode("utf-8", errors="replace")).ids
            got = [int(x) for x in ct.finish(ct.start(exe, ours, sample, "--ids")).split()]
            gg = os.path.join(tmp, "ours.gguf")
            subprocess.run(cmd[:-1] + [gg], check=True, capture_output=True)
            got_gguf = [int(x) for x in ct.finish(ct.start(exe, gg, sample, "--ids")).split()]
            if got != want or got_gguf != want:
                bad += 1
                print(f"FAIL {name}: merges equal, but encoding differs: json {got == want}, gguf {got_gguf == want}")
                continue
            print(f"PASS {name} ({len(om)} merges equal to HF; ours {dt_ours:.2f} s, HF {dt_hf:.2f} s; json and gguf reload encode alike)")
            sys.stdout.flush()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
