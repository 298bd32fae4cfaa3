/* The whole model and the optimizer: 10 AdamW steps against the float64 numpy reference
   (tests/make_train_fixture.py), gradient of the whole model against it, determinism across
   threads and activation checkpointing, loss scaling under forced overflows, the reduced
   precisions, the config parser. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"

typedef struct fixture {
    int V, C, L, H, Hkv, F, B, T, accum, steps, warmup, tied, n_params;
    float lr, min_lr, wd, b1, b2, eps, clip, norm_eps, rope_base;
    float *params, *grads;
    int32_t *tok, *tgt;
    double *losses;
} fixture;

static int read_fixture(fixture *fx) {
    FILE *f = fopen("tests/fixtures/train/ref.bin", "rb");
    int32_t h[14];
    float hf[9];
    size_t ntok;
    int ok;
    if (!f) return 0;
    ok = fread(h, 4, 14, f) == 14 && h[0] == 0x46525344 && fread(hf, 4, 9, f) == 9;
    if (!ok) {
        fclose(f);
        return 0;
    }
    fx->V = h[1]; fx->C = h[2]; fx->L = h[3]; fx->H = h[4]; fx->Hkv = h[5]; fx->F = h[6]; fx->B = h[7]; fx->T = h[8];
    fx->accum = h[9]; fx->steps = h[10]; fx->warmup = h[11]; fx->tied = h[12]; fx->n_params = h[13];
    fx->lr = hf[0]; fx->min_lr = hf[1]; fx->wd = hf[2]; fx->b1 = hf[3]; fx->b2 = hf[4]; fx->eps = hf[5]; fx->clip = hf[6];
    fx->norm_eps = hf[7]; fx->rope_base = hf[8];
    ntok = (size_t)fx->steps * fx->accum * fx->B * fx->T;
    fx->params = (float *)malloc(sizeof(float) * fx->n_params);
    fx->grads = (float *)malloc(sizeof(float) * fx->n_params);
    fx->tok = (int32_t *)malloc(sizeof(int32_t) * ntok);
    fx->tgt = (int32_t *)malloc(sizeof(int32_t) * ntok);
    fx->losses = (double *)malloc(sizeof(double) * fx->steps);
    ok = fread(fx->params, 4, fx->n_params, f) == (size_t)fx->n_params && fread(fx->tok, 4, ntok, f) == ntok &&
         fread(fx->tgt, 4, ntok, f) == ntok && fread(fx->losses, 8, fx->steps, f) == (size_t)fx->steps &&
         fread(fx->grads, 4, fx->n_params, f) == (size_t)fx->n_params;
    fclose(f);
    return ok;
}
static void free_fixture(fixture *fx) {
    free(fx->params); free(fx->grads); free(fx->tok); free(fx->tgt); free(fx->losses);
}

static void fixture_configs(const fixture *fx, ds_model_config *mc, ds_train_config *tc) {
    memset(mc, 0, sizeof *mc);
    memset(tc, 0, sizeof *tc);
    mc->n_vocab = fx->V; mc->n_embd = fx->C; mc->n_layer = fx->L; mc->n_head = fx->H; mc->n_head_kv = fx->Hkv;
    mc->n_ff = fx->F; mc->norm_eps = fx->norm_eps; mc->rope_base = fx->rope_base; mc->tied_output = fx->tied;
    tc->batch = fx->B; tc->seq_len = fx->T; tc->grad_accum = fx->accum; tc->steps = fx->steps; tc->warmup = fx->warmup;
    tc->lr = fx->lr; tc->min_lr = fx->min_lr; tc->weight_decay = fx->wd; tc->beta1 = fx->b1; tc->beta2 = fx->b2;
    tc->adam_eps = fx->eps; tc->grad_clip = fx->clip; tc->n_threads = 2;
}

/* runs the fixture's steps; losses out */
static ds_status run_fixture(const fixture *fx, const ds_train_config *tc_in, float *losses, ds_trainer **keep) {
    ds_model_config mc;
    ds_train_config tc;
    ds_trainer *tr;
    ds_status st;
    size_t n;
    int s;
    fixture_configs(fx, &mc, &tc);
    if (tc_in) {
        tc.precision = tc_in->precision;
        tc.recompute = tc_in->recompute;
        tc.n_threads = tc_in->n_threads;
        tc.loss_scale = tc_in->loss_scale;
        tc.loss_scale_window = tc_in->loss_scale_window;
    }
    if ((st = ds_trainer_create(&mc, &tc, &tr)) != DS_OK) return st;
    memcpy(ds_trainer_params(tr, &n), fx->params, sizeof(float) * fx->n_params);
    for (s = 0; s < fx->steps; s++) {
        ds_train_step_info info;
        size_t off = (size_t)s * fx->accum * fx->B * fx->T;
        if ((st = ds_trainer_step_tokens(tr, fx->tok + off, fx->tgt + off, &info)) != DS_OK) break;
        losses[s] = info.loss;
        if (s == 0 && keep) *keep = tr;
        if (s == 0 && keep) break;
    }
    if (!keep) ds_trainer_free(tr);
    return st;
}

static void test_matches_numpy_reference(ds_test_ctx *t) {
    fixture fx;
    float losses[64];
    double worst = 0;
    int s;
    DS_REQUIRE(t, read_fixture(&fx), "cannot read tests/fixtures/train/ref.bin");
    DS_REQUIRE(t, fx.steps <= 64, "fixture too long");
    DS_REQUIRE(t, run_fixture(&fx, NULL, losses, NULL) == DS_OK, "run: %s", ds_last_error());
    for (s = 0; s < fx.steps; s++) worst = fmax(worst, fabs(losses[s] - fx.losses[s]) / fx.losses[s]);
    if (getenv("DS_TEST_VERBOSE")) fprintf(stderr, "  loss vs numpy over %d steps: worst relative error %.2e\n", fx.steps, worst);
    DS_CHECK(t, worst <= 1e-4, "loss relative error %g (step 10: %.7f vs %.7f)", worst, losses[fx.steps - 1], fx.losses[fx.steps - 1]);
    free_fixture(&fx);
}

/* the first step's gradients against numpy's, with and without activation checkpointing */
static void test_whole_model_gradient(ds_test_ctx *t) {
    fixture fx;
    float losses[64];
    size_t act[2] = {0, 0};
    int rec;
    DS_REQUIRE(t, read_fixture(&fx), "cannot read the fixture");
    for (rec = 0; rec < 2; rec++) {
        ds_trainer *tr = NULL;
        ds_train_config tc;
        const float *g;
        double d = 0, s = 0;
        size_t n, i;
        memset(&tc, 0, sizeof tc);
        tc.n_threads = 2;
        tc.recompute = rec;
        DS_REQUIRE(t, run_fixture(&fx, &tc, losses, &tr) == DS_OK && tr, "run: %s", ds_last_error());
        g = ds_trainer_grads(tr, &n);
        DS_REQUIRE(t, n == (size_t)fx.n_params, "%zu parameters, the reference has %d", n, fx.n_params);
        for (i = 0; i < n; i++) {
            d += (double)(g[i] - fx.grads[i]) * (g[i] - fx.grads[i]);
            s += (double)fx.grads[i] * fx.grads[i];
        }
        if (getenv("DS_TEST_VERBOSE")) fprintf(stderr, "  whole-model gradient vs numpy (recompute %d): relative error %.2e\n", rec, sqrt(d / s));
        DS_CHECK(t, sqrt(d / s) <= 1e-3, "recompute %d: gradient relative error %g", rec, sqrt(d / s));
        act[rec] = ds_trainer_get_stats(tr).activation_bytes;
        ds_trainer_free(tr);
    }
    DS_CHECK(t, fx.L < 2 || act[1] < act[0], "recompute keeps %zu activation bytes, without %zu", act[1], act[0]);
    free_fixture(&fx);
}

/* recompute and thread count change nothing, bit for bit */
static void test_deterministic(ds_test_ctx *t) {
    fixture fx;
    float a[64], b[64], c[64];
    ds_train_config tc;
    DS_REQUIRE(t, read_fixture(&fx), "cannot read the fixture");
    memset(&tc, 0, sizeof tc);
    tc.n_threads = 1;
    DS_REQUIRE(t, run_fixture(&fx, &tc, a, NULL) == DS_OK, "run");
    tc.n_threads = 3;
    DS_REQUIRE(t, run_fixture(&fx, &tc, b, NULL) == DS_OK, "run");
    tc.recompute = 1;
    DS_REQUIRE(t, run_fixture(&fx, &tc, c, NULL) == DS_OK, "run");
    DS_CHECK(t, !memcmp(a, b, sizeof(float) * fx.steps), "1 vs 3 threads differ");
    DS_CHECK(t, !memcmp(a, c, sizeof(float) * fx.steps), "recompute differs");
    free_fixture(&fx);
}

/* each reduced precision tracks f32 closely on the fixture */
static void test_precisions_close(ds_test_ctx *t) {
    fixture fx;
    float ref[64], l[64];
    ds_train_config tc;
    int p, s;
    static const double tol[] = {0, 0.01, 0.01, 0.05};
    DS_REQUIRE(t, read_fixture(&fx), "cannot read the fixture");
    DS_REQUIRE(t, run_fixture(&fx, NULL, ref, NULL) == DS_OK, "run");
    for (p = 1; p <= 3; p++) {
        double worst = 0;
        memset(&tc, 0, sizeof tc);
        tc.precision = (ds_precision)p;
        tc.n_threads = 2;
        DS_REQUIRE(t, run_fixture(&fx, &tc, l, NULL) == DS_OK, "run %d", p);
        for (s = 0; s < fx.steps; s++) worst = fmax(worst, fabs(l[s] - ref[s]) / ref[s]);
        if (getenv("DS_TEST_VERBOSE")) fprintf(stderr, "  precision %d: worst relative loss difference to f32 %.2e\n", p, worst);
        DS_CHECK(t, worst < tol[p] && worst > 0, "precision %d: worst relative loss difference %g", p, worst);
    }
    free_fixture(&fx);
}

/* fp16 with a huge initial scale: the first steps overflow and are skipped, the weights stay
   finite, the scale comes down, training goes on; a short window lets the scale grow again */
static void test_loss_scaling_overflow(ds_test_ctx *t) {
    fixture fx;
    ds_model_config mc;
    ds_train_config tc;
    ds_trainer *tr;
    ds_train_step_info info;
    int s, skipped = 0, applied = 0, grew = 0, lowered_early = 0;
    float first_scale = 0, prev_scale = 0;
    size_t n = 0, i;
    const float *w;
    DS_REQUIRE(t, read_fixture(&fx), "cannot read the fixture");
    fixture_configs(&fx, &mc, &tc);
    tc.precision = DS_PREC_FP16;
    tc.loss_scale = 16777216.0f; /* 2^24: dlogits * scale overflow fp16 */
    tc.loss_scale_window = 3;
    tc.steps = 40;
    DS_REQUIRE(t, ds_trainer_create(&mc, &tc, &tr) == DS_OK, "create: %s", ds_last_error());
    memcpy(ds_trainer_params(tr, &n), fx.params, sizeof(float) * n);
    for (s = 0; s < 40; s++) {
        size_t off = (size_t)(s % fx.steps) * fx.accum * fx.B * fx.T;
        DS_REQUIRE(t, ds_trainer_step_tokens(tr, fx.tok + off, fx.tgt + off, &info) == DS_OK, "step");
        if (s == 0) first_scale = info.loss_scale;
        if (info.skipped) skipped++;
        else applied++;
        if (s > 0 && !info.skipped && info.loss_scale > prev_scale) grew = 1;
        /* lowered although the previous step was clean: the amax history saw it coming */
        if (s > 0 && applied > 1 && info.loss_scale < prev_scale) lowered_early = 1;
        prev_scale = info.loss_scale;
        if (getenv("DS_TEST_VERBOSE")) fprintf(stderr, "step %d scale %g skipped %d loss %g\n", s, info.loss_scale, info.skipped, info.loss);
        DS_CHECK(t, info.loss == info.loss && info.loss < 100, "step %d: loss %g", s, info.loss);
    }
    w = ds_trainer_params(tr, &n);
    for (i = 0; i < n; i++) DS_REQUIRE(t, w[i] == w[i] && fabsf(w[i]) < 1e6f, "weight %zu is %g", i, w[i]);
    DS_CHECK(t, skipped >= 2 && info.skipped_total == skipped, "skipped %d (reported %d)", skipped, info.skipped_total);
    DS_CHECK(t, applied >= 20, "only %d steps applied", applied);
    DS_CHECK(t, info.loss_scale < first_scale, "scale %g", info.loss_scale);
    DS_CHECK(t, lowered_early, "the scale was never lowered ahead of an overflow");
    DS_CHECK(t, grew, "the scale never grew back after clean steps");
    ds_trainer_free(tr);
    free_fixture(&fx);
}

static void test_config_parse(ds_test_ctx *t) {
    ds_model_config mc;
    ds_train_config tc;
    ds_status st;
    memset(&mc, 0, sizeof mc);
    memset(&tc, 0, sizeof tc);
    st = ds_model_config_parse("# tiny\nn_vocab = 256\nn_embd=64 # width\n n_layer = 4\nn_head = 4\nn_head_kv = 2\n"
                               "layers.attn = dense\nlayer.2.ffn = moe\nprecision = bf16\nlr = 1e-3\nseed = 99\n",
                               &mc, &tc, "a.cfg");
    DS_REQUIRE(t, st == DS_OK, "parse: %s", ds_last_error());
    DS_CHECK(t, mc.n_vocab == 256 && mc.n_embd == 64 && mc.n_layer == 4 && mc.n_head_kv == 2, "model keys");
    DS_CHECK(t, mc.layers[2].ffn == DS_FFN_MOE && mc.layers[1].ffn == DS_FFN_DENSE, "layer override");
    DS_CHECK(t, tc.precision == DS_PREC_BF16 && fabsf(tc.lr - 1e-3f) < 1e-9f && tc.seed == 99, "train keys");
    DS_CHECK(t, ds_model_config_check(&mc) == DS_ERR_INVALID_ARG && strstr(ds_last_error(), "n_expert"), "an MoE layer without experts must be rejected: %s", ds_last_error());
    st = ds_model_config_parse("n_layer = 2\nbogus = 3\n", &mc, &tc, "b.cfg");
    DS_CHECK(t, st == DS_ERR_INVALID_ARG && strstr(ds_last_error(), "b.cfg:2") && strstr(ds_last_error(), "bogus"), "unknown key: %s", ds_last_error());
    st = ds_model_config_parse("n_layer = 2\nlayer.5.attn = dense\n", &mc, &tc, "c.cfg");
    DS_CHECK(t, st == DS_ERR_INVALID_ARG && strstr(ds_last_error(), "c.cfg:2"), "layer out of range: %s", ds_last_error());
    st = ds_model_config_parse("n_head = 4\nn_head_kv = 3\n", &mc, &tc, "d.cfg");
    DS_CHECK(t, st == DS_ERR_INVALID_ARG, "4 heads over 3 kv heads must fail");
    st = ds_model_config_parse("lr = fast\n", &mc, &tc, "e.cfg");
    DS_CHECK(t, st == DS_ERR_INVALID_ARG && strstr(ds_last_error(), "e.cfg:1"), "bad number: %s", ds_last_error());
    st = ds_model_config_parse("lr = 1e-3\n", &mc, NULL, "f.cfg");
    DS_CHECK(t, st == DS_ERR_INVALID_ARG, "a training key without a train config must fail");
    st = ds_model_config_parse("precision = fp4\n", &mc, &tc, "g.cfg");
    DS_CHECK(t, st == DS_ERR_INVALID_ARG, "fp4 must fail");
}


/* a synthetic corpus with structure to learn: repeated phrases of a small vocabulary */
static void write_corpus(const char *path, int V, int n) {
    uint32_t *tok = (uint32_t *)malloc(sizeof(uint32_t) * n);
    int i;
    for (i = 0; i < n; i++) tok[i] = (uint32_t)((i * 7 + (i / 13) % 5) % V);
    ds_token_shard_write(path, tok, (uint64_t)n, V);
    free(tok);
}

static void tiny_configs(ds_model_config *mc, ds_train_config *tc) {
    memset(mc, 0, sizeof *mc);
    memset(tc, 0, sizeof *tc);
    mc->n_vocab = 300; mc->n_embd = 32; mc->n_layer = 2; mc->n_head = 4; mc->n_head_kv = 2; mc->n_ff = 48; mc->n_ctx = 16;
    tc->batch = 2; tc->seq_len = 16; tc->steps = 12; tc->lr = 3e-3f; tc->warmup = 2; tc->n_threads = 2; tc->grad_accum = 2;
}

/* stop after 5 steps, save, load into a fresh trainer: the next 7 losses are bit-identical */
static void test_checkpoint_resume_exact(ds_test_ctx *t) {
    const char *shard = "build/test_train_corpus.tok", *ck = "build/test_train_ckpt.gguf";
    ds_model_config mc, mc2;
    ds_train_config tc, tc2;
    ds_trainer *a, *b;
    ds_train_data *d;
    ds_train_step_info ia, ib;
    float first = 0;
    int s, pass;
    size_t n = 0;
    for (pass = 0; pass < 2; pass++) {
        tiny_configs(&mc, &tc);
        tc.precision = pass ? DS_PREC_FP16 : DS_PREC_F32; /* fp16 also carries the scaler state */
        write_corpus(shard, mc.n_vocab, 5000);
        DS_REQUIRE(t, ds_train_data_open(shard, NULL, &d) == DS_OK, "open: %s", ds_last_error());
        DS_REQUIRE(t, ds_trainer_create(&mc, &tc, &a) == DS_OK, "create: %s", ds_last_error());
        for (s = 0; s < 5; s++) {
            DS_REQUIRE(t, ds_trainer_step(a, d, &ia) == DS_OK, "step: %s", ds_last_error());
            if (s == 0) first = ia.loss;
        }
        DS_REQUIRE(t, ds_trainer_save_checkpoint(a, ck) == DS_OK, "save: %s", ds_last_error());
        DS_REQUIRE(t, ds_checkpoint_read_config(ck, &mc2, &tc2) == DS_OK, "read config: %s", ds_last_error());
        DS_CHECK(t, tc2.precision == tc.precision && tc2.grad_accum == 2 && tc2.lr == tc.lr && mc2.n_head_kv == 2 && mc2.n_ff == 48, "configs round-trip");
        DS_REQUIRE(t, ds_trainer_create(&mc2, &tc2, &b) == DS_OK, "create: %s", ds_last_error());
        DS_REQUIRE(t, ds_trainer_load_checkpoint(b, ck) == DS_OK, "load: %s", ds_last_error());
        DS_CHECK(t, ds_trainer_step_count(b) == 5, "step %d", ds_trainer_step_count(b));
        for (s = 5; s < 12; s++) {
            DS_REQUIRE(t, ds_trainer_step(a, d, &ia) == DS_OK && ds_trainer_step(b, d, &ib) == DS_OK, "step");
            DS_CHECK(t, !memcmp(&ia.loss, &ib.loss, sizeof(float)) && ia.loss_scale == ib.loss_scale, "step %d: %.9g vs %.9g", s, ia.loss, ib.loss);
        }
        DS_CHECK(t, !memcmp(ds_trainer_params(a, &n), ds_trainer_params(b, &n), n * sizeof(float)), "weights differ");
        DS_CHECK(t, ia.loss < first - 0.1f, "the loss did not fall: %g -> %g", first, ia.loss);
        ds_trainer_free(a);
        ds_trainer_free(b);
        ds_train_data_free(d);
    }
    tiny_configs(&mc, &tc);
    mc.n_embd = 64;
    DS_REQUIRE(t, ds_trainer_create(&mc, &tc, &a) == DS_OK, "create");
    DS_CHECK(t, ds_trainer_load_checkpoint(a, ck) == DS_ERR_INVALID_ARG, "a checkpoint of another shape must be refused");
    ds_trainer_free(a);
    remove(ck);
}

/* the exported model, plus our log-probabilities for one sequence, for check_train_export.py
   to compare with llama.cpp */
static void test_export_model(ds_test_ctx *t) {
    const char *shard = "build/test_train_corpus.tok";
    ds_model_config mc;
    ds_train_config tc;
    ds_trainer *tr;
    ds_train_data *d;
    ds_train_step_info info;
    int32_t tok[16], tgt[16];
    float loss;
    FILE *f;
    int s;
    tiny_configs(&mc, &tc);
    mc.n_vocab = 256;
    mc.tied_output = 1;
    write_corpus(shard, mc.n_vocab, 5000);
    DS_REQUIRE(t, ds_train_data_open(shard, NULL, &d) == DS_OK, "open: %s", ds_last_error());
    DS_REQUIRE(t, ds_trainer_create(&mc, &tc, &tr) == DS_OK, "create: %s", ds_last_error());
    for (s = 0; s < 4; s++) DS_REQUIRE(t, ds_trainer_step(tr, d, &info) == DS_OK, "step");
    DS_REQUIRE(t, ds_trainer_save_model(tr, "build/test_train_export.gguf", NULL) == DS_OK, "save: %s", ds_last_error());
    for (s = 0; s < 16; s++) {
        tok[s] = (s * 37 + 11) % 256;
        tgt[s] = (s * 53 + 5) % 256;
    }
    DS_REQUIRE(t, ds_trainer_loss(tr, tok, tgt, 1, 16, &loss) == DS_OK, "loss");
    f = fopen("build/test_train_export.logits", "wb");
    DS_REQUIRE(t, f != NULL, "cannot write the logits file");
    fwrite(tok, 4, 16, f);
    fwrite(tr->logits, 4, 16 * 256, f); /* probabilities after the forward */
    fclose(f);
    ds_trainer_free(tr);
    ds_train_data_free(d);
}

/* the vectorised AdamW update equals the scalar one bit for bit (resume across machines with
   and without AVX-512 depends on it for the optimizer part) */
static void test_adam_simd_matches_scalar(ds_test_ctx *t) {
    ds_model_config mc;
    ds_train_config tc;
    ds_trainer *tr;
    float *p0, *m0, *v0, *pa;
    size_t n, i;
    int pass;
    tiny_configs(&mc, &tc);
    DS_REQUIRE(t, ds_trainer_create(&mc, &tc, &tr) == DS_OK, "create");
    ds_trainer_params(tr, &n);
    p0 = (float *)malloc(n * sizeof(float) * 4);
    m0 = p0 + n; v0 = m0 + n; pa = v0 + n;
    for (i = 0; i < n; i++) {
        tr->grads[i] = (float)sin((double)i) * 0.1f;
        tr->m[i] = (float)cos((double)i) * 0.01f;
        tr->v[i] = (float)(1.0 + sin(0.5 * i)) * 1e-4f;
    }
    memcpy(p0, tr->params, n * sizeof(float)); memcpy(m0, tr->m, n * sizeof(float)); memcpy(v0, tr->v, n * sizeof(float));
    for (pass = 0; pass < 2; pass++) {
        ds__adam_args a;
        memset(&a, 0, sizeof a);
        a.tr = tr; a.lr = 1e-3f; a.gscale = 0.7f; a.bc1 = 0.1f; a.bc2 = 0.05f;
        memcpy(tr->params, p0, n * sizeof(float)); memcpy(tr->m, m0, n * sizeof(float)); memcpy(tr->v, v0, n * sizeof(float));
        ds__ops_init(&tr->ops, pass ? DS_BACKEND_REF : DS_BACKEND_CPU);
        for (i = 0; i < (n + DS__ADAM_CHUNK - 1) / DS__ADAM_CHUNK; i++) ds__tr_adam_chunk(&a, (int)i, 0);
        if (!pass) memcpy(pa, tr->params, n * sizeof(float));
    }
    DS_CHECK(t, !memcmp(pa, tr->params, n * sizeof(float)), "SIMD and scalar AdamW differ");
    free(p0);
    ds_trainer_free(tr);
}

DS_TEST_MAIN(DS_T(test_matches_numpy_reference), DS_T(test_whole_model_gradient), DS_T(test_deterministic),
             DS_T(test_precisions_close), DS_T(test_loss_scaling_overflow), DS_T(test_config_parse),
             DS_T(test_checkpoint_resume_exact), DS_T(test_export_model), DS_T(test_adam_simd_matches_scalar))
