/* test_deepseek_train.c - the training forward and backward of MLA and MoE (router included)
   against an independent double-precision forward written here: our forward must agree with
   it, and our gradients (every parameter and the input) with its central finite differences.
   Also the bias update of auxiliary-loss-free balancing. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"

#define MAX_REL 1e-3

static uint64_t rng_state = 7;
static double urand(void) { return ds__tr_uniform(&rng_state) * 2.0 - 1.0; }
static void fill(float *x, size_t n, double base, double s) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = (float)(base + s * urand());
}

static double rel_err(const float *a, const double *n, size_t len) {
    double d = 0.0, s = 0.0;
    size_t i;
    for (i = 0; i < len; i++) {
        d += (a[i] - n[i]) * (a[i] - n[i]);
        s += n[i] * n[i];
    }
    return sqrt(d) / (sqrt(s) + 1e-30);
}

/* a bare trainer: F32 products on the calling thread, over the given buffers */
static void bare_trainer(ds_trainer *tr, float *params, float *grads) {
    memset(tr, 0, sizeof *tr);
    tr->params = params;
    tr->grads = grads;
    tr->tc.precision = DS_PREC_F32;
    ds__ops_init(&tr->ops, DS_BACKEND_CPU);
    ds__gemm_ws_init(&tr->ws, &tr->ops, NULL);
}

/* ---- double-precision reference pieces ---- */
/* y (N, O) = x (N, I) @ w (O, I)^T */
static void lin(double *y, const double *x, const double *w, int N, int O, int I) {
    int i, o, k;
    for (i = 0; i < N; i++)
        for (o = 0; o < O; o++) {
            double s = 0;
            for (k = 0; k < I; k++) s += x[(size_t)i * I + k] * w[(size_t)o * I + k];
            y[(size_t)i * O + o] = s;
        }
}
static void rms(double *y, const double *x, const double *w, int n, double eps) {
    double ss = 0, r;
    int i;
    for (i = 0; i < n; i++) ss += x[i] * x[i];
    r = 1.0 / sqrt(ss / n + eps);
    for (i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}
/* adjacent pairs, angle pos * base^(-2i/n) */
static void rope(double *v, int n, int pos, double base) {
    int i;
    for (i = 0; i < n / 2; i++) {
        double a = pos * pow(base, -2.0 * i / n), c = cos(a), s = sin(a), x0 = v[2 * i], x1 = v[2 * i + 1];
        v[2 * i] = x0 * c - x1 * s;
        v[2 * i + 1] = x0 * s + x1 * c;
    }
}
static double silu(double g) { return g / (1.0 + exp(-g)); }

/* ---- MLA ---- */
enum { MB = 2, MT = 5, MN = MB * MT };
typedef struct mla_case {
    ds_model_config c;
    ds__mla_tparams P;
    size_t n_params;
    double *p, *x, *r;   /* double copies: parameters, input (MN, C), output weights (MN, C) */
} mla_case;

static void mla_setup(mla_case *m, int q_lora) {
    ds_model_config *c = &m->c;
    size_t n = 0;
    int H, Dq, R, Dr, C, Rq;
    memset(m, 0, sizeof *m);
    c->n_embd = C = 16;
    c->n_head = H = 2;
    c->qk_nope_dim = 4;
    c->qk_rope_dim = Dr = 4;
    c->v_head_dim = 6;
    c->kv_lora_rank = R = 8;
    c->q_lora_rank = Rq = q_lora;
    c->norm_eps = 1e-5f;
    c->rope_base = 10000.0f;
    Dq = 8;
#define OFF(field, size) (m->P.field = n, n += (size_t)(size))
    if (Rq) {
        OFF(wq_a, Rq * C);
        OFF(q_a_norm, Rq);
        OFF(wq_b, H * Dq * Rq);
    } else {
        OFF(wq, H * Dq * C);
    }
    OFF(wkv_a, (R + Dr) * C);
    OFF(kv_a_norm, R);
    OFF(wkv_b, H * (4 + 6) * R);
    OFF(wo, C * H * 6);
#undef OFF
    m->n_params = n;
}

static double mla_ref_loss(void *ctx) {
    mla_case *m = (mla_case *)ctx;
    const ds_model_config *c = &m->c;
    int C = c->n_embd, H = c->n_head, Dn = 4, Dr = 4, Dv = 6, Dq = 8, R = 8, Rq = c->q_lora_rank, b, h, i, j, k;
    static double qa[MN * 64], q[MN * 64], kva[MN * 64], lat[MN * 64], kv[MN * 64], att[MN * 64], y[MN * 64];
    double loss = 0, *P = m->p;
    if (Rq) {
        lin(qa, m->x, P + m->P.wq_a, MN, Rq, C);
        for (i = 0; i < MN; i++) rms(qa + i * Rq, qa + i * Rq, P + m->P.q_a_norm, Rq, c->norm_eps);
        lin(q, qa, P + m->P.wq_b, MN, H * Dq, Rq);
    } else {
        lin(q, m->x, P + m->P.wq, MN, H * Dq, C);
    }
    lin(kva, m->x, P + m->P.wkv_a, MN, R + Dr, C);
    for (i = 0; i < MN; i++) {
        for (h = 0; h < H; h++) rope(q + (i * H + h) * Dq + Dn, Dr, i % MT, c->rope_base);
        rope(kva + i * (R + Dr) + R, Dr, i % MT, c->rope_base);
        rms(lat + i * R, kva + i * (R + Dr), P + m->P.kv_a_norm, R, c->norm_eps);
    }
    lin(kv, lat, P + m->P.wkv_b, MN, H * (Dn + Dv), R);
    for (b = 0; b < MB; b++)
        for (h = 0; h < H; h++)
            for (i = 0; i < MT; i++) {
                double s[MT], mx = -1e300, sum = 0;
                const double *qi = q + ((b * MT + i) * H + h) * Dq;
                for (j = 0; j <= i; j++) {
                    const double *kj = kv + ((b * MT + j) * H + h) * (Dn + Dv), *pe = kva + (b * MT + j) * (R + Dr) + R;
                    s[j] = 0;
                    for (k = 0; k < Dn; k++) s[j] += qi[k] * kj[k];
                    for (k = 0; k < Dr; k++) s[j] += qi[Dn + k] * pe[k];
                    s[j] /= sqrt((double)Dq);
                    if (s[j] > mx) mx = s[j];
                }
                for (j = 0; j <= i; j++) sum += (s[j] = exp(s[j] - mx));
                for (k = 0; k < Dv; k++) {
                    double o = 0;
                    for (j = 0; j <= i; j++) o += s[j] / sum * kv[((b * MT + j) * H + h) * (Dn + Dv) + Dn + k];
                    att[((b * MT + i) * H + h) * Dv + k] = o;
                }
            }
    lin(y, att, P + m->P.wo, MN, C, H * Dv);
    for (i = 0; i < MN * C; i++) loss += y[i] * m->r[i];
    return loss;
}

#include "numgrad.h"

static void check_mla(ds_test_ctx *t, int q_lora) {
    mla_case m;
    ds_trainer tr;
    ds__mla_tacts a, d;
    float *params, *grads, *x, *r, *y, *dx, *mem, *cs, *p;
    double *np, *nx, fwd = 0, ref, e_p, e_x;
    size_t nact, i;
    int C = 16;
    mla_setup(&m, q_lora);
    nact = ds__mla_tacts_floats(&m.c, MB, MT);
    params = (float *)calloc(m.n_params, sizeof(float));
    grads = (float *)calloc(m.n_params, sizeof(float));
    x = (float *)calloc(MN * C, sizeof(float));
    r = (float *)calloc(MN * C, sizeof(float));
    y = (float *)calloc(MN * C, sizeof(float));
    dx = (float *)calloc(MN * C, sizeof(float));
    mem = (float *)calloc(2 * nact + 64, sizeof(float));
    cs = (float *)calloc(MT * 4, sizeof(float));
    np = (double *)calloc(m.n_params, sizeof(double));
    nx = (double *)calloc(MN * C, sizeof(double));
    DS_REQUIRE(t, params && grads && x && r && y && dx && mem && cs && np && nx, "out of memory");
    fill(params, m.n_params, 0.0, 0.5);
    if (q_lora) for (i = 0; i < (size_t)q_lora; i++) params[m.P.q_a_norm + i] = (float)(1.0 + 0.2 * urand());
    for (i = 0; i < 8; i++) params[m.P.kv_a_norm + i] = (float)(1.0 + 0.2 * urand());
    fill(x, MN * C, 0.0, 1.0);
    fill(r, MN * C, 0.0, 1.0);
    p = mem;
    ds__mla_tacts_carve(&a, &p, &m.c, MB, MT);
    ds__mla_tacts_carve(&d, &p, &m.c, MB, MT);
    ds__rope_table(cs, MT, 4, m.c.rope_base);
    bare_trainer(&tr, params, grads);
    ds__mla_train_forward(&tr, &m.c, &m.P, &a, x, y, 0, cs, MB, MT);
    for (i = 0; i < MN * (size_t)C; i++) fwd += (double)y[i] * r[i];
    ds__mla_train_backward(&tr, &m.c, &m.P, &a, &d, x, r, dx, cs, MB, MT);
    m.p = to_double(params, m.n_params);
    m.x = to_double(x, MN * C);
    m.r = to_double(r, MN * C);
    ref = mla_ref_loss(&m);
    numgrad(np, m.p, m.n_params, mla_ref_loss, &m);
    numgrad(nx, m.x, MN * C, mla_ref_loss, &m);
    e_p = rel_err(grads, np, m.n_params);
    e_x = rel_err(dx, nx, MN * C);
    fprintf(stderr, "MLA (q_lora_rank %d): forward |ours - ref| %.3g of %.3g; gradient relative error: parameters %.3g, input %.3g\n", q_lora, fabs(fwd - ref), fabs(ref), e_p, e_x);
    DS_CHECK(t, fabs(fwd - ref) <= 1e-4 * (1 + fabs(ref)), "forward %g, reference %g", fwd, ref);
    DS_CHECK(t, e_p <= MAX_REL && e_x <= MAX_REL, "gradient relative errors: parameters %g, input %g", e_p, e_x);
    free(params); free(grads); free(x); free(r); free(y); free(dx); free(mem); free(cs); free(np); free(nx);
    free(m.p); free(m.x); free(m.r);
    ds__gemm_ws_free(&tr.ws);
}

static void mla_gradients_match_finite_differences(ds_test_ctx *t) { check_mla(t, 6); }
static void mla_lite_gradients_match_finite_differences(ds_test_ctx *t) { check_mla(t, 0); }

/* ---- MoE ---- */
enum { EB = 2, ET = 6, EN = EB * ET, EC = 12, EE = 4, EK = 2, EF = 6 };
typedef struct moe_case {
    ds_model_config c;
    ds__moe_tparams P;
    size_t n_params;
    double *p, *x, *r, alpha;
    float bias[EE];
    int gi[EN * EK];   /* the routing our forward chose: the reference must choose the same */
} moe_case;

static void moe_setup(moe_case *m, ds_gating gating, int norm, int shared) {
    ds_model_config *c = &m->c;
    size_t n = 0;
    memset(m, 0, sizeof *m);
    c->n_embd = EC;
    c->n_expert = EE;
    c->n_expert_used = EK;
    c->n_ff_expert = EF;
    c->n_expert_shared = shared;
    c->gating = gating;
    c->norm_topk = norm;
    c->routed_scale = 1.7f;
#define OFF(field, size) (m->P.field = n, n += (size_t)(size))
    OFF(gate_inp, EE * EC);
    OFF(gate_exps, EE * EF * EC);
    OFF(up_exps, EE * EF * EC);
    OFF(down_exps, EE * EC * EF);
    if (shared) {
        OFF(gate_sh, shared * EF * EC);
        OFF(up_sh, shared * EF * EC);
        OFF(down_sh, EC * shared * EF);
    }
#undef OFF
    m->n_params = n;
}

/* routing of one token in double, the same rule as the library's: returns the chosen experts' weights */
static void moe_ref_route(const moe_case *m, const double *logit, int *gi, double *w, double *prob) {
    int e, k;
    double sel[EE], sum = 0, mx = -1e300, z = 0;
    for (e = 0; e < EE; e++) mx = fmax(mx, logit[e]);
    for (e = 0; e < EE; e++) prob[e] = m->c.gating == DS_GATING_SIGMOID ? 1.0 / (1.0 + exp(-logit[e])) : exp(logit[e] - mx);
    if (m->c.gating != DS_GATING_SIGMOID) {
        for (e = 0; e < EE; e++) z += prob[e];
        for (e = 0; e < EE; e++) prob[e] /= z;
    }
    for (e = 0; e < EE; e++) sel[e] = prob[e] + m->bias[e];
    for (k = 0; k < EK; k++) {
        int best = -1;
        for (e = 0; e < EE; e++)
            if (sel[e] > -1e300 && (best < 0 || sel[e] > sel[best])) best = e;
        gi[k] = best;
        w[k] = prob[best];
        sum += w[k];
        sel[best] = -1e301;
    }
    for (k = 0; k < EK; k++) w[k] = (m->c.norm_topk ? w[k] / sum : w[k]) * m->c.routed_scale;
}

static double moe_ref_loss(void *ctx) {
    moe_case *m = (moe_case *)ctx;
    int S = m->c.n_expert_shared, i, e, k, j, o, b;
    double loss = 0, *P = m->p, logits[EN * EE], probs[EN * EE], f[EB][EE];
    int gi[EN * EK];
    double w[EN * EK];
    memset(f, 0, sizeof f);
    lin(logits, m->x, P + m->P.gate_inp, EN, EE, EC);
    for (i = 0; i < EN; i++) {
        moe_ref_route(m, logits + i * EE, gi + i * EK, w + i * EK, probs + i * EE);
        for (k = 0; k < EK; k++) f[i / ET][gi[i * EK + k]] += (double)EE / (EK * ET);
    }
    for (i = 0; i < EN; i++) {
        const double *x = m->x + i * EC;
        double y[EC];
        memset(y, 0, sizeof y);
        for (k = 0; k <= EK; k++) {
            /* k < EK: routed expert k of the token; k == EK: the shared experts */
            int width = k < EK ? EF : S * EF;
            const double *wg = k < EK ? P + m->P.gate_exps + (size_t)gi[i * EK + k] * EF * EC : P + m->P.gate_sh;
            const double *wu = k < EK ? P + m->P.up_exps + (size_t)gi[i * EK + k] * EF * EC : P + m->P.up_sh;
            const double *wd = k < EK ? P + m->P.down_exps + (size_t)gi[i * EK + k] * EC * EF : P + m->P.down_sh;
            double scale = k < EK ? w[i * EK + k] : 1.0, hbuf[64];
            if (!width) continue;
            for (j = 0; j < width; j++) {
                double g = 0, u = 0;
                for (e = 0; e < EC; e++) {
                    g += wg[j * EC + e] * x[e];
                    u += wu[j * EC + e] * x[e];
                }
                hbuf[j] = silu(g) * u;
            }
            for (o = 0; o < EC; o++) {
                double s = 0;
                for (j = 0; j < width; j++) s += wd[o * width + j] * hbuf[j];
                y[o] += scale * s;
            }
        }
        for (o = 0; o < EC; o++) loss += y[o] * m->r[i * EC + o];
    }
    for (i = 0; i < EN * EK; i++) m->gi[i] = m->gi[i] < 0 ? gi[i] : m->gi[i];
    for (b = 0; m->alpha > 0 && b < EB; b++) {
        double bl = 0;
        for (i = b * ET; i < (b + 1) * ET; i++) {
            double z = 0;
            for (e = 0; e < EE; e++) z += probs[i * EE + e];
            for (e = 0; e < EE; e++) bl += m->alpha * f[b][e] * probs[i * EE + e] / z / ET;
        }
        loss += bl / EB;
    }
    return loss;
}

static void check_moe(ds_test_ctx *t, ds_gating gating, int norm, int shared, int bias, double alpha) {
    moe_case m;
    ds_trainer tr;
    ds__moe_tacts a, d;
    float *params, *grads, *x, *r, *y, *dx, *mem, *p, bal;
    double *np, *nx, fwd = 0, ref, e_p, e_x;
    size_t nact, i;
    int ref_gi[EN * EK], e, same;
    moe_setup(&m, gating, norm, shared);
    nact = ds__moe_tacts_floats(&m.c, EB, ET);
    params = (float *)calloc(m.n_params, sizeof(float));
    grads = (float *)calloc(m.n_params, sizeof(float));
    x = (float *)calloc(EN * EC, sizeof(float));
    r = (float *)calloc(EN * EC, sizeof(float));
    y = (float *)calloc(EN * EC, sizeof(float));
    dx = (float *)calloc(EN * EC, sizeof(float));
    mem = (float *)calloc(2 * nact + 64, sizeof(float));
    np = (double *)calloc(m.n_params, sizeof(double));
    nx = (double *)calloc(EN * EC, sizeof(double));
    DS_REQUIRE(t, params && grads && x && r && y && dx && mem && np && nx, "out of memory");
    fill(params, m.n_params, 0.0, 0.5);
    for (i = 0; i < EE * EC; i++) params[m.P.gate_inp + i] *= 3.0f;   /* distinct router scores: no near-ties */
    for (e = 0; e < EE; e++) m.bias[e] = bias ? (float)(0.3 * urand()) : 0.0f;
    fill(x, EN * EC, 0.0, 1.0);
    fill(r, EN * EC, 0.0, 1.0);
    p = mem;
    ds__moe_tacts_carve(&a, &p, &m.c, EB, ET);
    ds__moe_tacts_carve(&d, &p, &m.c, EB, ET);
    bare_trainer(&tr, params, grads);
    ds__moe_train_forward(&tr, &m.c, &m.P, bias ? m.bias : NULL, &a, x, y, 0, EN);
    for (i = 0; i < EN * (size_t)EC; i++) fwd += (double)y[i] * r[i];
    bal = ds__moe_train_backward(&tr, &m.c, &m.P, &a, &d, x, r, dx, EN, ET, (float)alpha);
    m.p = to_double(params, m.n_params);
    m.x = to_double(x, EN * EC);
    m.r = to_double(r, EN * EC);
    m.alpha = 0;
    for (i = 0; i < EN * EK; i++) m.gi[i] = -1;
    ref = moe_ref_loss(&m);
    memcpy(ref_gi, m.gi, sizeof ref_gi);
    for (same = 1, i = 0; i < EN * EK; i++) same &= ref_gi[i] == a.gi[i];
    m.alpha = alpha;
    numgrad(np, m.p, m.n_params, moe_ref_loss, &m);
    numgrad(nx, m.x, EN * EC, moe_ref_loss, &m);
    e_p = rel_err(grads, np, m.n_params);
    e_x = rel_err(dx, nx, EN * EC);
    fprintf(stderr, "MoE (%s, norm %d, shared %d, bias %d, balance %.2g): forward |ours - ref| %.3g of %.3g; gradient relative error: parameters %.3g, input %.3g\n",
            gating == DS_GATING_SIGMOID ? "sigmoid" : "softmax", norm, shared, bias, alpha, fabs(fwd - ref), fabs(ref), e_p, e_x);
    DS_CHECK(t, same, "the reference routed the tokens differently");
    DS_CHECK(t, fabs(fwd - ref) <= 1e-4 * (1 + fabs(ref)), "forward %g, reference %g", fwd, ref);
    DS_CHECK(t, alpha > 0 || bal == 0.0f, "balance loss %g without alpha", bal);
    DS_CHECK(t, e_p <= MAX_REL && e_x <= MAX_REL, "gradient relative errors: parameters %g, input %g", e_p, e_x);
    free(params); free(grads); free(x); free(r); free(y); free(dx); free(mem); free(np); free(nx);
    free(m.p); free(m.x); free(m.r);
    ds__gemm_ws_free(&tr.ws);
}

static void moe_softmax_gradients_match_finite_differences(ds_test_ctx *t) { check_moe(t, DS_GATING_SOFTMAX, 0, 1, 0, 0.0); }
static void moe_sigmoid_bias_norm_gradients_match_finite_differences(ds_test_ctx *t) { check_moe(t, DS_GATING_SIGMOID, 1, 0, 1, 0.0); }
static void moe_balance_loss_gradients_match_finite_differences(ds_test_ctx *t) { check_moe(t, DS_GATING_SIGMOID, 1, 2, 1, 0.3); }
static void moe_softmax_norm_balance_gradients_match_finite_differences(ds_test_ctx *t) { check_moe(t, DS_GATING_SOFTMAX, 1, 1, 0, 0.3); }

/* the bias moves up for experts below the mean load, down for those above */
static void moe_bias_update_moves_toward_balance(ds_test_ctx *t) {
    double load[EE] = {5, 1, 3, 3};   /* mean 3 */
    float bias[EE] = {0, 0, 0, 0};
    ds__moe_bias_update(load, bias, EE, 0.01f);
    DS_CHECK(t, bias[0] == -0.01f && bias[1] == 0.01f && bias[2] == 0.0f && bias[3] == 0.0f, "bias %g %g %g %g", bias[0], bias[1], bias[2], bias[3]);
}

/* the trained model saved as a deepseek2 file runs in a session with the trainer's loss */
static void check_export(ds_test_ctx *t, ds_trainer *tr, const int32_t *tok, const int32_t *tgt) {
    const char *path = "build/deepseek_train_export.gguf";
    ds_model *m = NULL;
    ds_session *s = NULL;
    ds_session_config sp;
    float *logits = (float *)malloc(16 * 32 * sizeof(float)), loss = 0;
    double ce = 0;
    int i, j;
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = 16;
    sp.n_threads = 1;
    DS_REQUIRE(t, logits != NULL, "out of memory");
    DS_CHECK(t, ds_trainer_save_model(tr, path, NULL) == DS_ERR_INVALID_ARG, "a 32-token model saved without a tokenizer");
    DS_CHECK(t, ds_trainer_loss(tr, tok, tgt, 1, 16, &loss) == DS_OK, "loss: %s", ds_last_error());
    {   /* the model's own tokenizer keys: a byte vocabulary cut to 32 tokens is not one, so
           write the file with tensors only and read it as the session does */
        ds_gguf_writer *w = NULL;
        static const char *vocab[32];
        static char names[32][4];
        int32_t types[32];
        for (i = 0; i < 32; i++) {
            snprintf(names[i], sizeof names[i], "%c", 'A' + i);
            vocab[i] = names[i];
            types[i] = 1;
        }
        DS_CHECK(t, ds_gguf_writer_create(&w) == DS_OK, "writer");
        DS_CHECK(t, ds_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2") == DS_OK && ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", vocab, 32) == DS_OK &&
                        ds_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", DS_GGUF_I32, types, 32) == DS_OK && ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", vocab, 0) == DS_OK,
                 "tokenizer keys");
        DS_CHECK(t, ds_gguf_writer_write(w, "build/deepseek_train_tok.gguf") == DS_OK, "write tokenizer: %s", ds_last_error());
        ds_gguf_writer_free(w);
    }
    if (!t->failed) {
        ds_gguf *tk = NULL;
        DS_CHECK(t, ds_gguf_open("build/deepseek_train_tok.gguf", &tk) == DS_OK, "open tokenizer: %s", ds_last_error());
        DS_CHECK(t, !tk || ds_trainer_save_model(tr, path, tk) == DS_OK, "save: %s", ds_last_error());
        ds_gguf_free(tk);
    }
    DS_CHECK(t, t->failed || ds_model_load(path, NULL, &m) == DS_OK, "load the exported model: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_session_create(m, &sp, &s) == DS_OK, "session: %s", ds_last_error());
    DS_CHECK(t, t->failed || ds_session_eval_all(s, tok, 16, logits) == DS_OK, "eval: %s", ds_last_error());
    for (i = 0; i < 16 && !t->failed; i++) {
        double mx = -1e30, z = 0;
        for (j = 0; j < 32; j++) mx = fmax(mx, logits[i * 32 + j]);
        for (j = 0; j < 32; j++) z += exp(logits[i * 32 + j] - mx);
        ce += (log(z) + mx - logits[i * 32 + tgt[i]]) / 16;
    }
    if (!t->failed) fprintf(stderr, "exported deepseek2 model in a session: loss %.6f, the trainer's %.6f\n", ce, loss);
    DS_CHECK(t, t->failed || fabs(ce - loss) < 1e-3 * (1 + loss), "session loss %g, trainer loss %g", ce, loss);
    ds_session_free(s);
    ds_model_free(m);
    free(logits);
}

/* a checkpoint of an MLA + MoE trainer (a deepseek2 file) resumes bit-exactly, biases included */
static void check_resume(ds_test_ctx *t, ds_trainer *tr, const ds_model_config *mc, const ds_train_config *tc, const int32_t *tok, const int32_t *tgt) {
    const char *path = "build/deepseek_train_ckpt.gguf";
    ds_trainer *tr2 = NULL;
    ds_model_config mc2;
    ds_train_config tc2;
    ds_train_step_info info;
    size_t n, n2;
    int i;
    (void)mc;
    (void)tc;
    DS_REQUIRE(t, ds_trainer_save_checkpoint(tr, path) == DS_OK, "save checkpoint: %s", ds_last_error());
    DS_REQUIRE(t, ds_checkpoint_read_config(path, &mc2, &tc2) == DS_OK, "read config: %s", ds_last_error());
    DS_CHECK(t, mc2.layers[0].attn == DS_ATTN_MLA && mc2.layers[1].ffn == DS_FFN_MOE && mc2.n_expert == 4 && mc2.gating == DS_GATING_SIGMOID && mc2.norm_topk == 1,
             "config read back from the checkpoint");
    DS_REQUIRE(t, ds_trainer_create(&mc2, &tc2, &tr2) == DS_OK, "create from the checkpoint's config: %s", ds_last_error());
    DS_CHECK(t, ds_trainer_load_checkpoint(tr2, path) == DS_OK, "load checkpoint: %s", ds_last_error());
    for (i = 0; i < 3 && !t->failed; i++) {
        ds_trainer_step_tokens(tr, tok, tgt, &info);
        ds_trainer_step_tokens(tr2, tok, tgt, &info);
    }
    DS_CHECK(t, t->failed || (ds_trainer_params(tr, &n) && ds_trainer_params(tr2, &n2) && n == n2 && !memcmp(ds_trainer_params(tr, &n), ds_trainer_params(tr2, &n2), n * sizeof(float)) &&
                              !memcmp(tr->dsk.bias, tr2->dsk.bias, 8 * sizeof(float))),
             "3 steps after resuming differ from 3 steps without the checkpoint");
    ds_trainer_free(tr2);
}

/* a whole trainer with MLA and MoE layers learns a repeating sequence, its biases move, and
   the expert shares add up */
static void trainer_with_mla_and_moe_learns(ds_test_ctx *t) {
    static const char *cfg = "n_vocab = 32\n n_embd = 32\n n_layer = 2\n n_head = 2\n n_ff = 64\n batch = 2\n seq_len = 16\n"
                             "lr = 1e-2\n seed = 3\n threads = 1\n layers.attn = mla\n layer.1.ffn = moe\n kv_lora_rank = 16\n"
                             "qk_nope_dim = 8\n qk_rope_dim = 4\n v_head_dim = 8\n n_expert = 4\n n_expert_used = 2\n"
                             "n_expert_shared = 1\n n_ff_expert = 16\n gating = sigmoid\n norm_topk = 1\n moe_balance_alpha = 0.01\n";
    ds_model_config mc;
    ds_train_config tc;
    ds_trainer *tr = NULL;
    ds_train_step_info info;
    int32_t tok[32], tgt[32];
    double share[4], sum = 0;
    float first = 0, bias_moved = 0;
    int i, e;
    memset(&mc, 0, sizeof mc);
    memset(&tc, 0, sizeof tc);
    DS_REQUIRE(t, ds_model_config_parse(cfg, &mc, &tc, "mla-moe") == DS_OK, "parse: %s", ds_last_error());
    DS_CHECK(t, mc.layers[0].attn == DS_ATTN_MLA && mc.layers[1].attn == DS_ATTN_MLA && mc.layers[0].ffn == DS_FFN_DENSE && mc.layers[1].ffn == DS_FFN_MOE,
             "per-layer kinds from the config");
    DS_REQUIRE(t, ds_trainer_create(&mc, &tc, &tr) == DS_OK, "create: %s", ds_last_error());
    for (i = 0; i < 32; i++) {
        tok[i] = (i * 7) % 32;
        tgt[i] = ((i + 1) * 7) % 32;
    }
    for (i = 0; i < 40; i++) {
        DS_CHECK(t, ds_trainer_step_tokens(tr, tok, tgt, &info) == DS_OK, "step: %s", ds_last_error());
        if (i == 0) first = info.loss;
        if (i == 4) check_export(t, tr, tok, tgt);   /* while the loss is far from 0 */
    }
    check_resume(t, tr, &mc, &tc, tok, tgt);
    for (e = 0; e < 4; e++) bias_moved += fabsf(tr->dsk.bias[4 + e]);
    DS_CHECK(t, ds_trainer_expert_share(tr, 1, share) == 4 && ds_trainer_expert_share(tr, 0, NULL) == 0, "expert shares of the MoE layer only");
    for (e = 0; e < 4; e++) sum += share[e];
    fprintf(stderr, "MLA + MoE trainer: loss %.3f -> %.3f in 40 steps, |bias| sum %.3f\n", first, info.loss, bias_moved);
    DS_CHECK(t, info.loss < 0.5f * first, "loss %g -> %g", first, info.loss);
    DS_CHECK(t, bias_moved > 0.0f && fabs(sum - 1.0) < 1e-9, "bias moved %g, shares sum to %g", bias_moved, sum);
    ds_trainer_free(tr);
}

DS_TEST_MAIN(DS_T(mla_gradients_match_finite_differences), DS_T(mla_lite_gradients_match_finite_differences),
             DS_T(moe_softmax_gradients_match_finite_differences), DS_T(moe_sigmoid_bias_norm_gradients_match_finite_differences),
             DS_T(moe_balance_loss_gradients_match_finite_differences), DS_T(moe_softmax_norm_balance_gradients_match_finite_differences),
             DS_T(moe_bias_update_moves_toward_balance), DS_T(trainer_with_mla_and_moe_learns))
