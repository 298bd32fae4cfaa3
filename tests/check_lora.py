#!/usr/bin/env python3
# needs: numpy gguf llama_cpp safetensors
"""LoRA adapters against independent readers, on SmolLM2-135M-Instruct Q4_1:

1. A random adapter (r 8, alpha 16, all seven targets of every layer) is written in Hugging Face
   PEFT layout by this script with the safetensors package, and as its llama.cpp GGUF twin with
   the gguf package (q_proj / k_proj rows of lora_B permuted as llama.cpp's converter does).
2. llama.cpp (llama-cpp-python, lora_path) and deepseek.h evaluate the same tokens with the GGUF
   adapter: they must agree as closely as the base model does (the thresholds of
   check_smollm2.py: top-1 >= 99.5%, mean KL <= 0.005), and the adapter must move the logits far
   more than that disagreement.
3. Our loader reads the Python-written PEFT folder: its logits equal the GGUF twin's.
4. Our PEFT export of the GGUF adapter, read by the safetensors package: names, shapes, dtype,
   values (B back in Hugging Face row order) and the adapter_config.json fields PEFT expects.
5. The adapter merged by ds_lora_merge, read by llama.cpp: merged as F32 (--type F32), its
   logits agree with llama.cpp's own base + adapter as in 2; merged back into Q4_1 (each tensor
   re-quantized) it loads and keeps most of the adapter's effect (closer to base + adapter than
   the base is; the figures are printed: re-quantizing W + BA to 4 bits is lossy).
"""
import ctypes
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_smollm2 import BUILD, FIX, MAX_MEAN_KL, MIN_TOP1, ROOT, build_shim, log_softmax, read_tf  # noqa: E402

R, ALPHA, N_TOK = 8, 16.0, 128
TARGETS = [("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
           ("attn_output", "self_attn.o_proj"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
           ("ffn_down", "mlp.down_proj")]

SHIM = r"""
#define DEEPSEEK_IMPLEMENTATION
#include "deepseek.h"
/* logits (n, n_vocab) with the adapter (NULL: none) at scale; 0 on success */
int lora_logits(const char *path, const char *adapter, float scale, const int32_t *tokens, int n, float *out) {
    ds_model *m = NULL;
    ds_session *s = NULL;
    ds_lora_adapter *a = NULL;
    ds_session_config sp;
    ds_status e = ds_model_load(path, NULL, &m);
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = n;
    sp.n_threads = 2;
    if (e == DS_OK) e = ds_session_create(m, &sp, &s);
    if (e == DS_OK && adapter) e = ds_lora_adapter_load(adapter, m, &a);
    if (e == DS_OK && adapter) e = ds_session_set_lora(s, &a, &scale, 1);
    if (e == DS_OK) e = ds_session_eval_all(s, tokens, n, out);
    ds_session_free(s);
    ds_lora_adapter_free(a);
    ds_model_free(m);
    return (int)e;
}
/* converts an adapter (loaded with the base) to format 0 GGUF / 1 PEFT */
int lora_convert(const char *path, const char *in, const char *out, int format) {
    ds_model *m = NULL;
    ds_lora_adapter *a = NULL;
    ds_status e = ds_model_load(path, NULL, &m);
    if (e == DS_OK) e = ds_lora_adapter_load(in, m, &a);
    if (e == DS_OK) e = ds_lora_adapter_save(a, out, (ds_lora_format)format);
    ds_lora_adapter_free(a);
    ds_model_free(m);
    return (int)e;
}
/* merges the adapter into the model file, each tensor keeping its type (type NULL) or as type */
int lora_merge(const char *path, const char *in, const char *out, const char *type) {
    ds_lora_adapter *a = NULL;
    ds_quantize_config qc;
    ds_status e = ds_lora_adapter_load(in, NULL, &a);
    memset(&qc, 0, sizeof qc);
    qc.type = type;
    qc.pure = 1;
    if (e == DS_OK) e = ds_lora_merge(path, &a, NULL, 1, out, &qc);
    ds_lora_adapter_free(a);
    return (int)e;
}
const char *lora_error(void) { return ds_last_error(); }
"""


def hf_to_gguf_rows(w, n_head):
    """llama.cpp's converter's q / k permutation of a (out, ...) matrix's rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    import gguf
    from llama_cpp import Llama
    from safetensors.numpy import load_file, save_file

    model = os.environ.get("DS_TEST_MODEL", os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    if not os.path.exists(model):
        for n in ("lora_llama_cpp_logits", "lora_peft_read", "lora_peft_export", "lora_merged_in_llama_cpp"):
            print(f"SKIP {n}: no model at {model} (make model)")
        return 0
    lib = ctypes.CDLL(build_shim(SHIM, "libds_lora_check"))
    lib.lora_logits.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_float, ctypes.POINTER(ctypes.c_int32),
                                ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.lora_convert.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.lora_merge.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.lora_error.restype = ctypes.c_char_p

    base = gguf.GGUFReader(model)
    fields = {f.name: f for f in base.fields.values()}
    n_layer = int(fields["llama.block_count"].parts[-1][0])
    n_head = int(fields["llama.attention.head_count"].parts[-1][0])
    n_head_kv = int(fields["llama.attention.head_count_kv"].parts[-1][0])
    shapes = {t.name: [int(x) for x in t.shape] for t in base.tensors}   # ggml ne: [in, out]

    work = os.path.join(BUILD, "lora_check")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    rng = np.random.default_rng(1234)
    hf, gg = {}, {}
    for il in range(n_layer):
        for g_name, h_name in TARGETS:
            n_in, n_out = shapes[f"blk.{il}.{g_name}.weight"]
            a = (rng.standard_normal((R, n_in)) / np.sqrt(n_in)).astype(np.float32)
            b = (0.1 * rng.standard_normal((n_out, R))).astype(np.float32)
            pre = f"base_model.model.model.layers.{il}.{h_name}"
            hf[f"{pre}.lora_A.weight"], hf[f"{pre}.lora_B.weight"] = a, b
            if g_name == "attn_q":
                b = hf_to_gguf_rows(b, n_head)
            elif g_name == "attn_k":
                b = hf_to_gguf_rows(b, n_head_kv)
            gg[f"blk.{il}.{g_name}.weight.lora_a"], gg[f"blk.{il}.{g_name}.weight.lora_b"] = a, np.ascontiguousarray(b)
    peft_dir = os.path.join(work, "peft_py")
    os.makedirs(peft_dir)
    save_file(hf, os.path.join(peft_dir, "adapter_model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(peft_dir, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "r": R, "lora_alpha": ALPHA, "target_modules": [h.split(".")[-1] for _, h in TARGETS],
                   "lora_dropout": 0.0, "bias": "none", "task_type": "CAUSAL_LM", "fan_in_fan_out": False}, f)
    gguf_path = os.path.join(work, "adapter_py.gguf")
    w = gguf.GGUFWriter(gguf_path, "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", ALPHA)
    for k, v in gg.items():
        w.add_tensor(k, v)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    tokens, n_vocab = read_tf(os.path.join(FIX, "tf.bin"))
    toks = np.ascontiguousarray(tokens[0][:N_TOK], dtype=np.int32)

    def ours(adapter):
        out = np.zeros((N_TOK, n_vocab), np.float32)
        rc = lib.lora_logits(model.encode(), adapter.encode() if adapter else None, 1.0,
                             toks.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), N_TOK,
                             out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        if rc != 0:
            raise RuntimeError(lib.lora_error().decode(errors="replace"))
        return out

    def llama_cpp(adapter):
        kw = {"lora_path": adapter} if adapter else {}
        llm = Llama(model_path=model, n_ctx=N_TOK, n_batch=N_TOK, n_ubatch=N_TOK, n_threads=2, n_threads_batch=2,
                    logits_all=True, verbose=False, **kw)
        llm.eval([int(t) for t in toks])
        out = np.array(llm.scores[:N_TOK], dtype=np.float32)
        del llm
        return out

    def agreement(ref, got):
        p, q = log_softmax(ref), log_softmax(got)
        return float((p.argmax(1) == q.argmax(1)).mean()), float((np.exp(p) * (p - q)).sum(1).mean())

    bad = []
    # 2. llama.cpp with the gguf package's adapter
    try:
        ours_base, ours_lora = ours(None), ours(gguf_path)
    except RuntimeError as e:
        print(f"FAIL lora_llama_cpp_logits: ours: {e}")
        return 1
    ref_base, ref_lora = llama_cpp(None), llama_cpp(gguf_path)
    top_b, kl_b = agreement(ref_base, ours_base)
    top_l, kl_l = agreement(ref_lora, ours_lora)
    _, moved = agreement(ref_base, ref_lora)
    print(f"lora (live llama.cpp, {N_TOK} positions): base top-1 {100 * top_b:.2f}% mean KL {kl_b:.6f} "
          f"(max |diff| {np.abs(ref_base - ours_base).max():.4f}); "
          f"with the adapter top-1 {100 * top_l:.2f}% mean KL {kl_l:.6f} (max |diff| {np.abs(ref_lora - ours_lora).max():.4f}); "
          f"the adapter itself moves llama.cpp's logits by mean KL {moved:.4f}", file=sys.stderr)
    # the base's own disagreement is the floor (bit-exact against the fixtures' llama.cpp build,
    # its self-consistency on others); the adapter's f32 products add their own last bits
    if top_l < min(MIN_TOP1, top_b - 0.05) or kl_l > max(MAX_MEAN_KL, 2 * kl_b):
        bad.append(f"with the adapter top-1 {100 * top_l:.2f}% / mean KL {kl_l:.6f} (base: {100 * top_b:.2f}% / {kl_b:.6f})")
    if moved < 20 * max(kl_l, 1e-4):
        bad.append(f"the adapter barely moves the logits (KL {moved:.6f}): the check cannot tell")
    print(f"FAIL lora_llama_cpp_logits: {'; '.join(bad)}" if bad else "PASS lora_llama_cpp_logits")

    # 3. the Python-written PEFT folder, read by us, gives the GGUF twin's logits
    try:
        ours_peft = ours(peft_dir)
        diff = float(np.abs(ours_peft - ours_lora).max())
        ok = diff <= 1e-6 * float(np.abs(ours_lora).max())
        print(f"PASS lora_peft_read" if ok else f"FAIL lora_peft_read: PEFT and GGUF logits differ by {diff:g}")
    except RuntimeError as e:
        print(f"FAIL lora_peft_read: {e}")
        ok = False

    # 4. our PEFT export, read by the safetensors package
    out_dir = os.path.join(work, "peft_ours")
    rc = lib.lora_convert(model.encode(), gguf_path.encode(), out_dir.encode(), 1)
    why = []
    if rc != 0:
        why.append(lib.lora_error().decode(errors="replace"))
    else:
        got = load_file(os.path.join(out_dir, "adapter_model.safetensors"))
        if set(got) != set(hf):
            why.append(f"names differ: {sorted(set(got) ^ set(hf))[:4]}")
        for k, v in hf.items():
            if k in got and (got[k].dtype != np.float32 or got[k].shape != v.shape or not np.array_equal(got[k], v)):
                why.append(f"{k}: {got[k].dtype} {got[k].shape}, wanted float32 {v.shape} with the same values")
                break
        with open(os.path.join(out_dir, "adapter_config.json")) as f:
            cfg = json.load(f)
        want = {"peft_type": "LORA", "r": R, "lora_alpha": ALPHA, "task_type": "CAUSAL_LM", "bias": "none"}
        for k, v in want.items():
            if cfg.get(k) != v:
                why.append(f"adapter_config.json {k} = {cfg.get(k)!r}, wanted {v!r}")
        if sorted(cfg.get("target_modules", [])) != sorted(h.split(".")[-1] for _, h in TARGETS):
            why.append(f"target_modules {cfg.get('target_modules')}")
        for k in ("lora_dropout", "base_model_name_or_path"):
            if k not in cfg:
                why.append(f"adapter_config.json lacks {k}")
    print(f"FAIL lora_peft_export: {'; '.join(why)}" if why else "PASS lora_peft_export")

    # 5. our merged files in llama.cpp
    merge_bad = []
    got = {}
    for typ in ("F32", None):
        merged = os.path.join(work, f"merged_{typ or 'Q4_1'}.gguf")
        if lib.lora_merge(model.encode(), gguf_path.encode(), merged.encode(), typ.encode() if typ else None) != 0:
            merge_bad.append(lib.lora_error().decode(errors="replace"))
            break
        llm = Llama(model_path=merged, n_ctx=N_TOK, n_batch=N_TOK, n_ubatch=N_TOK, n_threads=2, n_threads_batch=2,
                    logits_all=True, verbose=False)
        llm.eval([int(t) for t in toks])
        got[typ or "Q4_1"] = agreement(ref_lora, np.array(llm.scores[:N_TOK], dtype=np.float32))
        del llm
        os.remove(merged)
    if not merge_bad:
        (top_f, kl_f), (top_q, kl_q) = got["F32"], got["Q4_1"]
        print(f"lora merged (llama.cpp on our file vs llama.cpp base + adapter): F32 top-1 {100 * top_f:.2f}% "
              f"mean KL {kl_f:.6f}; re-quantized to Q4_1 top-1 {100 * top_q:.2f}% mean KL {kl_q:.6f} "
              f"(the base: mean KL {agreement(ref_lora, ref_base)[1]:.4f})", file=sys.stderr)
        if top_f < min(MIN_TOP1, top_b - 0.05) or kl_f > max(MAX_MEAN_KL, 2 * kl_b):
            merge_bad.append(f"F32 merge: top-1 {100 * top_f:.2f}% / mean KL {kl_f:.6f}")
        kl_base = agreement(ref_lora, ref_base)[1]
        if kl_q >= kl_base:
            merge_bad.append(f"Q4_1 merge: mean KL {kl_q:.4f}, no closer to base + adapter than the base ({kl_base:.4f})")
    print(f"FAIL lora_merged_in_llama_cpp: {'; '.join(merge_bad)}" if merge_bad else "PASS lora_merged_in_llama_cpp")
    return 1 if bad or not ok or why or merge_bad else 0


if __name__ == "__main__":
    sys.exit(main())
