#!/usr/bin/env python3
"""`deepseek perplexity` on SmolLM2-135M-Instruct Q4_1 and tests/fixtures/smollm2/text.txt must be
within 0.5% of llama.cpp's perplexity of the same text with the same method (c = 256), committed
in tests/fixtures/smollm2/ppl.json by tests/make_ref_smollm2.py. Prints PASS/FAIL/SKIP lines."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures", "smollm2")
MAX_REL = 0.005


def main():
    name = "perplexity_within_half_percent_of_llama_cpp"
    model = os.environ.get("DS_TEST_MODEL", os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    exe = os.path.join(ROOT, "deepseek")
    if not os.path.exists(model):
        print(f"SKIP {name}: no model at {model} (make model)")
        return 0
    if not os.access(exe, os.X_OK):
        print(f"SKIP {name}: no ./deepseek program (make deepseek)")
        return 0
    with open(os.path.join(FIX, "ppl.json")) as f:
        ref = json.load(f)
    cmd = [exe, "perplexity", "-m", model, "-f", os.path.join(FIX, ref["text"]), "-c", str(ref["n_ctx"]), "-t", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines or not lines[-1].startswith("perplexity: "):
        print(f"FAIL {name}: `{' '.join(cmd)}` exited {r.returncode}: {r.stderr.strip()[-300:]}")
        return 1
    ours = float(lines[-1].split()[1])
    rel = abs(ours - ref["perplexity"]) / ref["perplexity"]
    print(f"perplexity (c={ref['n_ctx']}, {ref['n_chunks']} chunks): ours {ours:.4f}, llama.cpp {ref['perplexity']:.4f}, "
          f"difference {100 * rel:.3f}%", file=sys.stderr)
    if rel > MAX_REL:
        print(f"FAIL {name}: ours {ours:.4f} vs llama.cpp {ref['perplexity']:.4f} ({100 * rel:.2f}% > {100 * MAX_REL}%)")
        return 1
    print(f"PASS {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
