/* Every training operation's backward against central finite differences of an independent
   double-precision forward written here; every forward against that reference; the GEMM's
   SIMD paths against a naive product. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"

static uint64_t rng_state = 42;
static double urand(void) { return ds__tr_uniform(&rng_state) * 2.0 - 1.0; }
static void fill(float *x, size_t n, double s) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = (float)(s * urand());
}

/* relative error of analytic vs numeric gradients, as norms */
static double rel_err(const float *a, const double *n, size_t len) {
    double d = 0.0, s = 0.0, r;
    size_t i;
    for (i = 0; i < len; i++) {
        d += (a[i] - n[i]) * (a[i] - n[i]);
        s += n[i] * n[i];
    }
    r = sqrt(d) / (sqrt(s) + 1e-30);
    if (getenv("DS_TEST_VERBOSE")) fprintf(stderr, "  relative error %.2e over %zu values\n", r, len);
    return r;
}

#include "numgrad.h"
/* the CPU backend's kernels at the current feature mask (filled before each use) */
static ds__ops ops;

/* ---- RMSNorm ---- */
enum { RN = 5, RC = 24 };
typedef struct { double *x, *w, *r; } rms_ctx;
static void rms_ref(const double *x, const double *w, double *out) {
    int i, c;
    for (i = 0; i < RN; i++) {
        double ss = 0, r;
        for (c = 0; c < RC; c++) ss += x[i * RC + c] * x[i * RC + c];
        r = 1.0 / sqrt(ss / RC + 1e-5);
        for (c = 0; c < RC; c++) out[i * RC + c] = x[i * RC + c] * r * w[c];
    }
}
static double rms_loss(void *p) {
    rms_ctx *c = (rms_ctx *)p;
    double out[RN * RC], s = 0;
    int i;
    rms_ref(c->x, c->w, out);
    for (i = 0; i < RN * RC; i++) s += out[i] * c->r[i];
    return s;
}
static void test_rmsnorm(ds_test_ctx *t) {
    float x[RN * RC], w[RC], r[RN * RC], out[RN * RC], rstd[RN], dx[RN * RC], dw[RC];
    double ref[RN * RC], nx[RN * RC], nw[RC], e = 0;
    rms_ctx c;
    int i;
    fill(x, RN * RC, 2.0); fill(w, RC, 1.0); fill(r, RN * RC, 1.0);
    memset(dx, 0, sizeof dx); memset(dw, 0, sizeof dw);
    ds__rmsnorm_forward(NULL, out, rstd, x, w, RN, RC, 1e-5f);
    c.x = to_double(x, RN * RC); c.w = to_double(w, RC); c.r = to_double(r, RN * RC);
    rms_ref(c.x, c.w, ref);
    for (i = 0; i < RN * RC; i++) e = fmax(e, fabs(out[i] - ref[i]));
    DS_CHECK(t, e < 1e-5, "forward differs by %g", e);
    ds__rmsnorm_backward(NULL, dx, dw, r, x, w, rstd, RN, RC);
    numgrad(nx, c.x, RN * RC, rms_loss, &c);
    numgrad(nw, c.w, RC, rms_loss, &c);
    DS_CHECK(t, rel_err(dx, nx, RN * RC) < 1e-3, "dx rel err %g", rel_err(dx, nx, RN * RC));
    DS_CHECK(t, rel_err(dw, nw, RC) < 1e-3, "dw rel err %g", rel_err(dw, nw, RC));
    free(c.x); free(c.w); free(c.r);
}

/* ---- attention with RoPE and GQA: q, k, v (pre-rotation) -> y ---- */
enum { AB = 2, AT = 6, AH = 4, AKV = 2, AD = 8 };
typedef struct { double *q, *k, *v, *r; } att_ctx;
static void rope_ref(double *x, int nh, int pos) {
    int h, p;
    for (h = 0; h < nh; h++)
        for (p = 0; p < AD / 2; p++) {
            double ang = pos * pow(10000.0, -2.0 * p / AD), a = x[h * AD + 2 * p], b = x[h * AD + 2 * p + 1];
            x[h * AD + 2 * p] = a * cos(ang) - b * sin(ang);
            x[h * AD + 2 * p + 1] = a * sin(ang) + b * cos(ang);
        }
}
static void att_ref(const double *q0, const double *k0, const double *v, double *y) {
    static double q[AB * AT * AH * AD], k[AB * AT * AKV * AD];
    int b, t, h, j, d;
    memcpy(q, q0, sizeof q);
    memcpy(k, k0, sizeof k);
    for (b = 0; b < AB; b++)
        for (t = 0; t < AT; t++) {
            rope_ref(q + (b * AT + t) * AH * AD, AH, t);
            rope_ref(k + (b * AT + t) * AKV * AD, AKV, t);
        }
    for (b = 0; b < AB; b++)
        for (h = 0; h < AH; h++)
            for (t = 0; t < AT; t++) {
                double s[AT], mx = -1e300, sum = 0;
                int g = h / (AH / AKV);
                for (j = 0; j <= t; j++) {
                    s[j] = 0;
                    for (d = 0; d < AD; d++) s[j] += q[((b * AT + t) * AH + h) * AD + d] * k[((b * AT + j) * AKV + g) * AD + d];
                    s[j] /= sqrt((double)AD);
                    mx = fmax(mx, s[j]);
                }
                for (j = 0; j <= t; j++) sum += (s[j] = exp(s[j] - mx));
                for (d = 0; d < AD; d++) {
                    double acc = 0;
                    for (j = 0; j <= t; j++) acc += s[j] / sum * v[((b * AT + j) * AKV + g) * AD + d];
                    y[((b * AT + t) * AH + h) * AD + d] = acc;
                }
            }
}
static double att_loss(void *p) {
    att_ctx *c = (att_ctx *)p;
    double y[AB * AT * AH * AD], s = 0;
    int i;
    att_ref(c->q, c->k, c->v, y);
    for (i = 0; i < AB * AT * AH * AD; i++) s += y[i] * c->r[i];
    return s;
}
static void test_attention(ds_test_ctx *t) {
    enum { NQ = AB * AT * AH * AD, NK = AB * AT * AKV * AD };
    static float q[NQ], k[NK], v[NK], r[NQ], y[NQ], probs[AB * AH * AT * AT], dq[NQ], dk[NK], dv[NK], cs[AT * AD];
    static double ref[NQ], nq[NQ], nk[NK], nv[NK];
    att_ctx c;
    double e = 0;
    int i;
    fill(q, NQ, 1.0); fill(k, NK, 1.0); fill(v, NK, 1.0); fill(r, NQ, 1.0);
    c.q = to_double(q, NQ); c.k = to_double(k, NK); c.v = to_double(v, NK); c.r = to_double(r, NQ);
    ds__rope_table(cs, AT, AD, 10000.0f);
    ds__rope_apply(q, cs, AB * AT, AT, AH, AD, AD, 1.0f);
    ds__rope_apply(k, cs, AB * AT, AT, AKV, AD, AD, 1.0f);
    ds__ops_init(&ops, DS_BACKEND_CPU);
    ds__attention_forward(&ops, NULL, y, probs, q, k, v, AB, AT, AH, AKV, AD);
    att_ref(c.q, c.k, c.v, ref);
    for (i = 0; i < NQ; i++) e = fmax(e, fabs(y[i] - ref[i]));
    DS_CHECK(t, e < 1e-5, "forward differs by %g", e);
    ds__attention_backward(&ops, NULL, dq, dk, dv, r, y, probs, q, k, v, AB, AT, AH, AKV, AD);
    ds__rope_apply(dq, cs, AB * AT, AT, AH, AD, AD, -1.0f);
    ds__rope_apply(dk, cs, AB * AT, AT, AKV, AD, AD, -1.0f);
    numgrad(nq, c.q, NQ, att_loss, &c);
    numgrad(nk, c.k, NK, att_loss, &c);
    numgrad(nv, c.v, NK, att_loss, &c);
    DS_CHECK(t, rel_err(dq, nq, NQ) < 1e-3, "dq rel err %g", rel_err(dq, nq, NQ));
    DS_CHECK(t, rel_err(dk, nk, NK) < 1e-3, "dk rel err %g", rel_err(dk, nk, NK));
    DS_CHECK(t, rel_err(dv, nv, NK) < 1e-3, "dv rel err %g", rel_err(dv, nv, NK));
    free(c.q); free(c.k); free(c.v); free(c.r);
}

/* ---- SwiGLU ---- */
enum { SN = 200 };
typedef struct { double *g, *u, *r; } sw_ctx;
static double sw_loss(void *p) {
    sw_ctx *c = (sw_ctx *)p;
    double s = 0;
    int i;
    for (i = 0; i < SN; i++) s += c->g[i] / (1 + exp(-c->g[i])) * c->u[i] * c->r[i];
    return s;
}
static void test_swiglu(ds_test_ctx *t) {
    float g[SN], u[SN], r[SN], h[SN], dg[SN], du[SN];
    double ng[SN], nu[SN], e = 0;
    sw_ctx c;
    int i;
    fill(g, SN, 4.0); fill(u, SN, 2.0); fill(r, SN, 1.0);
    ds__swiglu_forward(NULL, h, g, u, SN);
    c.g = to_double(g, SN); c.u = to_double(u, SN); c.r = to_double(r, SN);
    for (i = 0; i < SN; i++) e = fmax(e, fabs(h[i] - c.g[i] / (1 + exp(-c.g[i])) * c.u[i]));
    DS_CHECK(t, e < 1e-5, "forward differs by %g", e);
    ds__swiglu_backward(NULL, dg, du, r, g, u, SN);
    numgrad(ng, c.g, SN, sw_loss, &c);
    numgrad(nu, c.u, SN, sw_loss, &c);
    DS_CHECK(t, rel_err(dg, ng, SN) < 1e-3, "dg rel err %g", rel_err(dg, ng, SN));
    DS_CHECK(t, rel_err(du, nu, SN) < 1e-3, "du rel err %g", rel_err(du, nu, SN));
    free(c.g); free(c.u); free(c.r);
}

/* ---- cross-entropy (mean over rows) ---- */
enum { CN = 6, CV = 11 };
typedef struct { double *l; const int32_t *tg; } ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = (ce_ctx *)p;
    double s = 0;
    int i, j;
    for (i = 0; i < CN; i++) {
        double mx = -1e300, z = 0;
        for (j = 0; j < CV; j++) mx = fmax(mx, c->l[i * CV + j]);
        for (j = 0; j < CV; j++) z += exp(c->l[i * CV + j] - mx);
        s += log(z) + mx - c->l[i * CV + c->tg[i]];
    }
    return s / CN;
}
static void test_crossentropy(ds_test_ctx *t) {
    float l[CN * CV], losses[CN];
    double nl[CN * CV], mean = 0;
    int32_t tg[CN] = {0, 3, 10, 5, 5, 7};
    ce_ctx c;
    int i;
    fill(l, CN * CV, 3.0);
    c.l = to_double(l, CN * CV); c.tg = tg;
    ds__ops_init(&ops, DS_BACKEND_CPU);
    ds__crossentropy_forward(&ops, NULL, l, losses, tg, CN, CV);
    for (i = 0; i < CN; i++) mean += losses[i] / CN;
    DS_CHECK(t, fabs(mean - ce_loss(&c)) < 1e-5, "loss %g vs %g", mean, ce_loss(&c));
    ds__crossentropy_backward(&ops, NULL, l, tg, CN, CV, 1.0f / CN);
    numgrad(nl, c.l, CN * CV, ce_loss, &c);
    DS_CHECK(t, rel_err(l, nl, CN * CV) < 1e-3, "dlogits rel err %g", rel_err(l, nl, CN * CV));
    free(c.l);
}

/* ---- embedding ---- */
static void test_embedding(ds_test_ctx *t) {
    float wte[5 * 3], out[4 * 3], dout[4 * 3], dw[5 * 3];
    double expect[5 * 3];
    int32_t tok[4] = {1, 4, 1, 0};
    int i, c;
    fill(wte, 15, 1.0); fill(dout, 12, 1.0);
    memset(dw, 0, sizeof dw);
    memset(expect, 0, sizeof expect);
    ds__ops_init(&ops, DS_BACKEND_CPU);
    ops.embed(out, DS_TYPE_F32, wte, tok, 4, 3);
    for (i = 0; i < 4; i++)
        for (c = 0; c < 3; c++) {
            DS_CHECK(t, out[i * 3 + c] == wte[tok[i] * 3 + c], "row %d", i);
            expect[tok[i] * 3 + c] += dout[i * 3 + c]; /* d/dwte of sum(out * dout) */
        }
    ds__embedding_backward(dw, dout, tok, 4, 3);
    DS_CHECK(t, rel_err(dw, expect, 15) < 1e-6, "dwte rel err %g", rel_err(dw, expect, 15));
}


/* ---- linear layer y = x W^T, through the trainer's precision dispatch (f32) ---- */
enum { LN = 5, LI = 7, LO = 9 };
typedef struct { double *x, *w, *r; } lin_ctx;
static double lin_loss(void *p) {
    lin_ctx *c = (lin_ctx *)p;
    double s = 0;
    int n, o, i;
    for (n = 0; n < LN; n++)
        for (o = 0; o < LO; o++) {
            double y = 0;
            for (i = 0; i < LI; i++) y += c->x[n * LI + i] * c->w[o * LI + i];
            s += y * c->r[n * LO + o];
        }
    return s;
}
static void test_linear(ds_test_ctx *t) {
    ds_model_config mc;
    ds_train_config tc;
    ds_trainer *tr;
    float x[LN * LI], w[LO * LI], r[LN * LO], y[LN * LO], dx[LN * LI], dw[LO * LI];
    double nx[LN * LI], nw[LO * LI], e = 0;
    lin_ctx c;
    int n, o, i;
    memset(&mc, 0, sizeof mc);
    memset(&tc, 0, sizeof tc);
    mc.n_vocab = 16; mc.n_embd = 8; mc.n_layer = 1; mc.n_head = 2;
    tc.batch = 1; tc.seq_len = 4; tc.n_threads = 1;
    DS_REQUIRE(t, ds_trainer_create(&mc, &tc, &tr) == DS_OK, "create: %s", ds_last_error());
    fill(x, LN * LI, 1.0); fill(w, LO * LI, 1.0); fill(r, LN * LO, 1.0);
    memset(dw, 0, sizeof dw);
    c.x = to_double(x, LN * LI); c.w = to_double(w, LO * LI); c.r = to_double(r, LN * LO);
    ds__linear_forward(tr, y, x, w, LN, LO, LI, 0);
    for (n = 0; n < LN; n++)
        for (o = 0; o < LO; o++) {
            double ref = 0;
            for (i = 0; i < LI; i++) ref += c.x[n * LI + i] * c.w[o * LI + i];
            e = fmax(e, fabs(y[n * LO + o] - ref));
        }
    DS_CHECK(t, e < 1e-5, "forward differs by %g", e);
    ds__linear_backward(tr, dx, 0, dw, r, x, w, LN, LO, LI);
    numgrad(nx, c.x, LN * LI, lin_loss, &c);
    numgrad(nw, c.w, LO * LI, lin_loss, &c);
    DS_CHECK(t, rel_err(dx, nx, LN * LI) < 1e-3, "dx rel err %g", rel_err(dx, nx, LN * LI));
    DS_CHECK(t, rel_err(dw, nw, LO * LI) < 1e-3, "dw rel err %g", rel_err(dw, nw, LO * LI));
    free(c.x); free(c.w); free(c.r);
    ds_trainer_free(tr);
}

/* ---- GEMM: every transpose combination, odd shapes, each SIMD path vs the naive product ---- */
static double gemm_check(int bf16, int ta, int tb, int M, int N, int K, int acc) {
    float *A = (float *)malloc(sizeof(float) * M * K), *B = (float *)malloc(sizeof(float) * K * N);
    float *C = (float *)malloc(sizeof(float) * M * N);
    double worst = 0;
    ds__gemm_ws ws;
    int i, j, k;
    fill(A, (size_t)M * K, 1.0); fill(B, (size_t)K * N, 1.0); fill(C, (size_t)M * N, 1.0);
    {
        float *C0 = (float *)malloc(sizeof(float) * M * N);
        memcpy(C0, C, sizeof(float) * M * N);
        ds__ops_init(&ops, DS_BACKEND_CPU);
        ds__gemm_ws_init(&ws, &ops, NULL);
        ds__gemm(&ws, bf16, ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N, C, N, acc);
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                double s = acc ? C0[i * N + j] : 0, scale = fabs(s);
                for (k = 0; k < K; k++) {
                    double a = ta ? A[k * M + i] : A[i * K + k], b = tb ? B[j * K + k] : B[k * N + j];
                    if (bf16) {
                        a = ds__bf16_to_f32(ds__f32_to_bf16((float)a));
                        b = ds__bf16_to_f32(ds__f32_to_bf16((float)b));
                    }
                    s += a * b;
                    scale += fabs(a * b);
                }
                worst = fmax(worst, fabs(C[i * N + j] - s) / (scale + 1e-3));
            }
        free(C0);
        ds__gemm_ws_free(&ws);
    }
    free(A); free(B); free(C);
    return worst;
}
static void test_gemm_paths(ds_test_ctx *t) {
    static const unsigned masks[] = {0, DS_CPU_AVX2 | DS_CPU_FMA | DS_CPU_F16C, ~0u};
    static const int shapes[][3] = {{1, 1, 1}, {7, 33, 5}, {17, 70, 300}, {100, 260, 513}, {8, 32, 256}};
    int m, s, ta, tb, bf;
    for (m = 0; m < 3; m++) {
        ds_cpu_set_mask(masks[m]);
        for (s = 0; s < 5; s++)
            for (ta = 0; ta < 2; ta++)
                for (tb = 0; tb < 2; tb++)
                    for (bf = 0; bf < 2; bf++) {
                        double e = gemm_check(bf, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], (ta + tb) & 1);
                        DS_CHECK(t, e < 1e-5, "mask %x shape %dx%dx%d ta %d tb %d bf16 %d: rel err %g", masks[m], shapes[s][0], shapes[s][1], shapes[s][2], ta, tb, bf, e);
                    }
    }
    ds_cpu_set_mask(~0u);
}

/* threads must not change a single bit */
static void test_gemm_threads_deterministic(ds_test_ctx *t) {
    enum { M = 130, N = 300, K = 270 };
    static float A[M * K], B[N * K], C1[M * N], C2[M * N];
    ds_pool *pool;
    ds_pool_config pc;
    ds__gemm_ws w1, w2;
    fill(A, M * K, 1.0); fill(B, N * K, 1.0);
    memset(&pc, 0, sizeof pc);
    pc.n_threads = 3;
    DS_REQUIRE(t, ds_pool_create(&pc, &pool) == DS_OK, "pool");
    ds__ops_init(&ops, DS_BACKEND_CPU);
    ds__gemm_ws_init(&w1, &ops, NULL);
    ds__gemm_ws_init(&w2, &ops, pool);
    ds__gemm(&w1, 0, 0, 1, M, N, K, A, K, B, K, C1, N, 0);
    ds__gemm(&w2, 0, 0, 1, M, N, K, A, K, B, K, C2, N, 0);
    DS_CHECK(t, !memcmp(C1, C2, sizeof C1), "1 and 3 threads differ");
    ds__gemm_ws_free(&w1);
    ds__gemm_ws_free(&w2);
    ds_pool_free(pool);
}

/* reduced-precision rounding against known values */
static void test_rounding(ds_test_ctx *t) {
    DS_CHECK(t, ds__round_f16_emul(1.0f + 1.0f / 4096) == 1.0f, "f16 ties to even");
    DS_CHECK(t, ds__round_f16_emul(1.0f + 3.0f / 2048) == 1.0f + 2.0f / 1024, "f16 rounds up");
    DS_CHECK(t, isinf(ds__round_f16_emul(70000.0f)), "f16 overflow");
    DS_CHECK(t, ds__round_f16_emul(65504.0f) == 65504.0f, "f16 max");
    DS_CHECK(t, ds__round_f16_emul(3e-8f) == ldexpf(1, -24), "f16 subnormal %g", ds__round_f16_emul(3e-8f));
    DS_CHECK(t, ds__round_e4m3(448.0f) == 448.0f && ds__round_e4m3(1000.0f) == 448.0f, "e4m3 max");
    DS_CHECK(t, ds__round_e4m3(1.0625f) == 1.0f && ds__round_e4m3(1.1875f) == 1.25f, "e4m3 mantissa");
    DS_CHECK(t, ds__round_e4m3(ldexpf(3, -10)) == ldexpf(1, -8), "e4m3 subnormal %g", ds__round_e4m3(ldexpf(3, -10)));
    DS_CHECK(t, ds__bf16_to_f32(ds__f32_to_bf16(1.0f + 1.0f / 256)) == 1.0f, "bf16 ties to even");
    DS_CHECK(t, ds__bf16_to_f32(ds__f32_to_bf16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256, "bf16 rounds up");
}

DS_TEST_MAIN(DS_T(test_rmsnorm), DS_T(test_attention), DS_T(test_swiglu), DS_T(test_crossentropy), DS_T(test_embedding), DS_T(test_linear),
             DS_T(test_gemm_paths), DS_T(test_gemm_threads_deterministic), DS_T(test_rounding))
