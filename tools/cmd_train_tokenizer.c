/* cmd_train_tokenizer.c - `deepseek train-tokenizer`: a byte-level BPE vocabulary from text. */
#include "cli.h"

static const char *train_tokenizer_usage =
    "usage: deepseek train-tokenizer -f FILE [-f FILE ...] --vocab-size N -o OUT\n"
    "  -f FILE: a text file ('-': standard input); --vocab-size in [257, 16777216]\n"
    "                                [--pre smollm|gpt2|llama3|qwen2|deepseek-v3] [--special TOKEN ...]\n"
    "                                [--min-frequency N]\n"
    "  OUT ending in .gguf gets the tokenizer.ggml.* keys; anything else a tokenizer.json.\n"
    "  Merges equal those of Hugging Face's BpeTrainer with the same settings (each line of the\n"
    "  files pre-tokenized on its own, the 256 byte symbols as the initial alphabet).\n"
    "  Progress goes to stderr.\n";

static void train_progress(void *user, const char *stage, double done) {
    (void)user;
    fprintf(stderr, "\rtrain-tokenizer: %-6s %3.0f%%", stage, 100.0 * done);
    if (done >= 1.0) fprintf(stderr, "\n");
}

static int train_save(const char *cmd, const ds_tokenizer *t, const char *out) {
    size_t n = strlen(out);
    ds_status s;
    if (n > 5 && !strcmp(out + n - 5, ".gguf")) {
        ds_gguf_writer *w;
        if ((s = ds_gguf_writer_create(&w)) != DS_OK) return cli_fail(cmd, out, s);
        if ((s = ds_tokenizer_to_gguf(t, w)) == DS_OK) s = ds_gguf_writer_write(w, out);
        ds_gguf_writer_free(w);
    } else {
        s = ds_tokenizer_save_json(t, out);
    }
    return s == DS_OK ? 0 : cli_fail(cmd, out, s);
}

int ds_cmd_train_tokenizer(int argc, char **argv) {
    const char *cmd = "train-tokenizer", *out = NULL;
    const char **files = (const char **)calloc((size_t)argc + 1, sizeof(char *));
    const char **special = (const char **)calloc((size_t)argc + 1, sizeof(char *));
    char **texts = (char **)calloc((size_t)argc + 1, sizeof(char *));
    size_t *lens = (size_t *)calloc((size_t)argc + 1, sizeof(size_t));
    int i, n_files = 0, n_special = 0, rc = 0;
    size_t total = 0;
    long vocab = 0, minf = 0;
    ds_bpe_train_config cfg;
    ds_tokenizer *t = NULL;
    ds_status s;
    memset(&cfg, 0, sizeof cfg);
    if (!files || !special || !texts || !lens) return cli_fail(cmd, "arguments", DS_ERR_NO_MEMORY);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(train_tokenizer_usage, stdout);
            goto done;
        } else if (!strcmp(a, "-f")) {
            if (!(v = cli_value(argc, argv, &i, cmd))) { rc = 2; goto done; }
            files[n_files++] = v;
        } else if (!strcmp(a, "-o")) {
            if (!(out = cli_value(argc, argv, &i, cmd))) { rc = 2; goto done; }
        } else if (!strcmp(a, "--vocab-size")) {
            if (!(v = cli_value(argc, argv, &i, cmd)) || !cli_int_opt(cmd, a, v, 257, 1 << 24, &vocab)) { rc = 2; goto done; }
        } else if (!strcmp(a, "--min-frequency")) {
            if (!(v = cli_value(argc, argv, &i, cmd)) || !cli_int_opt(cmd, a, v, 0, 1L << 30, &minf)) { rc = 2; goto done; }
        } else if (!strcmp(a, "--pre")) {
            if (!(cfg.pre = cli_value(argc, argv, &i, cmd))) { rc = 2; goto done; }
        } else if (!strcmp(a, "--special")) {
            if (!(v = cli_value(argc, argv, &i, cmd))) { rc = 2; goto done; }
            special[n_special++] = v;
        } else {
            rc = cli_usage_error(cmd, "unknown option '%s'", a);
            goto done;
        }
    }
    if (!n_files || !vocab || !out) {
        rc = cli_usage_error(cmd, "give -f FILE, --vocab-size N and -o OUT");
        goto done;
    }
    if (!cli_check_output(cmd, out)) {
        rc = 1;
        goto done;
    }
    for (i = 0; i < n_files; i++) {
        if (!(texts[i] = cli_read_input(cmd, files[i], &lens[i]))) {
            rc = 1;
            goto done;
        }
        total += lens[i];
    }
    if (total == 0) {
        fprintf(stderr, "deepseek %s: the input is empty: nothing to learn merges from\n", cmd);
        rc = 1;
        goto done;
    }
    cfg.vocab_size = (int)vocab;
    cfg.min_frequency = (int)minf;
    cfg.special_tokens = special;
    cfg.n_special = n_special;
    cfg.progress = train_progress;
    if ((s = ds_bpe_train(&cfg, (const char *const *)texts, lens, n_files, &t)) != DS_OK) {
        rc = cli_fail(cmd, "training", s);
        goto done;
    }
    rc = train_save(cmd, t, out);
    if (!rc) fprintf(stderr, "deepseek %s: %d tokens written to %s\n", cmd, ds_tokenizer_n_vocab(t), out);
done:
    ds_tokenizer_free(t);
    for (i = 0; i < n_files; i++) free(texts[i]);
    free(files);
    free(special);
    free(texts);
    free(lens);
    return rc;
}
