/* deepseek data: text files -> token shards (PREFIX.train.tok, PREFIX.val.tok) for training. */
#include "cli.h"

static void data_usage(FILE *f) {
    fprintf(f, "usage: deepseek data [options] -o PREFIX FILE...\n"
               "Tokenizes text files into token shards: PREFIX.train.tok and PREFIX.val.tok (the\n"
               "last part of the text is held out for validation).\n"
               "  -o PREFIX          output prefix (required)\n"
               "  --val-frac X       fraction held out for validation (default 0.1)\n"
               "  -t, --tokenizer F  not given: one token per byte (vocabulary 256)\n");
}

int ds_cmd_data(int argc, char **argv) {
    const char *out = NULL;
    double val_frac = 0.1;
    uint32_t *tok = NULL;
    size_t n = 0, cap = 0;
    int i, n_files = 0;
    char path[1024];
    ds_status st;
    for (i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            data_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-o")) {
            if (!(out = cli_value(argc, argv, &i, "data"))) return 2;
        } else if (!strcmp(argv[i], "--val-frac")) {
            if (!(v = cli_value(argc, argv, &i, "data"))) return 2;
            if (!cli_float(v, 0.0, 0.9, &val_frac)) return cli_usage_error("data", "--val-frac needs a number in [0, 0.9]");
        } else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--tokenizer")) {
            return cli_usage_error("data", "this build tokenizes bytes only; drop %s", argv[i]);
        } else if (argv[i][0] == '-') {
            return cli_usage_error("data", "unknown option %s", argv[i]);
        } else {
            size_t len, k;
            char *text = cli_read_file(argv[i], &len);
            if (!text) {
                fprintf(stderr, "deepseek data: cannot read %s\n", argv[i]);
                free(tok);
                return 1;
            }
            if (n + len > cap) {
                uint32_t *nt;
                cap = (n + len) * 2;
                nt = (uint32_t *)realloc(tok, cap * sizeof *tok);
                if (!nt) {
                    free(text);
                    free(tok);
                    fprintf(stderr, "deepseek data: out of memory\n");
                    return 1;
                }
                tok = nt;
            }
            for (k = 0; k < len; k++) tok[n++] = (unsigned char)text[k];
            free(text);
            n_files++;
        }
    }
    if (!out || !n_files) {
        free(tok);
        return cli_usage_error("data", "need -o PREFIX and at least one text file");
    }
    {
        size_t n_val = (size_t)(n * val_frac);
        snprintf(path, sizeof path, "%s.train.tok", out);
        st = ds_token_shard_write(path, tok, n - n_val, 256);
        if (st == DS_OK && n_val) {
            snprintf(path, sizeof path, "%s.val.tok", out);
            st = ds_token_shard_write(path, tok + (n - n_val), n_val, 256);
        }
        free(tok);
        if (st != DS_OK) return cli_fail("data", "writing shards", st);
        fprintf(stderr, "deepseek data: %zu training and %zu validation tokens (vocabulary 256) -> %s.{train,val}.tok\n", n - n_val, n_val, out);
    }
    return 0;
}
