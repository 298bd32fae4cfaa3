/* cmd_bench.c - `deepseek bench`: prompt-processing and generation speed measured as llama-bench
   measures them, so the figures line up with its pp512 / tg128:
     pp  one batch of p tokens evaluated from an empty context (only the last token's logits);
     tg  n single-token decodes from an empty context;
   each after a warm-up run, repeated r times (best and mean reported). Also printed:
     - GB/s of weights streamed during tg (bytes of weights read per token x tokens/s),
     - GFLOP/s during pp (2 x matmul parameters x tokens, plus causal attention),
     - the machine's read bandwidth, measured here with the same thread count, and
       tg tokens/s x bytes per token / bandwidth: how close decoding is to the memory limit,
     - peak resident memory of this process (VmHWM, Linux), taken before the bandwidth test;
     - with --profile, where pp and tg spend their time: wall milliseconds per token of each
       kind of op (ds_session_get_stats) over the timed runs.
   With --attn it times attention alone instead (ds_attn_bench_*): dense against SDA. */
#include "cli.h"
#include <math.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: deepseek bench -m MODEL.gguf [-p 512] [-n 128] [-t THREADS] [-r REPS] [--profile] [--json] [--sda LINE]...\n"
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
            "  --profile also print the time per token of each kind of op (matmuls by weight,\n"
            "            attention, norms, ...) over the timed runs\n"
            "  --json    print one JSON object instead of the table\n"
            "  --sda LINE  run the model with sparse dynamic attention: a model config line on top of\n"
            "            the file's, e.g. --sda 'layers.attn = sda' --sda 'sda_topk = 8'\n"
            CLI_LORA_HELP
            "\n"
            "usage: deepseek bench --attn [--attn-n 4096,16384,65536,131072] [-t THREADS] [-r REPS]\n"
            "                      [--dense-full N] [--sda 'KEY = VALUE']...\n"
            "\n"
            "Attention alone, no model: dense against SDA (sparse dynamic attention) on a synthetic\n"
            "f16 cache, SmolLM2's head layout (9 q heads, 3 KV heads, 64 dims) and a 128-dim one\n"
            "(8 q, 2 KV), best of r interleaved runs: a prefill of n tokens and one decode step at\n"
            "depth n, their ratios, the log-log slope of time against n, the KV bytes one decoded\n"
            "token reads and the peak attention working memory.\n"
            "\n"
            "  --attn-n LIST   context lengths, comma-separated (default 4096,16384,65536)\n"
            "  --dense-full N  above N tokens, dense prefill is timed on its last 512 queries and\n"
            "                  scaled by the causal triangle, marked ~ (default 16384)\n"
            "  --sda LINE      (with --attn) an SDA setting, e.g. --sda 'sda_topk = 8'\n"
            "                  (sda_block, sda_topk, sda_sparsity, sda_window, sda_sink)\n");
}

typedef struct bench_args {
    const char *model;
    int p, n, threads, reps, json, profile;
    int attn, dense_full, reps_given;   /* --attn */
    const char *attn_n;
    char sda[1024];                     /* --sda lines */
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
        if (!strcmp(o, "--json") || !strcmp(o, "--profile")) {
            *(o[2] == 'j' ? &a->json : &a->profile) = 1;
            continue;
        }
        if ((r = cli_lora_parse(&a->lora, argc, argv, &i, "bench")) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (!strcmp(o, "--attn")) {
            a->attn = 1;
            continue;
        }
        if (strcmp(o, "-m") && strcmp(o, "-p") && strcmp(o, "-n") && strcmp(o, "-t") && strcmp(o, "-r") && strcmp(o, "--attn-n") && strcmp(o, "--dense-full") && strcmp(o, "--sda"))
            return cli_usage_error("bench", "unknown option '%s'", o);
        if (!(val = cli_value(argc, argv, &i, "bench"))) return 2;
        if (!strcmp(o, "-m")) {
            a->model = val;
            continue;
        }
        if (!strcmp(o, "--attn-n")) {
            a->attn_n = val;
            continue;
        }
        if (!strcmp(o, "--sda")) {
            if (strlen(a->sda) + strlen(val) + 2 > sizeof a->sda) return cli_usage_error("bench", "too many --sda settings");
            strcat(strcat(a->sda, val), "\n");
            continue;
        }
        if (!strcmp(o, "--dense-full")) {
            if (!cli_int_opt("bench", o, val, 512, 1 << 24, &v)) return 2;
            a->dense_full = (int)v;
            continue;
        }
        a->reps_given |= !strcmp(o, "-r");
        if (!cli_int_opt("bench", o, val, strcmp(o, "-p") && strcmp(o, "-n") ? 1 : 0, strcmp(o, "-t") ? 1 << 16 : CLI_MAX_THREADS, &v)) return 2;
        if (!strcmp(o, "-p")) a->p = (int)v;
        else if (!strcmp(o, "-n")) a->n = (int)v;
        else if (!strcmp(o, "-t")) a->threads = (int)v;
        else a->reps = (int)v;
    }
    if (!a->model && !a->attn) return cli_usage_error("bench", "-m MODEL is required (or --attn)");
    return 0;
}

/* ---- attention alone (--attn) ----------------------------------------------------------------- */
#define ATTN_TAIL 512   /* queries timed of a long dense prefill */

static double loglog_slope(const double *x, const double *y, int n) {
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    int i;
    for (i = 0; i < n; i++) mx += log(x[i]) / n, my += log(y[i]) / n;
    for (i = 0; i < n; i++) sxy += (log(x[i]) - mx) * (log(y[i]) - my), sxx += (log(x[i]) - mx) * (log(x[i]) - mx);
    return n > 1 && sxx > 0 ? sxy / sxx : 0.0;
}

/* one layout: per n, best of reps of the four runs interleaved; the table row */
static ds_status attn_layout(const bench_args *a, ds_pool *pool, const ds_model_config *sda, const int *ns, int nn, int H, int Hkv, int D) {
    double xs[32], pds[32], pss[32], tds[32], tss[32];
    int k, rep;
    printf("\nlayout %d q heads, %d KV heads, head %d\n", H, Hkv, D);
    printf("%7s | %10s %10s %6s | %9s %9s %6s | %9s %9s %5s | %8s %8s\n", "n", "pp dense s", "pp sda s", "ratio", "tg dense", "tg sda", "ratio", "KV/tok d", "KV/tok s", "less", "mem d", "mem s");
    for (k = 0; k < nn; k++) {
        ds_attn_bench *b = NULL;
        int n = ns[k], est = n > a->dense_full;
        double pd = 1e30, ps = 1e30, td = 1e30, ts = 1e30, sec, kvd = 0, kvs = 0, scale = 1.0;
        size_t md = 0, ms = 0;
        ds_status e = ds_attn_bench_create(H, Hkv, D, n, sda, pool, &b);
        if (e != DS_OK) return e;
        if (est) /* keys seen by all n rows over those seen by the last ATTN_TAIL */
            scale = ((double)n * (n + 1) / 2) / ((double)ATTN_TAIL * (n - ATTN_TAIL) + (double)ATTN_TAIL * (ATTN_TAIL + 1) / 2);
        for (rep = 0; rep < a->reps && e == DS_OK; rep++) {
            if ((e = ds_attn_bench_run(b, 0, est ? ATTN_TAIL : n, est ? n - ATTN_TAIL : 0, &sec, NULL, &md)) == DS_OK) pd = fmin(pd, scale * sec);
            if (e == DS_OK && (e = ds_attn_bench_run(b, 1, n, 0, &sec, NULL, &ms)) == DS_OK) ps = fmin(ps, sec);
            if (e == DS_OK && (e = ds_attn_bench_run(b, 0, 1, n - 1, &sec, &kvd, NULL)) == DS_OK) td = fmin(td, sec);
            if (e == DS_OK && (e = ds_attn_bench_run(b, 1, 1, n - 1, &sec, &kvs, NULL)) == DS_OK) ts = fmin(ts, sec);
        }
        ds_attn_bench_free(b);
        if (e != DS_OK) return e;
        printf("%7d | %s%9.3f %10.3f %5.1fx | %7.2fms %7.2fms %5.1fx | %8.0fK %8.0fK %4.0f%% | %7.1fM %7.1fM\n", n, est ? "~" : " ", pd, ps, pd / ps, td * 1e3, ts * 1e3, td / ts, kvd / 1024,
               kvs / 1024, 100.0 * (1.0 - kvs / kvd), md / 1048576.0, ms / 1048576.0);
        fflush(stdout);
        xs[k] = n, pds[k] = pd, pss[k] = ps, tds[k] = td, tss[k] = ts;
    }
    printf("log-log slope of time vs n: prefill dense %.2f, sda %.2f; decode dense %.2f, sda %.2f\n", loglog_slope(xs, pds, nn), loglog_slope(xs, pss, nn), loglog_slope(xs, tds, nn),
           loglog_slope(xs, tss, nn));
    return DS_OK;
}

static int run_attn(bench_args *a) {
    ds_model_config sda;
    ds_pool_config pc;
    ds_pool *pool = NULL;
    const char *list = a->attn_n ? a->attn_n : "4096,16384,65536";
    int ns[32], nn = 0;
    long v;
    ds_status e;
    memset(&sda, 0, sizeof sda);
    if (ds_model_config_parse(a->sda, &sda, NULL, "--sda") != DS_OK) return cli_usage_error("bench", "%s", ds_last_error());
    while (*list) {
        char num[32];
        size_t len = strcspn(list, ",");
        if (nn == 32 || len == 0 || len >= sizeof num) return cli_usage_error("bench", "--attn-n: want up to 32 comma-separated lengths");
        memcpy(num, list, len);
        num[len] = 0;
        if (!cli_int_opt("bench", "--attn-n", num, 1024, 1 << 22, &v)) return 2;
        ns[nn++] = (int)v;
        list += len + (list[len] == ',');
    }
    if (!a->reps_given) a->reps = 2;
    if (!a->dense_full) a->dense_full = 16384;
    memset(&pc, 0, sizeof pc);
    pc.n_threads = a->threads;
    if ((e = ds_pool_create(&pc, &pool)) != DS_OK) return cli_fail("bench", "pool", e);
    printf("attention alone: dense vs SDA (%s); %d threads, best of %d, interleaved\n", a->sda[0] ? "settings from --sda, the rest default" : "default settings", ds_pool_size(pool), a->reps);
    e = attn_layout(a, pool, &sda, ns, nn, 9, 3, 64);
    if (e == DS_OK) e = attn_layout(a, pool, &sda, ns, nn, 8, 2, 128);
    if (e == DS_OK && ns[nn - 1] > a->dense_full) printf("~ dense prefill estimated: its last %d queries timed, scaled by the causal triangle\n", ATTN_TAIL);
    if (e == DS_OK)
        printf("KV/tok: K and V bytes one decoded token reads (SDA: with a bound on the gate-tree nodes scored).\n"
               "mem: peak attention working memory (dense: the attention scratch; SDA: its work buffer and gate tree).\n");
    ds_pool_free(pool);
    return e == DS_OK ? 0 : cli_fail("bench", "attention", e);
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
    double best, mean;        /* tokens/s */
    double seconds;           /* of the timed runs */
    ds_session_stats prof;    /* of the timed runs (--profile) */
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
    ds_session_reset_stats(s);
    for (i = 0; i < reps && e == DS_OK; i++) {
        e = time_run(s, n_vocab, n, gen, tok, logits, &secs);
        if (secs > 0 && n / secs > r->best) r->best = n / secs;
        sum += secs;
    }
    if (e == DS_OK && sum > 0) r->mean = n * reps / sum;
    r->seconds = sum;
    r->prof = ds_session_get_stats(s);
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

/* pp (p tokens) then tg (n decodes), reps runs each; p or n 0 skips that one; profile: time the
   ops; lora: adapters to attach (NULL: none) */
static ds_status speed(ds_model *m, ds_pool *pool, int p, int n, int reps, int profile, cli_lora *lora, bench_result *pp, bench_result *tg) {
    int n_vocab = ds_model_get_config(m)->n_vocab, most = p > n ? p : n;
    ds_session_config sp;
    ds_session *s = NULL;
    int32_t *tok = (int32_t *)malloc((size_t)(most + 1) * sizeof *tok);
    float *logits = (float *)malloc((size_t)n_vocab * sizeof *logits);
    ds_status e = tok && logits ? DS_OK : DS_ERR_NO_MEMORY;
    memset(pp, 0, sizeof *pp);
    memset(tg, 0, sizeof *tg);
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = most + 1;
    sp.pool = pool;
    sp.n_batch = p > 0 ? p : 0;
    sp.profile = profile;
    if (e == DS_OK) e = ds_session_create(m, &sp, &s);
    if (e == DS_OK && lora && cli_lora_attach(lora, "bench", m, s) != 0) e = DS_ERR_CANCELLED;   /* reported */
    if (e == DS_OK && p) e = measure(s, n_vocab, p, 0, reps, tok, logits, pp);
    if (e == DS_OK && n) e = measure(s, n_vocab, n, 1, reps, tok, logits, tg);
    ds_session_free(s);
    free(tok);
    free(logits);
    return e;
}

ds_status cli_bench_speed(ds_model *m, ds_pool *pool, int p, int n, int reps, double *pp_tok_s, double *tg_tok_s) {
    bench_result pp, tg;
    ds_status e = speed(m, pool, p, n, reps, 0, NULL, &pp, &tg);
    *pp_tok_s = pp.best;
    *tg_tok_s = tg.best;
    return e;
}

/* --profile: milliseconds per token of each kind of op over a phase's timed runs, and the rest
   of their time (outside the forward's ops: the call, the pool's hand-offs between them) */
static void print_profile(const bench_args *a, const char *phase, const bench_result *r) {
    double tok = r->prof.tokens > 0 ? (double)r->prof.tokens : 1, sum = 0;
    int k;
    if (a->json) printf(", \"%s_profile_ms_per_token\": {", phase);
    else printf("%s per token:\n", phase);
    for (k = 0; k < DS_OP_KIND_COUNT; k++) {
        double ms = 1e3 * r->prof.seconds[k] / tok;
        sum += ms;
        if (a->json) printf("%s\"%s\": %.5f", k ? ", " : "", ds_op_kind_name((ds_op_kind)k), ms);
        else printf("  %-20s %9.4f ms %6.1f%%\n", ds_op_kind_name((ds_op_kind)k), ms, r->seconds > 0 ? 100 * ms * tok / 1e3 / r->seconds : 0);
    }
    if (a->json) printf(", \"other\": %.5f}", 1e3 * r->seconds / tok - sum);
    else printf("  %-20s %9.4f ms %6.1f%%\n", "other", 1e3 * r->seconds / tok - sum, r->seconds > 0 ? 100 * (1 - sum * tok / 1e3 / r->seconds) : 0);
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
               "\"kv_bytes_per_token_dense_mha\": %.0f",
               threads, a->p, a->n, a->reps, pp->best, pp->mean, tg->best, tg->mean, wbytes, stream, gflops, bw, frac, rss, kv, kv_dense);
        if (a->profile && a->p) print_profile(a, "pp", pp);
        if (a->profile && a->n) print_profile(a, "tg", tg);
        printf("}\n");
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
    if (a->profile && a->p) print_profile(a, "pp", pp);
    if (a->profile && a->n) print_profile(a, "tg", tg);
}

static int run(bench_args *a, ds_model *m) {
    ds_pool_config pc;
    ds_pool *pool = NULL;
    bench_result pp, tg;
    double bw = 0, rss = 0;
    ds_status e;
    memset(&pp, 0, sizeof pp);
    memset(&tg, 0, sizeof tg);
    memset(&pc, 0, sizeof pc);
    pc.n_threads = a->threads;
    e = ds_pool_create(&pc, &pool);
    if (e == DS_OK && !a->json) fprintf(stderr, "bench: pp%d then tg%d, %d runs each ...\n", a->p, a->n, a->reps);
    if (e == DS_OK) e = speed(m, pool, a->p, a->n, a->reps, a->profile, &a->lora, &pp, &tg);
    if (e == DS_OK) {
        rss = peak_rss_mib();   /* before the bandwidth test's own buffer */
        if (!a->json) fprintf(stderr, "bench: read bandwidth ...\n");
        bw = read_bandwidth(pool);
        report(a, m, ds_pool_size(pool), &pp, &tg, bw, rss);
    }
    ds_pool_free(pool);
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
    if (a.attn) return run_attn(&a);
    e = ds_model_load(a.model, NULL, &m);
    if (e != DS_OK) return cli_fail("bench", a.model, e);
    if (a.sda[0] && (e = ds_model_configure(m, a.sda)) != DS_OK) {
        ds_model_free(m);
        return cli_fail("bench", "--sda", e);
    }
    r = run(&a, m);
    cli_lora_free(&a.lora);
    ds_model_free(m);
    return r;
}
