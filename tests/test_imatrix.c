/* The importance-matrix API on the shipped model: the session observer sees every dense
   matmul's input; sums collected through it equal sums taken by a second observer over the
   same rows (independent accumulation in this file); write -> load gives in_sum2 / counts; the
   loader refuses files that are no imatrix, bad counts and negative sums; the quantizer refuses
   an imatrix of another model and leaves no output. The values against a numpy forward and
   llama.cpp's quantizer: tests/check_imatrix.py and tests/check_quantize_imatrix.py. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"
#include <stdio.h>

#define MODEL "examples/shakespeare-tiny.gguf"

typedef struct seen {
    int calls, q_rows;
    double q_sum[160];   /* blk.0.attn_q.weight's column sums of x^2 */
    ds_imatrix *im;
} seen;

static void observe(void *user, const char *name, size_t len, const float *x, int T, int cols) {
    seen *s = (seen *)user;
    int t, j;
    s->calls++;
    if (len == strlen("blk.0.attn_q.weight") && !memcmp(name, "blk.0.attn_q.weight", len) && cols == 160) {
        for (t = 0; t < T; t++)
            for (j = 0; j < cols; j++) s->q_sum[j] += (double)x[(size_t)t * cols + j] * x[(size_t)t * cols + j];
        s->q_rows += T;
    }
}

static void tmp_path(char *buf, size_t n, const char *tag) { snprintf(buf, n, "%s/ds_test_imatrix_%s_%ld.gguf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", tag, (long)ds_time()); }

static void test_imatrix_collect_write_load(ds_test_ctx *t) {
    ds_model *m = NULL;
    ds_session *s = NULL;
    ds_imatrix *im = NULL, *back = NULL;
    seen sn;
    int32_t tok[40];
    char path[512];
    const float *mean;
    int64_t cols = 0;
    int i;
    DS_REQUIRE(t, ds_model_load(MODEL, NULL, &m) == DS_OK, "%s", ds_last_error());
    DS_REQUIRE(t, ds_session_create(m, NULL, &s) == DS_OK, "%s", ds_last_error());
    for (i = 0; i < 40; i++) tok[i] = (int32_t)((i * 37 + 11) % 1024);
    memset(&sn, 0, sizeof sn);
    ds_session_set_observer(s, observe, &sn);
    DS_CHECK(t, ds_session_eval(s, tok, 40, NULL) == DS_OK, "%s", ds_last_error());
    DS_CHECK(t, sn.calls == 4 * 7 && sn.q_rows == 40, "%d observed matmuls, %d rows of attn_q (want 28, 40)", sn.calls, sn.q_rows);
    DS_REQUIRE(t, ds_imatrix_create(&im) == DS_OK, "create");
    DS_CHECK(t, ds_imatrix_write(im, "/nonexistent/x.gguf", NULL) == DS_ERR_STATE, "writing an empty imatrix must fail with DS_ERR_STATE");
    ds_imatrix_attach(im, s);
    DS_CHECK(t, ds_session_rewind(s, 0) == DS_OK && ds_session_eval(s, tok, 40, NULL) == DS_OK, "%s", ds_last_error());
    ds_imatrix_count_chunk(im, 40);
    ds_session_set_observer(s, NULL, NULL);
    tmp_path(path, sizeof path, "rt");
    DS_REQUIRE(t, ds_imatrix_write(im, path, "test tokens") == DS_OK, "%s", ds_last_error());
    DS_REQUIRE(t, ds_imatrix_load(path, &back) == DS_OK, "%s", ds_last_error());
    DS_CHECK(t, ds_imatrix_n_entries(back) == 28, "%d entries, want 28", ds_imatrix_n_entries(back));
    mean = ds_imatrix_find(back, "blk.0.attn_q.weight", &cols);
    DS_REQUIRE(t, mean && cols == 160, "blk.0.attn_q.weight missing or %lld columns", (long long)cols);
    for (i = 0; i < 160; i++) {
        double want = sn.q_sum[i] / 40.0;
        DS_CHECK(t, fabs(mean[i] - want) <= 1e-5 * want + 1e-12, "column %d: mean %g, want %g", i, (double)mean[i], want);
    }
    DS_CHECK(t, ds_imatrix_find(back, "output.weight", NULL) == NULL, "the output head is not collected (llama-imatrix's default)");
    remove(path);
    ds_imatrix_free(back);
    ds_imatrix_free(im);
    ds_session_free(s);
    ds_model_free(m);
}

/* a one-entry imatrix with the given count and first sum */
static int write_imatrix(const char *path, const char *name, int64_t cols, float count, float first) {
    ds_gguf_writer *w = NULL;
    float sums[512], cnt[1];
    int64_t ne[2], nc[2] = {1, 1};
    char n[128];
    int i, ok;
    for (i = 0; i < 512; i++) sums[i] = 1.0f + (float)i;
    sums[0] = first;
    cnt[0] = count;
    ne[0] = cols;
    ne[1] = 1;
    if (ds_gguf_writer_create(&w) != DS_OK) return 0;
    snprintf(n, sizeof n, "%s.in_sum2", name);
    ok = ds_gguf_writer_add_tensor(w, n, DS_TYPE_F32, 2, ne, sums) == DS_OK;
    snprintf(n, sizeof n, "%s.counts", name);
    ok = ok && ds_gguf_writer_add_tensor(w, n, DS_TYPE_F32, 2, nc, cnt) == DS_OK && ds_gguf_writer_write(w, path) == DS_OK;
    ds_gguf_writer_free(w);
    return ok;
}

static void test_imatrix_load_rejects(ds_test_ctx *t) {
    ds_imatrix *im = NULL;
    char path[512];
    tmp_path(path, sizeof path, "bad");
    DS_CHECK(t, ds_imatrix_load(MODEL, &im) == DS_ERR_FORMAT && !im, "a model file is no imatrix");
    DS_CHECK(t, strstr(ds_last_error(), "in_sum2") != NULL, "message: %s", ds_last_error());
    DS_REQUIRE(t, write_imatrix(path, "blk.0.attn_q.weight", 160, 0.0f, 1.0f), "write");
    DS_CHECK(t, ds_imatrix_load(path, &im) == DS_ERR_FORMAT && strstr(ds_last_error(), "counts"), "count 0 accepted: %s", ds_last_error());
    DS_REQUIRE(t, write_imatrix(path, "blk.0.attn_q.weight", 160, 4.0f, -1.0f), "write");
    DS_CHECK(t, ds_imatrix_load(path, &im) == DS_ERR_FORMAT && strstr(ds_last_error(), "column 0"), "negative sum accepted: %s", ds_last_error());
    DS_REQUIRE(t, write_imatrix(path, "blk.0.attn_q.weight", 160, 4.0f, 1.0f), "write");
    DS_CHECK(t, ds_imatrix_load(path, &im) == DS_OK && ds_imatrix_n_entries(im) == 1, "a good file refused: %s", ds_last_error());
    ds_imatrix_free(im);
    remove(path);
}

static void test_quantize_imatrix_of_another_model(ds_test_ctx *t) {
    ds_quantize_config cfg;
    char path[512], out[512];
    FILE *f;
    tmp_path(path, sizeof path, "other");
    tmp_path(out, sizeof out, "out");
    memset(&cfg, 0, sizeof cfg);
    cfg.type = "Q4_0";
    cfg.threads = 1;
    cfg.imatrix = path;
    DS_REQUIRE(t, write_imatrix(path, "blk.0.attn_q.weight", 512, 4.0f, 1.0f), "write");   /* width of another model */
    DS_CHECK(t, ds_quantize_model(MODEL, out, &cfg) == DS_ERR_FORMAT && strstr(ds_last_error(), "another model"), "wrong width: %s", ds_last_error());
    DS_REQUIRE(t, write_imatrix(path, "blk.9.attn_q.weight", 160, 4.0f, 1.0f), "write");   /* a layer this model lacks */
    DS_CHECK(t, ds_quantize_model(MODEL, out, &cfg) == DS_ERR_FORMAT && strstr(ds_last_error(), "blk.9.attn_q.weight"), "missing tensor: %s", ds_last_error());
    f = fopen(out, "rb");
    DS_CHECK(t, !f, "a refused quantization left %s", out);
    if (f) fclose(f);
    remove(out);
    remove(path);
}

DS_TEST_MAIN(DS_T(test_imatrix_collect_write_load), DS_T(test_imatrix_load_rejects), DS_T(test_quantize_imatrix_of_another_model))
