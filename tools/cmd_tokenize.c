/* cmd_tokenize.c - `deepseek tokenize`: text to token ids and back, with the tokenizer of a
   GGUF model or a Hugging Face tokenizer.json. */
#include "cli.h"

static const char *tokenize_usage =
    "usage: deepseek tokenize (-m MODEL.gguf | --tokenizer tokenizer.json) (-f FILE | -p TEXT)\n"
    "  -f FILE     the input ('-': standard input)\n"
    "                         [--ids | --count | --decode] [--bos] [--no-special] [--bench N]\n"
    "  default     one line per token: id, then its bytes (escaped)\n"
    "  --ids       the ids on one line, separated by spaces\n"
    "  --count     the number of tokens\n"
    "  --decode    the input is ids (whitespace separated): print the text they decode to\n"
    "  --pieces    the pre-tokenizer's pieces: the end offset (bytes) of each, on one line\n"
    "  --bos       prepend BOS\n"
    "  --no-special  do not match control tokens (<|im_start|> ...) written in the text\n"
    "  --bench N   encode the input N times and report MB/s (one thread)\n"
    "Progress goes to stderr for inputs over 8 MB.\n";

/* A cut before which no piece of any supported pre-tokenizer spans: "letter space letter"
   (ASCII), where the space starts the next word. 0 when none is found in [lo, hi). */
static size_t tokenize_safe_cut(const char *s, size_t lo, size_t hi) {
    size_t i;
    for (i = lo; i + 1 < hi; i++) {
        unsigned char a = (unsigned char)s[i - 1], b = (unsigned char)s[i + 1];
        if (s[i] == ' ' && ((a | 32) >= 'a' && (a | 32) <= 'z') && ((b | 32) >= 'a' && (b | 32) <= 'z')) return i;
    }
    return 0;
}

/* can the input be cut at safe points? not for SentencePiece (one piece per segment) nor when
   a token (an added one, as byte-level tokens spell spaces otherwise) contains a space */
static int tokenize_can_cut(const ds_tokenizer *t) {
    int i, n = ds_tokenizer_n_vocab(t);
    if (!strcmp(ds_tokenizer_pre_name(t), "spm")) return 0;
    for (i = 0; i < n; i++) {
        size_t len;
        const char *p = ds_tokenizer_token(t, i, &len);
        if (p && len && memchr(p, ' ', len)) return 0;
    }
    return 1;
}

/* tokenizes text in chunks of about 1 MB cut at safe points, reporting progress */
static ds_status tokenize_all(const ds_tokenizer *t, const char *text, size_t len, int flags, int32_t **ids, size_t *n) {
    size_t at = 0, cap = len / 2 + 16, got;
    int cut = tokenize_can_cut(t), progress = len > (8u << 20);
    ds_status s = DS_OK;
    *n = 0;
    *ids = (int32_t *)malloc(cap * sizeof(int32_t));
    if (!*ids) return DS_ERR_NO_MEMORY;
    while (at < len || (len == 0 && at == 0)) {
        size_t end = len;
        if (cut && len - at > (2u << 20)) {
            size_t c = tokenize_safe_cut(text, at + (1u << 20), at + (2u << 20));
            if (c) end = c;
        }
        for (;;) {
            s = ds_tokenize(t, text + at, end - at, at == 0 ? flags : (flags & ~DS_TOKENIZE_ADD_BOS), *ids + *n, cap - *n, &got);
            if (s != DS_ERR_BOUNDS) break;
            {
                size_t ncap = (*n + got) * 2;
                int32_t *nb = (int32_t *)realloc(*ids, ncap * sizeof(int32_t));
                if (!nb) return DS_ERR_NO_MEMORY;
                *ids = nb;
                cap = ncap;
            }
        }
        if (s != DS_OK) return s;
        *n += got;
        at = end;
        if (progress) fprintf(stderr, "\rtokenize: %.0f%% (%zu MB)", 100.0 * (double)at / (double)len, at >> 20);
        if (len == 0) break;
    }
    if (progress) fprintf(stderr, "\n");
    return DS_OK;
}

static void tokenize_print_piece(const ds_tokenizer *t, int32_t id) {
    char buf[256];
    size_t n, i;
    if (ds_token_to_bytes(t, id, buf, sizeof buf, &n) != DS_OK) n = 0;
    printf("%d\t", (int)id);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\\') printf("\\\\");
        else if (c == '\n') printf("\\n");
        else if (c == '\t') printf("\\t");
        else if (c < 0x20 || c == 0x7F) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('\n');
}

static int tokenize_decode(const char *cmd, const ds_tokenizer *t, const char *text) {
    size_t cap = 1024, n = 0, need;
    int32_t *ids = (int32_t *)malloc(cap * sizeof(int32_t));
    char *out, *end;
    const char *p = text;
    ds_status s;
    if (!ids) return cli_fail(cmd, "decode", DS_ERR_NO_MEMORY);
    for (;;) {
        long v;
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',') p++;
        if (!*p) break;
        v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= ds_tokenizer_n_vocab(t)) {
            free(ids);
            fprintf(stderr, "deepseek %s: '%.20s' is not a token id of this vocabulary\n", cmd, p);
            return 1;
        }
        if (n == cap) {
            int32_t *nb = (int32_t *)realloc(ids, (cap *= 2) * sizeof(int32_t));
            if (!nb) {
                free(ids);
                return cli_fail(cmd, "decode", DS_ERR_NO_MEMORY);
            }
            ids = nb;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    ds_detokenize(t, ids, n, NULL, 0, &need);
    out = (char *)malloc(need + 1);
    if (!out) {
        free(ids);
        return cli_fail(cmd, "decode", DS_ERR_NO_MEMORY);
    }
    s = ds_detokenize(t, ids, n, out, need, &need);
    free(ids);
    if (s != DS_OK) {
        free(out);
        return cli_fail(cmd, "decode", s);
    }
    fwrite(out, 1, need, stdout);
    free(out);
    return 0;
}

static int tokenize_pieces(const char *cmd, const ds_tokenizer *t, const char *text, size_t len, int flags) {
    size_t n = 0, k, *ends;
    ds_status s = ds_tokenizer_split(t, text, len, flags, NULL, 0, &n);
    if (s != DS_OK && s != DS_ERR_BOUNDS) return cli_fail(cmd, "split", s);
    if (!(ends = (size_t *)malloc((n + 1) * sizeof(size_t)))) return cli_fail(cmd, "split", DS_ERR_NO_MEMORY);
    if ((s = ds_tokenizer_split(t, text, len, flags, ends, n, &n)) != DS_OK) {
        free(ends);
        return cli_fail(cmd, "split", s);
    }
    for (k = 0; k < n; k++) printf(k ? " %zu" : "%zu", ends[k]);
    printf("\n");
    free(ends);
    return 0;
}

static int tokenize_bench(const char *cmd, const ds_tokenizer *t, const char *text, size_t len, int flags, long reps) {
    double best = 1e30;
    size_t n = 0;
    long r;
    for (r = 0; r < reps; r++) {
        int32_t *ids;
        double t0 = ds_time(), dt;
        ds_status s = tokenize_all(t, text, len, flags, &ids, &n);
        dt = ds_time() - t0;
        free(ids);
        if (s != DS_OK) return cli_fail(cmd, "tokenize", s);
        if (dt < best) best = dt;
    }
    printf("bytes %zu tokens %zu seconds %.4f MB/s %.2f\n", len, n, best, (double)len / 1e6 / best);
    return 0;
}

int ds_cmd_tokenize(int argc, char **argv) {
    const char *cmd = "tokenize", *model = NULL, *file = NULL, *prompt = NULL;
    int i, mode = 0, flags = DS_TOKENIZE_PARSE_SPECIAL, rc = 0;
    long bench = 0;
    char *text = NULL;
    size_t len = 0;
    ds_tokenizer *t;
    ds_status s;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(tokenize_usage, stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--tokenizer")) {
            if (!(model = cli_value(argc, argv, &i, cmd))) return 2;
        } else if (!strcmp(a, "-f")) {
            if (!(file = cli_value(argc, argv, &i, cmd))) return 2;
        } else if (!strcmp(a, "-p")) {
            if (!(prompt = cli_value(argc, argv, &i, cmd))) return 2;
        } else if (!strcmp(a, "--ids")) {
            mode = 1;
        } else if (!strcmp(a, "--count")) {
            mode = 2;
        } else if (!strcmp(a, "--decode")) {
            mode = 3;
        } else if (!strcmp(a, "--pieces")) {
            mode = 4;
        } else if (!strcmp(a, "--bos")) {
            flags |= DS_TOKENIZE_ADD_BOS;
        } else if (!strcmp(a, "--no-special")) {
            flags &= ~DS_TOKENIZE_PARSE_SPECIAL;
        } else if (!strcmp(a, "--bench")) {
            const char *v = cli_value(argc, argv, &i, cmd);
            if (!v) return 2;
            if (!cli_int_opt(cmd, a, v, 1, 1000, &bench)) return 2;
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        }
    }
    if (!model) return cli_usage_error(cmd, "give a tokenizer with -m or --tokenizer");
    if (!file == !prompt) return cli_usage_error(cmd, "give the input with exactly one of -f and -p");
    if (file && !(text = cli_read_input(cmd, file, &len))) return 1;
    if (prompt) len = strlen(prompt);
    if ((s = ds_tokenizer_load(model, &t)) != DS_OK) {
        free(text);
        return cli_fail(cmd, model, s);
    }
    if (mode == 3) {
        rc = tokenize_decode(cmd, t, text ? text : prompt);
    } else if (mode == 4) {
        rc = tokenize_pieces(cmd, t, text ? text : prompt, len, flags);
    } else if (bench) {
        rc = tokenize_bench(cmd, t, text ? text : prompt, len, flags, bench);
    } else {
        int32_t *ids;
        size_t n, k;
        s = tokenize_all(t, text ? text : prompt, len, flags, &ids, &n);
        if (s != DS_OK) {
            rc = cli_fail(cmd, "tokenize", s);
        } else if (mode == 2) {
            printf("%zu\n", n);
        } else if (mode == 1) {
            for (k = 0; k < n; k++) printf(k ? " %d" : "%d", (int)ids[k]);
            printf("\n");
        } else {
            for (k = 0; k < n; k++) tokenize_print_piece(t, ids[k]);
        }
        free(ids);
    }
    ds_tokenizer_free(t);
    free(text);
    return rc;
}
