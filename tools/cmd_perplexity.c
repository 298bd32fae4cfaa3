/* cmd_perplexity.c - `deepseek perplexity`: a model's perplexity on a text file, with the method
   of llama.cpp's perplexity tool so the two figures can be compared:
     - the whole file, less one trailing newline (as llama.cpp's -f reads it), is tokenized at
       once (BOS in front only if the model's vocabulary asks for one), then cut into floor(n_tokens / c) non-overlapping chunks of c tokens;
     - each chunk is evaluated from an empty context at positions 0..c-1 (its first token
       replaced by BOS when the vocabulary adds BOS);
     - only the second half is scored: the logits at positions c/2 .. c-2 predict the next
       token, so each chunk scores c/2 - 1 tokens with at least c/2 tokens of context;
     - perplexity = exp(mean negative log-likelihood over all scored tokens).
   With a base model (--kl-divergence-base, and quant-eval, which shares this code) every chunk
   also runs through the base, and each scored position adds KL(base || model) over the whole
   vocabulary and whether both rank the same token first, as llama-perplexity --kl-divergence. */
#include "cli.h"
#include <math.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: deepseek perplexity -m MODEL.gguf -f TEXT [-c 512] [-t THREADS] [--chunks N] [--sda LINE]...\n"
            "\n"
            "Perplexity of a text with llama.cpp's method: non-overlapping chunks of c tokens, each\n"
            "evaluated from an empty context, scoring the second half of each chunk.\n"
            "\n"
            "  -m FILE      model (GGUF)\n"
            "  -f FILE      text file (needs at least 2*c tokens; '-': standard input)\n"
            "  -c N         chunk length in tokens, in [4, the model's context] (default 512 or the\n"
            "               model's context when shorter)\n"
            "  -t N         threads in [1, 512] (default: all CPUs)\n"
            "  --chunks N   score only the first N chunks, N >= 1\n"
            "  --kl-divergence-base FILE\n"
            "               also run FILE (the unquantized model, same vocabulary) on the same chunks and\n"
            "               print its perplexity, ln(PPL / PPL(base)), the mean KL divergence\n"
            "               KL(base || model) over the scored tokens and how often both models rank the\n"
            "               same token first (llama.cpp's \"same top p\"), with standard errors\n"
            "  --sda LINE   run with sparse dynamic attention: a model config line applied on top of\n"
            "               the file's, e.g. --sda 'layers.attn = sda' --sda 'sda_topk = 8'\n"
            CLI_LORA_HELP
            "\n"
            "Progress goes to stderr; the last line on stdout is `perplexity: X`.\n");
}

typedef struct ppl_args {
    const char *model, *text, *base;
    int ctx, threads, max_chunks;
    char sda[1024];   /* --sda lines */
    cli_lora lora;
} ppl_args;

/* 0: run; 1: --help; 2: bad usage (already reported) */
static int parse_args(int argc, char **argv, ppl_args *a) {
    int i, r;
    long v;
    memset(a, 0, sizeof *a);
    a->ctx = 0;   /* 512, or the model's context when shorter */
    for (i = 1; i < argc; i++) {
        const char *o = argv[i], *val;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) return 1;
        if ((r = cli_lora_parse(&a->lora, argc, argv, &i, "perplexity")) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (strcmp(o, "-m") && strcmp(o, "-f") && strcmp(o, "-c") && strcmp(o, "-t") && strcmp(o, "--chunks") && strcmp(o, "--kl-divergence-base") && strcmp(o, "--sda"))
            return cli_usage_error("perplexity", "unknown option '%s'", o);
        if (!(val = cli_value(argc, argv, &i, "perplexity"))) return 2;
        if (!strcmp(o, "-m")) a->model = val;
        else if (!strcmp(o, "-f")) a->text = val;
        else if (!strcmp(o, "--kl-divergence-base")) a->base = val;
        else if (!strcmp(o, "--sda")) {
            if (strlen(a->sda) + strlen(val) + 2 > sizeof a->sda) return cli_usage_error("perplexity", "too many --sda settings");
            strcat(strcat(a->sda, val), "\n");
        }
        else if (!cli_int_opt("perplexity", o, val, !strcmp(o, "-c") ? 4 : 1, !strcmp(o, "-t") ? CLI_MAX_THREADS : 1 << 20, &v)) return 2;
        else if (!strcmp(o, "-c")) a->ctx = (int)v;
        else if (!strcmp(o, "-t")) a->threads = (int)v;
        else a->max_chunks = (int)v;
    }
    if (!a->model || !a->text) return cli_usage_error("perplexity", "-m MODEL and -f TEXT are required");
    return 0;
}

/* ---- scoring (shared with quant-eval) ------------------------------------------------------- */
/* log softmax of n logits into lp, in double sums; returns the index of the largest */
static int log_softmax(const float *logits, int n, double *lp) {
    double mx = logits[0], sum = 0, lse;
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i], best = i;
    for (i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    lse = mx + log(sum);
    for (i = 0; i < n; i++) lp[i] = (double)logits[i] - lse;
    return best;
}

int32_t *cli_text_tokens(const char *cmd, const ds_tokenizer *tk, const char *path, size_t *n_tok) {
    size_t len;
    char *text = cli_read_input(cmd, path, &len);
    int32_t *tok = NULL;
    ds_status e = DS_OK;
    *n_tok = 0;
    if (!text) return NULL;
    if (len && text[len - 1] == '\n') len--;
    /* byte-level BPE gives at most one token per valid byte, plus BOS; an invalid byte becomes
       U+FFFD (up to 3 tokens): then the count ds_tokenize reports is used */
    for (;;) {
        size_t cap = *n_tok ? *n_tok : len + 2;
        if (!(tok = (int32_t *)malloc(cap * sizeof *tok))) {
            e = DS_ERR_NO_MEMORY;
            break;
        }
        e = ds_tokenize(tk, text, len, ds_tokenizer_adds_bos(tk) ? DS_TOKENIZE_ADD_BOS : 0, tok, cap, n_tok);
        if (e != DS_ERR_BOUNDS || *n_tok <= cap) break;
        free(tok);
        tok = NULL;
    }
    free(text);
    if (e != DS_OK) {
        free(tok);
        cli_fail(cmd, "tokenize", e);
        return NULL;
    }
    return tok;
}

/* Adds one chunk's scores of the model whose logits (rows c - c/2 from position c/2) are given:
   the NLL of each next token, and with a base (its log-probabilities blp and top tokens btop of
   the same rows) KL(base || model) and top-token agreement. lp: scratch of n_vocab. */
static void score_rows(const float *logits, const int32_t *tok, int c, int n_vocab, const double *blp, const int *btop, double *lp, cli_score *r) {
    int first = c / 2, j, i;
    for (j = first; j < c - 1; j++) {
        const float *row = logits + (size_t)(j - first) * n_vocab;
        int top = log_softmax(row, n_vocab, lp);
        r->nll -= lp[tok[j + 1]];
        r->scored++;
        if (blp) {
            const double *b = blp + (size_t)(j - first) * n_vocab;
            double kl = 0;
            for (i = 0; i < n_vocab; i++) kl += exp(b[i]) * (b[i] - lp[i]);
            r->kld += kl;
            r->kld2 += kl * kl;
            r->same_top += top == btop[j - first];
        }
    }
}

int cli_score_text(const char *cmd, ds_model *const *models, int n, const char *path, int ctx, int max_chunks, int threads, cli_lora *lora, cli_score *out) {
    const ds_tokenizer *tk = ds_model_tokenizer(models[0]);
    const ds_model_config *mc = ds_model_get_config(models[0]);
    int n_vocab = mc->n_vocab, c = ctx, n_chunks, i, k, bos = ds_tokenizer_bos(tk), add_bos = ds_tokenizer_adds_bos(tk);
    int rows, *btop = NULL, rc = 0;
    size_t n_tok = 0;
    int32_t *tok;
    float *logits = NULL;
    double *blp = NULL, *lp = NULL;
    ds_session **s = NULL;
    ds_pool *pool = NULL;
    ds_pool_config pc;
    ds_session_config sp;
    ds_status e = DS_OK;
    double t0;
    memset(out, 0, (size_t)n * sizeof *out);
    if (!c) c = mc->n_ctx > 0 && mc->n_ctx < 512 ? mc->n_ctx : 512;
    for (k = 0; k < n; k++) {
        const ds_model_config *kc = ds_model_get_config(models[k]);
        if (kc->n_vocab != n_vocab) {
            fprintf(stderr, "deepseek %s: model %d has %d tokens in its vocabulary, the first has %d\n", cmd, k + 1, kc->n_vocab, n_vocab);
            return 2;
        }
        if (kc->n_ctx > 0 && c > kc->n_ctx) {
            fprintf(stderr, "deepseek %s: -c %d is longer than the context the model was trained with (%d tokens)\n", cmd, c, kc->n_ctx);
            return 2;
        }
    }
    if (!(tok = cli_text_tokens(cmd, tk, path, &n_tok))) return 1;
    if ((long)n_tok < 2L * c) {
        fprintf(stderr, "deepseek %s: %s has %zu tokens; a context of %d needs at least %d\n", cmd, path, n_tok, c, 2 * c);
        free(tok);
        return 1;
    }
    n_chunks = (int)(n_tok / (size_t)c);
    if (max_chunks && max_chunks < n_chunks) n_chunks = max_chunks;
    fprintf(stderr, "%s: %zu tokens, %d chunks of %d, scoring %d tokens per chunk\n", cmd, n_tok, n_chunks, c, c - c / 2 - 1);
    rows = c - c / 2;
    memset(&pc, 0, sizeof pc);
    pc.n_threads = threads;
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = c;
    logits = (float *)malloc((size_t)rows * n_vocab * sizeof *logits);
    lp = (double *)malloc((size_t)n_vocab * sizeof *lp);
    s = (ds_session **)calloc((size_t)n, sizeof *s);
    if (n > 1) {
        blp = (double *)malloc((size_t)rows * n_vocab * sizeof *blp);
        btop = (int *)malloc((size_t)rows * sizeof *btop);
    }
    if (!logits || !lp || !s || (n > 1 && (!blp || !btop))) e = DS_ERR_NO_MEMORY;
    if (e == DS_OK) e = ds_pool_create(&pc, &pool);
    sp.pool = pool;   /* the sessions run one after another */
    for (k = 0; k < n && e == DS_OK; k++) e = ds_session_create(models[k], &sp, &s[k]);
    /* the adapters belong to the model evaluated, the last one (not to a base it is compared with) */
    if (e == DS_OK && lora && cli_lora_attach(lora, cmd, models[n - 1], s[n - 1]) != 0) rc = 1;
    t0 = ds_time();
    for (i = 0; i < n_chunks && e == DS_OK && !rc; i++) {
        int32_t *chunk = tok + (size_t)i * c, first = chunk[0];
        if (add_bos && bos >= 0) chunk[0] = bos;   /* each chunk starts as a text does */
        for (k = 0; k < n && e == DS_OK; k++) {
            int j;
            e = ds_session_rewind(s[k], 0);
            if (e == DS_OK) e = ds_session_eval(s[k], chunk, c / 2, NULL);
            if (e == DS_OK) e = ds_session_eval_all(s[k], chunk + c / 2, rows, logits);
            if (e != DS_OK) break;
            score_rows(logits, chunk, c, n_vocab, k ? blp : NULL, btop, lp, &out[k]);
            if (k == 0 && n > 1)
                for (j = 0; j < rows; j++) btop[j] = log_softmax(logits + (size_t)j * n_vocab, n_vocab, blp + (size_t)j * n_vocab);
        }
        chunk[0] = first;
        if (e != DS_OK) break;
        fprintf(stderr, "[%d/%d] %.4f", i + 1, n_chunks, exp(out[0].nll / (double)out[0].scored));
        for (k = 1; k < n; k++) fprintf(stderr, " | %.4f kld %.5f", exp(out[k].nll / (double)out[k].scored), out[k].kld / (double)out[k].scored);
        fprintf(stderr, "  (%.1f s)\n", ds_time() - t0);
    }
    for (k = 0; s && k < n; k++) ds_session_free(s[k]);
    ds_pool_free(pool);
    free(s);
    free(logits);
    free(lp);
    free(blp);
    free(btop);
    free(tok);
    if (e != DS_OK) return cli_fail(cmd, "evaluate", e);
    return rc;
}

double cli_score_ppl(const cli_score *r) { return r->scored ? exp(r->nll / (double)r->scored) : 0; }

void cli_score_stats(const cli_score *r, double *kld, double *kld_err, double *top, double *top_err) {
    double n = (double)r->scored, m = n > 0 ? r->kld / n : 0, p = n > 0 ? (double)r->same_top / n : 0;
    *kld = m;
    *kld_err = n > 1 ? sqrt(fmax(0, r->kld2 / n - m * m) / (n - 1)) : 0;
    *top = p;
    *top_err = n > 1 ? sqrt(p * (1 - p) / (n - 1)) : 0;
}

static int run(ppl_args *a, ds_model *m, ds_model *base) {
    ds_model *models[2];
    cli_score r[2];
    int n = 0, rc;
    if (base) models[n++] = base;
    models[n++] = m;
    if ((rc = cli_score_text("perplexity", models, n, a->text, a->ctx, a->max_chunks, a->threads, &a->lora, r))) return rc;
    if (base) {
        double kld, kerr, top, terr, p0 = cli_score_ppl(&r[0]), p1 = cli_score_ppl(&r[1]);
        cli_score_stats(&r[1], &kld, &kerr, &top, &terr);
        printf("base perplexity: %.6f\n", p0);
        printf("ln(PPL/PPL(base)): %.6f\n", log(p1 / p0));
        printf("mean KLD: %.8f +- %.8f\n", kld, kerr);
        printf("same top p: %.3f +- %.3f %%\n", 100 * top, 100 * terr);
    }
    printf("perplexity: %.6f\n", cli_score_ppl(&r[n - 1]));
    return 0;
}

int ds_cmd_perplexity(int argc, char **argv) {
    ppl_args a;
    ds_model *m = NULL, *base = NULL;
    ds_status e;
    int r = parse_args(argc, argv, &a);
    if (r == 1) {
        usage(stdout);
        return 0;
    }
    if (r) return r;
    e = ds_model_load(a.model, NULL, &m);
    if (e != DS_OK) return cli_fail("perplexity", a.model, e);
    if (a.sda[0] && (e = ds_model_configure(m, a.sda)) != DS_OK) {
        ds_model_free(m);
        return cli_fail("perplexity", "--sda", e);
    }
    if (a.base && (e = ds_model_load(a.base, NULL, &base)) != DS_OK) {
        ds_model_free(m);
        return cli_fail("perplexity", a.base, e);
    }
    r = run(&a, m, base);
    ds_model_free(base);
    cli_lora_free(&a.lora);
    ds_model_free(m);
    return r;
}
