/* cmd_bench.c - `deepseek bench`: prompt-processing and generation speed measured as llama-bench
   measures them, so the figures line up with its pp512 / tg128:
     pp  one batch of p tokens evaluated from an empty context (only the last token's logits);
     tg  n single-token decodes from an empty context;
   each after a warm-up run, repeated r times (best and mean reported). Also printed:
     - GB/s of weights streamed during tg (bytes of weights read per token x tokens/s),
     - GFLOP/s during pp (2 x matmul parameters x tokens, plus causal attention),
     - the machine's read bandwidth, measured here with the same thread count, and
       tg tokens/s x bytes per token / bandwidth: how close decoding is to the memory limit,
     - peak resident memory of this process (VmHWM, Linux), taken before the bandwidth test. */
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: deepseek bench -m MODEL.gguf [-p 512] [-n 128] [-t THREADS] [-r REPS] [--json]\n"
            "\n"
            "Prompt processing (pp: one batch of p tokens from an empty context) and generation\n"
            "(tg: n single-token decodes) in tokens/s, as llama-bench's pp512 / tg128, best of r\n"
            "runs after a warm-up; weights streamed in GB/s, GFLOP/s, and the measured read\n"
            "bandwidth of this machine with the same thread count.\n"
            "\n"
            "  -m FILE   model (GGUF)\n"
            "  -p N      prompt tokens in [0, 65536] (default 512; 0 skips pp)\n"
            "  -n N      generated tokens in [0, 65536] (default 128; 0 skips tg)\n"
            "  -t N      threads in [1, 512] (default: all CPUs)\n"
            "  -r N      repetitions in [1, 65536] (default 5)\n"
            "  --json    print one JSON object instead of the table\n"
            CLI_LORA_HELP);
}

typedef struct bench_args {
    const char *model;
    int p, n, threads, reps, json;
    cli_lora lora;
} bench_args;

static int parse_args(int argc, char **argv, bench_args *a) {
    int i, r;
    long v;
    memset(a, 0, sizeof *a);
    a->p = 512;
    a->n = 128;
    a->reps = 5;
    for (i = 1; i < argc; i++) {
        const char *o = argv[i], *val;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) return 1;
        if (!strcmp(o, "--json")) {
            a->json = 1;
            continue;
        }
        if ((r = cli_lora_parse(&a->lora, argc, argv, &i, "bench")) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (strcmp(o, "-m") && strcmp(o, "-p") && strcmp(o, "-n") && strcmp(o, "-t") && strcmp(o, "-r"))
            return cli_usage_error("bench", "unknown option '%s'", o);
        if (!(val = cli_value(argc, argv, &i, "bench"))) return 2;
        if (!strcmp(o, "-m")) {
            a->model = val;
            continue;
        }
        if (!cli_int_opt("bench", o, val, strcmp(o, "-p") && strcmp(o, "-n") ? 1 : 0, strcmp(o, "-t") ? 1 << 16 : CLI_MAX_THREADS, &v)) return 2;
        if (!strcmp(o, "-p")) a->p = (int)v;
        else if (!strcmp(o, "-n")) a->n = (int)v;
        else if (!strcmp(o, "-t")) a->threads = (int)v;
        else a->reps = (int)v;
    }
    if (!a->model) return cli_usage_error("bench", "-m MODEL is required");
    return 0;
}

/* ---- read bandwidth ------------------------------------------------------------------------ */
typedef struct bw_job {
    const uint64_t *buf;
    size_t n;        /* words */
    uint64_t sums[64 * 8];   /* one cache line per task: keeps the loop from being optimised out */
} bw_job;

static void bw_task(void *ctx, int i, int n) {
    bw_job *j = (bw_job *)ctx;
    size_t lo = j->n * (size_t)i / (size_t)n, hi = j->n * (size_t)(i + 1) / (size_t)n, k;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (k = lo; k + 4 <= hi; k += 4) {
        a += j->buf[k];
        b += j->buf[k + 1];
        c += j->buf[k + 2];
        d += j->buf[k + 3];
    }
    j->sums[(i % 64) * 8] = a + b + c + d;
}

/* Best GB/s of a few full reads of a 256 MiB buffer (well above any cache) by the pool. */
static double read_bandwidth(ds_pool *pool) {
    size_t bytes = (size_t)256 << 20, k;
    bw_job *j = (bw_job *)calloc(1, sizeof *j);
    uint64_t *buf = (uint64_t *)malloc(bytes);
    double best = 0;
    int rep;
    if (!j || !buf) {
        free(j);
        free(buf);
        return 0;
    }
    for (k = 0; k < bytes / 8; k++) buf[k] = k;   /* fault every page in before timing */
    j->buf = buf;
    j->n = bytes / 8;
    for (rep = 0; rep < 5; rep++) {
        double t0 = ds_time(), dt;
        ds_pool_run(pool, bw_task, j, ds_pool_size(pool));
        dt = ds_time() - t0;
        if (dt > 0 && bytes / dt / 1e9 > best) best = (double)bytes / dt / 1e9;
    }
    free(buf);
    free(j);
    return best;
}

/* ---- model arithmetic ---------------------------------------------------------------------- */
/* Multiply-adds per token in the matmuls (attention projections, FFN or active experts, output
   head), and per token per attended position in attention (QK^T and AV). */
static void model_macs(const ds_model_config *c, double *per_token, double *per_pair) {
    int l, hd = c->head_dim ? c->head_dim : c->n_embd / c->n_head;
    double tok = (double)c->n_embd * c->n_vocab, pair = 0;
    for (l = 0; l < c->n_layer && l < DS_MAX_LAYERS; l++) {
        tok += (double)c->n_embd * hd * (2.0 * c->n_head + 2.0 * c->n_head_kv);
        if (c->layers[l].ffn == DS_FFN_MOE)
            tok += 3.0 * c->n_embd * c->n_ff_expert * (c->n_expert_used + c->n_expert_shared) + (double)c->n_embd * c->n_expert;
        else
            tok += 3.0 * c->n_embd * c->n_ff;
        pair += 2.0 * c->n_head * hd;
    }
    *per_token = tok;
    *per_pair = pair;
}

/* ---- timing ---------------------------------------------------------------------------------- */
typedef struct bench_result {
    double best, mean;   /* tokens/s */
} bench_result;

static uint32_t next_rand(uint32_t *state) {
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

/* Seconds for one pp run (gen == 0: one batch of n tokens) or one tg run (n decodes). */
static ds_status time_run(ds_session *s, int n_vocab, int n, int gen, int32_t *tok, float *logits, double *secs) {
    uint32_t rng = 1234u;
    double t0;
    int i;
    ds_status e = ds_session_rewind(s, 0);
    for (i = 0; i < n; i++) tok[i] = (int32_t)(next_rand(&rng) % (uint32_t)n_vocab);
    t0 = ds_time();
    if (!gen && e == DS_OK) e = ds_session_eval(s, tok, n, logits);
    for (i = 0; gen && i < n && e == DS_OK; i++) e = ds_session_eval(s, tok + i, 1, logits);
    *secs = ds_time() - t0;
    return e;
}

static ds_status measure(ds_session *s, int n_vocab, int n, int gen, int reps, int32_t *tok, float *logits, bench_result *r) {
    double secs, sum = 0;
    int i;
    ds_status e = time_run(s, n_vocab, gen ? 1 : n, gen, tok, logits, &secs);   /* warm-up */
    r->best = r->mean = 0;
    for (i = 0; i < reps && e == DS_OK; i++) {
        e = time_run(s, n_vocab, n, gen, tok, logits, &secs);
        if (secs > 0 && n / secs > r->best) r->best = n / secs;
        sum += secs;
    }
    if (e == DS_OK && sum > 0) r->mean = n * reps / sum;
    return e;
}

static double peak_rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kib = atof(line + 6);
    fclose(f);
    return kib / 1024;
}

/* KV-cache bytes per token as the session stores them (MLA layers: latent + RoPE key in f32;
   dense layers: K and V in f16), and for dense multi-head attention of the same width */
static void kv_bytes(const ds_model_config *c, double *ours, double *dense) {
    ds_model_config d = *c;
    int i, mla = 0;
    for (i = 0; i < c->n_layer && i < DS_MAX_LAYERS; i++) mla |= c->layers[i].attn == DS_ATTN_MLA;
    *ours = (double)ds_model_kv_bytes_per_token(c, mla ? 4 : 2);
    for (i = 0; i < d.n_layer && i < DS_MAX_LAYERS; i++) d.layers[i].attn = DS_ATTN_DENSE;
    d.n_head_kv = d.n_head;
    d.head_dim = d.n_embd / d.n_head;
    *dense = (double)ds_model_kv_bytes_per_token(&d, 2);
}

static void report(const bench_args *a, const ds_model *m, int threads, const bench_result *pp, const bench_result *tg, double bw, double rss) {
    double macs_tok, macs_pair, gflops = 0, wbytes = (double)ds_model_weight_bytes(m), stream = tg->best * wbytes / 1e9;
    double frac = bw > 0 ? stream / bw : 0, kv, kv_dense;
    model_macs(ds_model_get_config(m), &macs_tok, &macs_pair);
    kv_bytes(ds_model_get_config(m), &kv, &kv_dense);
    /* causal attention over a batch of p: position i attends to i + 1 keys */
    if (a->p) gflops = pp->best * 2.0 * (macs_tok + macs_pair * (a->p + 1) / 2.0) / 1e9;
    if (a->json) {
        printf("{\"threads\": %d, \"p\": %d, \"n\": %d, \"reps\": %d, \"pp_tok_s\": %.3f, \"pp_tok_s_mean\": %.3f, "
               "\"tg_tok_s\": %.3f, \"tg_tok_s_mean\": %.3f, \"weight_bytes\": %.0f, \"tg_gb_s\": %.3f, \"pp_gflop_s\": %.3f, "
               "\"read_bw_gb_s\": %.3f, \"tg_bw_fraction\": %.4f, \"peak_rss_mib\": %.1f, \"kv_bytes_per_token\": %.0f, "
               "\"kv_bytes_per_token_dense_mha\": %.0f}\n",
               threads, a->p, a->n, a->reps, pp->best, pp->mean, tg->best, tg->mean, wbytes, stream, gflops, bw, frac, rss, kv, kv_dense);
        return;
    }
    printf("model            %s (%.1f MiB of weights read per token)\n", a->model, wbytes / 1048576.0);
    printf("threads          %d\n", threads);
    if (a->p) printf("pp%-5d          %9.2f tok/s best, %9.2f mean of %d   %7.2f GFLOP/s\n", a->p, pp->best, pp->mean, a->reps, gflops);
    if (a->n) printf("tg%-5d          %9.2f tok/s best, %9.2f mean of %d   %7.2f GB/s of weights\n", a->n, tg->best, tg->mean, a->reps, stream);
    printf("read bandwidth   %9.2f GB/s (%d threads)\n", bw, threads);
    if (a->n) printf("tg x bytes/token / bandwidth = %.1f%%\n", 100 * frac);
    printf("peak memory      %9.1f MiB (VmHWM before the bandwidth test)\n", rss);
    printf("KV cache         %9.0f bytes/token (dense multi-head attention of the same width: %.0f, %.2fx)\n", kv, kv_dense, kv_dense / kv);
}

static int run(bench_args *a, ds_model *m) {
    int n_vocab = ds_model_get_config(m)->n_vocab, most = a->p > a->n ? a->p : a->n;
    ds_pool_config pc;
    ds_pool *pool = NULL;
    ds_session_config sp;
    ds_session *s = NULL;
    int32_t *tok = (int32_t *)malloc((size_t)(most + 1) * sizeof *tok);
    float *logits = (float *)malloc((size_t)n_vocab * sizeof *logits);
    bench_result pp = {0, 0}, tg = {0, 0};
    double bw = 0, rss = 0;
    ds_status e = tok && logits ? DS_OK : DS_ERR_NO_MEMORY;
    memset(&pc, 0, sizeof pc);
    pc.n_threads = a->threads;
    if (e == DS_OK) e = ds_pool_create(&pc, &pool);
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = most + 1;
    sp.pool = pool;
    sp.n_batch = a->p > 0 ? a->p : 0;
    if (e == DS_OK) e = ds_session_create(m, &sp, &s);
    if (e == DS_OK && cli_lora_attach(&a->lora, "bench", m, s) != 0) e = DS_ERR_CANCELLED;   /* reported */
    if (e == DS_OK && a->p) {
        if (!a->json) fprintf(stderr, "bench: pp%d x %d ...\n", a->p, a->reps);
        e = measure(s, n_vocab, a->p, 0, a->reps, tok, logits, &pp);
    }
    if (e == DS_OK && a->n) {
        if (!a->json) fprintf(stderr, "bench: tg%d x %d ...\n", a->n, a->reps);
        e = measure(s, n_vocab, a->n, 1, a->reps, tok, logits, &tg);
    }
    if (e == DS_OK) {
        rss = peak_rss_mib();   /* before the bandwidth test's own buffer */
        if (!a->json) fprintf(stderr, "bench: read bandwidth ...\n");
        bw = read_bandwidth(pool);
        report(a, m, ds_pool_size(pool), &pp, &tg, bw, rss);
    }
    ds_session_free(s);
    ds_pool_free(pool);
    free(tok);
    free(logits);
    return e == DS_OK ? 0 : e == DS_ERR_CANCELLED ? 1 : cli_fail("bench", "run", e);
}

int ds_cmd_bench(int argc, char **argv) {
    bench_args a;
    ds_model *m = NULL;
    ds_status e;
    int r = parse_args(argc, argv, &a);
    if (r == 1) {
        usage(stdout);
        return 0;
    }
    if (r) return r;
    e = ds_model_load(a.model, NULL, &m);
    if (e != DS_OK) return cli_fail("bench", a.model, e);
    r = run(&a, m);
    cli_lora_free(&a.lora);
    ds_model_free(m);
    return r;
}
