#!/usr/bin/env python3
"""Speed of `deepseek bench` and of llama.cpp (through llama-cpp-python) side by side.

    python3 tools/bench_vs_llamacpp.py [-m MODEL] [-p 512] [-n 128] [-t 2] [-r 5] [--rounds 2]

Both sides measure the same things the way llama-bench does: pp = one batch of p random tokens
evaluated from an empty context, tg = n single-token decodes from an empty context; a warm-up
run first, then r timed runs, best kept. Each side runs in its own process (so peak memory,
VmHWM from /proc/self/status, is its own), and the two alternate `--rounds` times so that a
noisy neighbour hurts both alike; the best of all rounds is reported. llama.cpp is run with and
without flash attention (`--llama-fa both`, the default) and its faster setting is kept for each
figure. Its process also holds the Python interpreter and numpy: the table shows its peak
memory as measured and, separately, less the same process's VmRSS just before the model was
loaded.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def vm_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return 0.0


def llama_child(a):
    """Runs inside the child process: prints one JSON line."""
    import random
    import llama_cpp
    from llama_cpp import Llama
    base = vm_kib("VmRSS")
    llm = Llama(model_path=a.model, n_ctx=a.p + a.n + 1, n_batch=max(a.p, 1), n_ubatch=max(a.p, 1), n_threads=a.t,
                n_threads_batch=a.t, flash_attn=bool(a.fa), logits_all=False, verbose=False)
    rng = random.Random(1234)
    n_vocab = llm.n_vocab()

    def run(n, gen):
        toks = [rng.randrange(n_vocab) for _ in range(n)]
        llm.reset()
        llm._ctx.kv_cache_clear()
        t0 = time.perf_counter()
        if gen:
            for tok in toks:
                llm.eval([tok])
        else:
            llm.eval(toks)
        return time.perf_counter() - t0

    out = {"fa": a.fa, "llama_cpp_python": llama_cpp.__version__}
    for key, n, gen in (("pp", a.p, False), ("tg", a.n, True)):
        if n <= 0:
            continue
        run(1 if gen else n, gen)   # warm-up
        secs = [run(n, gen) for _ in range(a.r)]
        out[key + "_tok_s"] = n / min(secs)
        out[key + "_tok_s_mean"] = n * len(secs) / sum(secs)
    out["peak_rss_mib"] = vm_kib("VmHWM") / 1024
    out["base_rss_mib"] = base / 1024
    print(json.dumps(out))


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench_vs_llamacpp: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def best(runs, key):
    vals = [r[key] for r in runs if key in r]
    return max(vals) if vals else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--llama-fa", choices=["0", "1", "both"], default="both")
    ap.add_argument("--deepseek", default=os.path.join(ROOT, "deepseek"))
    ap.add_argument("--child-llama", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fa", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child_llama:
        llama_child(a)
        return
    if not os.path.exists(a.model):
        sys.exit(f"bench_vs_llamacpp: no model at {a.model} (make model)")
    if not os.access(a.deepseek, os.X_OK):
        sys.exit(f"bench_vs_llamacpp: no {a.deepseek} (make deepseek)")
    fas = [0, 1] if a.llama_fa == "both" else [int(a.llama_fa)]
    ours, theirs = [], []
    common = ["-p", str(a.p), "-n", str(a.n), "-t", str(a.t), "-r", str(a.r)]
    for rnd in range(a.rounds):
        print(f"round {rnd + 1}/{a.rounds}: deepseek ...", file=sys.stderr)
        ours.append(run_json([a.deepseek, "bench", "-m", a.model, *common, "--json"]))
        for fa in fas:
            print(f"round {rnd + 1}/{a.rounds}: llama.cpp (flash attention {'on' if fa else 'off'}) ...", file=sys.stderr)
            theirs.append(run_json([sys.executable, os.path.abspath(__file__), "--child-llama", "-m", a.model, *common, "--fa", str(fa)]))

    o_pp, o_tg, l_pp, l_tg = best(ours, "pp_tok_s"), best(ours, "tg_tok_s"), best(theirs, "pp_tok_s"), best(theirs, "tg_tok_s")
    o_rss = min(r["peak_rss_mib"] for r in ours)
    l_rss = min(r["peak_rss_mib"] for r in theirs)
    l_own = min(r["peak_rss_mib"] - r["base_rss_mib"] for r in theirs)
    bw = max(r["read_bw_gb_s"] for r in ours)
    wbytes = ours[0]["weight_bytes"]
    ratio = lambda x, y: f"{x / y:.2f}x" if y else "-"
    print(f"model {os.path.basename(a.model)}, {a.t} threads, best of {a.r} runs x {a.rounds} rounds"
          f" (llama-cpp-python {theirs[0]['llama_cpp_python']}, flash attention {a.llama_fa})")
    print(f"{'':24}{'deepseek.h':>14}{'llama.cpp':>14}{'ratio':>10}")
    if a.p:
        print(f"{'pp' + str(a.p) + ' tok/s':24}{o_pp:14.2f}{l_pp:14.2f}{ratio(o_pp, l_pp):>10}")
    if a.n:
        print(f"{'tg' + str(a.n) + ' tok/s':24}{o_tg:14.2f}{l_tg:14.2f}{ratio(o_tg, l_tg):>10}")
    print(f"{'peak RSS MiB':24}{o_rss:14.1f}{l_rss:14.1f}{ratio(o_rss, l_rss):>10}")
    print(f"{'  less interpreter':24}{'':14}{l_own:14.1f}{ratio(o_rss, l_own):>10}")
    if a.p:
        print(f"{'pp GFLOP/s':24}{best(ours, 'pp_gflop_s'):14.2f}")
    if a.n:
        print(f"{'tg GB/s of weights':24}{best(ours, 'tg_gb_s'):14.2f}{l_tg * wbytes / 1e9:14.2f}")
        print(f"{'read bandwidth GB/s':24}{bw:14.2f}   ({a.t} threads, measured by deepseek bench)")
        print(f"{'tg x bytes/token / bw':24}{o_tg * wbytes / 1e9 / bw:14.1%}{l_tg * wbytes / 1e9 / bw:14.1%}")


if __name__ == "__main__":
    main()
