/* cmd_perplexity.c - `deepseek perplexity`: a model's perplexity on a text file, with the method
   of llama.cpp's perplexity tool so the two figures can be compared:
     - the whole file, less one trailing newline (as llama.cpp's -f reads it), is tokenized at
       once (BOS in front only if the model's vocabulary asks for one), then cut into floor(n_tokens / c) non-overlapping chunks of c tokens;
     - each chunk is evaluated from an empty context at positions 0..c-1 (its first token
       replaced by BOS when the vocabulary adds BOS);
     - only the second half is scored: the logits at positions c/2 .. c-2 predict the next
       token, so each chunk scores c/2 - 1 tokens with at least c/2 tokens of context;
     - perplexity = exp(mean negative log-likelihood over all scored tokens). */
#include "cli.h"
#include <math.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: deepseek perplexity -m MODEL.gguf -f TEXT [-c 512] [-t THREADS] [--chunks N]\n"
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
            CLI_LORA_HELP
            "\n"
            "Progress goes to stderr; the last line on stdout is `perplexity: X`.\n");
}

typedef struct ppl_args {
    const char *model, *text;
    int ctx, threads, max_chunks;
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
        if (strcmp(o, "-m") && strcmp(o, "-f") && strcmp(o, "-c") && strcmp(o, "-t") && strcmp(o, "--chunks"))
            return cli_usage_error("perplexity", "unknown option '%s'", o);
        if (!(val = cli_value(argc, argv, &i, "perplexity"))) return 2;
        if (!strcmp(o, "-m")) a->model = val;
        else if (!strcmp(o, "-f")) a->text = val;
        else if (!cli_int_opt("perplexity", o, val, !strcmp(o, "-c") ? 4 : 1, !strcmp(o, "-t") ? CLI_MAX_THREADS : 1 << 20, &v)) return 2;
        else if (!strcmp(o, "-c")) a->ctx = (int)v;
        else if (!strcmp(o, "-t")) a->threads = (int)v;
        else a->max_chunks = (int)v;
    }
    if (!a->model || !a->text) return cli_usage_error("perplexity", "-m MODEL and -f TEXT are required");
    return 0;
}

/* -log softmax(logits)[tok], in double */
static double token_nll(const float *logits, int n_vocab, int tok) {
    double mx = logits[0], sum = 0;
    int i;
    for (i = 1; i < n_vocab; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - mx);
    return mx + log(sum) - (double)logits[tok];
}

/* Sum of the negative log-likelihoods of tok[c/2 + 1 .. c-1] given the preceding ones. The first
   half runs without logits; logits holds (c - c/2, n_vocab). */
static ds_status chunk_nll(ds_session *s, const int32_t *tok, int c, int n_vocab, float *logits, double *nll) {
    int first = c / 2, j;
    ds_status e = ds_session_rewind(s, 0);
    if (e == DS_OK) e = ds_session_eval(s, tok, first, NULL);
    if (e == DS_OK) e = ds_session_eval_all(s, tok + first, c - first, logits);
    if (e != DS_OK) return e;
    *nll = 0;
    for (j = first; j < c - 1; j++) *nll += token_nll(logits + (size_t)(j - first) * n_vocab, n_vocab, tok[j + 1]);
    return DS_OK;
}

static int run(ppl_args *a, ds_model *m) {
    const ds_tokenizer *tk = ds_model_tokenizer(m);
    int n_vocab = ds_model_get_config(m)->n_vocab, c = a->ctx, n_chunks, i, bos = ds_tokenizer_bos(tk), add_bos = ds_tokenizer_adds_bos(tk);
    size_t len, n_tok = 0;
    char *text;
    int32_t *tok = NULL;
    float *logits = NULL;
    ds_session *s = NULL;
    ds_session_config sp;
    ds_status e;
    double nll = 0, t0;
    long scored = 0;
    if (!c) c = ds_model_get_config(m)->n_ctx > 0 && ds_model_get_config(m)->n_ctx < 512 ? ds_model_get_config(m)->n_ctx : 512;
    if (ds_model_get_config(m)->n_ctx > 0 && c > ds_model_get_config(m)->n_ctx) {
        fprintf(stderr, "deepseek perplexity: -c %d is longer than the context the model was trained with (%d tokens)\n", c, ds_model_get_config(m)->n_ctx);
        return 2;
    }
    if (!(text = cli_read_input("perplexity", a->text, &len))) return 1;
    if (len && text[len - 1] == '\n') len--;
    /* byte-level BPE gives at most one token per valid byte, plus BOS; an invalid byte becomes
       U+FFFD (up to 3 tokens): then the count ds_tokenize reports is used */
    for (;;) {
        size_t cap = n_tok ? n_tok : len + 2;
        if (!(tok = (int32_t *)malloc(cap * sizeof *tok))) {
            e = DS_ERR_NO_MEMORY;
            break;
        }
        e = ds_tokenize(tk, text, len, add_bos ? DS_TOKENIZE_ADD_BOS : 0, tok, cap, &n_tok);
        if (e != DS_ERR_BOUNDS || n_tok <= cap) break;
        free(tok);
        tok = NULL;
    }
    free(text);
    if (e != DS_OK) {
        free(tok);
        return cli_fail("perplexity", "tokenize", e);
    }
    if ((long)n_tok < 2L * c) {
        fprintf(stderr, "deepseek perplexity: %s has %zu tokens; a context of %d needs at least %d\n", a->text, n_tok, c, 2 * c);
        free(tok);
        return 1;
    }
    n_chunks = (int)(n_tok / (size_t)c);
    if (a->max_chunks && a->max_chunks < n_chunks) n_chunks = a->max_chunks;
    fprintf(stderr, "perplexity: %zu tokens, %d chunks of %d, scoring %d tokens per chunk\n", n_tok, n_chunks, c, c - c / 2 - 1);
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = c;
    sp.n_threads = a->threads;
    logits = (float *)malloc((size_t)(c - c / 2) * n_vocab * sizeof *logits);
    e = logits ? ds_session_create(m, &sp, &s) : DS_ERR_NO_MEMORY;
    if (e == DS_OK && cli_lora_attach(&a->lora, "perplexity", m, s) != 0) {
        ds_session_free(s);
        free(logits);
        free(tok);
        return 1;
    }
    t0 = ds_time();
    for (i = 0; i < n_chunks && e == DS_OK; i++) {
        int32_t *chunk = tok + (size_t)i * c, first = chunk[0];
        double chunk_sum;
        if (add_bos && bos >= 0) chunk[0] = bos;
        e = chunk_nll(s, chunk, c, n_vocab, logits, &chunk_sum);
        chunk[0] = first;
        if (e != DS_OK) break;
        nll += chunk_sum;
        scored += c - c / 2 - 1;
        fprintf(stderr, "[%d/%d] %.4f  (%.1f s)\n", i + 1, n_chunks, exp(nll / (double)scored), ds_time() - t0);
    }
    ds_session_free(s);
    free(logits);
    free(tok);
    if (e != DS_OK) return cli_fail("perplexity", "evaluate", e);
    printf("perplexity: %.6f\n", exp(nll / (double)scored));
    return 0;
}

int ds_cmd_perplexity(int argc, char **argv) {
    ppl_args a;
    ds_model *m = NULL;
    ds_status e;
    int r = parse_args(argc, argv, &a);
    if (r == 1) {
        usage(stdout);
        return 0;
    }
    if (r) return r;
    e = ds_model_load(a.model, NULL, &m);
    if (e != DS_OK) return cli_fail("perplexity", a.model, e);
    r = run(&a, m);
    cli_lora_free(&a.lora);
    ds_model_free(m);
    return r;
}
