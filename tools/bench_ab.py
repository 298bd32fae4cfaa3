#!/usr/bin/env python3
"""Two builds of `deepseek` side by side: is a change free of speed loss?

    python3 tools/bench_ab.py --before OLD/deepseek [--after ./deepseek] [--rounds 4] [-t 2]
                              [-m MODEL] [--what infer,train]

Each round runs the before build, then the after build (the order alternates every round, so a
machine whose speed drifts slows both alike), and the table shows each figure's median over
the rounds with the after/before ratio:
  infer  `deepseek bench -m MODEL -p 512 -n 128 --json` (pp512 and tg128 tokens/s)
  train  `deepseek train --bench --steps 3` (f32, bf16 and checkpointed tokens/s, interleaved
         inside the program too)
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench_ab: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return r.stdout


def infer(binary, a):
    out = json.loads(run([binary, "bench", "-m", a.model, "-p", "512", "-n", "128", "-t", str(a.t), "-r", "3",
                          "--json"]).strip().splitlines()[-1])
    return {"pp512 tok/s": out["pp_tok_s"], "tg128 tok/s": out["tg_tok_s"]}


def train(binary, a):
    out = run([binary, "train", "--bench", "--steps", "3", "--threads", str(a.t)])
    figs = {}
    for line in out.splitlines():
        m = re.match(r"^(f32 |bf16|f32 \+ activation checkpointing):\s+([0-9.]+) tokens/s", line)
        if m:
            figs["train " + m.group(1).strip() + " tok/s"] = float(m.group(2))
    if not figs:
        sys.exit(f"bench_ab: no tokens/s lines in the output of {binary} train --bench")
    return figs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=os.path.join(ROOT, "deepseek"))
    ap.add_argument("-m", "--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--what", default="infer,train")
    a = ap.parse_args()
    jobs = [(w, {"infer": infer, "train": train}[w]) for w in a.what.split(",")]
    for b in (a.before, a.after):
        if not os.access(b, os.X_OK):
            sys.exit(f"bench_ab: {b} is not an executable")
    if "infer" in a.what and not os.path.exists(a.model):
        sys.exit(f"bench_ab: no model at {a.model} (make model)")
    res = {"before": {}, "after": {}}
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    for rnd in range(a.rounds):
        order = ("before", "after") if rnd % 2 == 0 else ("after", "before")
        for what, fn in jobs:
            for side in order:
                print(f"round {rnd + 1}/{a.rounds}: {what}, {side} ...", file=sys.stderr)
                for k, v in fn(a.before if side == "before" else a.after, a).items():
                    res[side].setdefault(k, []).append(v)
        # the table so far after every round, so a run cut short still reports
        print(f"{cpu}, {a.t} threads, median of {rnd + 1} alternating round(s)", flush=True)
        print(f"{'':34}{'before':>12}{'after':>12}{'ratio':>9}")
        for k in res["before"]:
            b, x = statistics.median(res["before"][k]), statistics.median(res["after"].get(k, [0.0]))
            print(f"{k:34}{b:12.1f}{x:12.1f}{x / b if b else 0.0:9.3f}", flush=True)


if __name__ == "__main__":
    main()
