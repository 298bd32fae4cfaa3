/* logits_record.h - what the tiny-model tests (test_qwen2_tiny.c, test_deepseek2_tiny.c) share:
   the logits fixture record, little-endian,
       char magic[8] | u64 model hash | u32 N_POS | u32 N_VOCAB | i32 tokens[N_POS] |
       f32 logits[N_POS][N_VOCAB] (absent in a token-only record),
   and the library's logits of a model file. Include after deepseek.h, N_POS and N_VOCAB. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct logits_file {
    uint64_t hash;
    int32_t tokens[N_POS];
    float *logits;   /* (N_POS, N_VOCAB) */
} logits_file;

static uint32_t rd_u32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* "" or why the file is unusable; `missing` is the message for a file that cannot be opened */
static const char *read_logits(const char *path, const char *magic, logits_file *out, const char *missing) {
    size_t want = 24 + 4 * (size_t)N_POS + 4 * (size_t)N_POS * N_VOCAB, i;
    unsigned char *buf = (unsigned char *)malloc(want + 1);
    FILE *f = fopen(path, "rb");
    size_t got = f && buf ? fread(buf, 1, want + 1, f) : 0;
    if (f) fclose(f);
    out->logits = NULL;
    if (got != want || memcmp(buf, magic, 8) || rd_u32(buf + 16) != N_POS || rd_u32(buf + 20) != N_VOCAB) {
        free(buf);
        return !f ? missing : "logits fixture: wrong size, magic or shape";
    }
    out->hash = (uint64_t)rd_u32(buf + 8) | (uint64_t)rd_u32(buf + 12) << 32;
    for (i = 0; i < N_POS; i++) out->tokens[i] = (int32_t)rd_u32(buf + 24 + 4 * i);
    out->logits = (float *)malloc((size_t)N_POS * N_VOCAB * sizeof(float));
    for (i = 0; out->logits && i < (size_t)N_POS * N_VOCAB; i++) {
        uint32_t u = rd_u32(buf + 24 + 4 * (size_t)N_POS + 4 * i);
        memcpy(&out->logits[i], &u, 4);
    }
    free(buf);
    return out->logits ? "" : "out of memory";
}

static void put_u32(FILE *f, uint32_t v) {
    unsigned char b[4];
    b[0] = (unsigned char)v;
    b[1] = (unsigned char)(v >> 8);
    b[2] = (unsigned char)(v >> 16);
    b[3] = (unsigned char)(v >> 24);
    fwrite(b, 1, 4, f);
}

/* magic, hash, shape, tokens, then the logits unless NULL */
static int write_record(const char *path, const char *magic, uint64_t hash, const int32_t *tokens, const float *logits) {
    FILE *f = fopen(path, "wb");
    size_t i;
    if (!f) return 0;
    fwrite(magic, 1, 8, f);
    put_u32(f, (uint32_t)hash);
    put_u32(f, (uint32_t)(hash >> 32));
    put_u32(f, N_POS);
    put_u32(f, N_VOCAB);
    for (i = 0; i < N_POS; i++) put_u32(f, (uint32_t)tokens[i]);
    for (i = 0; logits && i < (size_t)N_POS * N_VOCAB; i++) {
        uint32_t u;
        memcpy(&u, &logits[i], 4);
        put_u32(f, u);
    }
    return fclose(f) == 0;
}

static int argmax(const float *x, int n) {
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* the library's path: ds_model_load, a session, every position's logits in one batch */
static ds_status run_session(const char *path, const int32_t *tokens, float *logits, ds_model_config *cfg) {
    ds_model *model = NULL;
    ds_session *s = NULL;
    ds_session_config sp;
    ds_status e = ds_model_load(path, NULL, &model);
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = N_POS;
    sp.n_threads = 2;
    if (e == DS_OK) {
        *cfg = *ds_model_get_config(model);
        e = ds_session_create(model, &sp, &s);
    }
    if (e == DS_OK) e = ds_session_eval_all(s, tokens, N_POS, logits);
    ds_session_free(s);
    ds_model_free(model);
    return e;
}
