/* Training under faults, through the API: inf/NaN in a step (gradients overflowing, a loss gone
   infinite, NaN planted in the weights) changes no weight and never reaches a saved file; the
   data checksum of checkpoints and models (XXH64, checked against the reference library's
   values) catches damage; the tokenizer and token-shard vocabulary checks. */
#define _POSIX_C_SOURCE 200809L
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"
#include <unistd.h>

/* XXH64 values printed by libxxhash 0.8 (the reference implementation) through Python ctypes:
   XXH64(data, len, seed) for "", "a", "abc", "Nobody inspects the spammish repetition" and
   bytes 0..255 three times then "xyz" (771 bytes) */
static void xxh64_matches_reference(ds_test_ctx *t) {
    static const struct { const char *s; uint64_t h0, h12345; } v[] = {
        {"", UINT64_C(0xef46db3751d8e999), UINT64_C(0x95584af7701f808d)},
        {"a", UINT64_C(0xd24ec4f1a98c6e5b), UINT64_C(0x747b860523d69ab6)},
        {"abc", UINT64_C(0x44bc2cf5ad770999), UINT64_C(0x01700e64f6f23509)},
        {"Nobody inspects the spammish repetition", UINT64_C(0xfbcea83c8a378bf1), UINT64_C(0x081a876428a9313b)},
    };
    unsigned char big[771];
    size_t i, cut;
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        DS_CHECK(t, ds_xxh64(v[i].s, strlen(v[i].s), 0) == v[i].h0, "XXH64(\"%s\", 0)", v[i].s);
        DS_CHECK(t, ds_xxh64(v[i].s, strlen(v[i].s), 12345) == v[i].h12345, "XXH64(\"%s\", 12345)", v[i].s);
    }
    for (i = 0; i < 768; i++) big[i] = (unsigned char)i;
    memcpy(big + 768, "xyz", 3);
    DS_CHECK(t, ds_xxh64(big, sizeof big, 0) == UINT64_C(0xe921a1b45bd779f8), "XXH64 of 771 bytes, seed 0");
    DS_CHECK(t, ds_xxh64(big, sizeof big, 12345) == UINT64_C(0x6b1b5d671fb93b43), "XXH64 of 771 bytes, seed 12345");
    for (cut = 0; cut <= sizeof big; cut += 37) {   /* in pieces: the same value */
        ds__xxh64 h;
        ds__xxh64_init(&h, 0);
        ds__xxh64_update(&h, big, cut);
        ds__xxh64_update(&h, big + cut, 5 < sizeof big - cut ? 5 : sizeof big - cut);
        if (cut + 5 < sizeof big) ds__xxh64_update(&h, big + cut + 5, sizeof big - cut - 5);
        DS_CHECK(t, ds__xxh64_digest(&h) == UINT64_C(0xe921a1b45bd779f8), "XXH64 fed in pieces at %zu", cut);
    }
}

/* ---- a tiny trainer ---- */
static char dir[256];
static void cleanup(void);
static void make_dir(void) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/ds_train_faults_XXXXXX");
        if (!mkdtemp(dir)) snprintf(dir, sizeof dir, ".");
        atexit(cleanup);
    }
}
static const char *tmp_path(const char *name) {
    static char buf[4][400];
    static int k;
    make_dir();
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

#define V 256
#define B 2
#define T 8
static ds_status tiny(ds_trainer **tr, float lr, float clip, float loss_scale) {
    ds_model_config mc;
    ds_train_config tc;
    memset(&mc, 0, sizeof mc);
    memset(&tc, 0, sizeof tc);
    mc.n_vocab = V;
    mc.n_embd = 16;
    mc.n_layer = 1;
    mc.n_head = 2;
    mc.n_ff = 32;
    tc.batch = B;
    tc.seq_len = T;
    tc.steps = 50;
    tc.lr = lr;
    tc.grad_clip = clip;
    tc.loss_scale = loss_scale;
    if (loss_scale > 0.0f) tc.precision = DS_PREC_FP16;   /* rounding to half overflows past 65504 */
    tc.n_threads = 2;
    return ds_trainer_create(&mc, &tc, tr);
}
static void batch(int k, int32_t *tok, int32_t *tgt) {
    int i;
    for (i = 0; i < B * T; i++) {
        tok[i] = (int32_t)((i * 7 + k * 13) % V);
        tgt[i] = (int32_t)((i * 7 + k * 13 + 1) % V);
    }
}
static float *copy_params(ds_trainer *tr, size_t *n) {
    float *p = ds_trainer_params(tr, n), *c = (float *)malloc(*n * sizeof *c);
    if (c) memcpy(c, p, *n * sizeof *c);
    return c;
}
static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    long len;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = (unsigned char *)malloc((size_t)len + 1);
    *n = b && fread(b, 1, (size_t)len, f) == (size_t)len ? (size_t)len : 0;
    fclose(f);
    return b;
}
static int write_all(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(b, 1, n, f) == n;
    if (f) ok = fclose(f) == 0 && ok;
    return ok;
}
static int exists(const char *path) { return access(path, F_OK) == 0; }

/* gradients overflowing (fp16 with an absurd loss scale): the step is skipped, no weight moves,
   the scale halves until steps go through */
static void inf_gradients_skip_the_step(ds_test_ctx *t) {
    ds_trainer *tr;
    int32_t tok[B * T], tgt[B * T];
    ds_train_step_info info;
    size_t n;
    float *before;
    int k, applied = 0;
    DS_REQUIRE(t, tiny(&tr, 1e-3f, 1.0f, 1e30f) == DS_OK, "create: %s", ds_last_error());
    before = copy_params(tr, &n);
    batch(0, tok, tgt);
    DS_REQUIRE(t, ds_trainer_step_tokens(tr, tok, tgt, &info) == DS_OK, "step: %s", ds_last_error());
    DS_CHECK(t, info.skipped == 1 && info.skipped_total == 1, "an overflowing step was not skipped (skipped %d)", info.skipped);
    DS_CHECK(t, isfinite(info.loss), "the loss itself is finite");
    DS_CHECK(t, !memcmp(before, ds_trainer_params(tr, &n), n * sizeof(float)), "a skipped step changed weights");
    for (k = 1; k < 200 && !applied; k++) {
        batch(k, tok, tgt);
        DS_REQUIRE(t, ds_trainer_step_tokens(tr, tok, tgt, &info) == DS_OK, "step %d: %s", k, ds_last_error());
        applied = !info.skipped;
    }
    DS_CHECK(t, applied && info.loss_scale < 1e30f, "the loss scale never came down to a working value");
    free(before);
    ds_trainer_free(tr);
}

/* the defect of issue #10: lr 10 without clipping drives the loss to inf; such steps are
   skipped (weights untouched), and whatever happens no file is written from non-finite weights */
static void diverging_run_never_saves_inf(ds_test_ctx *t) {
    ds_trainer *tr;
    int32_t tok[B * T], tgt[B * T];
    ds_train_step_info info;
    size_t n;
    int k, skipped = 0, state_err = 0;
    DS_REQUIRE(t, tiny(&tr, 10.0f, -1.0f, 0.0f) == DS_OK, "create: %s", ds_last_error());
    for (k = 0; k < 40 && !state_err; k++) {
        float *before = copy_params(tr, &n);
        ds_status st;
        batch(k, tok, tgt);
        st = ds_trainer_step_tokens(tr, tok, tgt, &info);
        if (st == DS_ERR_STATE) state_err = 1;
        else DS_CHECK(t, st == DS_OK, "step %d: %s", k, ds_last_error());
        if (st == DS_OK && !isfinite(info.loss)) {
            skipped++;
            DS_CHECK(t, info.skipped, "step %d: loss %g was not skipped", k, info.loss);
            DS_CHECK(t, !memcmp(before, ds_trainer_params(tr, &n), n * sizeof(float)), "step %d: a skipped step changed weights", k);
        }
        free(before);
    }
    DS_CHECK(t, skipped > 0 || state_err, "lr 10 never diverged: the test lost its point");
    if (state_err) {   /* weights gone: nothing may be saved */
        DS_CHECK(t, ds_trainer_save_model(tr, tmp_path("div.gguf"), NULL) == DS_ERR_STATE, "a model was saved from non-finite weights");
        DS_CHECK(t, !exists(tmp_path("div.gguf")), "a file was left");
    }
    ds_trainer_free(tr);
}

/* NaN planted in the weights: steps are skipped, nothing is saved (an existing checkpoint of the
   same name survives byte for byte), and loading the last good checkpoint continues exactly as a
   run that never saw the NaN */
static void nan_weights_roll_back_to_checkpoint(ds_test_ctx *t) {
    ds_trainer *tr, *ref;
    int32_t tok[B * T], tgt[B * T];
    ds_train_step_info info;
    size_t n, n_good, n_after;
    unsigned char *good, *after;
    float *p, *planted;
    const char *ck = tmp_path("good.gguf");
    int k;
    DS_REQUIRE(t, tiny(&tr, 1e-3f, 1.0f, 0.0f) == DS_OK && tiny(&ref, 1e-3f, 1.0f, 0.0f) == DS_OK, "create: %s", ds_last_error());
    for (k = 0; k < 3; k++) {
        batch(k, tok, tgt);
        DS_REQUIRE(t, ds_trainer_step_tokens(tr, tok, tgt, &info) == DS_OK && ds_trainer_step_tokens(ref, tok, tgt, &info) == DS_OK, "step");
    }
    DS_REQUIRE(t, ds_trainer_save_checkpoint(tr, ck) == DS_OK, "save: %s", ds_last_error());
    good = read_all(ck, &n_good);
    p = ds_trainer_params(tr, &n);
    p[n / 2] = NAN;
    planted = copy_params(tr, &n);
    batch(3, tok, tgt);
    DS_REQUIRE(t, ds_trainer_step_tokens(tr, tok, tgt, &info) == DS_OK, "step: %s", ds_last_error());
    DS_CHECK(t, info.skipped && !isfinite(info.loss), "a NaN weight did not skip the step (loss %g)", info.loss);
    DS_CHECK(t, !memcmp(planted, ds_trainer_params(tr, &n), n * sizeof(float)), "the skipped step changed weights");
    DS_CHECK(t, ds_trainer_save_checkpoint(tr, ck) == DS_ERR_STATE, "a checkpoint was written from NaN weights");
    DS_CHECK(t, ds_trainer_save_model(tr, tmp_path("nan.gguf"), NULL) == DS_ERR_STATE, "a model was written from NaN weights");
    DS_CHECK(t, !exists(tmp_path("nan.gguf")) && !exists(tmp_path("good.gguf.tmp")), "a file was left behind");
    after = read_all(ck, &n_after);
    DS_CHECK(t, good && after && n_good == n_after && !memcmp(good, after, n_good), "the good checkpoint changed");
    /* roll back: the next step equals the reference's */
    DS_REQUIRE(t, ds_trainer_load_checkpoint(tr, ck) == DS_OK, "load: %s", ds_last_error());
    DS_REQUIRE(t, ds_trainer_step_tokens(tr, tok, tgt, &info) == DS_OK && ds_trainer_step_tokens(ref, tok, tgt, &info) == DS_OK, "step");
    DS_CHECK(t, !info.skipped && !memcmp(ds_trainer_params(tr, &n), ds_trainer_params(ref, &n), n * sizeof(float)),
             "after the roll-back the weights differ from the reference run");
    free(good);
    free(after);
    free(planted);
    ds_trainer_free(tr);
    ds_trainer_free(ref);
}

/* damage anywhere in the data section is caught on resume and on model load */
static void checksum_catches_damage(ds_test_ctx *t) {
    ds_trainer *tr;
    int32_t tok[B * T], tgt[B * T];
    ds_train_step_info info;
    ds_gguf *g;
    ds_model *m = NULL;
    ds_load_config mp;
    unsigned char *b;
    size_t n, off;
    int present = 0;
    const char *ck = tmp_path("ck.gguf"), *bad = tmp_path("bad.gguf"), *model = tmp_path("model.gguf");
    DS_REQUIRE(t, tiny(&tr, 1e-3f, 1.0f, 0.0f) == DS_OK, "create: %s", ds_last_error());
    batch(0, tok, tgt);
    DS_REQUIRE(t, ds_trainer_step_tokens(tr, tok, tgt, &info) == DS_OK, "step");
    DS_REQUIRE(t, ds_trainer_save_checkpoint(tr, ck) == DS_OK && ds_trainer_save_model(tr, model, NULL) == DS_OK, "save: %s", ds_last_error());
    DS_REQUIRE(t, ds_gguf_open(ck, &g) == DS_OK, "open: %s", ds_last_error());
    DS_CHECK(t, ds_gguf_verify_checksum(g, &present) == DS_OK && present, "a fresh checkpoint does not verify: %s", ds_last_error());
    off = (size_t)ds_gguf_data_offset(g);
    ds_gguf_free(g);
    DS_REQUIRE(t, ds_trainer_load_checkpoint(tr, ck) == DS_OK, "load: %s", ds_last_error());
    b = read_all(ck, &n);
    DS_REQUIRE(t, b && n > off + 100, "read");
    b[off + (n - off) / 2] ^= 0x10;   /* one bit, mid-data */
    DS_REQUIRE(t, write_all(bad, b, n), "write");
    DS_CHECK(t, ds_trainer_load_checkpoint(tr, bad) == DS_ERR_FORMAT && strstr(ds_last_error(), "damaged"), "a damaged checkpoint loaded: %s", ds_last_error());
    free(b);
    DS_REQUIRE(t, ds_model_load(model, NULL, &m) == DS_OK, "the model does not load: %s", ds_last_error());
    ds_model_free(m);
    b = read_all(model, &n);
    DS_REQUIRE(t, b, "read");
    b[n - 5] ^= 0x01;
    DS_REQUIRE(t, write_all(bad, b, n), "write");
    DS_CHECK(t, ds_model_load(bad, NULL, &m) == DS_ERR_FORMAT, "a damaged model loaded");
    memset(&mp, 0, sizeof mp);
    mp.no_checksum = 1;
    DS_CHECK(t, ds_model_load(bad, &mp, &m) == DS_OK, "no_checksum did not skip the check: %s", ds_last_error());
    ds_model_free(m);
    free(b);
    ds_trainer_free(tr);
}

/* a tokenizer of the wrong size is refused; the right one travels in checkpoints; shard
   fingerprints of a tokenizer and of its GGUF agree, and old shards (no fingerprint) still read */
static void tokenizer_and_shard_vocab(ds_test_ctx *t) {
    static const char *text = "the king shall speak of night and day to all his men who fight for love and the night";
    ds_bpe_train_config bc;
    ds_tokenizer *tk = NULL;
    ds_gguf_writer *w;
    ds_gguf *g = NULL, *ck = NULL;
    ds_trainer *tr = NULL;
    ds_train_data *d = NULL;
    size_t len = strlen(text);
    uint64_t fp = 0, fp2 = 0;
    uint32_t toks[40];
    int nv = 0, i;
    memset(&bc, 0, sizeof bc);
    bc.vocab_size = 270;
    DS_REQUIRE(t, ds_bpe_train(&bc, &text, &len, 1, &tk) == DS_OK, "bpe: %s", ds_last_error());
    DS_REQUIRE(t, ds_gguf_writer_create(&w) == DS_OK && ds_tokenizer_to_gguf(tk, w) == DS_OK && ds_gguf_writer_write(w, tmp_path("tok.gguf")) == DS_OK, "write tokenizer");
    ds_gguf_writer_free(w);
    DS_REQUIRE(t, ds_gguf_open(tmp_path("tok.gguf"), &g) == DS_OK, "open");
    DS_CHECK(t, ds_gguf_vocab_fingerprint(g, &fp, &nv) == DS_OK && nv == ds_tokenizer_n_vocab(tk), "fingerprint of the GGUF");
    DS_CHECK(t, fp == ds_tokenizer_fingerprint(tk) && fp != 0, "the tokenizer and its GGUF disagree on the fingerprint");
    DS_REQUIRE(t, tiny(&tr, 1e-3f, 1.0f, 0.0f) == DS_OK, "create");
    DS_CHECK(t, ds_trainer_set_tokenizer(tr, g) == DS_ERR_INVALID_ARG, "a %d-token tokenizer was accepted for a %d-token model", nv, V);
    DS_CHECK(t, ds_trainer_save_model(tr, tmp_path("m.gguf"), g) == DS_ERR_INVALID_ARG && !exists(tmp_path("m.gguf")), "save_model took a wrong-size tokenizer");
    ds_trainer_free(tr);
    tr = NULL;
    {   /* the right size: the checkpoint carries the tokenizer */
        ds_model_config mc;
        ds_train_config tc;
        memset(&mc, 0, sizeof mc);
        memset(&tc, 0, sizeof tc);
        mc.n_vocab = nv;
        mc.n_embd = 16;
        mc.n_layer = 1;
        mc.n_head = 2;
        tc.n_threads = 1;
        DS_REQUIRE(t, ds_trainer_create(&mc, &tc, &tr) == DS_OK && ds_trainer_set_tokenizer(tr, g) == DS_OK, "create: %s", ds_last_error());
        DS_REQUIRE(t, ds_trainer_save_checkpoint(tr, tmp_path("tk.gguf")) == DS_OK && ds_gguf_open(tmp_path("tk.gguf"), &ck) == DS_OK, "checkpoint");
        DS_CHECK(t, ds_gguf_vocab_fingerprint(ck, &fp2, NULL) == DS_OK && fp2 == fp, "the checkpoint lost the tokenizer");
        ds_gguf_free(ck);
        ds_trainer_free(tr);
    }
    for (i = 0; i < 40; i++) toks[i] = (uint32_t)(i % 256);
    DS_REQUIRE(t, ds_token_shard_write_vocab(tmp_path("a.tok"), toks, 40, nv, fp) == DS_OK && ds_token_shard_write(tmp_path("b.tok"), toks, 40, 256) == DS_OK, "shards");
    DS_REQUIRE(t, ds_train_data_open(tmp_path("a.tok"), NULL, &d) == DS_OK, "open shard: %s", ds_last_error());
    ds_train_data_vocab(d, &i, &fp2);
    DS_CHECK(t, i == nv && fp2 == fp, "the shard's vocabulary did not round-trip");
    ds_train_data_free(d);
    DS_REQUIRE(t, ds_train_data_open(tmp_path("b.tok"), NULL, &d) == DS_OK, "open old-style shard: %s", ds_last_error());
    ds_train_data_vocab(d, &i, &fp2);
    DS_CHECK(t, i == 256 && fp2 == 0, "a shard without a fingerprint");
    ds_train_data_free(d);
    DS_CHECK(t, ds_train_data_open(tmp_path("a.tok"), tmp_path("b.tok"), &d) == DS_ERR_FORMAT, "shards of two vocabularies opened together");
    ds_gguf_free(g);
    ds_tokenizer_free(tk);
}

static void cleanup(void) {
    static const char *names[] = {"good.gguf", "ck.gguf", "bad.gguf", "model.gguf", "tok.gguf", "tk.gguf", "a.tok", "b.tok"};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) remove(tmp_path(names[i]));
    if (strcmp(dir, ".")) rmdir(dir);
}

DS_TEST_MAIN(DS_T(xxh64_matches_reference), DS_T(inf_gradients_skip_the_step), DS_T(diverging_run_never_saves_inf),
             DS_T(nan_weights_roll_back_to_checkpoint), DS_T(checksum_catches_damage), DS_T(tokenizer_and_shard_vocab))
