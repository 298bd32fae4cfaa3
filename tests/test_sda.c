/* test_sda.c - sparse dynamic attention (>>sda): with every block selected it equals the dense
   attention path; with a sparse selection it equals a double-precision masked softmax written
   here over the same keys; the hierarchical top-k agrees with brute force on structured gate
   keys; the tree's incremental and bulk builds agree; bad settings fail naming the key. */
#define DEEPSEEK_IMPLEMENTATION
#include "deepseek.h"
#include "ds_test.h"

static unsigned long long rng_state = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/* one layer's f16 cache, queries and gate inputs: a fixture both paths read */
typedef struct fix {
    int H, Hkv, D, n_ctx, Hi, Di;
    uint16_t *kc, *vc;   /* (Hkv, n_ctx, D) */
    float *q, *gq, *gk;  /* (n_ctx, H, D), (n_ctx, Hi, Di), (n_ctx, Di) */
    float w[4];
    ds__ops ops;
} fix;

static void fix_init(fix *f, int H, int Hkv, int D, int n_ctx) {
    size_t i, nkv = (size_t)Hkv * n_ctx * D;
    float *tmp = (float *)malloc(nkv * sizeof(float));
    f->H = H, f->Hkv = Hkv, f->D = D, f->n_ctx = n_ctx, f->Hi = 2, f->Di = 16;
    f->kc = (uint16_t *)malloc(nkv * 2);
    f->vc = (uint16_t *)malloc(nkv * 2);
    f->q = (float *)malloc((size_t)n_ctx * H * D * sizeof(float));
    f->gq = (float *)malloc((size_t)n_ctx * f->Hi * f->Di * sizeof(float));
    f->gk = (float *)malloc((size_t)n_ctx * f->Di * sizeof(float));
    ds__ops_init(&f->ops, DS_BACKEND_CPU);
    for (i = 0; i < nkv; i++) tmp[i] = frand();
    f->ops.f32_to_f16(f->kc, tmp, (int)nkv);
    for (i = 0; i < nkv; i++) tmp[i] = frand();
    f->ops.f32_to_f16(f->vc, tmp, (int)nkv);
    for (i = 0; i < (size_t)n_ctx * H * D; i++) f->q[i] = 2.0f * frand();
    for (i = 0; i < (size_t)n_ctx * f->Hi * f->Di; i++) f->gq[i] = frand();
    for (i = 0; i < (size_t)n_ctx * f->Di; i++) f->gk[i] = frand();
    f->w[0] = 1.0f, f->w[1] = 0.5f;
    free(tmp);
}
static void fix_free(fix *f) {
    free(f->kc), free(f->vc), free(f->q), free(f->gq), free(f->gk);
}

/* the dense path (ds__attention) on a session that holds just this layer */
static void dense(const fix *f, int T, int pos0, float *out) {
    ds_model m;
    ds_session s;
    memset(&m, 0, sizeof m);
    memset(&s, 0, sizeof s);
    m.cfg.n_head = f->H, m.cfg.n_head_kv = f->Hkv, m.cfg.head_dim = f->D;
    s.m = &m;
    s.n_ctx = f->n_ctx;
    s.k_cache = f->kc, s.v_cache = f->vc;
    s.q = f->q + (size_t)pos0 * f->H * f->D;
    s.att = out;
    s.ops = f->ops;
    s.n_attn_tasks = 1;
    s.attn_stride = ds__attn_stride(&m.cfg, f->n_ctx);
    s.attn_scratch = (float *)malloc(s.attn_stride * sizeof(float));
    ds__attention(&s, 0, T, pos0);
    free(s.attn_scratch);
}

/* SDA over the same rows; sel (optional) gets each query group's selection, max_sel apart */
static ds_status sda(const fix *f, const ds__sda_params *p, int T, int pos0, int flat, float *out, int *sel, int *n_sel, int *max_sel) {
    ds__sda_gate g = {0, 0, 0, NULL};
    ds__sda_tree tree;
    ds__sda_job j;
    ds_status st;
    void *work;
    g.n_heads = f->Hi, g.dim = f->Di, g.w = f->w;
    if ((st = ds__sda_tree_init(&tree, f->Di, p->block, f->n_ctx)) != DS_OK) return st;
    ds__sda_tree_append(&tree, f->gk, pos0 + T);
    memset(&j, 0, sizeof j);
    j.o = &f->ops, j.p = *p, j.g = &g, j.tree = &tree;
    j.k_cache = f->kc, j.v_cache = f->vc;
    j.q = f->q + (size_t)pos0 * f->H * f->D, j.gq = f->gq + (size_t)pos0 * f->Hi * f->Di, j.out = out;
    j.n_ctx = f->n_ctx, j.H = f->H, j.Hkv = f->Hkv, j.D = f->D, j.T = T, j.pos0 = pos0, j.flat = flat;
    work = malloc(ds__sda_work_bytes(&j, 2));
    st = ds__sda_attention(&j, NULL, work, 2);
    if (st == DS_OK && sel) {
        memcpy(sel, j.sel, (size_t)j.n_groups * j.max_sel * sizeof(int));
        memcpy(n_sel, j.n_sel, (size_t)j.n_groups * sizeof(int));
        *max_sel = j.max_sel;
    }
    free(work);
    ds__sda_tree_free(&tree);
    return st;
}

static double max_rel(const float *a, const float *b, size_t n) {
    double m = 0.0, worst = 0.0;
    size_t i;
    for (i = 0; i < n; i++) m = fmax(m, fabs((double)b[i]));
    for (i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - (double)b[i]) / (m > 0 ? m : 1.0));
    return worst;
}

/* every block selected: sparsity 1 and a budget above the block count */
static void check_dense_equal(ds_test_ctx *t, int H, int Hkv, int D, int n_ctx, int block, int T, int pos0) {
    fix f;
    ds__sda_params p;
    size_t n = (size_t)T * H * D;
    float *a = (float *)malloc(n * sizeof(float)), *b = (float *)malloc(n * sizeof(float));
    ds_status st;
    double e;
    fix_init(&f, H, Hkv, D, n_ctx);
    memset(&p, 0, sizeof p);
    p.block = block, p.topk = n_ctx, p.window = 0, p.sink = 1, p.sparsity = 1.0f;
    dense(&f, T, pos0, a);
    st = sda(&f, &p, T, pos0, 0, b, NULL, NULL, NULL);
    e = max_rel(b, a, n);
    fix_free(&f);
    free(a), free(b);
    DS_REQUIRE(t, st == DS_OK, "sda: %s", ds_last_error());
    DS_CHECK(t, e <= 1e-5, "max relative difference %.3g > 1e-5", e);
}
static void test_dense_equal_prefill_9x3x64(ds_test_ctx *t) { check_dense_equal(t, 9, 3, 64, 300, 32, 300, 0); }
static void test_dense_equal_chunk_9x3x64(ds_test_ctx *t) { check_dense_equal(t, 9, 3, 64, 300, 48, 110, 190); }
static void test_dense_equal_prefill_8x2x128(ds_test_ctx *t) { check_dense_equal(t, 8, 2, 128, 260, 64, 260, 0); }
static void test_dense_equal_decode_9x3x64(ds_test_ctx *t) { check_dense_equal(t, 9, 3, 64, 300, 32, 1, 299); }
static void test_dense_equal_decode_8x2x128(ds_test_ctx *t) { check_dense_equal(t, 8, 2, 128, 333, 64, 1, 301); }

/* The independent reference: in double, each query against the keys of its group's selected
   blocks up to its own position, with the cache's f16 keys / values and the query as given. */
static void reference(const fix *f, const int *sel, int ns, int block, int pos, const float *q, float *out) {
    int G = f->H / f->Hkv, h, i, j, d, n = 0;
    double *s = (double *)malloc((size_t)f->n_ctx * sizeof(double)), *o = (double *)malloc((size_t)f->D * sizeof(double));
    int *key = (int *)malloc((size_t)f->n_ctx * sizeof(int));
    float kv[256];
    for (i = 0; i < ns; i++)
        for (j = sel[i] * block; j < (sel[i] + 1) * block && j <= pos; j++) key[n++] = j;
    for (h = 0; h < f->H; h++) {
        const uint16_t *kc = f->kc + (size_t)(h / G) * f->n_ctx * f->D, *vc = f->vc + (size_t)(h / G) * f->n_ctx * f->D;
        double mx = -1e300, z = 0.0;
        for (i = 0; i < n; i++) {
            double acc = 0.0;
            ds__f16_row_to_f32_ref(kv, kc + (size_t)key[i] * f->D, f->D);
            for (d = 0; d < f->D; d++) acc += (double)q[h * f->D + d] * kv[d];
            s[i] = acc / sqrt((double)f->D);
            mx = fmax(mx, s[i]);
        }
        for (d = 0; d < f->D; d++) o[d] = 0.0;
        for (i = 0; i < n; i++) {
            double p = exp(s[i] - mx);
            z += p;
            ds__f16_row_to_f32_ref(kv, vc + (size_t)key[i] * f->D, f->D);
            for (d = 0; d < f->D; d++) o[d] += p * kv[d];
        }
        for (d = 0; d < f->D; d++) out[h * f->D + d] = (float)(o[d] / z);
    }
    free(s), free(o), free(key);
}

/* a real sparse selection (3 gate blocks + sink + window) against the reference over exactly
   the selected keys; f16 queries and probabilities bound the difference by ~1e-3 */
static void check_sparse(ds_test_ctx *t, int H, int Hkv, int D, int T, int pos0) {
    fix f;
    ds__sda_params p;
    int n_ctx = 400, block = 16, max_sel = 0, i, bad = -1, sparse = 0;
    int *sel = (int *)malloc(4096 * sizeof(int)), *n_sel = (int *)malloc(256 * sizeof(int));
    float *b = (float *)malloc((size_t)T * H * D * sizeof(float)), *r = (float *)malloc((size_t)H * D * sizeof(float));
    double worst = 0.0;
    ds_status st;
    fix_init(&f, H, Hkv, D, n_ctx);
    memset(&p, 0, sizeof p);
    p.block = block, p.topk = 3, p.window = 40, p.sink = 1, p.sparsity = 0.5f;
    st = sda(&f, &p, T, pos0, 0, b, sel, n_sel, &max_sel);
    if (st == DS_OK)
        for (i = 0; i < T; i++) {
            int pos = pos0 + i, gi = pos / block - pos0 / block;
            double e;
            sparse |= n_sel[gi] * block < pos - block;
            reference(&f, sel + (size_t)gi * max_sel, n_sel[gi], block, pos, f.q + (size_t)pos * H * D, r);
            e = max_rel(b + (size_t)i * H * D, r, (size_t)H * D);
            if (e > worst) worst = e, bad = pos;
        }
    fix_free(&f);
    free(sel), free(n_sel), free(b), free(r);
    DS_REQUIRE(t, st == DS_OK, "sda: %s", ds_last_error());
    DS_CHECK(t, sparse, "no query had a sparse selection: the test would not test sparsity");
    DS_CHECK(t, worst <= 4e-3, "position %d: max relative difference to the reference %.3g > 4e-3", bad, worst);
}
static void test_sparse_vs_reference_prefill_9x3x64(ds_test_ctx *t) { check_sparse(t, 9, 3, 64, 400, 0); }
static void test_sparse_vs_reference_decode_8x2x128(ds_test_ctx *t) { check_sparse(t, 8, 2, 128, 1, 399); }

/* Gate keys with structure: a document is runs of blocks on one topic (run lengths 1..16
   blocks), each token its topic's vector plus noise; a query block asks about a few topics.
   Agreement = |tree top-k n flat top-k| / k over every query block. To redo on SmolLM2
   activations once an indexer is trained (the tree is meant for locality real text has). */
static void test_tree_vs_flat_topk(ds_test_ctx *t) {
    enum { DI = 16, HI = 2, BLK = 16, NB = 512, NT = 24, K = 8 };
    ds__ops o;
    ds__sda_tree tree;
    ds__sda_gate g = {0, 0, 0, NULL};
    ds__sda_params p = {BLK, K, 0, 0, 0, 1.0f};
    float topic[NT][DI], w[HI] = {1.0f, 0.7f}, qbar[HI * DI];
    float *keys = (float *)malloc((size_t)NB * BLK * DI * sizeof(float));
    ds__sda_cand *work = (ds__sda_cand *)malloc((size_t)NB * sizeof(ds__sda_cand));
    int a[K], b[K], i, j, e, qb, tp = 0, run = 0, hit = 0, total = 0;
    double agree;
    ds__ops_init(&o, DS_BACKEND_CPU);
    for (i = 0; i < NT; i++)
        for (e = 0; e < DI; e++) topic[i][e] = frand();
    for (i = 0; i < NB; i++) {
        if (run-- <= 0) tp = (int)((frand() + 1.0f) * 0.5f * NT) % NT, run = (int)((frand() + 1.0f) * 8.0f);
        for (j = 0; j < BLK; j++)
            for (e = 0; e < DI; e++) keys[((size_t)i * BLK + j) * DI + e] = topic[tp][e] + 0.7f * frand();
    }
    g.n_heads = HI, g.dim = DI, g.w = w;
    DS_REQUIRE(t, ds__sda_tree_init(&tree, DI, BLK, NB * BLK) == DS_OK, "tree: %s", ds_last_error());
    ds__sda_tree_append(&tree, keys, NB * BLK);
    for (qb = 64; qb < NB; qb += 7) {
        int q1 = (int)((frand() + 1.0f) * 0.5f * NT) % NT, q2 = (int)((frand() + 1.0f) * 0.5f * NT) % NT;
        for (e = 0; e < HI * DI; e++) qbar[e] = topic[e < DI ? q1 : q2][e % DI] + 0.3f * frand();
        ds__sda_topk_flat(&o, &tree, &g, qbar, qb, K, a, work);
        ds__sda_topk_tree(&o, &tree, &g, qbar, qb, K, ds__sda_beam(&p), b, work);
        for (i = 0; i < K; i++)
            for (j = 0; j < K; j++) hit += a[i] == b[j];
        total += K;
    }
    agree = (double)hit / total;
    ds__sda_tree_free(&tree);
    free(keys), free(work);
    printf("  tree (beam %d) vs flat top-%d agreement: %.1f%% of %d selections\n", ds__sda_beam(&p), K, 100.0 * agree, total);
    DS_CHECK(t, agree >= 0.95, "agreement %.1f%% < 95%%", 100.0 * agree);
}

/* one bulk append and token-by-token appends leave the same bits in every node */
static void test_tree_append_equals_build(ds_test_ctx *t) {
    ds__sda_tree a, b;
    float *k = (float *)malloc(1000 * 8 * sizeof(float));
    int i, same;
    for (i = 0; i < 8000; i++) k[i] = frand();
    DS_REQUIRE(t, ds__sda_tree_init(&a, 8, 24, 1000) == DS_OK && ds__sda_tree_init(&b, 8, 24, 1000) == DS_OK, "tree: %s", ds_last_error());
    ds__sda_tree_append(&a, k, 1000);
    for (i = 0; i < 1000; i++) ds__sda_tree_append(&b, k + i * 8, 1);
    same = !memcmp(a.sum, b.sum, (a.off[a.n_levels - 1] + 8) * sizeof(float));
    DS_CHECK(t, ds__sda_tree_append(&a, k, 1) == DS_ERR_INVALID_ARG, "an append past capacity was accepted");
    ds__sda_tree_free(&a), ds__sda_tree_free(&b);
    free(k);
    DS_CHECK(t, same, "incremental and bulk trees differ");
}

static void check_bad(ds_test_ctx *t, ds__sda_params p, const char *key) {
    ds_status st = ds__sda_check(&p);
    DS_CHECK(t, st == DS_ERR_INVALID_ARG && strstr(ds_last_error(), key), "%s: status %d, '%s'", key, (int)st, ds_last_error());
}
static void test_bad_params(ds_test_ctx *t) {
    ds__sda_params ok = {64, 16, 128, 1, 0, 0.25f}, p;
    DS_REQUIRE(t, ds__sda_check(&ok) == DS_OK, "valid params refused: %s", ds_last_error());
    p = ok, p.block = 0, check_bad(t, p, "sda_block");
    p = ok, p.sparsity = 0.0f, check_bad(t, p, "sda_sparsity");
    p = ok, p.sparsity = 1.5f, check_bad(t, p, "sda_sparsity");
    p = ok, p.topk = 0, check_bad(t, p, "sda_topk");
    p = ok, p.window = -1, check_bad(t, p, "sda_window");
    p = ok, p.sink = -2, check_bad(t, p, "sda_sink");
}


/* ---- SDA as a model's attention kind --------------------------------------------------------- */
static void check_parse_bad(ds_test_ctx *t, const char *line, const char *key) {
    ds_model_config mc;
    ds_status st;
    memset(&mc, 0, sizeof mc);
    st = ds_model_config_parse(line, &mc, NULL, "cfg");
    DS_CHECK(t, st == DS_ERR_INVALID_ARG && strstr(ds_last_error(), key), "'%s': status %d, '%s'", line, (int)st, ds_last_error());
}
static void test_config_keys(ds_test_ctx *t) {
    ds_model_config mc;
    ds__sda_params p;
    memset(&mc, 0, sizeof mc);
    DS_REQUIRE(t, ds_model_config_parse("n_layer = 3\nlayers.attn = sda\nlayer.1.attn = dense\nsda_block = 32\nsda_topk = 8\nsda_window = -1\nsda_sparsity = 0.5\n", &mc, NULL, "cfg") == DS_OK, "%s", ds_last_error());
    DS_CHECK(t, mc.layers[0].attn == DS_ATTN_SDA && mc.layers[1].attn == DS_ATTN_DENSE && mc.layers[2].attn == DS_ATTN_SDA, "layer kinds %d %d %d", mc.layers[0].attn, mc.layers[1].attn, mc.layers[2].attn);
    ds__sda_params_of(&mc, &p);
    DS_CHECK(t, p.block == 32 && p.topk == 8 && p.window == 0 && p.sink == 1 && p.sparsity == 0.5f, "params %d %d %d %d %g", p.block, p.topk, p.window, p.sink, (double)p.sparsity);
    memset(&mc, 0, sizeof mc);
    ds__sda_params_of(&mc, &p);
    DS_CHECK(t, ds__sda_check(&p) == DS_OK && p.block == 64 && p.topk == 16 && p.window == 64 && p.sink == 1 && p.sparsity == 0.3f, "defaults %d %d %d %d %g", p.block, p.topk, p.window, p.sink, (double)p.sparsity);
    check_parse_bad(t, "sda_block = 0", "sda_block");
    check_parse_bad(t, "sda_sparsity = 0", "sda_sparsity");
    check_parse_bad(t, "sda_sparsity = 1.5", "sda_sparsity");
    check_parse_bad(t, "sda_sparsity = -0.1", "sda_sparsity");
    check_parse_bad(t, "sda_topk = 0", "sda_topk");
    check_parse_bad(t, "sda_window = -2", "sda_window");
    check_parse_bad(t, "sda_index_heads = 4", "sda_index_dim");
    check_parse_bad(t, "layers.attn = sparse", "layers.attn");
}

/* SmolLM2 (DS_TEST_MODEL), whose layers the tests below turn into SDA layers */
static ds_model *g_model;
static int g_model_tried;
static void free_model(void) { ds_model_free(g_model); }
static ds_model *smollm2(void) {
    const char *path = ds_test_env_file("DS_TEST_MODEL");
    if (!g_model_tried && path) {
        g_model_tried = 1;
        atexit(free_model);
        if (ds_model_load(path, NULL, &g_model) != DS_OK) g_model = NULL;
    }
    return g_model;
}
#define NEED_SMOLLM2(t, m) \
    if (!((m) = smollm2())) DS_SKIP(t, "DS_TEST_MODEL is unset, missing or does not load (run `make model`)")

/* every layer of m: dense, or SDA with these settings (0: defaults) */
static void set_attn(ds_model *m, ds_attn_kind k, int block, int topk, float sparsity) {
    int il;
    for (il = 0; il < m->cfg.n_layer; il++) m->cfg.layers[il].attn = k;
    m->cfg.sda_block = block, m->cfg.sda_topk = topk, m->cfg.sda_sparsity = sparsity;
}

/* the text of DS_TEST_DATA (tinyshakespeare), else a fixed prose sample, as n tokens */
static int32_t *text_tokens(const ds_model *m, int n) {
    const char *path = getenv("DS_TEST_DATA");
    static const char *fallback = "The quick brown fox jumps over the lazy dog. Once upon a time, in a land far away, there lived a king who loved numbers. ";
    char *text = NULL;
    size_t len = 0, got = 0, cap = (size_t)n * 16 + 64, i;
    int32_t *ids = (int32_t *)malloc(((size_t)n + 64) * sizeof(int32_t));
    FILE *f = path && *path ? fopen(path, "rb") : NULL;
    text = (char *)malloc(cap + 1);
    if (f) {
        len = fread(text, 1, cap, f);
        fclose(f);
    }
    for (i = len; i < cap; i++) text[i] = fallback[(i - len) % strlen(fallback)];
    text[cap] = 0;
    if (ds_tokenize(ds_model_tokenizer(m), text, cap, 0, ids, (size_t)n + 64, &got) != DS_OK && got < (size_t)n) got = 0;
    free(text);
    if (got < (size_t)n) {
        free(ids);
        return NULL;
    }
    return ids;
}

/* logits of n tokens in chunks of n_batch, then two single-token steps, then the last step
   again after a rewind: (n + 3) rows */
static ds_status run_rows(const ds_model *m, const int32_t *tok, int n, int n_batch, float *logits) {
    ds_session_config sp;
    ds_session *s = NULL;
    ds_status st;
    int V = m->cfg.n_vocab;
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = n + 2, sp.n_batch = n_batch, sp.n_threads = 2;
    if ((st = ds_session_create(m, &sp, &s)) != DS_OK) return st;
    st = ds_session_eval_all(s, tok, n, logits);
    if (st == DS_OK) st = ds_session_eval(s, tok + n, 1, logits + (size_t)n * V);
    if (st == DS_OK) st = ds_session_eval(s, tok + n + 1, 1, logits + (size_t)(n + 1) * V);
    if (st == DS_OK) st = ds_session_rewind(s, n + 1);
    if (st == DS_OK) st = ds_session_eval(s, tok + n + 1, 1, logits + (size_t)(n + 2) * V);
    ds_session_free(s);
    return st;
}
static int argmax(const float *x, int n) {
    int i, b = 0;
    for (i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* SDA with every block selected (sparsity 1) through the real layer walk equals dense attention:
   SmolLM2 on 700 tokens in chunks of 256 (150 in chunks of 64 under the sanitizers), two
   decode steps and a rewind; then the default sparse settings, reported (top-1 agreement with dense) */
static void test_smollm2_sparsity1_equals_dense(ds_test_ctx *t) {
    int light = getenv("DS_TEST_SANITIZED") != NULL, N = light ? 150 : 700, chunk = light ? 64 : 256;
    ds_model *m;
    int32_t *tok;
    float *a, *b;
    int V, r, same = 0, sparse_same = 0;
    double rel = 0.0;
    NEED_SMOLLM2(t, m);
    V = m->cfg.n_vocab;
    tok = text_tokens(m, N + 2);
    DS_REQUIRE(t, tok != NULL, "tokenizing the text failed");
    a = (float *)malloc(sizeof(float) * (size_t)(N + 3) * V), b = (float *)malloc(sizeof(float) * (size_t)(N + 3) * V);
    set_attn(m, DS_ATTN_DENSE, 0, 0, 0.0f);
    DS_REQUIRE(t, run_rows(m, tok, N, chunk, a) == DS_OK, "dense: %s", ds_last_error());
    DS_CHECK(t, ds_model_configure(m, "layers.attn = sda\nn_embd = 8") == DS_ERR_INVALID_ARG && m->cfg.layers[0].attn == DS_ATTN_DENSE, "ds_model_configure took n_embd");
    DS_CHECK(t, ds_model_configure(m, "layers.attn = sda\nsda_sparsity = 0") == DS_ERR_INVALID_ARG && strstr(ds_last_error(), "sda_sparsity") && m->cfg.layers[0].attn == DS_ATTN_DENSE, "sda_sparsity = 0: %s", ds_last_error());
    DS_REQUIRE(t, ds_model_configure(m, "layers.attn = sda\nsda_block = 32\nsda_sparsity = 1\n") == DS_OK, "ds_model_configure: %s", ds_last_error());
    DS_REQUIRE(t, run_rows(m, tok, N, chunk, b) == DS_OK, "SDA: %s", ds_last_error());
    rel = max_rel(a, b, (size_t)(N + 3) * V);
    for (r = 0; r < N + 3; r++) same += argmax(a + (size_t)r * V, V) == argmax(b + (size_t)r * V, V);
    DS_CHECK(t, rel <= 1e-5, "sparsity 1: max relative logit difference %g", rel);
    DS_CHECK(t, same == N + 3, "sparsity 1: top-1 differs in %d of %d rows", N + 3 - same, N + 3);
    DS_CHECK(t, !memcmp(a + (size_t)(N + 1) * V, a + (size_t)(N + 2) * V, sizeof(float) * V) && !memcmp(b + (size_t)(N + 1) * V, b + (size_t)(N + 2) * V, sizeof(float) * V), "a rewound step differs from the first");
    set_attn(m, DS_ATTN_SDA, 32, 4, 0.3f);
    DS_REQUIRE(t, run_rows(m, tok, N, chunk, b) == DS_OK, "sparse SDA: %s", ds_last_error());
    for (r = 0; r < N + 3; r++) sparse_same += argmax(a + (size_t)r * V, V) == argmax(b + (size_t)r * V, V);
    DS_CHECK(t, !memcmp(b + (size_t)(N + 1) * V, b + (size_t)(N + 2) * V, sizeof(float) * V), "sparse: a rewound step differs from the first (the tree was not rebuilt)");
    printf("  sparsity 1: max relative difference %g, top-1 same in %d/%d rows; untrained gate, block 32, top-4 of 30%%: top-1 same as dense in %d/%d rows\n", rel, same, N + 3, sparse_same, N + 3);
    set_attn(m, DS_ATTN_DENSE, 0, 0, 0.0f);
    free(a), free(b), free(tok);
}

/* The hierarchical search returns the flat top-k blocks on real activations: SmolLM2 as SDA
   (its own keys as the gate) over 4096 tokens of DS_TEST_DATA, block 32, top-16 of 30 %,
   the default beam; after each layer of each chunk, every query block's gate top-k by tree
   and by brute force over the same tree */
static void test_smollm2_tree_vs_flat(ds_test_ctx *t) {
    enum { N = 4096, CHUNK = 512 };
    ds_model *m;
    ds_session_config sp;
    ds_session *s = NULL;
    int32_t *tok;
    int pos, il, hit = 0, total = 0, sets = 0, exact = 0, Hi, Di;
    float one = 1.0f;
    ds__sda_cand *cand;
    float *qbar;
    int *a, *b;
    NEED_SMOLLM2(t, m);
    if (getenv("DS_TEST_SANITIZED")) DS_SKIP(t, "4096 tokens of SmolLM2: too slow under the sanitizers");
    tok = text_tokens(m, N);
    DS_REQUIRE(t, tok != NULL, "tokenizing the text failed");
    set_attn(m, DS_ATTN_SDA, 32, 16, 0.3f);
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = N, sp.n_batch = CHUNK, sp.n_threads = 2;
    DS_REQUIRE(t, ds_session_create(m, &sp, &s) == DS_OK, "session: %s", ds_last_error());
    ds__sda_gate_dims(&m->cfg, &Hi, &Di);
    cand = (ds__sda_cand *)malloc(sizeof(ds__sda_cand) * (N / 32 + 1) * 4);
    qbar = (float *)malloc(sizeof(float) * (size_t)Hi * Di);
    a = (int *)malloc(sizeof(int) * 64), b = (int *)malloc(sizeof(int) * 64);
    for (pos = 0; pos < N; pos += CHUNK) { /* ds__forward's walk, stopping after each layer */
        const int C = m->cfg.n_embd;
        int T = CHUNK;
        s->ops.embed(s->x, m->tok_embd.type, m->tok_embd.data, tok + pos, T, C);
        ds__rope_tables(s, T, pos);
        ds__per_token(s, DS__TOK_NORM, NULL, 0, T, pos, m->layers[0].attn_norm, 0);
        for (il = 0; il < m->cfg.n_layer; il++) {
            ds__sda_gate g = {1, 0, 1, NULL};
            ds__sda_job j;
            int gi, e;
            g.dim = Di, g.w = &one;
            ds__layer_forward(s, il, T, pos);
            ds__sda_session_job(s, il, T, pos, &g, &j);
            for (gi = 0; gi < T / 32; gi++) { /* ds__sda_select's gate part */
                int qb = pos / 32 + gi, wlo = DS__MAX(0, qb * 32 - j.p.window) / 32, k = DS__MIN(j.p.topk, (int)ceil((double)j.p.sparsity * wlo)), na, nb, x, y;
                if (k < 1 || wlo <= ds__sda_beam(&j.p)) continue; /* at most beam blocks: the tree search is the flat one */
                memset(qbar, 0, sizeof(float) * (size_t)Hi * Di);
                for (e = 0; e < 32; e++) s->ops.axpy(qbar, 1.0f / 32, s->sda_gq + (size_t)(gi * 32 + e) * Hi * Di, Hi * Di);
                na = ds__sda_topk_flat(&s->ops, j.tree, &g, qbar, wlo, k, a, cand);
                nb = ds__sda_topk_tree(&s->ops, j.tree, &g, qbar, wlo, k, ds__sda_beam(&j.p), b, cand);
                for (x = 0; x < na; x++)
                    for (y = 0; y < nb; y++) hit += a[x] == b[y];
                total += na;
                sets++;
                exact += na == nb && !memcmp(a, b, sizeof(int) * (size_t)na);
            }
            if (il + 1 < m->cfg.n_layer) ds__per_token(s, DS__TOK_NORM, NULL, il, T, pos, m->layers[il + 1].attn_norm, 1);
        }
        s->pos += T;
    }
    ds_session_free(s);
    set_attn(m, DS_ATTN_DENSE, 0, 0, 0.0f);
    free(cand), free(qbar), free(a), free(b), free(tok);
    DS_REQUIRE(t, sets > 0, "no selection went through the tree search");
    printf("  SmolLM2, %d tokens, %d layers: tree (beam %d) returns %.2f%% of the flat top-16 blocks; %.1f%% of %d selections identical\n", N, m->cfg.n_layer, 64,
           100.0 * hit / total, 100.0 * exact / sets, sets);
    DS_CHECK(t, hit >= 0.95 * total, "tree vs flat: %.2f%% < 95%% of %d blocks", 100.0 * hit / total, total);
}

/* A one-layer SmolLM2 as a GGUF file with SDA metadata and a learned gate (random, F32), and
   `bad` breaking one thing: 1 the gate query's shape, 2 sda.block_size = 0, 3 sda.sparsity =
   1.5, 4 a layers array of the wrong length, 5 gate tensors without the index keys; 6 is
   valid, without a learned gate (the fuzz seeds: tests/extra_fuzz_infer.sh) */
static ds_status write_gate_model(const ds_model *m, const char *path, int bad) {
    enum { HI = 2, DI = 16 };
    ds_gguf_writer *w = NULL;
    ds_model_config c = m->cfg;
    const ds_gguf *g = m->gguf;
    ds_status st;
    int64_t i, C = c.n_embd, ne[2];
    float *gq = (float *)malloc(sizeof(float) * (size_t)C * HI * DI * 2), *gk = (float *)malloc(sizeof(float) * (size_t)C * DI), gw[HI] = {1.0f, 0.5f};
    uint8_t on[2] = {1, 1};
    for (i = 0; i < C * HI * DI * 2; i++) gq[i] = 0.05f * frand();
    for (i = 0; i < C * DI; i++) gk[i] = 0.05f * frand();
    if ((st = ds_gguf_writer_create(&w)) != DS_OK) return st;
    st = ds_gguf_writer_copy_kv(w, g);
    if (st == DS_OK) st = ds_gguf_writer_set_u32(w, "llama.block_count", 1);
    for (i = 0; i < ds_gguf_n_tensors(g) && st == DS_OK; i++) {
        const ds_gguf_tensor *tt = ds_gguf_tensor_at(g, i);
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)tt->name.len, tt->name.ptr);
        if (strncmp(name, "blk.", 4) || !strncmp(name, "blk.0.", 6)) st = ds_gguf_writer_add_tensor(w, name, tt->type, tt->n_dims, tt->ne, tt->data);
    }
    memset(c.layers, 0, sizeof c.layers);
    c.n_layer = 1, c.layers[0].attn = DS_ATTN_SDA, c.sda_block = 32, c.sda_topk = 4, c.sda_index_heads = HI, c.sda_index_dim = DI;
    if (bad == 6) c.sda_block = 2, c.sda_index_heads = c.sda_index_dim = 0;
    if (bad != 5 && st == DS_OK) st = ds__sda_write_config(w, "llama", &c);
    if (bad == 5 && st == DS_OK) st = ds_gguf_writer_set_arr(w, "llama.attention.sda.layers", DS_GGUF_BOOL, on, 1);
    if (bad == 2 && st == DS_OK) st = ds_gguf_writer_set_u32(w, "llama.attention.sda.block_size", 0);
    if (bad == 3 && st == DS_OK) st = ds_gguf_writer_set_f32(w, "llama.attention.sda.sparsity", 1.5f);
    if (bad == 4 && st == DS_OK) st = ds_gguf_writer_set_arr(w, "llama.attention.sda.layers", DS_GGUF_BOOL, on, 2);
    ne[0] = C, ne[1] = (int64_t)HI * DI * (bad == 1 ? 2 : 1);
    if (bad == 6) goto write;
    if (st == DS_OK) st = ds_gguf_writer_add_tensor(w, "blk.0.sda_gate_q.weight", DS_TYPE_F32, 2, ne, gq);
    ne[1] = DI;
    if (st == DS_OK) st = ds_gguf_writer_add_tensor(w, "blk.0.sda_gate_k.weight", DS_TYPE_F32, 2, ne, gk);
    ne[0] = HI;
    if (st == DS_OK) st = ds_gguf_writer_add_tensor(w, "blk.0.sda_gate_w.weight", DS_TYPE_F32, 1, ne, gw);
write:
    if (st == DS_OK) st = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    free(gq), free(gk);
    return st;
}

/* SDA settings and a learned gate go into a GGUF file and come back; the model runs (at
   sparsity 1 equal to its dense self; sparse, a rewound step equal to the first); broken
   files fail naming the key or tensor */
static void test_gguf_learned_gate(ds_test_ctx *t) {
    static const char *const want[] = {"", "blk.0.sda_gate_q.weight", "attention.sda.block_size", "attention.sda.sparsity", "attention.sda.layers", "blk.0.sda_gate_q.weight"};
    const char *path = "build/test_sda_gate.gguf";
    ds_model *m, *g = NULL;
    int32_t *tok;
    float *a, *b;
    int bad, V;
    ds_status st;
    NEED_SMOLLM2(t, m);
    V = m->cfg.n_vocab;
    DS_REQUIRE(t, write_gate_model(m, path, 0) == DS_OK, "writing %s: %s", path, ds_last_error());
    DS_REQUIRE(t, ds_model_load(path, NULL, &g) == DS_OK, "loading %s: %s", path, ds_last_error());
    DS_CHECK(t, g->cfg.n_layer == 1 && g->cfg.layers[0].attn == DS_ATTN_SDA && g->cfg.sda_block == 32 && g->cfg.sda_topk == 4 && g->cfg.sda_window == 64 && g->cfg.sda_sink == 1 &&
                    g->cfg.sda_sparsity == 0.3f && g->cfg.sda_index_heads == 2 && g->cfg.sda_index_dim == 16 && g->layers[0].sda.gate_q.data && g->layers[0].sda.gate_w,
             "config read back: kind %d block %d topk %d window %d sink %d sparsity %g index %d x %d", g->cfg.layers[0].attn, g->cfg.sda_block, g->cfg.sda_topk, g->cfg.sda_window,
             g->cfg.sda_sink, (double)g->cfg.sda_sparsity, g->cfg.sda_index_heads, g->cfg.sda_index_dim);
    DS_CHECK(t, ds_model_kv_bytes_per_token(&g->cfg, 2) == (2 * 3 * 64 + 16) * 2, "kv bytes per token %zu", ds_model_kv_bytes_per_token(&g->cfg, 2));
    tok = text_tokens(m, 402);
    a = (float *)malloc(sizeof(float) * 403 * V), b = (float *)malloc(sizeof(float) * 403 * V);
    DS_REQUIRE(t, tok && a && b, "setup");
    DS_CHECK(t, run_rows(g, tok, 400, 128, b) == DS_OK, "sparse run: %s", ds_last_error());
    DS_CHECK(t, !memcmp(b + (size_t)401 * V, b + (size_t)402 * V, sizeof(float) * V), "a rewound step differs from the first");
    g->cfg.sda_sparsity = 1.0f;
    DS_CHECK(t, run_rows(g, tok, 400, 128, b) == DS_OK, "sparsity 1: %s", ds_last_error());
    g->cfg.layers[0].attn = DS_ATTN_DENSE;
    DS_CHECK(t, run_rows(g, tok, 400, 128, a) == DS_OK, "dense: %s", ds_last_error());
    DS_CHECK(t, !memcmp(a, b, sizeof(float) * 403 * V), "sparsity 1 differs from dense: %g", max_rel(a, b, (size_t)403 * V));
    ds_model_free(g);
    free(a), free(b), free(tok);
    for (bad = 1; bad <= 5; bad++) {
        g = NULL;
        DS_REQUIRE(t, write_gate_model(m, path, bad) == DS_OK, "writing variant %d: %s", bad, ds_last_error());
        st = ds_model_load(path, NULL, &g);
        DS_CHECK(t, st == DS_ERR_FORMAT && strstr(ds_last_error(), want[bad]), "variant %d: status %d, '%s' (want '%s')", bad, (int)st, ds_last_error(), want[bad]);
        ds_model_free(g);
    }
    remove(path);
}

static const ds_test_case cases[] = {DS_T(test_dense_equal_prefill_9x3x64), DS_T(test_dense_equal_chunk_9x3x64), DS_T(test_dense_equal_prefill_8x2x128), DS_T(test_dense_equal_decode_9x3x64), DS_T(test_dense_equal_decode_8x2x128), DS_T(test_sparse_vs_reference_prefill_9x3x64), DS_T(test_sparse_vs_reference_decode_8x2x128), DS_T(test_tree_vs_flat_topk), DS_T(test_tree_append_equals_build), DS_T(test_bad_params), DS_T(test_config_keys),
             DS_T(test_smollm2_sparsity1_equals_dense), DS_T(test_smollm2_tree_vs_flat), DS_T(test_gguf_learned_gate)};

/* test_sda --write-seeds MODEL OUT: OUT-gate.gguf and OUT-own.gguf, MODEL's first layer as
   an SDA layer with and without a learned gate (tests/extra_fuzz_infer.sh's seeds) */
int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--write-seeds")) {
        ds_model *m = NULL;
        char path[1024];
        ds_status st = ds_model_load(argv[2], NULL, &m);
        snprintf(path, sizeof path, "%s-gate.gguf", argv[3]);
        if (st == DS_OK) st = write_gate_model(m, path, 0);
        snprintf(path, sizeof path, "%s-own.gguf", argv[3]);
        if (st == DS_OK) st = write_gate_model(m, path, 6);
        ds_model_free(m);
        if (st != DS_OK) fprintf(stderr, "%s\n", ds_last_error());
        return st != DS_OK;
    }
    return ds_test_run(cases, (int)(sizeof cases / sizeof cases[0]), argc, argv);
}
