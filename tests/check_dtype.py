#!/usr/bin/env python3
# needs: numpy gguf
"""Dtypes against the gguf package's numpy implementations (gguf.quants) and numpy's float16:
bit-exact quantize/dequantize of random data, all 65536 halves, and real tensors of the
SmolLM2 model. Drives build/test_dtype in its --quantize/--dequantize/--f16-table modes."""
import os
import subprocess
import sys
import tempfile

import numpy as np

BUILD = os.environ.get("BUILD", "build")
TOOL = os.path.join(BUILD, "test_dtype")


def say(status, name, why=""):
    print(f"{status} {name}" + (f": {why}" if why else ""), flush=True)


try:
    import gguf
    from gguf import GGMLQuantizationType as Q
    import gguf.quants as gq
except ImportError as e:  # noqa: F841
    say("SKIP", "check_dtype", f"gguf package not installed ({e})")
    sys.exit(0)

if not os.access(TOOL, os.X_OK):
    say("SKIP", "check_dtype", f"{TOOL} not built")
    sys.exit(0)

tmp = tempfile.mkdtemp()


def run_tool(mode, tname, data: bytes) -> bytes:
    src, dst = os.path.join(tmp, "in.bin"), os.path.join(tmp, "out.bin")
    with open(src, "wb") as f:
        f.write(data)
    subprocess.run([TOOL, mode, tname, src, dst], check=True)
    with open(dst, "rb") as f:
        return f.read()


def same_bits(a: np.ndarray, b: np.ndarray):
    """index of the first differing element (as raw bits), or None"""
    a, b = np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8)
    if a.shape != b.shape:
        return f"sizes {a.shape} vs {b.shape}"
    bad = np.nonzero(a != b)[0]
    return None if len(bad) == 0 else f"first differing byte {bad[0]} of {len(a)}"


rng = np.random.default_rng(1234)


def test_data(n):
    """random floats at many scales, with exact ties, zero blocks and constant blocks"""
    x = rng.standard_normal(n).astype(np.float32)
    x *= np.repeat(np.float32(2.0) ** rng.integers(-20, 20, n // 32).astype(np.float32), 32)
    x[0:32] = 0.0
    x[32:64] = 1.5
    x[64:96] = np.arange(32, dtype=np.float32) - 16.0
    x[96:128] = (np.arange(32, dtype=np.float32) - 15.5) / 8.0
    x[128:160] = -x[128:160] ** 2
    return x


def check_f16_table():
    out = os.path.join(tmp, "f16.bin")
    subprocess.run([TOOL, "--f16-table", out], check=True)
    ours = np.fromfile(out, dtype=np.float32)
    ref = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    ou, ru = ours.view(np.uint32), ref.view(np.uint32)
    nan = np.isnan(ref)
    bad = np.nonzero((ou != ru) & ~nan)[0]
    # NaNs: numpy may set the quiet bit; the rest of the pattern must agree
    badnan = np.nonzero(nan & ((ou ^ ru) & ~np.uint32(0x00400000)).astype(bool))[0]
    if len(bad) or len(badnan):
        i = (list(bad) + list(badnan))[0]
        say("FAIL", "dtype_f16_to_f32_all_65536_vs_numpy", f"half {i:04x}: {ou[i]:08x} vs numpy {ru[i]:08x}")
    else:
        say("PASS", "dtype_f16_to_f32_all_65536_vs_numpy")


def check_f32_to_f16():
    bits = rng.integers(0, 2**32, 400000, dtype=np.uint64).astype(np.uint32)
    bits[::2] = (bits[::2] & np.uint32(0x807FE000)) | np.uint32(0x1000) | (rng.integers(100, 145, 200000).astype(np.uint32) << 23)
    x = bits.view(np.float32)
    x = np.concatenate([x, np.array([0, -0.0, 65504, 65519.996, 65520, 1e-8, 2.9802322e-8, 2.980233e-8, 6.1e-5, np.inf, -np.inf], np.float32)])
    ours = np.frombuffer(run_tool("--quantize", "F16", x.tobytes()), dtype=np.uint16)
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16).view(np.uint16)
    nan = np.isnan(x)
    bad = np.nonzero((ours != ref) & ~nan)[0]
    badnan = np.nonzero(nan & ~np.isnan(ours.view(np.float16)))[0]
    if len(bad) or len(badnan):
        i = (list(bad) + list(badnan))[0]
        say("FAIL", "dtype_f32_to_f16_vs_numpy", f"{x.view(np.uint32)[i]:08x}: {ours[i]:04x} vs numpy {ref[i]:04x}")
    else:
        say("PASS", "dtype_f32_to_f16_vs_numpy")


def check_quantize(qt):
    name = f"dtype_quantize_{qt.name}_vs_gguf"
    x = test_data(32 * 256)
    if qt == Q.BF16:
        x[200:210] = np.array([np.nan, -np.nan, np.inf, -np.inf, 3.3961514e38, 1e-40, -1e-40, 0, -0.0, 1], np.float32)
        x[210:212] = np.array([0x7F800001, 0xFFC00001], np.uint32).view(np.float32)
    try:
        with np.errstate(over="ignore"):  # scales past the f16 range become inf on both sides
            ref = gq.quantize(x.reshape(-1, 256), qt).reshape(-1)
    except NotImplementedError:
        say("SKIP", name, "gguf.quants has no quantizer for it")
        return
    ours = np.frombuffer(run_tool("--quantize", qt.name, x.tobytes()), dtype=np.uint8)
    diff = same_bits(ours, ref)
    say("FAIL" if diff else "PASS", name, diff or "")


def random_blocks(qt, n_blocks):
    """random block bytes whose f16 scale fields hold small finite values"""
    bsz, tsz = gguf.GGML_QUANT_SIZES[qt]
    raw = rng.integers(0, 256, (n_blocks, tsz), dtype=np.uint8)
    def put_f16(col, lo, hi):
        raw[:, col:col + 2] = rng.uniform(lo, hi, n_blocks).astype(np.float16).view(np.uint8).reshape(-1, 2)
    if qt in (Q.Q4_0, Q.Q8_0, Q.Q5_0, Q.IQ4_NL):
        put_f16(0, -0.1, 0.1)
    elif qt in (Q.Q4_1, Q.Q5_1):
        put_f16(0, 0, 0.1)
        put_f16(2, -1, 1)
    elif qt in (Q.Q4_K, Q.Q5_K):
        put_f16(0, 0, 0.01)
        put_f16(2, 0, 0.01)
    elif qt == Q.Q6_K:
        put_f16(tsz - 2, -0.01, 0.01)
    elif qt in (Q.F16, Q.BF16):
        v = rng.standard_normal(n_blocks * tsz // 2).astype(np.float32)
        raw = (v.astype(np.float16) if qt == Q.F16 else gq.quantize(v, Q.BF16)).view(np.uint8).reshape(n_blocks, tsz)
    elif qt == Q.F32:
        raw = rng.standard_normal(n_blocks).astype(np.float32).view(np.uint8).reshape(n_blocks, 4)
    return raw.reshape(-1)


def check_dequantize(qt):
    name = f"dtype_dequantize_{qt.name}_vs_gguf"
    if qt in (Q.Q8_1, Q.Q8_K):
        say("SKIP", name, "gguf.quants does not implement this (activation-only) type")
        return
    bsz, tsz = gguf.GGML_QUANT_SIZES[qt]
    nb = 4096 // bsz * 8 if bsz > 1 else 8192
    raw = random_blocks(qt, nb)
    ref = gq.dequantize(raw.reshape(-1, tsz * (256 // bsz if bsz < 256 else 1)), qt).reshape(-1).astype(np.float32)
    ours = np.frombuffer(run_tool("--dequantize", qt.name, raw.tobytes()), dtype=np.float32)
    diff = same_bits(ours, ref)
    say("FAIL" if diff else "PASS", name, diff or "")


def check_model():
    path = os.environ.get("DS_TEST_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    name = "dtype_dequantize_model_tensors_vs_gguf"
    if not os.path.exists(path):
        say("SKIP", name, f"model {path} not found")
        return
    reader = gguf.GGUFReader(path)
    seen = {}
    for t in reader.tensors:  # token_embd and the first three tensors of each type
        k = t.tensor_type
        if seen.get(k, 0) >= 3 and t.name != "token_embd.weight":
            continue
        seen[k] = seen.get(k, 0) + 1
        raw = np.asarray(t.data).view(np.uint8).reshape(-1)
        ref = gq.dequantize(np.asarray(t.data), k).reshape(-1).astype(np.float32)
        ours = np.frombuffer(run_tool("--dequantize", k.name, raw.tobytes()), dtype=np.float32)
        diff = same_bits(ours, ref)
        if diff:
            say("FAIL", name, f"{t.name} ({k.name}): {diff}")
            return
    say("PASS", name, ", ".join(f"{k.name} x{v}" for k, v in seen.items()))


def q8_numpy(x):
    """x (T, K) quantized to Q8_0 / Q8_1 as ggml defines them, returned decoded, plus Q8_1's
    f16-rounded d * sum(q) per block (written here from the format's definition)"""
    b = x.reshape(x.shape[0], -1, 32)
    d = np.abs(b).max(axis=-1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore"):
        idv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    q = gq.np_roundf((b * idv).astype(np.float32))
    d16 = d.astype(np.float16).astype(np.float64)
    s16 = (q.sum(axis=-1, keepdims=True).astype(np.float32) * d).astype(np.float16).astype(np.float64)
    return (q * d16).reshape(x.shape), s16[..., 0]


def check_matmul_model():
    """our matmul (best SIMD kernel, 2 threads) on real weights against numpy in float64"""
    path = os.environ.get("DS_TEST_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    name = "kernels_matmul_model_tensors_vs_numpy"
    if not os.path.exists(path):
        say("SKIP", name, f"model {path} not found")
        return
    reader = gguf.GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    for tname, rows in (("blk.0.ffn_down.weight", None), ("blk.3.attn_k.weight", None), ("token_embd.weight", 2048)):
        t = tensors[tname]
        raw = np.asarray(t.data)
        if rows:
            raw = raw[:rows]
        qt = t.tensor_type
        w = gq.dequantize(raw, qt).astype(np.float64)
        N, K = w.shape
        x = (rng.standard_normal((5, K)) * 2).astype(np.float32)
        x[1, ::37] *= 100
        xd, s16 = q8_numpy(x)
        ref = xd @ w.T
        scale = np.abs(xd) @ np.abs(w).T
        if qt == Q.Q4_1:  # the min term uses Q8_1's rounded block sums: m * s per block
            m = raw.view(np.uint8).reshape(N, -1, 20)[:, :, 2:4].copy().view(np.float16)[..., 0].astype(np.float64)
            ref += s16 @ m.T - (xd.reshape(5, -1, 32).sum(-1)) @ m.T
        wf, xf, yf = (os.path.join(tmp, n) for n in ("w.bin", "x.bin", "y.bin"))
        raw.tofile(wf)
        x.tofile(xf)
        subprocess.run([TOOL, "--matmul", qt.name, str(N), str(K), wf, xf, yf], check=True)
        y = np.fromfile(yf, dtype=np.float32).reshape(5, N)
        err = np.abs(y - ref) / (scale + 1e-30)
        if err.max() > 1e-5:
            i = np.unravel_index(err.argmax(), err.shape)
            say("FAIL", name, f"{tname}: y{list(i)} = {y[i]:.7g}, numpy {ref[i]:.7g}")
            return
    say("PASS", name, "ffn_down (Q4_1), attn_k (Q4_1), token_embd (Q8_0)")


check_f16_table()
check_f32_to_f16()
for qt in (Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q8_1, Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.IQ4_NL):
    check_quantize(qt)
for qt in (Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q8_1, Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q8_K, Q.IQ4_NL):
    check_dequantize(qt)
check_model()
check_matmul_model()
