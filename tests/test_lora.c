/* test_lora.c - LoRA / QLoRA training over a frozen base: the gradients of every A / B pair
   against central finite differences of the loss (float and quantized bases), a fresh adapter
   (B = 0) giving the inference session's outputs, determinism, a loss that falls, bit-exact
   resume from a checkpoint, the adapter file's layout and the errors for bad settings. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"

#define V 256
#define T 8
#define BATCH 2
static const char *const base_f32 = "build/test_lora_f32.gguf";

/* a tiny llama with random weights, saved as F32 and quantized (pure: every matrix) */
static int make_base(ds_test_ctx *t, const char *type, char *path, size_t cap) {
    static int made = 0;
    ds_model_config mc;
    ds_train_config tc;
    ds_trainer *tr = NULL;
    if (!made) {
        memset(&mc, 0, sizeof mc);
        memset(&tc, 0, sizeof tc);
        mc.n_vocab = V; mc.n_embd = 64; mc.n_layer = 2; mc.n_head = 4; mc.n_head_kv = 2; mc.n_ff = 96; mc.n_ctx = 32;
        tc.batch = BATCH; tc.seq_len = T; tc.init_std = 0.08f; tc.n_threads = 2;
        DS_CHECK(t, ds_trainer_create(&mc, &tc, &tr) == DS_OK, "create: %s", ds_last_error());
        DS_CHECK(t, t->failed || ds_trainer_save_model(tr, base_f32, NULL) == DS_OK, "save: %s", ds_last_error());
        ds_trainer_free(tr);
        if (t->failed) return 0;
        made = 1;
    }
    if (!strcmp(type, "F32")) {
        snprintf(path, cap, "%s", base_f32);
    } else {
        ds_quantize_config qc;
        memset(&qc, 0, sizeof qc);
        qc.type = type;
        qc.pure = 1;
        qc.threads = 2;
        snprintf(path, cap, "build/test_lora_%s.gguf", type);
        DS_CHECK(t, ds_quantize_model(base_f32, path, &qc) == DS_OK, "quantize %s: %s", type, ds_last_error());
    }
    return !t->failed;
}

static uint64_t rs = 99;
static void fill(float *x, size_t n, float s) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = s * (float)(2.0 * ds__tr_uniform(&rs) - 1.0);
}
static void batch(int32_t *tok, int32_t *tgt, int n) {
    int i;
    for (i = 0; i < n; i++) {
        tok[i] = (int32_t)(ds__tr_next(&rs) % V);
        tgt[i] = (int32_t)(ds__tr_next(&rs) % V);
    }
}

static ds_status lora_trainer(const ds_model *m, float dropout, unsigned targets, int recompute, ds_trainer **tr) {
    ds_lora_config lc;
    ds_train_config tc;
    memset(&lc, 0, sizeof lc);
    memset(&tc, 0, sizeof tc);
    lc.r = 4;
    lc.alpha = 8;
    lc.dropout = dropout;
    lc.targets = targets;
    tc.batch = BATCH; tc.seq_len = T; tc.n_threads = 2; tc.lr = 1e-2f; tc.steps = 100; tc.recompute = recompute;
    return ds_trainer_create_lora(m, &lc, &tc, tr);
}

/* ---- an independent double-precision forward of the llama model with LoRA pairs ----------
   The base's weights are read from the file (dequantized to double), the pairs from the
   trainer's parameter buffer; the loss is the mean cross-entropy. */
typedef struct ref_model {
    int C, H, Hkv, hd, F, L;
    double eps, rope_base, s;
    double *emb, *outw, *normf, *an[2], *fn[2], *w[2][7];
    int in[7], out[7];
    double *p;                 /* the LoRA parameters, as the trainer lays them out */
    size_t a_off[2][7], b_off[2][7];
    int r;
    const int32_t *tok, *tgt;
} ref_model;

static double *ref_mat(const ds__mat *m) {
    double *d = (double *)malloc(sizeof(double) * (size_t)(m->rows * m->cols));
    float *row = (float *)malloc(sizeof(float) * (size_t)m->cols);
    int64_t r, c;
    for (r = 0; r < m->rows; r++) {
        ds__dequantize_row(m->type, (const uint8_t *)m->data + (size_t)r * ds__row_bytes(m->type, m->cols), row, m->cols);
        for (c = 0; c < m->cols; c++) d[r * m->cols + c] = row[c];
    }
    free(row);
    return d;
}
static double *ref_vec(const float *v, int n) {
    double *d = (double *)malloc(sizeof(double) * (size_t)n);
    int i;
    for (i = 0; i < n; i++) d[i] = v[i];
    return d;
}

/* y (O) = W (O, I) x + s B (A x) */
static void ref_lin(const ref_model *m, int l, int k, const double *x, double *y) {
    int o, i, j, I = m->in[k], O = m->out[k];
    double h[64];
    for (o = 0; o < O; o++) {
        double a = 0;
        for (i = 0; i < I; i++) a += m->w[l][k][(size_t)o * I + i] * x[i];
        y[o] = a;
    }
    for (j = 0; j < m->r; j++) {
        double a = 0;
        for (i = 0; i < I; i++) a += m->p[m->a_off[l][k] + (size_t)j * I + i] * x[i];
        h[j] = a;
    }
    for (o = 0; o < O; o++) {
        double a = 0;
        for (j = 0; j < m->r; j++) a += m->p[m->b_off[l][k] + (size_t)o * m->r + j] * h[j];
        y[o] += m->s * a;
    }
}
static void ref_norm(const double *x, const double *w, double *y, int C, double eps) {
    double ss = 0;
    int c;
    for (c = 0; c < C; c++) ss += x[c] * x[c];
    ss = 1.0 / sqrt(ss / C + eps);
    for (c = 0; c < C; c++) y[c] = x[c] * ss * w[c];
}
static void ref_rope(double *v, int nh, int hd, int pos, double base) {
    int h, i;
    for (h = 0; h < nh; h++)
        for (i = 0; i < hd / 2; i++) {
            double th = pos * pow(base, -2.0 * i / hd), c = cos(th), s = sin(th), a = v[h * hd + 2 * i], b = v[h * hd + 2 * i + 1];
            v[h * hd + 2 * i] = a * c - b * s;
            v[h * hd + 2 * i + 1] = a * s + b * c;
        }
}

#define RC 64
#define RF 96
static double ref_loss(void *ctx) {
    const ref_model *m = (const ref_model *)ctx;
    static double x[T][RC], hn[T][RC], q[T][RC], k[T][RC], v[T][RC], att[T][RC], o[RC], g[RF], u[RF], lg[V];
    int b, t, l, c, h, j, G = m->H / m->Hkv, kvd = m->Hkv * m->hd;
    double loss = 0;
    for (b = 0; b < BATCH; b++) {
        for (t = 0; t < T; t++)
            for (c = 0; c < m->C; c++) x[t][c] = m->emb[(size_t)m->tok[b * T + t] * m->C + c];
        for (l = 0; l < m->L; l++) {
            for (t = 0; t < T; t++) {
                ref_norm(x[t], m->an[l], hn[t], m->C, m->eps);
                ref_lin(m, l, 0, hn[t], q[t]);
                ref_lin(m, l, 1, hn[t], k[t]);
                ref_lin(m, l, 2, hn[t], v[t]);
                ref_rope(q[t], m->H, m->hd, t, m->rope_base);
                ref_rope(k[t], m->Hkv, m->hd, t, m->rope_base);
            }
            for (t = 0; t < T; t++)
                for (h = 0; h < m->H; h++) {
                    double sc[T], mx = -1e300, z = 0;
                    int kv = h / G;
                    for (j = 0; j <= t; j++) {
                        double d = 0;
                        for (c = 0; c < m->hd; c++) d += q[t][h * m->hd + c] * k[j][kv * m->hd + c];
                        sc[j] = d / sqrt((double)m->hd);
                        mx = fmax(mx, sc[j]);
                    }
                    for (j = 0; j <= t; j++) z += (sc[j] = exp(sc[j] - mx));
                    for (c = 0; c < m->hd; c++) {
                        double a = 0;
                        for (j = 0; j <= t; j++) a += sc[j] / z * v[j][kv * m->hd + c];
                        att[t][h * m->hd + c] = a;
                    }
                }
            (void)kvd;
            for (t = 0; t < T; t++) {
                ref_lin(m, l, 3, att[t], o);
                for (c = 0; c < m->C; c++) x[t][c] += o[c];
                ref_norm(x[t], m->fn[l], hn[t], m->C, m->eps);
                ref_lin(m, l, 4, hn[t], g);
                ref_lin(m, l, 5, hn[t], u);
                for (c = 0; c < m->F; c++) g[c] = g[c] / (1 + exp(-g[c])) * u[c];
                ref_lin(m, l, 6, g, o);
                for (c = 0; c < m->C; c++) x[t][c] += o[c];
            }
        }
        for (t = 0; t < T; t++) {
            double mx = -1e300, z = 0;
            ref_norm(x[t], m->normf, hn[t], m->C, m->eps);
            for (j = 0; j < V; j++) {
                double a = 0;
                for (c = 0; c < m->C; c++) a += m->outw[(size_t)j * m->C + c] * hn[t][c];
                lg[j] = a;
                mx = fmax(mx, a);
            }
            for (j = 0; j < V; j++) z += exp(lg[j] - mx);
            loss += log(z) + mx - lg[m->tgt[b * T + t]];
        }
    }
    return loss / (BATCH * T);
}

static void ref_build(ref_model *r, const ds_model *m, ds_trainer *tr) {
    int l, k;
    memset(r, 0, sizeof *r);
    r->C = m->cfg.n_embd; r->H = m->cfg.n_head; r->Hkv = m->cfg.n_head_kv; r->hd = m->cfg.head_dim; r->F = m->cfg.n_ff; r->L = m->cfg.n_layer;
    r->eps = m->cfg.norm_eps; r->rope_base = m->cfg.rope_base;
    r->r = tr->lc.r;
    r->s = tr->lc.alpha / tr->lc.r;
    r->emb = ref_mat(&m->tok_embd);
    r->outw = ref_mat(&m->output);
    r->normf = ref_vec(m->output_norm, r->C);
    for (l = 0; l < r->L; l++) {
        const ds__layer *L = &m->layers[l];
        const ds__mat *w[7];
        w[0] = &L->gqa.wq; w[1] = &L->gqa.wk; w[2] = &L->gqa.wv; w[3] = &L->gqa.wo; w[4] = &L->ffn.gate; w[5] = &L->ffn.up; w[6] = &L->ffn.down;
        r->an[l] = ref_vec(L->attn_norm, r->C);
        r->fn[l] = ref_vec(L->ffn_norm, r->C);
        for (k = 0; k < 7; k++) {
            r->w[l][k] = ref_mat(w[k]);
            r->in[k] = (int)w[k]->cols;
            r->out[k] = (int)w[k]->rows;
            r->a_off[l][k] = tr->lora[2 * ((size_t)l * DS__LW_COUNT + k)];
            r->b_off[l][k] = tr->lora[2 * ((size_t)l * DS__LW_COUNT + k) + 1];
        }
    }
}
static void ref_free(ref_model *r) {
    int l, k;
    free(r->emb); free(r->outw); free(r->normf); free(r->p);
    for (l = 0; l < r->L; l++) {
        free(r->an[l]); free(r->fn[l]);
        for (k = 0; k < 7; k++) free(r->w[l][k]);
    }
}

/* Our LoRA gradients against the double-precision reference: its loss must match ours, and
   for each A and each B of every projection kind (both layers), the derivative along a random
   unit direction from central differences of the reference loss must match our gradient's
   dot product with that direction within 1e-3 (relative). */
static void check_fd(ds_test_ctx *t, const char *type) {
    char path[128];
    ds_model *m = NULL;
    ds_trainer *tr = NULL;
    ref_model ref;
    int32_t tok[BATCH * T], tgt[BATCH * T];
    size_t n, i;
    float *p, *g, loss = 0;
    double *dir = NULL, *keep = NULL, worst = 0, rl;
    int k, ab;
    memset(&ref, 0, sizeof ref);
    if (!make_base(t, type, path, sizeof path)) return;
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load %s: %s", path, ds_last_error());
    DS_CHECK(t, lora_trainer(m, -1.0f, 0, 0, &tr) == DS_OK, "create: %s", ds_last_error());
    if (t->failed) goto done;
    p = ds_trainer_params(tr, &n);
    g = ds_trainer_grads(tr, NULL);
    fill(p, n, 0.3f);   /* B != 0, so A's gradient is not zero either */
    batch(tok, tgt, BATCH * T);
    memset(g, 0, n * sizeof *g);
    DS_CHECK(t, ds_trainer_grad(tr, tok, tgt, BATCH, T, 1.0f, &loss) == DS_OK, "grad: %s", ds_last_error());
    ref_build(&ref, m, tr);
    ref.p = (double *)malloc(n * sizeof(double));
    dir = (double *)malloc(n * sizeof *dir);
    keep = (double *)malloc(n * sizeof *keep);
    DS_CHECK(t, ref.p && dir && keep, "out of memory");
    if (t->failed) goto done;
    for (i = 0; i < n; i++) keep[i] = ref.p[i] = p[i];
    ref.tok = tok;
    ref.tgt = tgt;
    rl = ref_loss(&ref);
    DS_CHECK(t, fabs(rl - loss) < 1e-4 * rl, "%s base: loss %.7f, the reference's %.7f", type, loss, rl);
    for (k = 0; k < DS__LW_COUNT && !t->failed; k++)
        for (ab = 0; ab < 2 && !t->failed; ab++) {
            double dot = 0, norm = 0, fd, h = 1e-5, err, lp, lm;
            int l;
            memset(dir, 0, n * sizeof *dir);
            for (l = 0; l < 2; l++) {
                size_t off = ab ? ref.b_off[l][k] : ref.a_off[l][k], len = (size_t)(ab ? ref.out[k] : ref.in[k]) * ref.r;
                for (i = 0; i < len; i++) dir[off + i] = 2.0 * ds__tr_uniform(&rs) - 1.0;
            }
            for (i = 0; i < n; i++) norm += dir[i] * dir[i];
            for (i = 0; i < n; i++) dot += dir[i] / sqrt(norm) * g[i];
            for (i = 0; i < n; i++) ref.p[i] = keep[i] + h * dir[i] / sqrt(norm);
            lp = ref_loss(&ref);
            for (i = 0; i < n; i++) ref.p[i] = keep[i] - h * dir[i] / sqrt(norm);
            lm = ref_loss(&ref);
            for (i = 0; i < n; i++) ref.p[i] = keep[i];
            fd = (lp - lm) / (2 * h);
            err = fabs(fd - dot) / fmax(fabs(fd), 1e-4);
            if (err > worst) worst = err;
            DS_CHECK(t, err < 1e-3, "%s base: %s.lora_%c: gradient . dir %.7g, finite differences %.7g (relative error %.2e)", type, ds__lora_names[k],
                     ab ? 'b' : 'a', dot, fd, err);
        }
    if (!t->failed) fprintf(stderr, "lora gradients over the %s base: worst relative error %.2e over 14 tensors (loss %.6f, reference %.6f)\n", type, worst, loss, rl);
done:
    free(dir);
    free(keep);
    ref_free(&ref);
    ds_trainer_free(tr);
    ds_model_free(m);
}
static void lora_grad_fd_f32(ds_test_ctx *t) { check_fd(t, "F32"); }
static void lora_grad_fd_f16(ds_test_ctx *t) { check_fd(t, "F16"); }
static void lora_grad_fd_q4_1(ds_test_ctx *t) { check_fd(t, "Q4_1"); }
static void lora_grad_fd_q8_0(ds_test_ctx *t) { check_fd(t, "Q8_0"); }

/* a fresh adapter (B = 0) leaves the base's outputs: the trainer's loss over the frozen base
   equals the double-precision reference's (which sees B = 0, so the base alone), and the loss
   the inference session's logits give on the same file (the session keeps its KV cache in f16,
   and for quantized weights rounds its activations to 8 bits: `tol` allows for that) */
static void check_zero_b(ds_test_ctx *t, const char *type, double tol) {
    char path[128];
    ds_model *m = NULL;
    ds_trainer *tr = NULL;
    ds_session *s = NULL;
    ds_session_config sc;
    ref_model ref;
    int32_t tok[BATCH * T], tgt[BATCH * T];
    float loss = 0, loss1 = 0, *logits = (float *)malloc(sizeof(float) * T * V);
    double ce = 0, rl;
    size_t n, i;
    int j, k;
    memset(&ref, 0, sizeof ref);
    if (!make_base(t, type, path, sizeof path)) goto done;
    DS_CHECK(t, logits != NULL, "out of memory");
    DS_CHECK(t, t->failed || ds_model_load(path, NULL, &m) == DS_OK, "load: %s", ds_last_error());
    DS_CHECK(t, t->failed || lora_trainer(m, 0.0f, 0, 0, &tr) == DS_OK, "create: %s", ds_last_error());
    if (t->failed) goto done;
    batch(tok, tgt, BATCH * T);
    DS_CHECK(t, ds_trainer_loss(tr, tok, tgt, BATCH, T, &loss) == DS_OK, "loss: %s", ds_last_error());
    DS_CHECK(t, ds_trainer_loss(tr, tok, tgt, 1, T, &loss1) == DS_OK, "loss: %s", ds_last_error());
    ref_build(&ref, m, tr);
    ref.p = (double *)malloc(sizeof(double) * tr->n_params);
    DS_REQUIRE(t, ref.p != NULL, "out of memory");
    for (i = 0, n = tr->n_params; i < n; i++) ref.p[i] = tr->params[i];
    ref.tok = tok;
    ref.tgt = tgt;
    rl = ref_loss(&ref);
    DS_CHECK(t, fabs(rl - loss) < 1e-5 * rl, "%s base: loss %.7f, the reference's %.7f", type, loss, rl);
    memset(&sc, 0, sizeof sc);
    sc.n_ctx = 32;
    sc.n_threads = 1;
    DS_CHECK(t, t->failed || ds_session_create(m, &sc, &s) == DS_OK, "session: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_session_eval_all(s, tok, T, logits) == DS_OK, "eval: %s", ds_last_error());
    if (t->failed) goto done;
    for (k = 0; k < T; k++) {
        double mx = -1e30, z = 0;
        for (j = 0; j < V; j++) mx = fmax(mx, logits[k * V + j]);
        for (j = 0; j < V; j++) z += exp(logits[k * V + j] - mx);
        ce += (log(z) + mx - logits[k * V + tgt[k]]) / T;
    }
    fprintf(stderr, "fresh adapter over the %s base: loss %.6f, reference %.6f; one sequence %.6f, the session's %.6f\n", type, loss, rl, loss1, ce);
    DS_CHECK(t, fabs(ce - loss1) < tol * ce, "%s base: the session's loss %.6f, the trainer's %.6f", type, ce, loss1);
done:
    ds_session_free(s);
    ref_free(&ref);
    ds_trainer_free(tr);
    ds_model_free(m);
    free(logits);
}
static void lora_zero_b_is_base_f32(ds_test_ctx *t) { check_zero_b(t, "F32", 1e-4); }
static void lora_zero_b_is_base_q8_0(ds_test_ctx *t) { check_zero_b(t, "Q8_0", 2e-3); }

/* steps on the same batches give the same adapter, bit for bit, with dropout off and on (the
   masks come from the seed); dropout changes the result */
static void run_steps(ds_test_ctx *t, const ds_model *m, float dropout, int recompute, int steps, float *out, size_t *n_out) {
    ds_trainer *tr = NULL;
    int32_t tok[BATCH * T], tgt[BATCH * T];
    uint64_t keep = rs;
    size_t n = 0;
    int i;
    DS_REQUIRE(t, lora_trainer(m, dropout, 0, recompute, &tr) == DS_OK, "create: %s", ds_last_error());
    rs = 5;
    for (i = 0; i < steps && !t->failed; i++) {
        batch(tok, tgt, BATCH * T);
        DS_CHECK(t, ds_trainer_step_tokens(tr, tok, tgt, NULL) == DS_OK, "step: %s", ds_last_error());
    }
    rs = keep;
    {
        const float *p = ds_trainer_params(tr, &n);
        if (n <= (1 << 16)) memcpy(out, p, n * sizeof(float));
    }
    *n_out = n;
    ds_trainer_free(tr);
}
static void lora_deterministic(ds_test_ctx *t) {
    char path[128];
    ds_model *m = NULL;
    static float a[1 << 16], b[1 << 16], c[1 << 16], d[1 << 16];
    size_t na = 0, nb = 0, nc = 0, nd = 0;
    if (!make_base(t, "Q4_1", path, sizeof path)) return;
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load: %s", ds_last_error());
    run_steps(t, m, -1.0f, 0, 3, a, &na);
    run_steps(t, m, -1.0f, 1, 3, b, &nb);   /* recompute: the same arithmetic again */
    run_steps(t, m, 0.1f, 0, 3, c, &nc);
    run_steps(t, m, 0.1f, 1, 3, d, &nd);
    DS_CHECK(t, na == nb && na == nc && na == nd && na < (1 << 16), "parameter counts %zu %zu %zu %zu", na, nb, nc, nd);
    DS_CHECK(t, t->failed || !memcmp(a, b, na * sizeof(float)), "dropout off: two runs differ");
    DS_CHECK(t, t->failed || !memcmp(c, d, nc * sizeof(float)), "dropout 0.1: two runs with the same seed differ");
    DS_CHECK(t, t->failed || memcmp(a, c, na * sizeof(float)), "dropout made no difference");
    ds_model_free(m);
}

/* one repeated batch is learnt: the loss falls by more than half in 40 steps */
static void lora_loss_decreases(ds_test_ctx *t) {
    char path[128];
    ds_model *m = NULL;
    ds_trainer *tr = NULL;
    ds_train_step_info info;
    int32_t tok[BATCH * T], tgt[BATCH * T];
    float first = 0, last = 0;
    int i;
    if (!make_base(t, "Q4_1", path, sizeof path)) return;
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load: %s", ds_last_error());
    DS_CHECK(t, lora_trainer(m, 0.0f, 0, 0, &tr) == DS_OK, "create: %s", ds_last_error());
    batch(tok, tgt, BATCH * T);
    for (i = 0; i < 40 && !t->failed; i++) {
        DS_CHECK(t, ds_trainer_step_tokens(tr, tok, tgt, &info) == DS_OK, "step: %s", ds_last_error());
        if (i == 0) first = info.loss;
        last = info.loss;
    }
    if (!t->failed) fprintf(stderr, "lora overfit: loss %.4f -> %.4f in 40 steps\n", first, last);
    DS_CHECK(t, t->failed || last < 0.5f * first, "loss %g -> %g", first, last);
    ds_trainer_free(tr);
    ds_model_free(m);
}

/* a checkpoint resumes bit-exactly (dropout on, so its masks must follow the step); a
   checkpoint over another base, or with another rank, is refused */
static void lora_checkpoint_resume(ds_test_ctx *t) {
    char path[128], path2[128];
    ds_model *m = NULL, *m2 = NULL;
    ds_trainer *a = NULL, *b = NULL, *c = NULL;
    ds_lora_config lc;
    int32_t tok[BATCH * T * 4], tgt[BATCH * T * 4];
    size_t n = 0, n2 = 0;
    int i;
    const char *ck = "build/test_lora_ckpt.gguf";
    if (!make_base(t, "Q4_1", path, sizeof path) || !make_base(t, "Q8_0", path2, sizeof path2)) return;
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK && ds_model_load(path2, NULL, &m2) == DS_OK, "load: %s", ds_last_error());
    batch(tok, tgt, BATCH * T * 4);
    DS_CHECK(t, lora_trainer(m, 0.1f, 0, 0, &a) == DS_OK, "create: %s", ds_last_error());
    for (i = 0; i < 2 && !t->failed; i++) DS_CHECK(t, ds_trainer_step_tokens(a, tok + i * BATCH * T, tgt + i * BATCH * T, NULL) == DS_OK, "step: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_trainer_save_checkpoint(a, ck) == DS_OK, "save: %s", ds_last_error());
    for (i = 2; i < 4 && !t->failed; i++) DS_CHECK(t, ds_trainer_step_tokens(a, tok + i * BATCH * T, tgt + i * BATCH * T, NULL) == DS_OK, "step: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_checkpoint_read_lora(ck, &lc) == DS_OK, "read lora config: %s", ds_last_error());
    DS_CHECK(t, t->failed || (lc.r == 4 && lc.alpha == 8.0f && lc.dropout == 0.1f && lc.targets == DS_LORA_ALL), "config read back: r %d alpha %g", lc.r, (double)lc.alpha);
    DS_CHECK(t, t->failed || lora_trainer(m, 0.1f, 0, 0, &b) == DS_OK, "create: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_trainer_load_checkpoint(b, ck) == DS_OK, "load: %s", ds_last_error());
    for (i = 2; i < 4 && !t->failed; i++) DS_CHECK(t, ds_trainer_step_tokens(b, tok + i * BATCH * T, tgt + i * BATCH * T, NULL) == DS_OK, "step: %s", ds_last_error());
    if (!t->failed) {
        float *pa = ds_trainer_params(a, &n), *pb = ds_trainer_params(b, &n2);
        DS_CHECK(t, n == n2 && !memcmp(pa, pb, n * sizeof(float)), "resumed run differs from the uninterrupted one");
    }
    DS_CHECK(t, t->failed || lora_trainer(m2, 0.1f, 0, 0, &c) == DS_OK, "create: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_trainer_load_checkpoint(c, ck) == DS_ERR_INVALID_ARG, "a checkpoint over another base was accepted");
    DS_CHECK(t, t->failed || strstr(ds_last_error(), "another base"), "message: %s", ds_last_error());
    ds_trainer_free(c);
    c = NULL;
    DS_CHECK(t, t->failed || lora_trainer(m, 0.1f, DS_LORA_Q | DS_LORA_V, 0, &c) == DS_OK, "create: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_trainer_load_checkpoint(c, ck) == DS_ERR_INVALID_ARG, "a checkpoint with other targets was accepted");
    ds_trainer_free(a);
    ds_trainer_free(b);
    ds_trainer_free(c);
    ds_model_free(m);
    ds_model_free(m2);
}

/* the adapter file: llama.cpp's keys, names and ggml shapes ([in, r] and [r, out]) */
static void lora_adapter_file(ds_test_ctx *t) {
    char path[128];
    ds_model *m = NULL;
    ds_trainer *tr = NULL;
    ds_gguf *g = NULL;
    ds_str s;
    float alpha = 0;
    const ds_gguf_tensor *a, *b, *d;
    const char *out = "build/test_lora_adapter.gguf";
    if (!make_base(t, "Q4_1", path, sizeof path)) return;
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load: %s", ds_last_error());
    DS_CHECK(t, lora_trainer(m, 0.0f, DS_LORA_Q | DS_LORA_DOWN, 0, &tr) == DS_OK, "create: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_trainer_save_lora(tr, out) == DS_OK, "save: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_trainer_save_model(tr, "build/test_lora_model.gguf", NULL) == DS_ERR_STATE, "save_model of a LoRA trainer");
    DS_CHECK(t, t->failed || ds_gguf_open(out, &g) == DS_OK, "open: %s", ds_last_error());
    if (t->failed) goto done;
    DS_CHECK(t, ds_gguf_get_str(g, "general.architecture", &s) == DS_OK && s.len == 5 && !memcmp(s.ptr, "llama", 5), "general.architecture");
    DS_CHECK(t, ds_gguf_get_str(g, "general.type", &s) == DS_OK && s.len == 7 && !memcmp(s.ptr, "adapter", 7), "general.type");
    DS_CHECK(t, ds_gguf_get_str(g, "adapter.type", &s) == DS_OK && s.len == 4 && !memcmp(s.ptr, "lora", 4), "adapter.type");
    DS_CHECK(t, ds_gguf_get_f32(g, "adapter.lora.alpha", &alpha) == DS_OK && alpha == 8.0f, "adapter.lora.alpha %g", (double)alpha);
    DS_CHECK(t, ds_gguf_n_tensors(g) == 8, "%lld tensors, expected 8 (2 layers x 2 targets x A, B)", (long long)ds_gguf_n_tensors(g));
    a = ds_gguf_find_tensor(g, "blk.1.attn_q.weight.lora_a");
    b = ds_gguf_find_tensor(g, "blk.1.attn_q.weight.lora_b");
    d = ds_gguf_find_tensor(g, "blk.0.ffn_down.weight.lora_a");
    DS_CHECK(t, a && a->type == DS_TYPE_F32 && a->ne[0] == 64 && a->ne[1] == 4, "attn_q lora_a shape");
    DS_CHECK(t, b && b->type == DS_TYPE_F32 && b->ne[0] == 4 && b->ne[1] == 64, "attn_q lora_b shape");
    DS_CHECK(t, d && d->ne[0] == 96 && d->ne[1] == 4, "ffn_down lora_a shape");
    DS_CHECK(t, !ds_gguf_find_tensor(g, "blk.0.attn_k.weight.lora_a"), "an untargeted projection has a pair");
done:
    ds_gguf_free(g);
    ds_trainer_free(tr);
    ds_model_free(m);
}

static void lora_bad_config(ds_test_ctx *t) {
    char path[128];
    ds_model *m = NULL;
    ds_trainer *tr = NULL;
    ds_lora_config lc;
    if (!make_base(t, "F32", path, sizeof path)) return;
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load: %s", ds_last_error());
    memset(&lc, 0, sizeof lc);
    lc.r = -1;
    DS_CHECK(t, ds_trainer_create_lora(m, &lc, NULL, &tr) == DS_ERR_INVALID_ARG && strstr(ds_last_error(), "rank"), "rank -1: %s", ds_last_error());
    lc.r = 0;
    lc.alpha = -2;
    DS_CHECK(t, ds_trainer_create_lora(m, &lc, NULL, &tr) == DS_ERR_INVALID_ARG && strstr(ds_last_error(), "alpha"), "alpha -2: %s", ds_last_error());
    lc.alpha = 0;
    lc.dropout = 1.0f;
    DS_CHECK(t, ds_trainer_create_lora(m, &lc, NULL, &tr) == DS_ERR_INVALID_ARG && strstr(ds_last_error(), "dropout"), "dropout 1: %s", ds_last_error());
    lc.dropout = 0;
    lc.targets = 0x100;
    DS_CHECK(t, ds_trainer_create_lora(m, &lc, NULL, &tr) == DS_ERR_INVALID_ARG, "target bit 0x100");
    DS_CHECK(t, tr == NULL, "a trainer was returned on error");
    lc.targets = 0;
    DS_CHECK(t, ds_trainer_create_lora(m, &lc, NULL, &tr) == DS_OK, "defaults: %s", ds_last_error());
    if (tr) {
        const ds_lora_config *c = ds_trainer_lora_config(tr);
        DS_CHECK(t, c && c->r == 16 && c->alpha == 32.0f && c->dropout == 0.1f && c->targets == DS_LORA_ALL, "defaults r 16, alpha 32, dropout 0.1, all targets");
    }
    ds_trainer_free(tr);
    ds_model_free(m);
}


/* For tests/check_lora.py: an adapter with non-zero pairs over the F32 and Q4_1 bases and the
   trainer's next-token probabilities with it after each prefix of a sequence, which llama.cpp
   must reproduce when it loads base and adapter (build/test_lora_export_<type>.{gguf,probs}). */
static void lora_export_for_llama_cpp(ds_test_ctx *t) {
    static const char *const types[] = {"F32", "Q4_1"};
    int k;
    for (k = 0; k < 2 && !t->failed; k++) {
        char path[128], out[128], probs_path[128];
        ds_model *m = NULL;
        ds_trainer *tr = NULL;
        int32_t tok[T];
        float probs[V];
        size_t n = 0;
        int i;
        FILE *f = NULL;
        if (!make_base(t, types[k], path, sizeof path)) return;
        DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load: %s", ds_last_error());
        DS_CHECK(t, lora_trainer(m, 0.0f, 0, 0, &tr) == DS_OK, "create: %s", ds_last_error());
        if (!t->failed) {
            float *p = ds_trainer_params(tr, &n);
            fill(p, n, 0.15f);
        }
        snprintf(out, sizeof out, "build/test_lora_export_%s.gguf", types[k]);
        snprintf(probs_path, sizeof probs_path, "build/test_lora_export_%s.probs", types[k]);
        DS_CHECK(t, t->failed || ds_trainer_save_lora(tr, out) == DS_OK, "save: %s", ds_last_error());
        for (i = 0; i < T; i++) tok[i] = (int32_t)(ds__tr_next(&rs) % V);
        if (!t->failed) f = fopen(probs_path, "wb");
        DS_CHECK(t, t->failed || f, "cannot write %s", probs_path);
        if (f) fwrite(tok, sizeof tok[0], T, f);
        for (i = 1; i <= T && f && !t->failed; i++) {
            DS_CHECK(t, ds_trainer_next_probs(tr, tok, i, probs) == DS_OK, "probs: %s", ds_last_error());
            fwrite(probs, sizeof probs[0], V, f);
        }
        if (f) fclose(f);
        ds_trainer_free(tr);
        ds_model_free(m);
    }
}

/* ---- JSONL datasets ---- */
static const char *smol(void) { return ds_test_env_file("DS_TEST_MODEL"); }

/* the learnt tokens of example e, detokenized */
static void learnt_text(const ds_model *m, const ds_sft_data *d, int64_t e, char *out, size_t cap) {
    int32_t ids[512];
    size_t n = 0, len = 0;
    int64_t k;
    for (k = d->start[e]; k < d->start[e + 1]; k++)
        if (d->learn[k] && n < 512) ids[n++] = d->tok[k];
    out[0] = 0;
    if (ds_detokenize(ds_model_tokenizer(m), ids, n, out, cap - 1, &len) == DS_OK) out[len] = 0;
}

/* prompt / completion: only the completion and EOS are learnt; chat: only each assistant turn's
   content and end marker, as the model's template (ChatML) renders them */
static void sft_masks(ds_test_ctx *t) {
    const char *path = smol();
    ds_model *m = NULL;
    ds_sft_data *d = NULL;
    char got[1024], want[256];
    int32_t ids[256];
    size_t n = 0;
    int64_t learnt = 0, k;
    const char *jl = "{\"prompt\": \"Convert 2024-03-05 to US style: \", \"completion\": \"03/05/2024\"}\n"
                     "\n"
                     "{\"text\": \"Just some text.\", \"id\": 7}\n"
                     "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi!\"}, {\"role\": \"assistant\", \"content\": \"Hello \\u00e9\"},"
                     " {\"role\": \"user\", \"content\": \"Bye\"}, {\"role\": \"assistant\", \"content\": \"See you\"}]}\n";
    if (!path) DS_SKIP(t, "DS_TEST_MODEL is unset or missing (run `make model`)");
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load: %s", ds_last_error());
    DS_CHECK(t, ds_sft_data_load_memory(m, jl, strlen(jl), "mem.jsonl", &d) == DS_OK, "load data: %s", ds_last_error());
    if (t->failed) goto done;
    DS_CHECK(t, ds_sft_data_examples(d) == 3, "%lld examples, expected 3", (long long)ds_sft_data_examples(d));
    ds_sft_data_tokens(d, &learnt);
    learnt_text(m, d, 0, got, sizeof got);
    DS_CHECK(t, !strcmp(got, "03/05/2024<|im_end|>"), "completion learnt as '%s' (SmolLM2's EOS is <|im_end|>)", got);
    /* the prompt's tokens are there, unlearnt, and are the prompt's own tokenization */
    DS_CHECK(t, ds_tokenize(ds_model_tokenizer(m), "Convert 2024-03-05 to US style: ", 32, 0, ids, 256, &n) == DS_OK, "tokenize");
    for (k = 0; k < (int64_t)n && !t->failed; k++) DS_CHECK(t, d->tok[d->start[0] + k] == ids[k] && !d->learn[d->start[0] + k], "prompt token %lld", (long long)k);
    learnt_text(m, d, 1, got, sizeof got);
    DS_CHECK(t, !strcmp(got, "Just some text.<|im_end|>"), "text learnt as '%s'", got);
    learnt_text(m, d, 2, got, sizeof got);
    snprintf(want, sizeof want, "Hello \xc3\xa9<|im_end|>\nSee you<|im_end|>\n");
    DS_CHECK(t, !strcmp(got, want), "chat learnt as '%s', expected '%s'", got, want);
    {   /* the whole conversation is the template's rendering, tokenized */
        ds_chat_message msgs[4] = {{"user", "Hi!", 0}, {"assistant", "Hello \xc3\xa9", 0}, {"user", "Bye", 0}, {"assistant", "See you", 0}};
        size_t len = 0, i;
        int32_t all[512];
        size_t na = 0;
        DS_CHECK(t, ds_chat_apply(m, DS_CHAT_AUTO, msgs, 4, 0, got, sizeof got, &len) == DS_OK, "render");
        DS_CHECK(t, ds_tokenize(ds_model_tokenizer(m), got, len, DS_TOKENIZE_PARSE_SPECIAL, all, 512, &na) == DS_OK, "tokenize");
        DS_CHECK(t, (int64_t)na == d->start[3] - d->start[2], "chat example has %lld tokens, the rendering %zu", (long long)(d->start[3] - d->start[2]), na);
        for (i = 0; i < na && !t->failed; i++) DS_CHECK(t, all[i] == d->tok[d->start[2] + (int64_t)i], "chat token %zu", i);
    }
done:
    ds_sft_data_free(d);
    ds_model_free(m);
}

/* bad lines are refused with file:line; an empty dataset is refused */
static void sft_errors(ds_test_ctx *t) {
    char path[128];
    ds_model *m = NULL;
    ds_sft_data *d = NULL;
    static const struct { const char *text, *msg; } cases[] = {
        {"{\"text\": \"a\"}\n{\"text\": \"b\"\n", "bad.jsonl:2"},
        {"{\"text\": \"a\"}\n\n[1, 2]\n", "bad.jsonl:3: not a JSON object"},
        {"{\"prompt\": \"a\"}\n", "bad.jsonl:1: need"},
        {"{\"prompt\": \"a\", \"completion\": 5}\n", "bad.jsonl:1: \"completion\" must be a string"},
        {"{\"text\": \"\"}\n", "bad.jsonl:1: nothing to learn"},
        {"{\"messages\": [{\"role\": \"user\"}]}\n", "bad.jsonl:1: messages[0] needs"},
        {"{\"messages\": []}\n", "bad.jsonl:1: \"messages\" must be a non-empty array"},
        {"", "bad.jsonl: no examples"},
        {"\n  \n\r\n", "bad.jsonl: no examples"},
        {"{\"text\": \"\\ud800\"}\n", "bad.jsonl:1"},
    };
    size_t i;
    if (!make_base(t, "F32", path, sizeof path)) return;
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load: %s", ds_last_error());
    for (i = 0; i < sizeof cases / sizeof cases[0] && !t->failed; i++) {
        ds_status st = ds_sft_data_load_memory(m, cases[i].text, strlen(cases[i].text), "bad.jsonl", &d);
        DS_CHECK(t, st != DS_OK && d == NULL && strstr(ds_last_error(), cases[i].msg), "case %zu: status %d, message '%s', expected '%s'", i, (int)st, ds_last_error(), cases[i].msg);
    }
    DS_CHECK(t, t->failed || ds_sft_data_load(m, "build/no_such_file.jsonl", &d) == DS_ERR_IO, "a missing file");
    ds_model_free(m);
}

/* packing: every learnt token is a target exactly once, at the position before it; the order
   is shuffled per epoch, the same for the same (seed, epoch) */
static void sft_pack(ds_test_ctx *t) {
    char path[128];
    ds_model *m = NULL;
    ds_sft_data *d = NULL;
    int32_t *tok = NULL, *tgt = NULL, *tok2 = NULL, *tgt2 = NULL, *tok3 = NULL, *tgt3 = NULL;
    int64_t n = 0, n2 = 0, n3 = 0, learnt = 0, counted = 0, i;
    char jl[4096];
    size_t len = 0;
    int e;
    for (e = 0; e < 40; e++) len += (size_t)snprintf(jl + len, sizeof jl - len, "{\"prompt\": \"q%d \", \"completion\": \"a%d\"}\n", e, e * 7);
    if (!make_base(t, "F32", path, sizeof path)) return;
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load: %s", ds_last_error());
    DS_CHECK(t, ds_sft_data_load_memory(m, jl, len, "pack.jsonl", &d) == DS_OK, "load: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_sft_data_pack(d, 16, 3, 0, &tok, &tgt, &n) == DS_OK, "pack: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_sft_data_pack(d, 16, 3, 0, &tok2, &tgt2, &n2) == DS_OK, "pack: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_sft_data_pack(d, 16, 3, 1, &tok3, &tgt3, &n3) == DS_OK, "pack: %s", ds_last_error());
    if (t->failed) goto done;
    ds_sft_data_tokens(d, &learnt);
    DS_CHECK(t, n == (d->n_tok - 1 + 15) / 16 && n == n2 && n == n3, "%lld windows for %lld tokens", (long long)n, (long long)d->n_tok);
    for (i = 0; i < n * 16; i++) {
        counted += tgt[i] >= 0;
        /* a counted target is the next position's token (the stream is consecutive) */
        if (tgt[i] >= 0 && i + 1 < n * 16) DS_CHECK(t, tgt[i] == tok[i + 1], "target %lld is %d, the next token %d", (long long)i, tgt[i], tok[i + 1]);
    }
    /* the first example's first token is never a target (nothing precedes it): one learnt token
       can be lost only if the first example in the order starts with a learnt token */
    DS_CHECK(t, counted == learnt, "%lld counted targets, %lld learnt tokens", (long long)counted, (long long)learnt);
    DS_CHECK(t, !memcmp(tok, tok2, (size_t)n * 16 * sizeof *tok) && !memcmp(tgt, tgt2, (size_t)n * 16 * sizeof *tgt), "the same seed and epoch packed differently");
    DS_CHECK(t, memcmp(tok, tok3, (size_t)n * 16 * sizeof *tok), "epochs 0 and 1 packed the same order");
done:
    ds_free(tok); ds_free(tgt); ds_free(tok2); ds_free(tgt2); ds_free(tok3); ds_free(tgt3);
    ds_sft_data_free(d);
    ds_model_free(m);
}

/* ds_finetune: epochs x steps-per-epoch steps, the loss falls over the epochs, on_step can stop */
typedef struct ft_seen { int steps, stop_at; float first, last; int last_epoch; } ft_seen;
static int ft_step(void *user, const ds_train_step_info *info, int epoch) {
    ft_seen *s = (ft_seen *)user;
    if (!s->steps++) s->first = info->loss;
    s->last = info->loss;
    s->last_epoch = epoch;
    return s->stop_at && s->steps >= s->stop_at;
}
static void sft_finetune(ds_test_ctx *t) {
    char path[128], jl[4096];
    ds_model *m = NULL;
    ds_sft_data *d = NULL;
    ds_trainer *tr = NULL;
    ds_lora_config lc;
    ds_finetune_config fc;
    ft_seen seen;
    size_t len = 0;
    int e, spe = 0;
    int32_t tok[64], tgt[64];
    for (e = 0; e < 12; e++) len += (size_t)snprintf(jl + len, sizeof jl - len, "{\"prompt\": \"%c%c=\", \"completion\": \"%c\"}\n", 'a' + e, 'b' + e, 'c' + e);
    if (!make_base(t, "Q4_1", path, sizeof path)) return;
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load: %s", ds_last_error());
    DS_CHECK(t, ds_sft_data_load_memory(m, jl, len, "ft.jsonl", &d) == DS_OK, "data: %s", ds_last_error());
    memset(&lc, 0, sizeof lc);
    memset(&fc, 0, sizeof fc);
    memset(&seen, 0, sizeof seen);
    lc.r = 4;
    lc.alpha = 8;
    lc.dropout = -1;
    fc.epochs = 20;
    fc.train.batch = 2;
    fc.train.seq_len = 8;
    fc.train.lr = 1e-2f;
    fc.train.n_threads = 2;
    fc.on_step = ft_step;
    fc.user = &seen;
    DS_CHECK(t, t->failed || ds_finetune(m, &lc, d, &fc, &tr) == DS_OK, "finetune: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_sft_data_step(d, tr, 0, tok, tgt, &spe) == DS_OK, "step: %s", ds_last_error());
    DS_CHECK(t, t->failed || (seen.steps == 20 * spe && ds_trainer_step_count(tr) == seen.steps && seen.last_epoch == 19), "%d steps (%d per epoch), last epoch %d", seen.steps, spe, seen.last_epoch);
    if (!t->failed) fprintf(stderr, "ds_finetune: %d steps, loss %.4f -> %.4f\n", seen.steps, seen.first, seen.last);
    DS_CHECK(t, t->failed || seen.last < 0.5f * seen.first, "loss %g -> %g", seen.first, seen.last);
    ds_trainer_free(tr);
    tr = NULL;
    memset(&seen, 0, sizeof seen);
    seen.stop_at = 3;
    DS_CHECK(t, t->failed || (ds_finetune(m, &lc, d, &fc, &tr) == DS_OK && seen.steps == 3 && ds_trainer_step_count(tr) == 3), "stop after 3 steps: %d", seen.steps);
    ds_trainer_free(tr);
    ds_sft_data_free(d);
    ds_model_free(m);
}

DS_TEST_MAIN(DS_T(lora_grad_fd_f32), DS_T(lora_grad_fd_f16), DS_T(lora_grad_fd_q4_1), DS_T(lora_grad_fd_q8_0), DS_T(lora_zero_b_is_base_f32),
             DS_T(lora_zero_b_is_base_q8_0), DS_T(lora_deterministic), DS_T(lora_loss_decreases), DS_T(lora_checkpoint_resume),
             DS_T(lora_adapter_file), DS_T(lora_bad_config), DS_T(lora_export_for_llama_cpp), DS_T(sft_masks), DS_T(sft_errors), DS_T(sft_pack), DS_T(sft_finetune))
