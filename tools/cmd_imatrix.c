/* cmd_imatrix.c - `deepseek imatrix`: the importance matrix of a model over a calibration text,
   as llama.cpp's llama-imatrix collects it: the text cut into chunks of c tokens as perplexity
   cuts it (cmd_perplexity.c), each chunk evaluated from an empty context, and for every weight
   matrix of the blocks the sum of each input column's squared activation over all tokens
   (ds_imatrix, through the session's matmul observer), written in llama.cpp's GGUF format. */
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: deepseek imatrix -m MODEL.gguf -f TEXT -o IMATRIX.gguf [-c 512] [--chunks N] [-t N]\n"
            "\n"
            "Importance matrix for `deepseek quantize --imatrix` (and llama-quantize): per weight\n"
            "matrix of the blocks, the sum over the text's tokens of each input column's squared\n"
            "activation and the token count, in llama.cpp's GGUF imatrix format. The text is cut\n"
            "into chunks of c tokens, each evaluated from an empty context.\n"
            "\n"
            "  -m FILE      model (GGUF)\n"
            "  -f FILE      calibration text\n"
            "  -o FILE      output (written atomically)\n"
            "  -c N         chunk length in tokens (default 512 or the model's context when shorter)\n"
            "  --chunks N   use only the first N chunks\n"
            "  -t N         threads in [1, 512] (default: all CPUs)\n");
}

int ds_cmd_imatrix(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *out = NULL;
    int ctx = 0, max_chunks = 0, threads = 0, i, n_chunks, bos, add_bos;
    long v;
    ds_model *m = NULL;
    ds_session *s = NULL;
    ds_imatrix *im = NULL;
    ds_session_config sp;
    int32_t *tok = NULL;
    size_t n_tok = 0;
    ds_status e;
    double t0;
    for (i = 1; i < argc; i++) {
        const char *o = argv[i], *val;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 0;
        }
        if (strcmp(o, "-m") && strcmp(o, "-f") && strcmp(o, "-o") && strcmp(o, "-c") && strcmp(o, "-t") && strcmp(o, "--chunks"))
            return cli_usage_error("imatrix", "unknown option '%s'", o);
        if (!(val = cli_value(argc, argv, &i, "imatrix"))) return 2;
        if (!strcmp(o, "-m")) model = val;
        else if (!strcmp(o, "-f")) text = val;
        else if (!strcmp(o, "-o")) out = val;
        else if (!cli_int_opt("imatrix", o, val, !strcmp(o, "-c") ? 2 : 1, !strcmp(o, "-t") ? CLI_MAX_THREADS : 1 << 20, &v)) return 2;
        else if (!strcmp(o, "-c")) ctx = (int)v;
        else if (!strcmp(o, "-t")) threads = (int)v;
        else max_chunks = (int)v;
    }
    if (!model || !text || !out) return cli_usage_error("imatrix", "-m MODEL, -f TEXT and -o OUT are required");
    if (!cli_check_output("imatrix", out)) return 1;
    if ((e = ds_model_load(model, NULL, &m)) != DS_OK) return cli_fail("imatrix", model, e);
    if (!ctx) ctx = ds_model_get_config(m)->n_ctx > 0 && ds_model_get_config(m)->n_ctx < 512 ? ds_model_get_config(m)->n_ctx : 512;
    if (ds_model_get_config(m)->n_ctx > 0 && ctx > ds_model_get_config(m)->n_ctx) {
        fprintf(stderr, "deepseek imatrix: -c %d is longer than the model's context (%d tokens)\n", ctx, ds_model_get_config(m)->n_ctx);
        ds_model_free(m);
        return 2;
    }
    bos = ds_tokenizer_bos(ds_model_tokenizer(m));
    add_bos = ds_tokenizer_adds_bos(ds_model_tokenizer(m));
    if (!(tok = cli_text_tokens("imatrix", ds_model_tokenizer(m), text, &n_tok))) {
        ds_model_free(m);
        return 1;
    }
    n_chunks = (int)(n_tok / (size_t)ctx);
    if (max_chunks && max_chunks < n_chunks) n_chunks = max_chunks;
    if (n_chunks < 1) {
        fprintf(stderr, "deepseek imatrix: %s has %zu tokens, less than one chunk of %d\n", text, n_tok, ctx);
        free(tok);
        ds_model_free(m);
        return 1;
    }
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = ctx;
    sp.n_threads = threads;
    e = ds_imatrix_create(&im);
    if (e == DS_OK) e = ds_session_create(m, &sp, &s);
    if (e == DS_OK) ds_imatrix_attach(im, s);
    fprintf(stderr, "imatrix: %zu tokens, %d chunks of %d\n", n_tok, n_chunks, ctx);
    t0 = ds_time();
    for (i = 0; i < n_chunks && e == DS_OK; i++) {
        int32_t *chunk = tok + (size_t)i * ctx, first = chunk[0];
        if (add_bos && bos >= 0) chunk[0] = bos;
        e = ds_session_rewind(s, 0);
        if (e == DS_OK) e = ds_session_eval(s, chunk, ctx, NULL);
        chunk[0] = first;
        if (e == DS_OK) ds_imatrix_count_chunk(im, ctx);
        fprintf(stderr, "\r[%d/%d] %.1f s", i + 1, n_chunks, ds_time() - t0);
    }
    fputc('\n', stderr);
    if (e == DS_OK) e = ds_imatrix_write(im, out, text);
    if (e == DS_OK) printf("%s: %d matrices, %d chunks of %d tokens\n", out, ds_imatrix_n_entries(im), n_chunks, ctx);
    ds_session_free(s);
    ds_imatrix_free(im);
    free(tok);
    ds_model_free(m);
    return e == DS_OK ? 0 : cli_fail("imatrix", NULL, e);
}
