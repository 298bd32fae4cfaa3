#!/usr/bin/env python3
# needs: numpy gguf llama_cpp
"""deepseek quantize --imatrix against ggml's own importance-weighted quantizer
(ggml_quantize_chunk from the libggml-base that llama_cpp ships, called through ctypes with the
imatrix row): every tensor of our output must be byte-identical to ggml's quantization of the
same F32 rows with the same weights (in_sum2 / counts of the tensor's entry; none when the
imatrix has no entry). Cases: a synthetic file (random, outlier and all-zero rows; an imatrix
written by the gguf package as llama-imatrix writes it) for Q4_0 Q4_1 Q5_0 Q5_1 Q6_K, and the
shipped model with an imatrix from `deepseek imatrix`. Also: an imatrix of another model and a
truncated one are refused with a message naming the problem, and no output is left behind."""
import ctypes
import os
import subprocess
import sys
import tempfile

CLI = os.environ.get("DS_CLI", "./deepseek")
SHIPPED = "examples/shakespeare-tiny.gguf"
TEXT = "tests/fixtures/smollm2/text.txt"
GGML_TYPE = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q6_K": 14}


def say(status, name, why=""):
    print(f"{status} {name}" + (f": {why}" if why else ""), flush=True)


try:
    import numpy as np
    import gguf
    import llama_cpp
except ImportError as e:
    say("SKIP", "check_quantize_imatrix", f"reference module missing ({e})")
    sys.exit(0)
if not os.access(CLI, os.X_OK):
    say("SKIP", "check_quantize_imatrix", f"{CLI} not built")
    sys.exit(0)

libdir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
try:
    ggml = ctypes.CDLL(os.path.join(libdir, "libggml-base.so"))
    qchunk = ggml.ggml_quantize_chunk
except (OSError, AttributeError) as e:
    say("SKIP", "check_quantize_imatrix", f"no ggml_quantize_chunk in {libdir} ({e})")
    sys.exit(0)
qchunk.restype = ctypes.c_size_t
qchunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]


def ggml_quantize(qtype, rows, qw):
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    out = np.zeros(rows.nbytes + 1024, dtype=np.uint8)
    w = None if qw is None else np.ascontiguousarray(qw, dtype=np.float32)
    n = qchunk(GGML_TYPE[qtype], rows.ctypes.data, out.ctypes.data, 0, rows.shape[0], rows.shape[1], None if w is None else w.ctypes.data)
    return out[:n]


def imatrix_means(path):
    r = gguf.GGUFReader(path)
    t = {x.name: np.array(x.data, dtype=np.float32).reshape(-1) for x in r.tensors}
    return {n[:-8]: t[n] / t[n[:-8] + ".counts"][0] for n in t if n.endswith(".in_sum2")}


def compare(src, dst, im):
    """the first tensor whose bytes differ from ggml's, or None"""
    a = {t.name: t for t in gguf.GGUFReader(src).tensors}
    b = gguf.GGUFReader(dst)
    n = 0
    for t in b.tensors:
        name = t.tensor_type.name
        if name not in GGML_TYPE or a[t.name].tensor_type.name == name:
            continue
        rows = np.array(a[t.name].data, dtype=np.float32).reshape(-1, int(t.shape[0]))
        want = ggml_quantize(name, rows, im.get(t.name))
        got = np.asarray(t.data).view(np.uint8).reshape(-1)
        if got.shape != want.shape or not np.array_equal(got, want):
            bad = np.nonzero(got != want)[0] if got.shape == want.shape else [-1]
            return f"{t.name} ({name}, imatrix {'yes' if t.name in im else 'no'}): first differing byte {bad[0]} of {len(want)}", n
        n += 1
    return None, n


def quantize(src, dst, qtype, *extra):
    return subprocess.run([CLI, "quantize", src, dst, qtype, "-t", "2", *extra], capture_output=True, text=True)


def synthetic(tmp):
    rng = np.random.default_rng(7)
    model, imat = os.path.join(tmp, "synth.gguf"), os.path.join(tmp, "synth-imatrix.gguf")
    w = gguf.GGUFWriter(model, "llama")
    tensors = {
        "blk.0.attn_q.weight": rng.standard_normal((6, 512)).astype(np.float32) * 0.05,
        "blk.0.ffn_down.weight": (rng.standard_t(3, (5, 768)) * 0.02).astype(np.float32),   # heavy tails
        "blk.0.ffn_up.weight": np.concatenate([np.zeros((1, 256)), rng.uniform(0, 1, (2, 256)),
                                               rng.uniform(-1, 0, (2, 256))]).astype(np.float32),  # zero, one-signed rows
        "blk.1.attn_k.weight": rng.standard_normal((4, 256)).astype(np.float32),           # no imatrix entry
    }
    for k, v in tensors.items():
        w.add_tensor(k, v)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    w = gguf.GGUFWriter(imat, "imatrix")
    w.add_type("imatrix")
    w.add_array("imatrix.datasets", ["synthetic"])
    w.add_uint32("imatrix.chunk_count", 3)
    w.add_uint32("imatrix.chunk_size", 512)
    for k, v in tensors.items():
        if k.startswith("blk.1"):
            continue
        sums = (rng.gamma(0.5, 2.0, v.shape[1]) * 300).astype(np.float32)
        sums[::37] = 0.0   # columns never active
        w.add_tensor(k + ".in_sum2", sums.reshape(1, -1))
        w.add_tensor(k + ".counts", np.array([[1536.0]], dtype=np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    return model, imat


def main():
    tmp = tempfile.mkdtemp()
    model, imat = synthetic(tmp)
    im = imatrix_means(imat)
    for qt in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q6_K"):
        out = os.path.join(tmp, f"synth-{qt}.gguf")
        r = quantize(model, out, qt, "--pure", "--imatrix", imat)
        if r.returncode:
            say("FAIL", f"quantize_imatrix_{qt}_synthetic_vs_ggml", r.stderr.strip()[-300:])
            continue
        diff, n = compare(model, out, im)
        say("FAIL" if diff else "PASS", f"quantize_imatrix_{qt}_synthetic_vs_ggml", diff or f"{n} tensors byte-identical")

    imat2 = os.path.join(tmp, "tiny-imatrix.gguf")
    r = subprocess.run([CLI, "imatrix", "-m", SHIPPED, "-f", TEXT, "-o", imat2, "-c", "128", "--chunks", "8", "-t", "2"], capture_output=True, text=True)
    if r.returncode:
        say("FAIL", "quantize_imatrix_shipped_vs_ggml", r.stderr.strip()[-300:])
        return 1
    im2 = imatrix_means(imat2)
    for qt in ("Q4_0", "Q4_1", "Q5_0", "Q5_1"):
        out = os.path.join(tmp, f"tiny-{qt}.gguf")
        r = quantize(SHIPPED, out, qt, "--imatrix", imat2)
        if r.returncode:
            say("FAIL", f"quantize_imatrix_{qt}_shipped_vs_ggml", r.stderr.strip()[-300:])
            continue
        diff, n = compare(SHIPPED, out, im2)
        plain = os.path.join(tmp, f"tiny-{qt}-plain.gguf")
        quantize(SHIPPED, plain, qt)
        same = open(out, "rb").read() == open(plain, "rb").read()
        if not diff and same:
            diff = "the imatrix changed nothing"
        say("FAIL" if diff else "PASS", f"quantize_imatrix_{qt}_shipped_vs_ggml", diff or f"{n} tensors byte-identical")

    # an imatrix of another model: the synthetic one names tensors of other widths
    bad_out = os.path.join(tmp, "bad.gguf")
    r = quantize(SHIPPED, bad_out, "Q4_0", "--imatrix", imat)
    ok = r.returncode != 0 and "another model" in r.stderr and not os.path.exists(bad_out)
    say("PASS" if ok else "FAIL", "quantize_imatrix_of_another_model_refused", r.stderr.strip()[-200:])
    trunc = os.path.join(tmp, "trunc.gguf")
    with open(imat2, "rb") as f:
        data = f.read()
    with open(trunc, "wb") as f:
        f.write(data[:len(data) * 2 // 3])
    r = quantize(SHIPPED, bad_out, "Q4_0", "--imatrix", trunc)
    ok = r.returncode != 0 and r.stderr.strip() and not os.path.exists(bad_out)
    say("PASS" if ok else "FAIL", "quantize_imatrix_truncated_refused", r.stderr.strip()[-200:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
