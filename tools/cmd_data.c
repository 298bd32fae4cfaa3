/* deepseek data: text files -> token shards (PREFIX.train.tok, PREFIX.val.tok) for training,
   with bytes, a given tokenizer, or a byte-level BPE vocabulary trained here on the text. */
#include "cli.h"
#include <errno.h>

static void data_usage(FILE *f) {
    fprintf(f, "usage: deepseek data [options] -o PREFIX FILE...\n"
               "Tokenizes text files into token shards: PREFIX.train.tok and PREFIX.val.tok (the\n"
               "last part of the text is held out for validation).\n"
               "  -o PREFIX          output prefix (required)\n"
               "  --val-frac X       fraction held out for validation (0..0.9, default 0.1)\n"
               "  -t, --tokenizer F  tokenize with F (GGUF or tokenizer.json); here -t is the tokenizer,\n"
               "                     not a thread count as in other subcommands\n"
               "  --bpe N            train a byte-level BPE vocabulary of N tokens (257..1048576) on the text\n"
               "                     first and save it as PREFIX.tokenizer.gguf (for 'deepseek train --tokenizer')\n"
               "  neither: one token per byte (vocabulary 256)\n"
               "The shards record the vocabulary's size and fingerprint, so 'deepseek train' refuses a\n"
               "tokenizer other than the one they were made with.\n");
}

static void data_progress(void *user, const char *stage, double done) {
    (void)user;
    fprintf(stderr, "\rdeepseek data: %s %3.0f%%", stage, 100.0 * done);
    if (done >= 1.0) fprintf(stderr, "\n");
}

/* the tokenizer's GGUF keys alone, so `deepseek train --tokenizer` can copy them */
static ds_status save_tokenizer(const ds_tokenizer *t, const char *path) {
    ds_gguf_writer *w;
    ds_status st = ds_gguf_writer_create(&w);
    if (st != DS_OK) return st;
    st = ds_tokenizer_to_gguf(t, w);
    if (st == DS_OK) st = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    return st;
}

static ds_status encode(const ds_tokenizer *t, const char *text, size_t len, uint32_t **out, size_t *n) {
    int32_t *ids;
    size_t got = 0, i;
    ds_status st;
    if (!t) { /* bytes */
        *out = (uint32_t *)malloc((len + 1) * sizeof **out);
        if (!*out) return DS_ERR_NO_MEMORY;
        for (i = 0; i < len; i++) (*out)[i] = (unsigned char)text[i];
        *n = len;
        return DS_OK;
    }
    /* one id per byte is the usual bound, but an invalid byte becomes U+FFFD (up to 3 ids):
       on DS_ERR_BOUNDS ds_tokenize says how many it needs, and the second try fits */
    ids = (int32_t *)malloc((len + 16) * sizeof *ids);
    if (!ids) return DS_ERR_NO_MEMORY;
    st = ds_tokenize(t, text, len, 0, ids, len + 16, &got);
    if (st == DS_ERR_BOUNDS) {
        int32_t *more = (int32_t *)realloc(ids, (got + 1) * sizeof *ids);
        if (!more) {
            free(ids);
            return DS_ERR_NO_MEMORY;
        }
        ids = more;
        st = ds_tokenize(t, text, len, 0, ids, got + 1, &got);
    }
    if (st == DS_OK) {
        *out = (uint32_t *)(void *)ids; /* same width; ids are >= 0 */
        *n = got;
    } else {
        free(ids);
    }
    return st;
}

int ds_cmd_data(int argc, char **argv) {
    const char *out = NULL, *tok_path = NULL;
    double val_frac = 0.1;
    long bpe = 0;
    char *text = NULL, path[1024];
    size_t len = 0, n = 0, n_val;
    uint32_t *tok = NULL;
    ds_tokenizer *t = NULL;
    int i, n_vocab = 256, rc = 1;
    uint64_t fp = 0;
    int probe_made = 0;   /* PREFIX.train.tok created empty by the probe: removed on failure */
    ds_status st;
    for (i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            data_usage(stdout);
            free(text);
            return 0;
        } else if (!strcmp(argv[i], "-o")) {
            if (!(out = cli_value(argc, argv, &i, "data"))) return 2;
        } else if (!strcmp(argv[i], "--val-frac")) {
            if (!(v = cli_value(argc, argv, &i, "data"))) return 2;
            if (!cli_float(v, 0.0, 0.9, &val_frac)) return cli_usage_error("data", "--val-frac needs a number in [0, 0.9]");
        } else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--tokenizer")) {
            if (!(tok_path = cli_value(argc, argv, &i, "data"))) return 2;
        } else if (!strcmp(argv[i], "--bpe")) {
            if (!(v = cli_value(argc, argv, &i, "data"))) return 2;
            if (!cli_int(v, 257, 1 << 20, &bpe)) return cli_usage_error("data", "--bpe needs a vocabulary size > 256");
        } else if (argv[i][0] == '-') {
            return cli_usage_error("data", "unknown option %s", argv[i]);
        } else {
            size_t flen;
            char *f = cli_read_file(argv[i], &flen), *nt;
            if (!f) {
                fprintf(stderr, "deepseek data: cannot read %s\n", argv[i]);
                free(text);
                return 1;
            }
            nt = (char *)realloc(text, len + flen + 1);
            if (!nt) {
                free(f);
                free(text);
                fprintf(stderr, "deepseek data: out of memory\n");
                return 1;
            }
            text = nt;
            memcpy(text + len, f, flen + 1);
            len += flen;
            free(f);
        }
    }
    if (!out || !text) {
        free(text);
        return cli_usage_error("data", "need -o PREFIX and at least one text file");
    }
    if (tok_path && bpe) {
        free(text);
        return cli_usage_error("data", "give -t or --bpe, not both");
    }
    if (!len) {
        free(text);
        fprintf(stderr, "deepseek data: the input holds no text\n");
        return 1;
    }
    {   /* the output must be writable before the long work; the probe is removed again */
        FILE *f;
        snprintf(path, sizeof path, "%s.train.tok", out);
        if ((f = fopen(path, "rb")) != NULL) fclose(f);
        else probe_made = 1;
        if (!(f = fopen(path, "ab"))) {
            fprintf(stderr, "deepseek data: cannot write %s: %s\n", path, strerror(errno));
            free(text);
            return 1;
        }
        fclose(f);
    }
    n_val = (size_t)(len * val_frac);
    if (tok_path) {
        if ((st = ds_tokenizer_load(tok_path, &t)) != DS_OK) {
            cli_fail("data", tok_path, st);
            goto done;
        }
    } else if (bpe) { /* the vocabulary learns from the training part only */
        ds_bpe_train_config bc;
        const char *texts[1];
        size_t lens[1];
        static const char *const special[] = {"<|endoftext|>"};
        memset(&bc, 0, sizeof bc);
        bc.vocab_size = (int)bpe;
        bc.special_tokens = special;
        bc.n_special = 1;
        bc.progress = data_progress;
        texts[0] = text;
        lens[0] = len - n_val;
        if ((st = ds_bpe_train(&bc, texts, lens, 1, &t)) != DS_OK) {
            cli_fail("data", "training the BPE vocabulary", st);
            goto done;
        }
        snprintf(path, sizeof path, "%s.tokenizer.gguf", out);
        if ((st = save_tokenizer(t, path)) != DS_OK) {
            cli_fail("data", path, st);
            goto done;
        }
        fprintf(stderr, "deepseek data: %d-token vocabulary -> %s\n", ds_tokenizer_n_vocab(t), path);
    }
    if (t) {
        n_vocab = ds_tokenizer_n_vocab(t);
        fp = ds_tokenizer_fingerprint(t);
    }
    /* the split is on text, so no token straddles it */
    {
        uint32_t *vt = NULL;
        size_t nv = 0;
        if ((st = encode(t, text, len - n_val, &tok, &n)) != DS_OK || (n_val && (st = encode(t, text + len - n_val, n_val, &vt, &nv)) != DS_OK)) {
            cli_fail("data", "tokenizing", st);
            goto done;
        }
        if (!n) {
            free(vt);
            fprintf(stderr, "deepseek data: the training part of the text gives no tokens\n");
            goto done;
        }
        snprintf(path, sizeof path, "%s.train.tok", out);
        st = ds_token_shard_write_vocab(path, tok, n, n_vocab, fp);
        if (st == DS_OK && nv) {
            snprintf(path, sizeof path, "%s.val.tok", out);
            st = ds_token_shard_write_vocab(path, vt, nv, n_vocab, fp);
        }
        free(vt);
        if (st != DS_OK) {
            cli_fail("data", "writing shards", st);
            goto done;
        }
        fprintf(stderr, "deepseek data: %zu training and %zu validation tokens (vocabulary %d) -> %s.{train,val}.tok\n", n, nv, n_vocab, out);
    }
    rc = 0;
done:
    if (rc && probe_made) {
        snprintf(path, sizeof path, "%s.train.tok", out);
        remove(path);
    }
    free(text);
    free(tok);
    ds_tokenizer_free(t);
    return rc;
}
