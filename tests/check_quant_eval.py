#!/usr/bin/env python3
# needs: numpy llama_cpp
"""deepseek perplexity --kl-divergence-base and deepseek quant-eval against numpy over llama.cpp's
logits: the shipped f32 model is the base, our Q4_0 of it the quantized model; llama.cpp (via
llama_cpp) evaluates both on the same chunks, numpy computes perplexity, the mean of
KL(base || quant) = sum p_base (log p_base - log p_quant) and the top-1 agreement over the
scored positions (the second half of each chunk). Ours must agree within small tolerances
(the two engines' logits differ by float rounding only). quant-eval must print the same figures
as perplexity, and its CSV and SVG must parse."""
import csv
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

CLI = os.environ.get("DS_CLI", "./deepseek")
BASE = "examples/shakespeare-tiny.gguf"
TEXT = "tests/fixtures/smollm2/text.txt"
CTX, CHUNKS = 128, 4


def say(status, name, why=""):
    print(f"{status} {name}" + (f": {why}" if why else ""), flush=True)


try:
    import numpy as np
    import llama_cpp
except ImportError as e:
    say("SKIP", "check_quant_eval", f"reference module missing ({e})")
    sys.exit(0)
if not os.access(CLI, os.X_OK):
    say("SKIP", "check_quant_eval", f"{CLI} not built")
    sys.exit(0)


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def reference(base, quant):
    """perplexity of both, mean KLD, top-1 agreement, from llama.cpp's logits"""
    with open(TEXT, "rb") as f:
        text = f.read()
    if text.endswith(b"\n"):
        text = text[:-1]
    lps, toks = [], None
    for path in (base, quant):
        llm = llama_cpp.Llama(model_path=path, n_ctx=CTX, n_batch=CTX, n_threads=2, logits_all=True, verbose=False)
        if toks is None:
            toks = llm.tokenize(text, add_bos=llm._model.add_bos_token(), special=False)
        rows = []
        for c in range(min(CHUNKS, len(toks) // CTX)):
            chunk = toks[c * CTX:(c + 1) * CTX]
            llm.reset()
            llm.eval(chunk)
            logits = np.array(llm.scores[:CTX], dtype=np.float32)
            rows.append((log_softmax(logits[CTX // 2:CTX - 1]), np.array(chunk[CTX // 2 + 1:])))
        lps.append(rows)
        del llm
    nll = [0.0, 0.0]
    kld, same, n = [], 0, 0
    for (lb, nxt), (lq, _) in zip(lps[0], lps[1]):
        idx = np.arange(len(nxt))
        nll[0] -= lb[idx, nxt].sum()
        nll[1] -= lq[idx, nxt].sum()
        kld.extend((np.exp(lb) * (lb - lq)).sum(axis=-1))
        same += int((lb.argmax(-1) == lq.argmax(-1)).sum())
        n += len(nxt)
    return np.exp(nll[0] / n), np.exp(nll[1] / n), float(np.mean(kld)), same / n, n


def parse_ppl(out):
    got = {}
    for line in out.splitlines():
        k, _, v = line.partition(":")
        if v:
            got[k.strip()] = float(v.split()[0])
    return got


def main():
    tmp = tempfile.mkdtemp()
    quant = os.path.join(tmp, "tiny-Q4_0.gguf")
    r = subprocess.run([CLI, "quantize", BASE, quant, "Q4_0", "-t", "2"], capture_output=True, text=True)
    if r.returncode:
        say("FAIL", "quant_eval_setup", r.stderr.strip()[-300:])
        return 1
    p0, p1, kld, top, n = reference(BASE, quant)
    common = ["-f", TEXT, "-c", str(CTX), "--chunks", str(CHUNKS), "-t", "2"]
    r = subprocess.run([CLI, "perplexity", "-m", quant, "--kl-divergence-base", BASE, *common], capture_output=True, text=True)
    if r.returncode:
        say("FAIL", "perplexity_kl_divergence_vs_numpy", r.stderr.strip()[-300:])
        return 1
    got = parse_ppl(r.stdout)
    print(f"reference: ppl base {p0:.4f} quant {p1:.4f} kld {kld:.6f} top {100 * top:.3f}% over {n}; ours {got}", file=sys.stderr)
    errs = []
    if abs(got["base perplexity"] - p0) > 0.003 * p0 or abs(got["perplexity"] - p1) > 0.003 * p1:
        errs.append(f"perplexity {got['base perplexity']:.4f}/{got['perplexity']:.4f} vs {p0:.4f}/{p1:.4f}")
    if abs(got["mean KLD"] - kld) > 0.01 * kld + 1e-7:
        errs.append(f"mean KLD {got['mean KLD']:.6f} vs numpy {kld:.6f}")
    if abs(got["same top p"] / 100 - top) > 2.5 / n:   # a near-tie may flip between engines
        errs.append(f"same top {got['same top p']:.3f}% vs numpy {100 * top:.3f}%")
    if abs(got["ln(PPL/PPL(base))"] - np.log(p1 / p0)) > 0.005:
        errs.append(f"ln ratio {got['ln(PPL/PPL(base))']:.5f} vs {np.log(p1 / p0):.5f}")
    say("FAIL" if errs else "PASS", "perplexity_kl_divergence_vs_numpy_over_llama_cpp_logits",
        "; ".join(errs) or f"kld {got['mean KLD']:.7f} vs {kld:.7f}, top-1 {got['same top p']:.2f}% vs {100 * top:.2f}%")

    csv_path, svg_path = os.path.join(tmp, "t.csv"), os.path.join(tmp, "t.svg")
    r = subprocess.run([CLI, "quant-eval", "-m", BASE, "--quant", quant, BASE, *common, "--csv", csv_path, "--svg", svg_path,
                        "--no-speed"], capture_output=True, text=True)
    if r.returncode:
        say("FAIL", "quant_eval_rows", r.stderr.strip()[-300:])
        return 1
    rows = list(csv.DictReader(open(csv_path)))
    errs = []
    if len(rows) != 3:
        errs.append(f"{len(rows)} CSV rows, want 3")
    else:
        q, same = rows[1], rows[2]
        if abs(float(q["mean_kld"]) - got["mean KLD"]) > 1e-6 or abs(float(q["ppl"]) - got["perplexity"]) > 1e-4:
            errs.append(f"quant row {q} differs from perplexity's {got}")
        if q["type"] != "Q4_0" or not 4.5 < float(q["bits_per_weight"]) < 6:
            errs.append(f"type {q['type']} at {q['bits_per_weight']} bpw")
        if float(same["mean_kld"]) > 1e-9 or float(same["same_top"]) != 1.0:
            errs.append(f"the base against itself: kld {same['mean_kld']}, top {same['same_top']}")
    try:
        svg = ET.parse(svg_path).getroot()
        if len([e for e in svg.iter() if e.tag.endswith("circle")]) != 1:
            errs.append("the SVG should plot the one row with KLD > 0")
    except ET.ParseError as e:
        errs.append(f"SVG does not parse: {e}")
    say("FAIL" if errs else "PASS", "quant_eval_rows_csv_svg", "; ".join(errs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
