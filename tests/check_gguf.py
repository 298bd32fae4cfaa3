#!/usr/bin/env python3
# needs: numpy gguf
"""GGUF files cross-checked with the `gguf` Python package (the reference implementation's
reader and writer):
  1. a file our writer made (build/test_gguf --write-sample) is read by gguf.GGUFReader and
     every key, type, value, tensor name, type, shape and byte is compared with what we wrote;
  2. a file gguf.GGUFWriter made is read by our reader (build/test_gguf --dump) and compared
     with what the package wrote;
  3. the real model: our reader's view of every key and tensor equals GGUFReader's.
Prints PASS/FAIL/SKIP lines. Run from the repository root; binaries come from $BUILD (build/)."""
import json
import os
import subprocess
import sys
import tempfile

BUILD = os.environ.get("BUILD", "build")
PROG = os.path.join(BUILD, "test_gguf")

try:
    import numpy as np
    import gguf
    from gguf import GGUFValueType as VT, GGMLQuantizationType as QT
except ImportError as e:  # the package is optional on machines without it
    print(f"SKIP check_gguf: the gguf Python package is not importable ({e})")
    sys.exit(0)


def program():
    if not os.path.exists(PROG):
        r = subprocess.run(["make", "--no-print-directory", PROG], capture_output=True, text=True)
        if r.returncode != 0:
            return None
    return PROG


def checksum(b):
    """sum of byte * (index % 251 + 1) mod 2^64, as test_gguf --dump computes it"""
    a = np.frombuffer(bytes(b), dtype=np.uint8).astype(np.uint64)
    w = np.arange(a.size, dtype=np.uint64) % np.uint64(251) + np.uint64(1)
    return int((a * w).sum(dtype=np.uint64))


def dump(path):
    r = subprocess.run([PROG, "--dump", path], capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"test_gguf --dump {path}: {r.stderr.decode(errors='replace').strip()}")
    lines = [json.loads(l) for l in r.stdout.decode("utf-8").splitlines()]
    head = lines[0]
    kvs = [l for l in lines[1:] if "key" in l]
    tensors = [l for l in lines[1:] if "tensor" in l]
    return head, kvs, tensors


def same_value(vtype, ours, theirs):
    if vtype == VT.FLOAT32:
        return np.float32(ours) == np.float32(theirs) or (np.isnan(np.float32(ours)) and np.isnan(np.float32(theirs)))
    if vtype == VT.FLOAT64:
        return float(ours) == float(theirs)
    return ours == theirs


def field_value(f):
    """(type, element type or None, python value) of a GGUFReader field"""
    if f.types[0] == VT.ARRAY:
        # an empty array has no element in f.types: its type id is the field's fourth part
        return VT.ARRAY, f.types[1] if len(f.types) > 1 else VT(int(f.parts[3][0])), list(f.contents()) if f.data else []
    return f.types[0], None, f.contents()


def compare_kvs(ours, reader, errors, skip_values_of=()):
    fields = [(k, f) for k, f in reader.fields.items() if not k.startswith("GGUF.")]
    if [k for k, _ in fields] != [kv["key"] for kv in ours]:
        errors.append(f"key lists differ: {[k for k, _ in fields][:5]}... vs {[kv['key'] for kv in ours][:5]}...")
        return
    for (key, f), kv in zip(fields, ours):
        t, et, v = field_value(f)
        if kv["type"] != int(t):
            errors.append(f"{key}: type {kv['type']} vs {int(t)}")
            continue
        if t == VT.ARRAY:
            if et is not None and kv["elem"] != int(et):
                errors.append(f"{key}: element type {kv['elem']} vs {int(et)}")
            elif len(v) != len(kv["value"]) or not all(same_value(et, a, b) for a, b in zip(kv["value"], v)):
                errors.append(f"{key}: array values differ")
        elif not same_value(t, kv["value"], v):
            errors.append(f"{key}: {kv['value']!r} vs {v!r}")


def compare_tensors(ours, reader, errors):
    if len(ours) != len(reader.tensors):
        errors.append(f"{len(ours)} tensors vs {len(reader.tensors)}")
        return
    for t, rt in zip(ours, reader.tensors):
        shape = [int(x) for x in rt.shape]
        want = {"tensor": rt.name, "type": int(rt.tensor_type), "n_dims": len(shape), "ne": shape + [1] * (4 - len(shape)),
                "offset": int(rt.data_offset) - int(reader.data_offset), "nbytes": int(rt.n_bytes)}
        got = {k: t[k] for k in want}
        if got != want:
            errors.append(f"tensor {rt.name}: {got} vs {want}")
        elif t["checksum"] != checksum(reader.data[rt.data_offset:rt.data_offset + rt.n_bytes]):
            errors.append(f"tensor {rt.name}: data checksum differs")


def report(name, errors):
    if errors:
        print(f"FAIL {name}: {len(errors)} differences; first: {errors[0]}")
    else:
        print(f"PASS {name}")


# ---- 1. our writer -> GGUFReader --------------------------------------------------------
# what build/test_gguf --write-sample writes (tests/test_gguf.c write_sample(): keep in step)
SAMPLE_KVS = [
    ("general.architecture", VT.STRING, None, "llama"),
    ("test.replaced", VT.STRING, None, "second"),
    ("general.name", VT.STRING, None, "sample \u00fc"),
    ("general.alignment", VT.UINT32, None, 64),
    ("test.u8", VT.UINT8, None, 200), ("test.i8", VT.INT8, None, -100),
    ("test.u16", VT.UINT16, None, 60000), ("test.i16", VT.INT16, None, -30000),
    ("test.u32", VT.UINT32, None, 4000000000), ("test.i32", VT.INT32, None, -2000000000),
    ("test.f32", VT.FLOAT32, None, 0.15625), ("test.bool", VT.BOOL, None, True),
    ("test.u64", VT.UINT64, None, 2**63 + 5), ("test.i64", VT.INT64, None, -(2**62) - 3),
    ("test.f64", VT.FLOAT64, None, -1e300),
    ("test.arr.u8", VT.ARRAY, VT.UINT8, [1, 2, 255]), ("test.arr.i8", VT.ARRAY, VT.INT8, [-1, 0, 1]),
    ("test.arr.u16", VT.ARRAY, VT.UINT16, [0, 65535]), ("test.arr.i16", VT.ARRAY, VT.INT16, [-32768, 32767]),
    ("test.arr.u32", VT.ARRAY, VT.UINT32, [0, 4294967295]), ("test.arr.i32", VT.ARRAY, VT.INT32, [-5, 7]),
    ("test.arr.f32", VT.ARRAY, VT.FLOAT32, [0.5, -2.25]), ("test.arr.bool", VT.ARRAY, VT.BOOL, [True, False, True]),
    ("test.arr.u64", VT.ARRAY, VT.UINT64, [2**64 - 1]), ("test.arr.i64", VT.ARRAY, VT.INT64, [-(2**63)]),
    ("test.arr.f64", VT.ARRAY, VT.FLOAT64, [1.5, -1e-300]), ("test.arr.str", VT.ARRAY, VT.STRING, ["a", "", "h\u00e9llo"]),
    ("test.arr.empty", VT.ARRAY, VT.INT32, []),
]
SAMPLE_TENSORS = [("f32.2d", QT.F32, [3, 5]), ("f16.1d", QT.F16, [7]), ("bf16.3d", QT.BF16, [2, 3, 4]),
                  ("q4_0", QT.Q4_0, [64, 2]), ("q4_1", QT.Q4_1, [32, 3]), ("q8_0", QT.Q8_0, [32, 1, 2]),
                  ("q4_k", QT.Q4_K, [256, 2]), ("q6_k", QT.Q6_K, [256]), ("f32.4d", QT.F32, [2, 2, 2, 2])]


def sample_bytes(i, n):
    return bytes((i * 37 + j * 13 + 5) & 255 for j in range(n))


def check_our_writer(tmp):
    path = os.path.join(tmp, "ours.gguf")
    r = subprocess.run([PROG, "--write-sample", path], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL gguf_our_writer_read_by_gguf_package: test_gguf --write-sample: {r.stderr.strip()}")
        return
    errors = []
    try:
        reader = gguf.GGUFReader(path)
    except Exception as e:
        print(f"FAIL gguf_our_writer_read_by_gguf_package: GGUFReader refused the file: {e}")
        return
    if int(reader.fields["GGUF.version"].contents()) != 3:
        errors.append("version")
    if reader.alignment != 64:
        errors.append(f"alignment {reader.alignment}")
    fields = [(k, f) for k, f in reader.fields.items() if not k.startswith("GGUF.")]
    if [k for k, _ in fields] != [k for k, *_ in SAMPLE_KVS]:
        errors.append(f"keys {[k for k, _ in fields]}")
    for (key, f), (_, vt, et, want) in zip(fields, SAMPLE_KVS):
        t, fet, v = field_value(f)
        if t != vt or (et is not None and fet != et):
            errors.append(f"{key}: types {t}/{fet} vs {vt}/{et}")
        elif et is not None and (len(v) != len(want) or not all(same_value(et, a, b) for a, b in zip(want, v))):
            errors.append(f"{key}: {v!r} vs {want!r}")
        elif et is None and not same_value(vt, want, v):
            errors.append(f"{key}: {v!r} vs {want!r}")
    if [t.name for t in reader.tensors] != [n for n, *_ in SAMPLE_TENSORS]:
        errors.append(f"tensor names {[t.name for t in reader.tensors]}")
    for i, (rt, (name, qt, ne)) in enumerate(zip(reader.tensors, SAMPLE_TENSORS)):
        if rt.tensor_type != qt or [int(x) for x in rt.shape] != ne:
            errors.append(f"{name}: {rt.tensor_type.name} {list(rt.shape)} vs {qt.name} {ne}")
            continue
        if (rt.data_offset - reader.data_offset) % 64:
            errors.append(f"{name}: offset {rt.data_offset} not aligned to 64")
        got = bytes(reader.data[rt.data_offset:rt.data_offset + rt.n_bytes])
        if got != sample_bytes(i, rt.n_bytes):
            errors.append(f"{name}: data bytes differ")
        if rt.n_bytes != int(np.prod(ne)) // gguf.GGML_QUANT_SIZES[qt][0] * gguf.GGML_QUANT_SIZES[qt][1]:
            errors.append(f"{name}: {rt.n_bytes} bytes")
    report("gguf_our_writer_read_by_gguf_package", errors)


# ---- 2. GGUFWriter -> our reader --------------------------------------------------------
def check_package_writer(tmp):
    path = os.path.join(tmp, "theirs.gguf")
    rng = np.random.default_rng(7)
    w = gguf.GGUFWriter(path, "qwen2")
    w.add_custom_alignment(128)
    want_kvs = [("general.architecture", VT.STRING, None, "qwen2"), ("general.alignment", VT.UINT32, None, 128)]
    scalars = [(VT.UINT8, 255), (VT.INT8, -128), (VT.UINT16, 1234), (VT.INT16, -1234), (VT.UINT32, 2**32 - 1),
               (VT.INT32, -(2**31)), (VT.FLOAT32, 3.25), (VT.BOOL, False), (VT.STRING, "tok\u00e9n \"quoted\" \\ \n"),
               (VT.UINT64, 2**64 - 1), (VT.INT64, -(2**63)), (VT.FLOAT64, 1.0 / 3.0)]
    for vt, v in scalars:
        key = f"t.{vt.name.lower()}"
        w.add_key_value(key, v, vt)
        want_kvs.append((key, vt, None, v))
    arrays = [(VT.UINT8, [0, 7, 255]), (VT.INT8, [-128, 127]), (VT.UINT16, [65535]), (VT.INT16, [-2, 2]),
              (VT.UINT32, list(range(1000))), (VT.INT32, [-1] * 5), (VT.FLOAT32, [0.1, 1e30, -0.0]),
              (VT.BOOL, [True, True, False]), (VT.STRING, ["", "x", "\u4e2d\u6587", "a b"]),
              (VT.UINT64, [2**40]), (VT.INT64, [-5, 5]), (VT.FLOAT64, [2.5e-308, 1e308])]
    for vt, v in arrays:
        key = f"t.arr.{vt.name.lower()}"
        w.add_key_value(key, v, VT.ARRAY, sub_type=vt)
        want_kvs.append((key, VT.ARRAY, vt, v))
    tensors = []
    a = rng.standard_normal((3, 8)).astype(np.float32)
    w.add_tensor("w.f32", a)
    tensors.append(("w.f32", QT.F32, [8, 3], a.tobytes()))
    h = rng.standard_normal(24).astype(np.float16)
    w.add_tensor("w.f16", h)
    tensors.append(("w.f16", QT.F16, [24], h.tobytes()))
    for name, qt, ne in [("w.q8_0", QT.Q8_0, [64, 3]), ("w.q4_k", QT.Q4_K, [256, 2, 2]), ("w.bf16", QT.BF16, [4, 2])]:
        blk, size = gguf.GGML_QUANT_SIZES[qt]
        raw = rng.integers(0, 256, size=ne[0] // blk * size * int(np.prod(ne[1:])), dtype=np.uint8)
        w.add_tensor(name, raw.reshape(list(reversed(ne[1:])) + [ne[0] // blk * size]), raw_dtype=qt)
        tensors.append((name, qt, ne, raw.tobytes()))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    errors = []
    try:
        head, kvs, ts = dump(path)
    except Exception as e:
        print(f"FAIL gguf_package_writer_read_by_ours: {e}")
        return
    if head["alignment"] != 128 or head["data_offset"] % 128:
        errors.append(f"header {head}")
    if [kv["key"] for kv in kvs] != [k for k, *_ in want_kvs]:
        errors.append(f"keys {[kv['key'] for kv in kvs]}")
    for kv, (key, vt, et, v) in zip(kvs, want_kvs):
        if kv["type"] != int(vt) or (et is not None and kv["elem"] != int(et)):
            errors.append(f"{key}: type {kv['type']}/{kv.get('elem')} vs {int(vt)}/{et}")
        elif et is not None and (len(kv["value"]) != len(v) or not all(same_value(et, a, b) for a, b in zip(kv["value"], v))):
            errors.append(f"{key}: {kv['value']!r} vs {v!r}")
        elif et is None and not same_value(vt, kv["value"], v):
            errors.append(f"{key}: {kv['value']!r} vs {v!r}")
    if [t["tensor"] for t in ts] != [n for n, *_ in tensors]:
        errors.append(f"tensors {[t['tensor'] for t in ts]}")
    for t, (name, qt, ne, raw) in zip(ts, tensors):
        want = {"type": int(qt), "n_dims": len(ne), "ne": ne + [1] * (4 - len(ne)), "nbytes": len(raw), "checksum": checksum(raw)}
        got = {k: t[k] for k in want}
        if got != want or t["offset"] % 128:
            errors.append(f"{name}: {got} (offset {t['offset']}) vs {want}")
    report("gguf_package_writer_read_by_ours", errors)
    check_info(path, [kv for kv in want_kvs], tensors)


# ---- 4. `deepseek info` on the package's file and on a broken one ---------------------------
def check_info(path, want_kvs, tensors):
    exe = "./deepseek"
    if not os.path.exists(exe) and subprocess.run(["make", "--no-print-directory", "deepseek"], capture_output=True).returncode != 0:
        print("SKIP gguf_deepseek_info: ./deepseek is not built and 'make deepseek' failed")
        return
    errors = []
    r = subprocess.run([exe, "info", "-m", path], capture_output=True, text=True)
    lines = r.stdout.splitlines()
    if r.returncode != 0:
        errors.append(f"exit {r.returncode}: {r.stderr.strip()}")
    for want in ["architecture  qwen2", "alignment 128", f"metadata ({len(want_kvs)} keys):"]:
        if not any(want in l for l in lines):
            errors.append(f"no line with {want!r}")
    for key, vt, et, v in want_kvs:
        line = next((l.split() for l in lines if l.split()[:1] == [key]), None)
        if et is not None and len(v) > 4:
            names = {VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16", VT.UINT32: "u32", VT.INT32: "i32",
                     VT.FLOAT32: "f32", VT.BOOL: "bool", VT.STRING: "strings", VT.UINT64: "u64", VT.INT64: "i64", VT.FLOAT64: "f64"}
            ok = line is not None and " ".join(line[2:]) == f"[{len(v)} {names[et]}]"
        elif vt in (VT.UINT8, VT.INT8, VT.UINT16, VT.INT16, VT.UINT32, VT.INT32, VT.UINT64, VT.INT64):
            ok = line is not None and line[2] == str(v)
        else:
            ok = line is not None
        if not ok:
            errors.append(f"{key}: line {line}")
    by_type = {}
    for _, qt, _, raw in tensors:
        n, b = by_type.get(qt.name, (0, 0))
        by_type[qt.name] = (n + 1, b + len(raw))
    for name, (n, b) in by_type.items():
        if not any(l.split()[:4] == [name, str(n), str(b), "bytes"] for l in lines):
            errors.append(f"type row {name} {n} {b}")
    if not any(l.split()[:4] == ["total", str(len(tensors)), str(sum(len(t[3]) for t in tensors)), "bytes"] for l in lines):
        errors.append("total row")
    broken = path + ".cut"
    with open(path, "rb") as f, open(broken, "wb") as g:
        g.write(f.read()[:100])
    r = subprocess.run([exe, "info", "-m", broken], capture_output=True, text=True)
    if r.returncode != 1 or r.stdout or len(r.stderr.splitlines()) != 1 or not r.stderr.startswith("deepseek info: ") or "DS_ERR_" not in r.stderr:
        errors.append(f"broken file: exit {r.returncode}, stderr {r.stderr!r}")
    report("gguf_deepseek_info", errors)


# ---- 3. the real model: our reader's view equals GGUFReader's -----------------------------
def check_model():
    path = os.environ.get("DS_TEST_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.exists(path):
        print(f"SKIP gguf_model_matches_gguf_package: {path} missing (make model)")
        return
    errors = []
    reader = gguf.GGUFReader(path)
    head, kvs, ts = dump(path)
    if head["version"] != int(reader.fields["GGUF.version"].contents()) or head["data_offset"] != reader.data_offset:
        errors.append(f"header {head} vs data offset {reader.data_offset}")
    compare_kvs(kvs, reader, errors)
    compare_tensors(ts, reader, errors)
    report("gguf_model_matches_gguf_package", errors)


def main():
    if program() is None:
        print(f"SKIP check_gguf: {PROG} is not built and 'make {PROG}' failed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        check_our_writer(tmp)
        check_package_writer(tmp)
    check_model()


if __name__ == "__main__":
    main()
