/* test_smollm2.c - SmolLM2-135M-Instruct Q4_1 against llama.cpp's figures committed in
   tests/fixtures/smollm2/ (made by tests/make_ref_smollm2.py, which documents the layouts).

   teacher_forced  2,048 positions of English text, each chunk of 512 tokens evaluated from an
                   empty context: our top-1 must equal llama.cpp's at >= 99.5% of positions and
                   the mean KL(llama.cpp || ours) must be <= 0.005. The fixture keeps llama.cpp's
                   128 most probable tokens per position plus the mass of the rest, so the KL
                   computed here is over those 129 outcomes: a lower bound of the full KL
                   (tests/check_smollm2.py computes the exact one when llama_cpp is installed).
   greedy          64 greedy tokens from each of 6 prompts (ids tokenized by llama.cpp) must equal
                   llama.cpp's; a divergence is forgiven only at a step where llama.cpp's top two
                   logits are closer than TIE_GAP (1e-3), a true tie.

   These bounds hold because the kernels reproduce llama.cpp's float order operation by
   operation (design notes in deepseek.h, "numerics"): on this machine the logits are equal bit
   for bit. With 8-bit activation quantization this model amplifies a change in the last bit
   anywhere into logit changes of ~0.2 rms, so an implementation that only approximates the
   order lands near llama.cpp's agreement with ITSELF across its two attention paths (flash
   attention on vs off: 95.61% top-1, tests/fixtures/smollm2/meta.json) and fails here.

   Figures go to stderr. Under the sanitizers (DS_TEST_SANITIZED) only a short slice of each
   runs; the bounds are the same. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"
#include <stdint.h>

#define FIXTURES "tests/fixtures/smollm2/"
#define TIE_GAP 1e-3f      /* a greedy divergence counts as a tie only below this top-2 gap */
#define MIN_TOP1 0.995
#define MAX_MEAN_KL 0.005

/* ---- little-endian fixture reader -------------------------------------------------------- */
typedef struct blob {
    unsigned char *data;
    size_t size, pos;
    int bad;   /* a read ran past the end */
} blob;

static int blob_load(blob *b, const char *path) {
    FILE *f = fopen(path, "rb");
    long n;
    memset(b, 0, sizeof *b);
    if (!f) return 0;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return 0;
    }
    b->size = (size_t)n;
    b->data = (unsigned char *)malloc(b->size ? b->size : 1);
    if (!b->data || fread(b->data, 1, b->size, f) != b->size) {
        free(b->data);
        b->data = NULL;
        fclose(f);
        return 0;
    }
    fclose(f);
    return 1;
}

static const unsigned char *blob_take(blob *b, size_t n) {
    const unsigned char *p;
    if (b->bad || n > b->size - b->pos) {
        b->bad = 1;
        return NULL;
    }
    p = b->data + b->pos;
    b->pos += n;
    return p;
}

static uint32_t blob_u32(blob *b) {
    const unsigned char *p = blob_take(b, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24 : 0;
}
static int32_t blob_i32(blob *b) { return (int32_t)blob_u32(b); }
static float blob_f32(blob *b) {
    uint32_t u = blob_u32(b);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static int blob_magic(blob *b, const char *magic) {
    const unsigned char *p = blob_take(b, 8);
    return p && !memcmp(p, magic, 8);
}

/* ---- the model, loaded once for every case ------------------------------------------------- */
static ds_model *g_model;
static int g_model_tried;
static char g_skip[1024];

static void free_model(void) { ds_model_free(g_model); }

static ds_model *model_or_skip(void) {
    const char *path;
    ds_status s;
    if (g_model_tried) return g_model;
    g_model_tried = 1;
    atexit(free_model);
    path = ds_test_env_file("DS_TEST_MODEL");
    if (!path) {
        snprintf(g_skip, sizeof g_skip, "DS_TEST_MODEL is unset or missing (run `make model`)");
        return NULL;
    }
    s = ds_model_load(path, NULL, &g_model);
    if (s != DS_OK) {
        snprintf(g_skip, sizeof g_skip, "!%.300s: %.600s", path, ds_last_error());
        g_model = NULL;
    }
    return g_model;
}

/* NULL and a reason in t when the model cannot be had */
#define NEED_MODEL(t, m)                                                              \
    do {                                                                              \
        (m) = model_or_skip();                                                        \
        if (!(m)) {                                                                   \
            if (g_skip[0] == '!') DS_REQUIRE(t, 0, "model load failed: %s", g_skip + 1); \
            DS_SKIP(t, "%s", g_skip);                                                 \
        }                                                                             \
    } while (0)

static ds_session *new_session(ds_test_ctx *t, ds_model *m, int n_ctx) {
    ds_session_config sp;
    ds_session *s = NULL;
    ds_status st;
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = n_ctx;
    sp.n_threads = 2;
    st = ds_session_create(m, &sp, &s);
    DS_CHECK(t, st == DS_OK, "session: %s", ds_last_error());
    return st == DS_OK ? s : NULL;
}

static int argmax(const float *x, int n) {
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* log-softmax of one row of logits, in double */
static void log_softmax(const float *logits, int n, double *out) {
    double mx = logits[0], sum = 0;
    int i;
    for (i = 1; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    for (i = 0; i < n; i++) out[i] = (double)logits[i] - mx - log(sum);
}

/* KL(P || Q) over P's k kept tokens plus one bucket for all others. p_ids/p_logp/p_rest: P's
   kept tokens, their log-probs and the log-mass of the rest; q_logp: Q's full log-probs. mark is
   n_vocab bytes of scratch, left zeroed. */
static double kl_coarse(const int32_t *p_ids, const float *p_logp, float p_rest, int k, const double *q_logp, int n_vocab, unsigned char *mark) {
    double kl = 0, q_rest = 0;
    int i;
    for (i = 0; i < k; i++) {
        kl += exp((double)p_logp[i]) * ((double)p_logp[i] - q_logp[p_ids[i]]);
        mark[p_ids[i]] = 1;
    }
    for (i = 0; i < n_vocab; i++) q_rest += mark[i] ? 0 : exp(q_logp[i]);
    for (i = 0; i < k; i++) mark[p_ids[i]] = 0;
    if (q_rest < 1e-300) q_rest = 1e-300;
    kl += exp((double)p_rest) * ((double)p_rest - log(q_rest));
    return kl;
}

/* ---- teacher-forced positions ------------------------------------------------------------- */
typedef struct tf_fixture {
    uint32_t n_chunks, chunk, k, n_vocab;
    int32_t *tokens;   /* (n_chunks * chunk) */
    int32_t *ids;      /* (n_chunks * chunk, k) llama.cpp's most probable tokens, best first */
    float *logp;       /* (n_chunks * chunk, k) their log-probs */
    float *rest;       /* (n_chunks * chunk) log-mass of all other tokens */
} tf_fixture;

static void tf_free(tf_fixture *f) {
    free(f->tokens);
    free(f->ids);
    free(f->logp);
    free(f->rest);
    memset(f, 0, sizeof *f);
}

/* "" on success, else why the fixture is unusable */
static const char *tf_read(tf_fixture *f, const char *path) {
    blob b;
    size_t rows, i, j;
    memset(f, 0, sizeof *f);
    if (!blob_load(&b, path)) return "cannot read " FIXTURES "tf.bin (run from the repository root)";
    if (!blob_magic(&b, "DSTF0001")) {
        free(b.data);
        return "tf.bin: bad magic";
    }
    f->n_chunks = blob_u32(&b);
    f->chunk = blob_u32(&b);
    f->k = blob_u32(&b);
    f->n_vocab = blob_u32(&b);
    if (b.bad || !f->n_chunks || f->n_chunks > 64 || f->chunk < 2 || f->chunk > 8192 || f->k < 2 || f->k > f->n_vocab || f->n_vocab > (1u << 24)) {
        free(b.data);
        return "tf.bin: bad header";
    }
    rows = (size_t)f->n_chunks * f->chunk;
    f->tokens = (int32_t *)malloc(rows * sizeof *f->tokens);
    f->ids = (int32_t *)malloc(rows * f->k * sizeof *f->ids);
    f->logp = (float *)malloc(rows * f->k * sizeof *f->logp);
    f->rest = (float *)malloc(rows * sizeof *f->rest);
    if (!f->tokens || !f->ids || !f->logp || !f->rest) {
        free(b.data);
        tf_free(f);
        return "out of memory";
    }
    for (i = 0; i < rows; i++) f->tokens[i] = blob_i32(&b);
    for (i = 0; i < rows; i++) {
        for (j = 0; j < f->k; j++) f->ids[i * f->k + j] = blob_i32(&b);
        for (j = 0; j < f->k; j++) f->logp[i * f->k + j] = blob_f32(&b);
        f->rest[i] = blob_f32(&b);
    }
    for (i = 0; i < rows * f->k; i++)
        if (f->ids[i] < 0 || (uint32_t)f->ids[i] >= f->n_vocab) b.bad = 1;
    for (i = 0; i < rows; i++)
        if (f->tokens[i] < 0 || (uint32_t)f->tokens[i] >= f->n_vocab) b.bad = 1;
    free(b.data);
    if (b.bad || b.pos != b.size) {
        tf_free(f);
        return "tf.bin: truncated, too long or with ids out of range";
    }
    return "";
}

typedef struct tf_stats {
    int n, agree, near_tie_misses;
    double kl_sum, kl_max;
} tf_stats;

/* Adds the rows [row0, row0 + n) of the fixture, whose logits ours are, to st. */
static void tf_score(const tf_fixture *f, size_t row0, int n, const float *ours, double *logq, unsigned char *mark, tf_stats *st) {
    int r, nv = (int)f->n_vocab;
    for (r = 0; r < n; r++) {
        size_t row = row0 + (size_t)r;
        const int32_t *ids = f->ids + row * f->k;
        const float *lp = f->logp + row * f->k;
        const float *x = ours + (size_t)r * nv;
        double kl;
        log_softmax(x, nv, logq);
        kl = kl_coarse(ids, lp, f->rest[row], (int)f->k, logq, nv, mark);
        st->n++;
        if (argmax(x, nv) == ids[0]) st->agree++;
        else if (lp[0] - lp[1] < TIE_GAP) st->near_tie_misses++;
        st->kl_sum += kl;
        if (kl > st->kl_max) st->kl_max = kl;
    }
}

static void teacher_forced(ds_test_ctx *t) {
    tf_fixture f;
    const char *why;
    ds_model *m;
    ds_session *s;
    float *logits;
    double *logq;
    unsigned char *mark;
    tf_stats st;
    uint32_t c, n_chunks;
    int rows, light = getenv("DS_TEST_SANITIZED") != NULL;
    double agree, mean_kl;
    uint32_t k;
    NEED_MODEL(t, m);
    why = tf_read(&f, FIXTURES "tf.bin");
    DS_REQUIRE(t, !*why, "%s", why);
    if ((int)f.n_vocab != ds_model_get_config(m)->n_vocab) {
        tf_free(&f);
        DS_REQUIRE(t, 0, "tf.bin is for %u tokens, the model has %d", f.n_vocab, ds_model_get_config(m)->n_vocab);
    }
    k = f.k;
    /* sanitized: only the first 16 positions of the first chunk */
    n_chunks = light ? 1 : f.n_chunks;
    rows = light ? 16 : (int)f.chunk;
    logits = (float *)malloc((size_t)rows * f.n_vocab * sizeof *logits);
    logq = (double *)malloc((size_t)f.n_vocab * sizeof *logq);
    mark = (unsigned char *)calloc(f.n_vocab, 1);
    memset(&st, 0, sizeof st);
    s = logits && logq && mark ? new_session(t, m, (int)f.chunk) : NULL;
    DS_CHECK(t, s != NULL, "out of memory or no session");
    for (c = 0; c < n_chunks && !t->failed; c++) {
        size_t row0 = (size_t)c * f.chunk;
        ds_status e = ds_session_rewind(s, 0);
        if (e == DS_OK) e = ds_session_eval_all(s, f.tokens + row0, rows, logits);
        DS_CHECK(t, e == DS_OK, "chunk %u: eval: %s", c, ds_last_error());
        if (e == DS_OK) tf_score(&f, row0, rows, logits, logq, mark, &st);
    }
    ds_session_free(s);
    free(logits);
    free(logq);
    free(mark);
    tf_free(&f);
    if (t->failed) return;
    agree = (double)st.agree / st.n;
    mean_kl = st.kl_sum / st.n;
    fprintf(stderr, "smollm2 teacher-forced: %d positions, top-1 agreement %.2f%% (%d misses, %d of them where llama.cpp's top-2 gap < %g), "
            "KL(llama.cpp || ours) over top-%u + rest: mean %.6f, max %.6f\n",
            st.n, 100 * agree, st.n - st.agree, st.near_tie_misses, TIE_GAP, k, mean_kl, st.kl_max);
    DS_CHECK(t, agree >= MIN_TOP1, "top-1 agreement %.2f%% over %d positions (needs >= %.2f%%)", 100 * agree, st.n, 100 * MIN_TOP1);
    DS_CHECK(t, mean_kl <= MAX_MEAN_KL, "mean KL %.6f over %d positions (needs <= %g)", mean_kl, st.n, MAX_MEAN_KL);
}

/* ---- greedy generations ------------------------------------------------------------------ */
typedef enum gen_outcome { GEN_SAME, GEN_TIE, GEN_DIVERGED, GEN_ERROR } gen_outcome;

/* Our greedy continuation of prompt, n_gen tokens, against llama.cpp's (want, gap). *at: the
   step of the first divergence. */
static gen_outcome greedy_one(ds_session *s, int n_vocab, const int32_t *prompt, int n_prompt, const int32_t *want, const float *gap, int n_gen, float *logits, int *at) {
    int i;
    if (ds_session_rewind(s, 0) != DS_OK || ds_session_eval(s, prompt, n_prompt, logits) != DS_OK) return GEN_ERROR;
    for (i = 0; i < n_gen; i++) {
        int32_t tok = argmax(logits, n_vocab);
        *at = i;
        if (tok != want[i]) return gap[i] < TIE_GAP ? GEN_TIE : GEN_DIVERGED;
        if (ds_session_eval(s, &tok, 1, logits) != DS_OK) return GEN_ERROR;
    }
    return GEN_SAME;
}

static void greedy(ds_test_ctx *t) {
    blob b;
    ds_model *m;
    ds_session *s;
    float *logits;
    uint32_t n_prompts, n_gen, p;
    int n_vocab, same = 0, ties = 0, diverged = 0, first_bad = -1, light = getenv("DS_TEST_SANITIZED") != NULL;
    NEED_MODEL(t, m);
    DS_REQUIRE(t, blob_load(&b, FIXTURES "gen.bin"), "cannot read " FIXTURES "gen.bin (run from the repository root)");
    if (!blob_magic(&b, "DSGEN001")) {
        free(b.data);
        DS_REQUIRE(t, 0, "gen.bin: bad magic");
    }
    n_prompts = blob_u32(&b);
    n_gen = blob_u32(&b);
    n_vocab = ds_model_get_config(m)->n_vocab;
    logits = (float *)malloc((size_t)n_vocab * sizeof *logits);
    s = logits ? new_session(t, m, 512) : NULL;
    DS_CHECK(t, s != NULL && !b.bad && n_gen >= 1 && n_gen <= 256 && n_prompts >= 1, "gen.bin: bad header or no session");
    /* sanitized: the first 4 tokens of one prompt */
    if (light) n_prompts = 1;
    for (p = 0; p < n_prompts && !t->failed; p++) {
        uint32_t n_tok = blob_u32(&b), i;
        int32_t *buf;
        float *gap;
        int at = 0;
        gen_outcome o;
        DS_CHECK(t, !b.bad && n_tok >= 1 && n_tok + n_gen <= 512, "gen.bin: prompt %u: bad length", p);
        if (t->failed) break;
        buf = (int32_t *)malloc((n_tok + n_gen) * sizeof *buf);
        gap = (float *)malloc(n_gen * sizeof *gap);
        for (i = 0; i < n_tok + n_gen; i++) buf[i] = blob_i32(&b);
        for (i = 0; i < n_gen; i++) gap[i] = blob_f32(&b);
        for (i = 0; i < n_tok + n_gen; i++)
            if (buf[i] < 0 || buf[i] >= n_vocab) b.bad = 1;
        DS_CHECK(t, !b.bad, "gen.bin: prompt %u: truncated or ids out of range", p);
        o = t->failed ? GEN_ERROR : greedy_one(s, n_vocab, buf, (int)n_tok, buf + n_tok, gap, light ? 4 : (int)n_gen, logits, &at);
        if (o == GEN_SAME) same++;
        if (o == GEN_TIE) ties++;
        if (o == GEN_TIE || o == GEN_DIVERGED)
            fprintf(stderr, "smollm2 greedy: prompt %u diverges at step %d (llama.cpp's top-2 gap there %.5f)%s\n", p, at, gap[at], o == GEN_TIE ? ": a tie" : "");
        DS_CHECK(t, o != GEN_ERROR, "prompt %u: eval failed: %s", p, ds_last_error());
        if (o == GEN_DIVERGED && diverged++ == 0) first_bad = (int)p;
        free(buf);
        free(gap);
    }
    fprintf(stderr, "smollm2 greedy: %d/%u generations of %u tokens identical to llama.cpp; %d diverge at a tie (top-2 gap < %g)\n",
            same, n_prompts, light ? 4 : n_gen, ties, TIE_GAP);
    DS_CHECK(t, !diverged, "%d of %u greedy generations differ from llama.cpp's at a step where its top-2 gap is >= %g (first: prompt %d)",
             diverged, n_prompts, TIE_GAP, first_bad);
    ds_session_free(s);
    free(logits);
    free(b.data);
}

DS_TEST_MAIN(DS_T(teacher_forced), DS_T(greedy))
