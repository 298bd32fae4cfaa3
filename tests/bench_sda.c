/* Attention benchmark (not a test): dense attention (ds__attention, the session's kernels) against
   SDA (>>sda) on the same f16 cache, same threads, interleaved, for prefill of n tokens and one
   decode step at depth n; SmolLM2's head layout (9 q heads, 3 KV heads, 64 dims) and a 128-dim
   one (8 q heads, 2 KV heads). Prints per n the times and ratios, KV bytes read per decoded
   token, peak attention working memory, and the least-squares slope of log time vs log n.
   Dense prefill above --dense-full tokens is O(n^2): it is estimated from the last 512 queries,
   scaled by the causal triangle (sum of keys seen by all rows / by those rows), and marked "~".
   The deepseek CLI links only the public API, so this is the `deepseek bench --attn` stand-in.
   Build: cc -O2 -I. tests/bench_sda.c -o build/bench_sda -lm -lpthread
   Run:   build/bench_sda [-t THREADS] [-n 4096,16384,65536] [-r REPS] [--dense-full N]
          [--block 64] [--topk 16] [--window 64] [--sink 1] [--sparsity 0.3] */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include <stdio.h>

static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

enum { HI = 4, DI = 32, NT = 64, QTAIL = 512 };

typedef struct layout {
    int H, Hkv, D;
} layout;

/* one layer at depth n: keys are runs of blocks on one of NT topics (run length 1..16 blocks),
   each token its topic's vector plus noise; a query asks about the topic of a random earlier
   token, so the gate has something to find. Gate keys and queries follow the same topics. */
typedef struct data {
    int n;
    uint16_t *kc, *vc;
    float *q, *gq, *gk, *out;
} data;

static void data_make(data *d, const layout *L, int n, const ds__ops *o, int block) {
    static float tk[NT][128], tg[NT][DI];
    int *topic = (int *)malloc((size_t)n * sizeof(int)), i, h, e, tp = 0, run = 0;
    float *row = (float *)malloc((size_t)L->D * sizeof(float));
    for (i = 0; i < NT; i++) {
        for (e = 0; e < 128; e++) tk[i][e] = 2.0f * frand();
        for (e = 0; e < DI; e++) tg[i][e] = frand();
    }
    d->n = n;
    d->kc = (uint16_t *)malloc((size_t)L->Hkv * n * L->D * 2);
    d->vc = (uint16_t *)malloc((size_t)L->Hkv * n * L->D * 2);
    d->q = (float *)malloc((size_t)n * L->H * L->D * sizeof(float));
    d->out = (float *)malloc((size_t)n * L->H * L->D * sizeof(float));
    d->gq = (float *)malloc((size_t)n * HI * DI * sizeof(float));
    d->gk = (float *)malloc((size_t)n * DI * sizeof(float));
    for (i = 0; i < n; i++) {
        if (i % block == 0 && run-- <= 0) tp = (int)((frand() + 1.0f) * 0.5f * NT) % NT, run = (int)((frand() + 1.0f) * 8.0f);
        topic[i] = tp;
        for (h = 0; h < L->Hkv; h++) {
            for (e = 0; e < L->D; e++) row[e] = tk[tp][e] + frand();
            o->f32_to_f16(d->kc + ((size_t)h * n + i) * L->D, row, L->D);
            for (e = 0; e < L->D; e++) row[e] = frand();
            o->f32_to_f16(d->vc + ((size_t)h * n + i) * L->D, row, L->D);
        }
        for (e = 0; e < DI; e++) d->gk[(size_t)i * DI + e] = tg[tp][e] + 0.5f * frand();
    }
    for (i = 0; i < n; i++) {
        int want = topic[(int)((frand() + 1.0f) * 0.5f * (float)i) % (i + 1)];
        for (h = 0; h < L->H; h++)
            for (e = 0; e < L->D; e++) d->q[((size_t)i * L->H + h) * L->D + e] = tk[want][e] + frand();
        for (h = 0; h < HI; h++)
            for (e = 0; e < DI; e++) d->gq[((size_t)i * HI + h) * DI + e] = tg[want][e] + 0.5f * frand();
    }
    free(topic);
    free(row);
}
static void data_free(data *d) { free(d->kc), free(d->vc), free(d->q), free(d->out), free(d->gq), free(d->gk); }

typedef struct runner {
    const layout *L;
    const data *d;
    ds__ops ops;
    ds_pool *pool;
    int tasks;
    ds__sda_params p;
    ds__sda_gate g;
    ds__sda_tree tree;
    float w[HI];
    size_t dense_bytes, sda_bytes;
} runner;

static double dense_run(runner *r, int T, int pos0) {
    ds_model m;
    ds_session s;
    double t0;
    memset(&m, 0, sizeof m);
    memset(&s, 0, sizeof s);
    m.cfg.n_head = r->L->H, m.cfg.n_head_kv = r->L->Hkv, m.cfg.head_dim = r->L->D;
    s.m = &m, s.pool = r->pool, s.n_ctx = r->d->n, s.ops = r->ops;
    s.k_cache = r->d->kc, s.v_cache = r->d->vc;
    s.q = r->d->q + (size_t)pos0 * r->L->H * r->L->D, s.att = r->d->out;
    s.n_attn_tasks = r->tasks;
    s.attn_stride = ds__attn_stride(&m.cfg, s.n_ctx);
    r->dense_bytes = (size_t)s.n_attn_tasks * s.attn_stride * sizeof(float);
    s.attn_scratch = (float *)malloc(r->dense_bytes);
    t0 = ds_time();
    ds__attention(&s, 0, T, pos0);
    t0 = ds_time() - t0;
    free(s.attn_scratch);
    return t0;
}

/* the tree is built over all n gate keys once (prefill appends them before attention, as the
   KV cache is written); the time includes the search */
static double sda_run(runner *r, int T, int pos0, double *keys_read) {
    ds__sda_job j;
    void *work;
    double t0;
    int gi, i;
    memset(&j, 0, sizeof j);
    j.o = &r->ops, j.p = r->p, j.g = &r->g, j.tree = &r->tree;
    j.k_cache = r->d->kc, j.v_cache = r->d->vc;
    j.q = r->d->q + (size_t)pos0 * r->L->H * r->L->D, j.gq = r->d->gq + (size_t)pos0 * HI * DI, j.out = r->d->out;
    j.n_ctx = r->d->n, j.H = r->L->H, j.Hkv = r->L->Hkv, j.D = r->L->D, j.T = T, j.pos0 = pos0;
    r->sda_bytes = ds__sda_work_bytes(&j, r->tasks);
    work = malloc(r->sda_bytes);
    t0 = ds_time();
    if (ds__sda_attention(&j, r->pool, work, r->tasks) != DS_OK) {
        fprintf(stderr, "sda: %s\n", ds_last_error());
        exit(1);
    }
    t0 = ds_time() - t0;
    if (keys_read)
        for (*keys_read = 0, gi = 0; gi < j.n_groups; gi++)
            for (i = 0; i < j.n_sel[gi]; i++) *keys_read += DS__MIN(r->p.block, pos0 + T - j.sel[(size_t)gi * j.max_sel + i] * r->p.block);
    free(work);
    return t0;
}

static double slope(const double *x, const double *y, int n) {
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    int i;
    for (i = 0; i < n; i++) mx += log(x[i]) / n, my += log(y[i]) / n;
    for (i = 0; i < n; i++) sxy += (log(x[i]) - mx) * (log(y[i]) - my), sxx += (log(x[i]) - mx) * (log(x[i]) - mx);
    return n > 1 ? sxy / sxx : 0.0;
}

int main(int argc, char **argv) {
    static const layout lays[2] = {{9, 3, 64}, {8, 2, 128}};
    int ns[16], nn = 0, threads = 2, reps = 2, dense_full = 16384, a, li, k, rep;
    ds__sda_params p = {64, 16, 64, 1, 0, 0.3f};   /* the model defaults (sparsity 1 would read every block) */
    ds_pool_config pc;
    ds_pool *pool;
    const char *list = "4096,16384,65536";
    for (a = 1; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "-t")) threads = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "-n") || !strcmp(argv[a], "--attn-n")) list = argv[a + 1];
        else if (!strcmp(argv[a], "-r")) reps = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--dense-full")) dense_full = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--block")) p.block = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--topk")) p.topk = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--window")) p.window = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--sink")) p.sink = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--sparsity")) p.sparsity = (float)atof(argv[a + 1]);
        else {
            fprintf(stderr, "bench_sda: unknown option '%s'\n", argv[a]);
            return 2;
        }
    }
    for (; *list && nn < 16; nn++) {
        ns[nn] = atoi(list);
        while (*list && *list != ',') list++;
        if (*list == ',') list++;
    }
    if (ds__sda_check(&p) != DS_OK || threads < 1 || reps < 1) {
        fprintf(stderr, "bench_sda: %s\n", ds_last_error());
        return 2;
    }
    memset(&pc, 0, sizeof pc);
    pc.n_threads = threads;
    if (ds_pool_create(&pc, &pool) != DS_OK) return 1;
    printf("SDA block %d, topk %d, window %d, sink %d, beam %d; %d threads, best of %d, interleaved\n", p.block, p.topk, p.window, p.sink, ds__sda_beam(&p), threads, reps);
    for (li = 0; li < 2; li++) {
        const layout *L = &lays[li];
        double xs[16], ys_sda[16], ys_dense[16], yd_sda[16], yd_dense[16];
        printf("\nlayout %d q heads, %d kv heads, head %d\n", L->H, L->Hkv, L->D);
        printf("%7s | %10s %10s %6s | %9s %9s %6s | %9s %9s %6s | %8s %8s\n", "n", "pp dense s", "pp sda s", "ratio", "tg dense", "tg sda", "ratio", "KV/tok d", "KV/tok s", "less", "mem d", "mem s");
        for (k = 0; k < nn; k++) {
            runner r;
            data d;
            int n = ns[k], est = n > dense_full;
            double pd = 1e30, ps = 1e30, td = 1e30, ts = 1e30, keys = 0, scale = 1.0;
            memset(&r, 0, sizeof r);
            ds__ops_init(&r.ops, DS_BACKEND_CPU);
            data_make(&d, L, n, &r.ops, p.block);
            r.L = L, r.d = &d, r.pool = pool, r.tasks = 4 * threads, r.p = p;
            for (a = 0; a < HI; a++) r.w[a] = 1.0f;
            r.g.n_heads = HI, r.g.dim = DI, r.g.w = r.w;
            if (ds__sda_tree_init(&r.tree, DI, p.block, n) != DS_OK) return 1;
            ds__sda_tree_append(&r.tree, d.gk, n);
            if (est) /* keys seen by all n rows over those seen by the last QTAIL */
                scale = ((double)n * (n + 1) / 2) / ((double)QTAIL * (n - QTAIL) + (double)QTAIL * (QTAIL + 1) / 2);
            for (rep = 0; rep < reps; rep++) {
                pd = fmin(pd, est ? scale * dense_run(&r, QTAIL, n - QTAIL) : dense_run(&r, n, 0));
                ps = fmin(ps, sda_run(&r, n, 0, NULL));
                td = fmin(td, dense_run(&r, 1, n - 1));
                ts = fmin(ts, sda_run(&r, 1, n - 1, &keys));
            }
            /* KV bytes per decoded token: K and V rows (f16) of each KV head for the keys read,
               SDA adding a bound on the tree nodes the search scores (f32, at most 2 beam per level) */
            {
                double kvd = (double)n * L->Hkv * L->D * 2 * 2;
                double kvs = keys * L->Hkv * L->D * 2 * 2 + (double)(2 * ds__sda_beam(&p)) * r.tree.n_levels * DI * 4;
                printf("%7d | %s%9.3f %10.3f %5.1fx | %8.2fms %8.2fms %5.1fx | %8.0fK %8.0fK %5.0f%% | %7.1fM %7.1fM\n", n, est ? "~" : " ", pd, ps, pd / ps, td * 1e3, ts * 1e3, td / ts,
                       kvd / 1024, kvs / 1024, 100.0 * (1.0 - kvs / kvd), r.dense_bytes / 1048576.0,
                       (r.sda_bytes + (r.tree.off[r.tree.n_levels - 1] + DI) * sizeof(float)) / 1048576.0);
            }
            xs[k] = n, ys_sda[k] = ps, ys_dense[k] = pd, yd_sda[k] = ts, yd_dense[k] = td;
            ds__sda_tree_free(&r.tree);
            data_free(&d);
            fflush(stdout);
        }
        printf("log-log slope of time vs n: prefill dense %.2f, sda %.2f; decode dense %.2f, sda %.2f\n", slope(xs, ys_dense, nn), slope(xs, ys_sda, nn), slope(xs, yd_dense, nn), slope(xs, yd_sda, nn));
        if (nn && ns[nn - 1] > dense_full) printf("~ dense prefill estimated: the last %d queries timed, scaled by the causal triangle\n", QTAIL);
    }
    printf("\nmem: peak attention working memory (dense: the session's attention scratch; sda: its work\nbuffer plus the gate tree). KV/tok: K and V bytes read for one decoded token.\n");
    ds_pool_free(pool);
    return 0;
}
