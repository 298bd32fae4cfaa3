/* test_tokenizer.c - UTF-8 and JSON helpers, tokenizer.json loading and errors, encode/decode
   bounds, streaming decode, thread sharing, save round trips, and the real model's tokenizer
   (ids from Hugging Face `tokenizers`; the full parity runs in check_tokenizer.py). */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"
#if !defined(_WIN32)
#include <pthread.h>
#endif

/* Unicode 16.0 chapter 3, table 3-8: U+FFFD per maximal subpart */
static void test_utf8_maximal_subparts(ds_test_ctx *t) {
    const char in[] = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
    static const uint32_t want[] = {0x61, 0xFFFD, 0xFFFD, 0xFFFD, 0x62, 0xFFFD, 0x63, 0xFFFD, 0xFFFD, 0x64};
    size_t i = 0, k = 0, n = sizeof in - 1;
    while (i < n) {
        uint32_t cp;
        int len = ds__utf8_decode((const unsigned char *)in + i, n - i, &cp);
        DS_REQUIRE(t, k < 10 && cp == want[k], "code point %zu: got %x", k, (unsigned)cp);
        i += (size_t)(len < 0 ? -len : len);
        k++;
    }
    DS_CHECK(t, k == 10, "%zu code points", k);
    DS_CHECK(t, ds__utf8_valid_prefix("\xE4\xB8\xAD\xED\xA0\x80", 6) == 3, "surrogates are ill-formed");
}

static void test_json_reader(ds_test_ctx *t) {
    const char *doc = "{\"a\": [1, -2.5e3, true, false, null], \"s\": \"x\\n\\u00e9\\ud83d\\ude00\\\"\", \"o\": {}}";
    ds__json d;
    uint32_t a, s;
    char buf[32];
    size_t n;
    DS_REQUIRE(t, ds__json_parse(doc, strlen(doc), "t", &d) == DS_OK, "%s", ds_last_error());
    a = ds__json_get(&d, 0, "a");
    DS_CHECK(t, a && d.nodes[a].type == DS__JSON_ARRAY && d.nodes[a].n == 5, "array");
    DS_CHECK(t, d.nodes[d.nodes[d.nodes[a].first].next].num == -2500.0, "number");
    s = ds__json_get(&d, 0, "s");
    n = ds__json_str(&d, s, buf);
    DS_CHECK(t, n == 9 && memcmp(buf, "x\n\xC3\xA9\xF0\x9F\x98\x80\"", 9) == 0, "unescape: %zu bytes", n);
    DS_CHECK(t, ds__json_get(&d, 0, "missing") == 0, "absent key");
    ds__json_free(&d);
}

static void expect_json_error(ds_test_ctx *t, const char *doc, const char *needle) {
    ds__json d;
    ds_status s = ds__json_parse(doc, strlen(doc), "t", &d);
    DS_CHECK(t, s == DS_ERR_FORMAT && strstr(ds_last_error(), needle), "'%s': %s (%s)", doc, ds_last_error(), ds_status_str(s));
}

static void test_json_errors(ds_test_ctx *t) {
    char deep[2100];
    expect_json_error(t, "{\"a\": [1, 2,]}", "line 1 column 13");
    expect_json_error(t, "{\"a\": \"x}", "unterminated string");
    expect_json_error(t, "[\"\\q\"]", "unknown escape");
    expect_json_error(t, "[\"\\ud800\"]", "surrogate");
    expect_json_error(t, "{\"a\" 1}", "expected ':'");
    expect_json_error(t, "[1] x", "trailing");
    expect_json_error(t, "[01]", "expected ','");
    expect_json_error(t, "\n\n  [\xff]", "line 3 column 4: invalid UTF-8");
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    expect_json_error(t, deep, "nesting too deep");
}

static void test_json_writer(ds_test_ctx *t) {
    ds__buf b;
    ds__json d;
    char out[64];
    const char s[] = "a\"b\\c\n\x01\x1f\xC3\xA9";
    memset(&b, 0, sizeof b);
    ds__json_write_str(&b, s, sizeof s - 1);
    DS_REQUIRE(t, !b.oom && ds__json_parse(b.p, b.n, "t", &d) == DS_OK, "%.*s: %s", (int)b.n, b.p, ds_last_error());
    DS_CHECK(t, ds__json_str(&d, 0, out) == sizeof s - 1 && memcmp(out, s, sizeof s - 1) == 0, "round trip");
    ds__json_free(&d);
    ds__buf_free(&b);
}

/* a tiny byte-level vocabulary: "h" "e" "l" "o" "Ġ" + merges h e -> he, l l -> ll, he ll -> hell,
   hell o -> hello, Ġ h -> Ġh; and two added tokens */
static const char *tiny_json =
    "{\"added_tokens\":[{\"id\":9,\"content\":\"<|end|>\",\"special\":true},{\"id\":10,\"content\":\"[x]\",\"special\":false}],"
    "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"h\":0,\"e\":1,\"l\":2,\"o\":3,\"\\u0120\":4,\"he\":5,\"ll\":6,\"hell\":7,\"hello\":8,\"\\u0120h\":11,"
    "\"\\u00c3\":12,\"\\u00a9\":13},"
    "\"merges\":[\"h e\",\"l l\",\"he ll\",\"hell o\",[\"\\u0120\",\"h\"]]}}";

static ds_tokenizer *tiny(ds_test_ctx *t) {
    ds_tokenizer *tk = NULL;
    ds_status s = ds_tokenizer_from_json(tiny_json, strlen(tiny_json), &tk);
    DS_CHECK(t, s == DS_OK, "load: %s", ds_last_error());
    return tk;
}

static void test_tiny_encode(ds_test_ctx *t) {
    ds_tokenizer *tk = tiny(t);
    int32_t ids[16];
    size_t n;
    /* " hello": h e merges first (rank 0), so Ġ h (rank 4) never forms: Ġ | hello */
    static const int32_t want[] = {8, 4, 8, 9, 10, 8};
    if (!tk) return;
    DS_CHECK(t, ds_tokenize(tk, "hello hello<|end|>[x]hello", 26, DS_TOKENIZE_PARSE_SPECIAL, ids, 16, &n) == DS_OK, "%s", ds_last_error());
    DS_CHECK(t, n == 6 && memcmp(ids, want, sizeof want) == 0, "%zu ids: %d %d %d %d %d %d", n, ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]);
    /* without PARSE_SPECIAL the control token is text; the user-defined one still matches */
    DS_CHECK(t, ds_tokenize(tk, "<|end|>[x]", 10, 0, ids, 16, &n) == DS_OK && n > 1 && ids[n - 1] == 10, "user token: n=%zu", n);
    /* too small: DS_ERR_BOUNDS with the count needed */
    DS_CHECK(t, ds_tokenize(tk, "hello hello", 11, 0, ids, 1, &n) == DS_ERR_BOUNDS && n == 3, "bounds: n=%zu", n);
    DS_CHECK(t, ds_tokenizer_find(tk, "hell", 4) == 7 && ds_tokenizer_find(tk, "xyz", 3) == -1, "find");
    DS_CHECK(t, ds_tokenizer_eos(tk) == 9 && ds_tokenizer_is_eog(tk, 9) && !ds_tokenizer_is_eog(tk, 8), "eos from <|end|>");
    ds_tokenizer_free(tk);
}

static void test_tiny_decode_stream(ds_test_ctx *t) {
    ds_tokenizer *tk = tiny(t);
    ds_detok_stream st;
    char out[32];
    size_t n;
    static const int32_t ids[] = {8, 4, 12, 13, 9};   /* "hello" " " C3 A9 "<|end|>" */
    if (!tk) return;
    DS_CHECK(t, ds_detokenize(tk, ids, 5, out, sizeof out, &n) == DS_OK && n == 15 && memcmp(out, "hello \xC3\xA9<|end|>", 15) == 0, "detokenize: %zu", n);
    DS_CHECK(t, ds_detokenize(tk, ids, 5, out, 3, &n) == DS_ERR_BOUNDS && n == 15, "bounds");
    memset(&st, 0, sizeof st);
    DS_CHECK(t, ds_detok_stream_push(tk, &st, 12, out, sizeof out, &n) == DS_OK && n == 0 && st.n_pending == 1, "held back: %zu", n);
    DS_CHECK(t, ds_detok_stream_push(tk, &st, 13, out, sizeof out, &n) == DS_OK && n == 2 && memcmp(out, "\xC3\xA9", 2) == 0, "completed");
    DS_CHECK(t, ds_detok_stream_push(tk, &st, 8, out, 2, &n) == DS_ERR_BOUNDS && n == 5 && st.n_pending == 0, "stream bounds");
    ds_tokenizer_free(tk);
}

static void expect_load_error(ds_test_ctx *t, const char *json, ds_status want, const char *needle) {
    ds_tokenizer *tk = NULL;
    ds_status s = ds_tokenizer_from_json(json, strlen(json), &tk);
    DS_CHECK(t, s == want && !tk && strstr(ds_last_error(), needle), "%s (%s), want %s containing '%s'", ds_last_error(), ds_status_str(s), ds_status_str(want), needle);
    ds_tokenizer_free(tk);
}

static void test_json_loader_errors(ds_test_ctx *t) {
    expect_load_error(t, "[]", DS_ERR_FORMAT, "not an object");
    expect_load_error(t, "{}", DS_ERR_FORMAT, "no 'model'");
    expect_load_error(t, "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", DS_ERR_UNSUPPORTED, "model type 'Unigram'");
    expect_load_error(t, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]},\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false}}", DS_ERR_FORMAT, "merge 0 ('a' 'b'): the merged token");
    expect_load_error(t, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}}", DS_ERR_FORMAT, "model.vocab: id of token 'a'");
    expect_load_error(t, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"pre_tokenizer\":{\"type\":\"Whitespace\"}}", DS_ERR_UNSUPPORTED, "pre_tokenizer step 'Whitespace'");
    expect_load_error(t, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"normalizer\":{\"type\":\"NFKC\"}}", DS_ERR_UNSUPPORTED, "normalizer 'NFKC'");
    expect_load_error(t, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[1]},\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false}}", DS_ERR_FORMAT, "model.merges[0]");
    expect_load_error(t, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}", DS_ERR_FORMAT, "JSON error at line 1");
}

static ds_tokenizer *real_model(ds_test_ctx *t) {
    const char *path = ds_test_env_file("DS_TEST_MODEL");
    ds_tokenizer *tk = NULL;
    if (!path) return NULL;
    DS_CHECK(t, ds_tokenizer_load(path, &tk) == DS_OK, "%s", ds_last_error());
    return tk;
}

/* ids from Hugging Face tokenizers with SmolLM2's vocabulary and pre-tokenizer */
static void test_real_model(ds_test_ctx *t) {
    ds_tokenizer *tk = real_model(t);
    static const char text[] = "Hello world! It's 2024-11-29, 12345 apples. \xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C <|im_start|>user";
    static const int32_t want[] = {19556, 905, 17, 657, 506, 216, 34, 32, 34, 36, 29, 33, 33, 29, 34, 41, 28, 216, 33, 34, 35, 36, 37, 13855, 30, 216, 18645, 250, 48392, 138, 7906, 240, 178, 239, 230, 216, 1, 4093};
    int32_t ids[64];
    size_t n, i, k = 0;
    char out[256], whole[256];
    ds_detok_stream st;
    if (!tk) {
        if (!t->failed) DS_SKIP(t, "DS_TEST_MODEL not set");
        return;
    }
    DS_CHECK(t, ds_tokenizer_n_vocab(tk) == 49152 && ds_tokenizer_bos(tk) == 1 && ds_tokenizer_eos(tk) == 2 && !ds_tokenizer_adds_bos(tk), "metadata");
    DS_CHECK(t, ds_tokenizer_is_eog(tk, 2) && ds_tokenizer_is_eog(tk, 0) && !ds_tokenizer_is_eog(tk, 1), "end of generation");
    DS_CHECK(t, !strcmp(ds_tokenizer_pre_name(tk), "smollm"), "pre %s", ds_tokenizer_pre_name(tk));
    DS_REQUIRE(t, ds_tokenize(tk, text, sizeof text - 1, DS_TOKENIZE_PARSE_SPECIAL, ids, 64, &n) == DS_OK, "%s", ds_last_error());
    DS_CHECK(t, n == sizeof want / sizeof want[0] && memcmp(ids, want, sizeof want) == 0, "ids differ from the reference (%zu)", n);
    DS_CHECK(t, ds_tokenize(tk, "hi", 2, DS_TOKENIZE_ADD_BOS, ids, 64, &n) == DS_OK && n == 2 && ids[0] == 1, "ADD_BOS");
    ds_tokenize(tk, text, sizeof text - 1, DS_TOKENIZE_PARSE_SPECIAL, ids, 64, &n);
    DS_CHECK(t, ds_detokenize(tk, ids, n, whole, sizeof whole, &k) == DS_OK && k == sizeof text - 1 && !memcmp(whole, text, k), "round trip");
    memset(&st, 0, sizeof st);
    for (i = 0, k = 0; i < n; i++) {
        size_t got;
        DS_REQUIRE(t, ds_detok_stream_push(tk, &st, ids[i], out + k, sizeof out - k, &got) == DS_OK, "%s", ds_last_error());
        k += got;
    }
    DS_CHECK(t, k == sizeof text - 1 && !memcmp(out, text, k) && st.n_pending == 0, "stream = whole (%zu)", k);
    ds_tokenizer_free(tk);
}

#if !defined(_WIN32) && !defined(DS_NO_THREADS)
typedef struct shared_job {
    const ds_tokenizer *tk;
    const char *text;
    size_t len, n;
    int32_t *ids;
} shared_job;
static void *shared_worker(void *arg) {
    shared_job *j = (shared_job *)arg;
    if (ds_tokenize(j->tk, j->text, j->len, 0, j->ids, j->len + 1, &j->n) != DS_OK) j->n = (size_t)-1;
    return NULL;
}
#endif

/* one tokenizer, several threads at once: every thread gets the single-thread ids */
static void test_shared_between_threads(ds_test_ctx *t) {
#if !defined(_WIN32) && !defined(DS_NO_THREADS)
    ds_tokenizer *tk = real_model(t);
    enum { NT = 4 };
    pthread_t th[NT];
    shared_job jobs[NT];
    size_t len = 60000, i, n;
    char *text;
    int32_t *ref;
    int k;
    if (!tk) {
        if (!t->failed) DS_SKIP(t, "DS_TEST_MODEL not set");
        return;
    }
    text = (char *)malloc(len);
    ref = (int32_t *)malloc((len + 1) * sizeof(int32_t));
    for (i = 0; i < len; i++) text[i] = "The cat sat on 12 mats; \xE4\xB8\xAD\xE6\x96\x87!\n"[i % 31];
    DS_REQUIRE(t, ds_tokenize(tk, text, len, 0, ref, len + 1, &n) == DS_OK, "%s", ds_last_error());
    for (k = 0; k < NT; k++) {
        jobs[k].tk = tk;
        jobs[k].text = text;
        jobs[k].len = len;
        jobs[k].ids = (int32_t *)malloc((len + 1) * sizeof(int32_t));
        pthread_create(&th[k], NULL, shared_worker, &jobs[k]);
    }
    for (k = 0; k < NT; k++) {
        pthread_join(th[k], NULL);
        DS_CHECK(t, jobs[k].n == n && !memcmp(jobs[k].ids, ref, n * sizeof(int32_t)), "thread %d differs", k);
        free(jobs[k].ids);
    }
    free(text);
    free(ref);
    ds_tokenizer_free(tk);
#else
    DS_SKIP(t, "no threads");
#endif
}

/* the tokenizer.json we write loads back with the same ids, and so does the GGUF */
static void test_save_round_trip(ds_test_ctx *t) {
    ds_tokenizer *tk = real_model(t), *back = NULL;
    static const char text[] = "Round trip: 3.14159, caf\xC3\xA9, <|im_end|> \xF0\x9F\x98\x80 ok\n\n  end";
    int32_t a[128], b[128];
    size_t na, nb, len;
    char *json;
    if (!tk) {
        if (!t->failed) DS_SKIP(t, "DS_TEST_MODEL not set");
        return;
    }
    DS_REQUIRE(t, ds_tokenizer_to_json(tk, &json, &len) == DS_OK, "%s", ds_last_error());
    DS_REQUIRE(t, ds_tokenizer_from_json(json, len, &back) == DS_OK, "%s", ds_last_error());
    ds_tokenize(tk, text, sizeof text - 1, DS_TOKENIZE_PARSE_SPECIAL, a, 128, &na);
    ds_tokenize(back, text, sizeof text - 1, DS_TOKENIZE_PARSE_SPECIAL, b, 128, &nb);
    DS_CHECK(t, na == nb && !memcmp(a, b, na * sizeof(int32_t)), "json reload differs");
    ds_free(json);
    ds_tokenizer_free(back);
    {
        ds_gguf_writer *w;
        ds_gguf *g;
        const char *path = "build/test_tokenizer_save.gguf";
        DS_REQUIRE(t, ds_gguf_writer_create(&w) == DS_OK, "writer");
        DS_REQUIRE(t, ds_tokenizer_to_gguf(tk, w) == DS_OK && ds_gguf_writer_write(w, path) == DS_OK, "%s", ds_last_error());
        ds_gguf_writer_free(w);
        DS_REQUIRE(t, ds_gguf_open(path, &g) == DS_OK, "%s", ds_last_error());
        DS_CHECK(t, ds_tokenizer_from_gguf(g, &back) == DS_OK, "%s", ds_last_error());
        ds_gguf_free(g);
        remove(path);
        if (back) {
            ds_tokenize(back, text, sizeof text - 1, DS_TOKENIZE_PARSE_SPECIAL, b, 128, &nb);
            DS_CHECK(t, na == nb && !memcmp(a, b, na * sizeof(int32_t)) && ds_tokenizer_bos(back) == 1 && ds_tokenizer_eos(back) == 2, "gguf reload differs");
        }
        ds_tokenizer_free(back);
    }
    ds_tokenizer_free(tk);
}

/* training is deterministic: the same text twice gives the same tokenizer.json */
static void test_train_deterministic(ds_test_ctx *t) {
    static const char *special[] = {"<s>"};
    const char *texts[1];
    char buf[20000], *j1, *j2;
    size_t i, n1, n2;
    ds_bpe_train_config cfg;
    ds_tokenizer *a = NULL, *b = NULL;
    for (i = 0; i < sizeof buf; i++) buf[i] = "the theme then thin 123 \xC3\xA9t\xC3\xA9\n"[i % 29];
    texts[0] = buf;
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = 300;
    cfg.pre = "llama3";
    cfg.special_tokens = special;
    cfg.n_special = 1;
    {
        size_t lens[1];
        lens[0] = sizeof buf;
        DS_REQUIRE(t, ds_bpe_train(&cfg, texts, lens, 1, &a) == DS_OK && ds_bpe_train(&cfg, texts, lens, 1, &b) == DS_OK, "%s", ds_last_error());
    }
    DS_CHECK(t, ds_tokenizer_n_vocab(a) > 257 && ds_tokenizer_find(a, "<s>", 3) == 0, "vocab %d", ds_tokenizer_n_vocab(a));
    DS_REQUIRE(t, ds_tokenizer_to_json(a, &j1, &n1) == DS_OK && ds_tokenizer_to_json(b, &j2, &n2) == DS_OK, "%s", ds_last_error());
    DS_CHECK(t, n1 == n2 && !memcmp(j1, j2, n1), "two runs differ");
    ds_free(j1);
    ds_free(j2);
    ds_tokenizer_free(a);
    ds_tokenizer_free(b);
    cfg.pre = "nope";
    DS_CHECK(t, ds_bpe_train(&cfg, texts, NULL, 1, &b) == DS_ERR_UNSUPPORTED && strstr(ds_last_error(), "'nope'"), "bad pre: %s", ds_last_error());
}

/* nothing to learn from: a clear error, not a vocabulary of the 256 bytes */
static void test_train_empty_input(ds_test_ctx *t) {
    const char *texts[2] = {"", ""};
    size_t lens[2] = {0, 0};
    ds_bpe_train_config cfg;
    ds_tokenizer *tok = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = 300;
    DS_CHECK(t, ds_bpe_train(&cfg, texts, lens, 2, &tok) == DS_ERR_INVALID_ARG && !tok && strstr(ds_last_error(), "empty"), "two empty texts: %s", ds_last_error());
    DS_CHECK(t, ds_bpe_train(&cfg, texts, NULL, 0, &tok) == DS_ERR_INVALID_ARG && !tok, "no texts: %s", ds_last_error());
    ds_tokenizer_free(tok);
}

DS_TEST_MAIN(DS_T(test_utf8_maximal_subparts), DS_T(test_json_reader), DS_T(test_json_errors), DS_T(test_json_writer),
             DS_T(test_tiny_encode), DS_T(test_tiny_decode_stream), DS_T(test_json_loader_errors), DS_T(test_real_model),
             DS_T(test_shared_between_threads), DS_T(test_save_round_trip), DS_T(test_train_deterministic),
             DS_T(test_train_empty_input))
