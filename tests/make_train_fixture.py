#!/usr/bin/env python3
"""Independent float64 numpy reference of the Llama-family training step: forward, hand-written
backward (checked here against central finite differences), global-norm clipping, AdamW (as
PyTorch's torch.optim.AdamW computes it), linear warm-up + cosine schedule, gradient accumulation.

Writes tests/fixtures/train/ref.bin, read by tests/test_train_model.c:
  int32 header: magic 0x46525344, V, C, L, H, Hkv, F, B, T, accum, steps, warmup, tied, n_params
  float32 header: lr, min_lr_frac, weight_decay, beta1, beta2, eps, clip, norm_eps, rope_base
  float32 params[n_params] (token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output,
     ffn_norm, ffn_gate, ffn_up, ffn_down}, output_norm, [output]; row-major (rows, cols))
  int32 tokens[steps][accum][B][T], int32 targets[same]
  float64 losses[steps], float32 grads of step 1 [n_params] (the accumulated, unclipped gradient)
Run: python3 tests/make_train_fixture.py
"""
import numpy as np, struct, os, sys

V, C, L, H, HKV, F, B, T = 37, 16, 2, 4, 2, 24, 2, 8
HD = C // H
ACCUM, STEPS, WARMUP, TIED = 2, 10, 3, 0
LR, MINLR, WD, B1, B2, EPS, CLIP, NEPS, BASE = 1e-2, 0.1, 0.1, 0.9, 0.95, 1e-8, 1.0, 1e-5, 10000.0


def shapes():
    s = [("token_embd", (V, C))]
    for l in range(L):
        s += [(f"{l}.attn_norm", (1, C)), (f"{l}.wq", (H * HD, C)), (f"{l}.wk", (HKV * HD, C)),
              (f"{l}.wv", (HKV * HD, C)), (f"{l}.wo", (C, H * HD)), (f"{l}.ffn_norm", (1, C)),
              (f"{l}.wg", (F, C)), (f"{l}.wu", (F, C)), (f"{l}.wd", (C, F))]
    s += [("output_norm", (1, C))]
    if not TIED:
        s += [("output", (V, C))]
    return s


def rms_f(x, w):
    r = 1.0 / np.sqrt((x * x).mean(-1, keepdims=True) + NEPS)
    return x * r * w.reshape(-1), r


def rms_b(dy, x, w, r):
    w = w.reshape(-1)
    g = dy * w
    dx = r * g - x * r ** 3 * (g * x).mean(-1, keepdims=True)
    dw = (dy * x * r).reshape(-1, x.shape[-1]).sum(0)
    return dx, dw.reshape(1, -1)


def rope_tables():
    pos = np.arange(T)[:, None]
    inv = BASE ** (-2.0 * np.arange(HD // 2) / HD)
    ang = pos * inv[None, :]
    return np.cos(ang), np.sin(ang)  # (T, HD/2)


def rope(x, sign):  # x (B, T, nh, HD)
    c, s = rope_tables()
    c = c[None, :, None, :]
    s = s[None, :, None, :] * sign
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * c - b * s
    out[..., 1::2] = a * s + b * c
    return out


def forward(P, tok, tgt):
    cache = {}
    x = P["token_embd"][tok]  # (B, T, C)
    mask = np.tril(np.ones((T, T), bool))
    G = H // HKV
    for l in range(L):
        lc = {"x": x}
        h1, r1 = rms_f(x, P[f"{l}.attn_norm"])
        q = rope((h1 @ P[f"{l}.wq"].T).reshape(B, T, H, HD), 1)
        k = rope((h1 @ P[f"{l}.wk"].T).reshape(B, T, HKV, HD), 1)
        v = (h1 @ P[f"{l}.wv"].T).reshape(B, T, HKV, HD)
        ke, ve = np.repeat(k, G, axis=2), np.repeat(v, G, axis=2)  # head h uses kv head h // G
        s = np.einsum("bthd,bjhd->bhtj", q, ke) / np.sqrt(HD)
        s = np.where(mask, s, -np.inf)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        y = np.einsum("bhtj,bjhd->bthd", p, ve).reshape(B, T, H * HD)
        x2 = x + y @ P[f"{l}.wo"].T
        h2, r2 = rms_f(x2, P[f"{l}.ffn_norm"])
        g, u = h2 @ P[f"{l}.wg"].T, h2 @ P[f"{l}.wu"].T
        sg = 1 / (1 + np.exp(-g))
        a = g * sg * u
        x = x2 + a @ P[f"{l}.wd"].T
        lc.update(h1=h1, r1=r1, q=q, ke=ke, ve=ve, p=p, y=y, x2=x2, h2=h2, r2=r2, g=g, u=u, sg=sg, a=a)
        cache[l] = lc
    hf, rf = rms_f(x, P["output_norm"])
    W = P["token_embd"] if TIED else P["output"]
    logits = hf @ W.T
    m = logits.max(-1, keepdims=True)
    e = np.exp(logits - m)
    probs = e / e.sum(-1, keepdims=True)
    nll = -np.log(np.take_along_axis(probs, tgt[..., None], -1))[..., 0]
    cache.update(xL=x, hf=hf, rf=rf, probs=probs)
    return nll.mean(), cache


def backward(P, tok, tgt, cache):
    Gd = {k: np.zeros_like(v) for k, v in P.items()}
    G = H // HKV
    dlog = cache["probs"].copy()
    np.put_along_axis(dlog, tgt[..., None], np.take_along_axis(dlog, tgt[..., None], -1) - 1, -1)
    dlog /= B * T
    W = P["token_embd"] if TIED else P["output"]
    Gd["token_embd" if TIED else "output"] += np.einsum("btv,btc->vc", dlog, cache["hf"])
    dhf = dlog @ W
    dx, dw = rms_b(dhf, cache["xL"], P["output_norm"], cache["rf"])
    Gd["output_norm"] += dw
    for l in reversed(range(L)):
        c = cache[l]
        da = dx @ P[f"{l}.wd"]
        Gd[f"{l}.wd"] += np.einsum("btc,btf->cf", dx, c["a"])
        dg = da * c["u"] * c["sg"] * (1 + c["g"] * (1 - c["sg"]))
        du = da * c["g"] * c["sg"]
        Gd[f"{l}.wg"] += np.einsum("btf,btc->fc", dg, c["h2"])
        Gd[f"{l}.wu"] += np.einsum("btf,btc->fc", du, c["h2"])
        dh2 = dg @ P[f"{l}.wg"] + du @ P[f"{l}.wu"]
        dx2, dw = rms_b(dh2, c["x2"], P[f"{l}.ffn_norm"], c["r2"])
        Gd[f"{l}.ffn_norm"] += dw
        dx2 = dx2 + dx
        dy = (dx2 @ P[f"{l}.wo"]).reshape(B, T, H, HD)
        Gd[f"{l}.wo"] += np.einsum("btc,btk->ck", dx2, c["y"])
        p = c["p"]
        dp = np.einsum("bthd,bjhd->bhtj", dy, c["ve"])
        dve = np.einsum("bhtj,bthd->bjhd", p, dy)
        ds = p * (dp - (dp * p).sum(-1, keepdims=True)) / np.sqrt(HD)
        dq = np.einsum("bhtj,bjhd->bthd", ds, c["ke"])
        dke = np.einsum("bhtj,bthd->bjhd", ds, c["q"])
        dk = dke.reshape(B, T, HKV, G, HD).sum(3)
        dv = dve.reshape(B, T, HKV, G, HD).sum(3)
        dq = rope(dq, -1).reshape(B, T, H * HD)
        dk = rope(dk, -1).reshape(B, T, HKV * HD)
        dv = dv.reshape(B, T, HKV * HD)
        h1 = c["h1"]
        Gd[f"{l}.wq"] += np.einsum("btk,btc->kc", dq, h1)
        Gd[f"{l}.wk"] += np.einsum("btk,btc->kc", dk, h1)
        Gd[f"{l}.wv"] += np.einsum("btk,btc->kc", dv, h1)
        dh1 = dq @ P[f"{l}.wq"] + dk @ P[f"{l}.wk"] + dv @ P[f"{l}.wv"]
        dxa, dw = rms_b(dh1, c["x"], P[f"{l}.attn_norm"], c["r1"])
        Gd[f"{l}.attn_norm"] += dw
        dx = dxa + dx2
    np.add.at(Gd["token_embd"], tok, dx)
    return Gd


def fd_check(P, tok, tgt):
    rng = np.random.default_rng(7)
    _, cache = forward(P, tok, tgt)
    Gd = backward(P, tok, tgt, cache)
    worst = 0.0
    for name in P:
        for _ in range(4):
            i = tuple(rng.integers(0, n) for n in P[name].shape)
            keep = P[name][i]
            P[name][i] = keep + 1e-6
            lp, _ = forward(P, tok, tgt)
            P[name][i] = keep - 1e-6
            lm, _ = forward(P, tok, tgt)
            P[name][i] = keep
            num = (lp - lm) / 2e-6
            worst = max(worst, abs(num - Gd[name][i]) / max(1e-7, abs(num) + abs(Gd[name][i])))
    return worst


def lr_at(step):
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    prog = min(1.0, (step - WARMUP) / (STEPS - WARMUP))
    lo = MINLR * LR
    return lo + 0.5 * (1 + np.cos(np.pi * prog)) * (LR - lo)


def main():
    rng = np.random.default_rng(2026)
    P = {}
    for name, shp in shapes():
        if shp[0] == 1:
            P[name] = (1.0 + 0.1 * rng.standard_normal(shp)).astype(np.float32).astype(np.float64)
        else:
            P[name] = (0.3 * rng.standard_normal(shp)).astype(np.float32).astype(np.float64)
    init = {k: v.copy() for k, v in P.items()}
    data = rng.integers(0, V, size=(STEPS, ACCUM, B, T + 1))
    tok, tgt = data[..., :-1], data[..., 1:]
    worst = fd_check(P, tok[0, 0], tgt[0, 0])
    print(f"reference backward vs finite differences: worst relative error {worst:.2e}")
    assert worst < 1e-6, "the reference's own backward is wrong"
    m = {k: np.zeros_like(v) for k, v in P.items()}
    vv = {k: np.zeros_like(v) for k, v in P.items()}
    losses, grads0 = [], None
    for step in range(STEPS):
        Gsum = {k: np.zeros_like(v) for k, v in P.items()}
        loss = 0.0
        for a in range(ACCUM):
            lo, cache = forward(P, tok[step, a], tgt[step, a])
            g = backward(P, tok[step, a], tgt[step, a], cache)
            loss += lo / ACCUM
            for k in Gsum:
                Gsum[k] += g[k] / ACCUM
        if grads0 is None:
            grads0 = {k: v.copy() for k, v in Gsum.items()}
        losses.append(loss)
        norm = np.sqrt(sum((g * g).sum() for g in Gsum.values()))
        clip = CLIP / norm if norm > CLIP else 1.0
        lr = lr_at(step)
        t = step + 1
        for k in P:
            g = Gsum[k] * clip
            m[k] = B1 * m[k] + (1 - B1) * g
            vv[k] = B2 * vv[k] + (1 - B2) * g * g
            if P[k].shape[0] > 1:  # matrices decay, norm gains do not
                P[k] *= 1 - lr * WD
            P[k] -= lr * (m[k] / (1 - B1 ** t)) / (np.sqrt(vv[k] / (1 - B2 ** t)) + EPS)
        print(f"step {t}: loss {loss:.9f} grad norm {norm:.6f} lr {lr:.6f}")
    names = [n for n, _ in shapes()]
    n_params = sum(init[n].size for n in names)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "train", "ref.bin")
    with open(out, "wb") as f:
        f.write(struct.pack("<14i", 0x46525344, V, C, L, H, HKV, F, B, T, ACCUM, STEPS, WARMUP, TIED, n_params))
        f.write(struct.pack("<9f", LR, MINLR, WD, B1, B2, EPS, CLIP, NEPS, BASE))
        for n in names:
            f.write(init[n].astype("<f4").tobytes())
        f.write(tok.astype("<i4").tobytes())
        f.write(tgt.astype("<i4").tobytes())
        f.write(np.array(losses, "<f8").tobytes())
        for n in names:
            f.write(grads0[n].astype("<f4").tobytes())
    print("wrote", out)


if __name__ == "__main__":
    sys.exit(main())
