/* test_infer.c - model loading, the forward pass, sessions, generation and chat templates.

   Most checks use a tiny random llama model written by our GGUF writer (F32 weights, so no
   activation quantization: a plain double-precision forward written here from the equations is
   an independent reference) and its Q8_0 twin. A few short checks use the real model
   ($DS_TEST_MODEL), skipped under the sanitizers. llama.cpp comparisons live in test_smollm2
   and test_qwen2_tiny. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"


#define TINY_VOCAB 258
#define TINY_EMBD 64
#define TINY_HEAD 4
#define TINY_HEAD_KV 2
#define TINY_HEAD_DIM 16
#define TINY_FF 128
#define TINY_LAYER 2
#define TINY_CTX 256
#define TINY_EOS 257

typedef struct tiny_tensor {
    char name[48];
    float *f32;       /* the values (what a reference forward uses) */
    void *stored;     /* as written: F32 or Q8_0 */
    int64_t ne[2];
    int n_dims;
} tiny_tensor;

typedef struct tiny_model {
    tiny_tensor t[4 + 9 * TINY_LAYER];
    int n;
    ds_type wtype;
} tiny_model;

static uint64_t tiny_rng;
static float tiny_uniform(void) { /* U(-1, 1) */
    uint64_t z = (tiny_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 4503599627370496.0 - 1.0);
}

/* matrices in the model's type, norms F32; for Q8_0 the reference values are the dequantized
   ones, so the reference and the model hold the same numbers */
static void tiny_add(tiny_model *m, const char *name, int64_t ne0, int64_t ne1, float base, float scale) {
    tiny_tensor *t = &m->t[m->n++];
    int64_t i, n = ne0 * ne1;
    ds_type ty = ne1 > 1 ? m->wtype : DS_TYPE_F32;
    uint64_t nb = 0;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->n_dims = ne1 > 1 ? 2 : 1;
    t->f32 = (float *)malloc((size_t)n * sizeof(float));
    for (i = 0; i < n; i++) t->f32[i] = base + scale * tiny_uniform();
    ds_type_nbytes(ty, n, &nb);
    t->stored = malloc((size_t)nb);
    if (ty == DS_TYPE_F32) {
        memcpy(t->stored, t->f32, (size_t)nb);
    } else {
        ds__quantize_row(ty, t->f32, t->stored, n);
        ds__dequantize_row(ty, t->stored, t->f32, n);
    }
}

static const float *tiny_get(const tiny_model *m, const char *name) {
    int i;
    for (i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].name, name)) return m->t[i].f32;
    return NULL;
}

static void tiny_free(tiny_model *m) {
    int i;
    for (i = 0; i < m->n; i++) {
        free(m->t[i].f32);
        free(m->t[i].stored);
    }
    m->n = 0;
}

static void tiny_make(tiny_model *m, ds_type wtype, uint64_t seed) {
    const int q = TINY_HEAD * TINY_HEAD_DIM, kv = TINY_HEAD_KV * TINY_HEAD_DIM;
    char name[48];
    int l;
    memset(m, 0, sizeof *m);
    m->wtype = wtype;
    tiny_rng = seed;
    tiny_add(m, "token_embd.weight", TINY_EMBD, TINY_VOCAB, 0, 1.0f);
    for (l = 0; l < TINY_LAYER; l++) {
#define TINY_T(suffix, ne0, ne1, base, scale) \
    snprintf(name, sizeof name, "blk.%d.%s", l, suffix); \
    tiny_add(m, name, ne0, ne1, base, scale)
        TINY_T("attn_norm.weight", TINY_EMBD, 1, 1.0f, 0.2f);
        TINY_T("attn_q.weight", TINY_EMBD, q, 0, 0.3f);
        TINY_T("attn_k.weight", TINY_EMBD, kv, 0, 0.3f);
        TINY_T("attn_v.weight", TINY_EMBD, kv, 0, 0.3f);
        TINY_T("attn_output.weight", q, TINY_EMBD, 0, 0.2f);
        TINY_T("ffn_norm.weight", TINY_EMBD, 1, 1.0f, 0.2f);
        TINY_T("ffn_gate.weight", TINY_EMBD, TINY_FF, 0, 0.3f);
        TINY_T("ffn_up.weight", TINY_EMBD, TINY_FF, 0, 0.3f);
        TINY_T("ffn_down.weight", TINY_FF, TINY_EMBD, 0, 0.2f);
#undef TINY_T
    }
    tiny_add(m, "output_norm.weight", TINY_EMBD, 1, 1.0f, 0.2f);
}

/* GPT-2's byte-to-character map, as UTF-8 */
static void tiny_byte_token(int b, char *out) {
#define TINY_PRINTABLE(i) (((i) >= '!' && (i) <= '~') || ((i) >= 0xA1 && (i) <= 0xAC) || ((i) >= 0xAE && (i) <= 0xFF))
    int cp = b, i;
    if (!TINY_PRINTABLE(b)) {
        cp = 256;
        for (i = 0; i < b; i++)
            if (!TINY_PRINTABLE(i)) cp++;
    }
#undef TINY_PRINTABLE
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static ds_status tiny_write(const tiny_model *m, const char *path) {
    static char vocab[TINY_VOCAB][16];
    const char *tokens[TINY_VOCAB];
    int32_t types[TINY_VOCAB];
    ds_gguf_writer *w;
    ds_status s;
    int i;
    for (i = 0; i < 256; i++) {
        tiny_byte_token(i, vocab[i]);
        types[i] = 1;
    }
    snprintf(vocab[256], sizeof vocab[0], "<|im_start|>");
    snprintf(vocab[257], sizeof vocab[0], "<|im_end|>");
    types[256] = types[257] = 3;
    for (i = 0; i < TINY_VOCAB; i++) tokens[i] = vocab[i];
    if ((s = ds_gguf_writer_create(&w)) != DS_OK) return s;
    ds_gguf_writer_set_str(w, "general.architecture", "llama");
    ds_gguf_writer_set_u32(w, "llama.context_length", TINY_CTX);
    ds_gguf_writer_set_u32(w, "llama.embedding_length", TINY_EMBD);
    ds_gguf_writer_set_u32(w, "llama.block_count", TINY_LAYER);
    ds_gguf_writer_set_u32(w, "llama.feed_forward_length", TINY_FF);
    ds_gguf_writer_set_u32(w, "llama.attention.head_count", TINY_HEAD);
    ds_gguf_writer_set_u32(w, "llama.attention.head_count_kv", TINY_HEAD_KV);
    ds_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    ds_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    ds_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    ds_gguf_writer_set_str(w, "tokenizer.ggml.pre", "smollm");
    ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tokens, TINY_VOCAB);
    ds_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", DS_GGUF_I32, types, TINY_VOCAB);
    ds_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", TINY_EOS);
    ds_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 0);
    for (i = 0; i < m->n; i++) {
        ds_type ty = m->t[i].n_dims == 2 ? m->wtype : DS_TYPE_F32;
        if ((s = ds_gguf_writer_add_tensor(w, m->t[i].name, ty, m->t[i].n_dims, m->t[i].ne, m->t[i].stored)) != DS_OK) break;
    }
    if (s == DS_OK) s = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    return s;
}

/* ---- an independent reference forward: double precision, with llama.cpp's f16 roundings in
   attention (K and V as its cache stores them, the query, and the softmax probabilities) ---- */
static void ref_matvec(double *y, const float *w, const double *x, int rows, int cols) {
    int r, c;
    for (r = 0; r < rows; r++) {
        double s = 0;
        for (c = 0; c < cols; c++) s += (double)w[(size_t)r * cols + c] * x[c];
        y[r] = s;
    }
}
static void ref_rmsnorm(double *y, const double *x, const float *w, int n) {
    double ss = 0;
    int i;
    for (i = 0; i < n; i++) ss += x[i] * x[i];
    for (i = 0; i < n; i++) y[i] = x[i] / sqrt(ss / n + 1e-5) * w[i];
}
/* llama GGUF rope: rotate adjacent pairs (x[2i], x[2i+1]) by pos * 10000^(-2i/D) */
static void ref_rope(double *x, int n_heads, int pos) {
    int h, i;
    for (h = 0; h < n_heads; h++)
        for (i = 0; i < TINY_HEAD_DIM / 2; i++) {
            double th = pos * pow(10000.0, -2.0 * i / TINY_HEAD_DIM), c = cos(th), s = sin(th);
            double *p = x + h * TINY_HEAD_DIM + 2 * i, a = p[0], b = p[1];
            p[0] = a * c - b * s;
            p[1] = a * s + b * c;
        }
}
static double ref_f16(double v) { return ds__f16_to_f32(ds__f32_to_f16((float)v)); }

/* logits (n, V) of tokens at positions 0..n-1 */
static void ref_forward(const tiny_model *m, const int32_t *tok, int n, float *logits) {
    enum { E = TINY_EMBD, QD = TINY_HEAD * TINY_HEAD_DIM, KD = TINY_HEAD_KV * TINY_HEAD_DIM, F = TINY_FF, D = TINY_HEAD_DIM };
    double *x = (double *)calloc((size_t)n * E, sizeof(double)), *kc = (double *)calloc((size_t)n * KD, sizeof(double));
    double *vc = (double *)calloc((size_t)n * KD, sizeof(double)), *sc = (double *)calloc((size_t)n, sizeof(double));
    double h[E], q[QD], o[QD], tmp[E], g[F], u[F], lg[TINY_VOCAB];
    const float *emb = tiny_get(m, "token_embd.weight");
    char nm[64];
    int t, l, i, hd, j, d;
#define W(suffix) (snprintf(nm, sizeof nm, "blk.%d." suffix, l), tiny_get(m, nm))
    for (t = 0; t < n; t++)
        for (i = 0; i < E; i++) x[t * E + i] = emb[tok[t] * E + i];
    for (l = 0; l < TINY_LAYER; l++) {
        for (t = 0; t < n; t++) { /* causal: K, V of position t are ready before query t */
            ref_rmsnorm(h, x + t * E, W("attn_norm.weight"), E);
            ref_matvec(q, W("attn_q.weight"), h, QD, E);
            ref_matvec(kc + t * KD, W("attn_k.weight"), h, KD, E);
            ref_matvec(vc + t * KD, W("attn_v.weight"), h, KD, E);
            ref_rope(q, TINY_HEAD, t);
            for (i = 0; i < QD; i++) q[i] = ref_f16(q[i]);
            ref_rope(kc + t * KD, TINY_HEAD_KV, t);
            for (i = 0; i < KD; i++) {
                kc[t * KD + i] = ref_f16(kc[t * KD + i]);
                vc[t * KD + i] = ref_f16(vc[t * KD + i]);
            }
            for (hd = 0; hd < TINY_HEAD; hd++) {
                int kv = hd / (TINY_HEAD / TINY_HEAD_KV);
                double mx = -1e300, z = 0;
                for (j = 0; j <= t; j++) {
                    double s = 0;
                    for (d = 0; d < D; d++) s += q[hd * D + d] * kc[j * KD + kv * D + d];
                    sc[j] = s / sqrt((double)D);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (j = 0; j <= t; j++) z += (sc[j] = exp(sc[j] - mx));
                for (j = 0; j <= t; j++) sc[j] = ref_f16(sc[j] / z);
                for (d = 0; d < D; d++) {
                    double a = 0;
                    for (j = 0; j <= t; j++) a += sc[j] * vc[j * KD + kv * D + d];
                    o[hd * D + d] = a;
                }
            }
            ref_matvec(tmp, W("attn_output.weight"), o, E, QD);
            for (i = 0; i < E; i++) x[t * E + i] += tmp[i];
        }
        for (t = 0; t < n; t++) {
            ref_rmsnorm(h, x + t * E, W("ffn_norm.weight"), E);
            ref_matvec(g, W("ffn_gate.weight"), h, F, E);
            ref_matvec(u, W("ffn_up.weight"), h, F, E);
            for (i = 0; i < F; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            ref_matvec(tmp, W("ffn_down.weight"), g, E, F);
            for (i = 0; i < E; i++) x[t * E + i] += tmp[i];
        }
    }
#undef W
    for (t = 0; t < n; t++) {
        ref_rmsnorm(h, x + t * E, tiny_get(m, "output_norm.weight"), E);
        ref_matvec(lg, emb, h, TINY_VOCAB, E);
        for (i = 0; i < TINY_VOCAB; i++) logits[(size_t)t * TINY_VOCAB + i] = (float)lg[i];
    }
    free(x);
    free(kc);
    free(vc);
    free(sc);
}

/* ---- fixtures -------------------------------------------------------------------------------- */
static const char *tiny_path(ds_type t) {
    static char path[DS_TYPE_COUNT_][512];
    const char *dir = getenv("BUILD");
    int i = (int)t;
    snprintf(path[i], sizeof path[i], "%s/infer_tiny_%s.gguf", dir && *dir ? dir : "build", ds_type_name(t));
    return path[i];
}

/* writes the tiny model of type t (once per run) and loads it; m may be NULL */
static ds_model *tiny_load(ds_test_ctx *t, ds_type type, tiny_model *keep) {
    static int written[DS_TYPE_COUNT_];
    tiny_model m;
    ds_model *model = NULL;
    ds_status s;
    int i = (int)type;
    tiny_make(&m, type, 1234);
    if (!written[i]) {
        s = tiny_write(&m, tiny_path(type));
        DS_CHECK(t, s == DS_OK, "write %s: %s", tiny_path(type), ds_last_error());
        written[i] = s == DS_OK;
    }
    if (written[i]) {
        s = ds_model_load(tiny_path(type), NULL, &model);
        DS_CHECK(t, s == DS_OK, "load: %s", ds_last_error());
    }
    if (keep) *keep = m;
    else tiny_free(&m);
    return model;
}

static ds_session *new_session(const ds_model *m, int n_ctx, int n_batch, int n_threads) {
    ds_session_config p;
    ds_session *s = NULL;
    memset(&p, 0, sizeof p);
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_threads = n_threads;
    ds_session_create(m, &p, &s);
    return s;
}

static void some_tokens(int32_t *tok, int n, uint64_t seed) {
    int i;
    tiny_rng = seed;
    for (i = 0; i < n; i++) tok[i] = (int32_t)((tiny_uniform() + 1.0f) * 0.5f * 255.99f);
}

static float max_diff(const float *a, const float *b, size_t n) {
    float d = 0;
    size_t i;
    for (i = 0; i < n; i++) d = fabsf(a[i] - b[i]) > d ? fabsf(a[i] - b[i]) : d;
    return d;
}

/* ---- loading ----------------------------------------------------------------------------------- */
static void test_tiny_config(ds_test_ctx *t) {
    ds_model *m = tiny_load(t, DS_TYPE_F32, NULL);
    const ds_model_config *c;
    ds_chat_template tmpl = DS_CHAT_AUTO;
    if (!m) return;
    c = ds_model_get_config(m);
    DS_CHECK(t, !strcmp(c->arch, "llama") && c->n_vocab == TINY_VOCAB && c->n_embd == TINY_EMBD && c->n_layer == TINY_LAYER, "shape");
    DS_CHECK(t, c->n_head == TINY_HEAD && c->n_head_kv == TINY_HEAD_KV && c->head_dim == TINY_HEAD_DIM && c->n_rot == TINY_HEAD_DIM, "heads");
    DS_CHECK(t, c->tied_output && !c->qkv_bias && !c->rope_neox && c->n_ctx == TINY_CTX && c->n_ff == TINY_FF, "flags");
    DS_CHECK(t, fabsf(c->rope_base - 10000.0f) < 1e-3f && fabsf(c->norm_eps - 1e-5f) < 1e-9f, "rope base %g eps %g", c->rope_base, c->norm_eps);
    DS_CHECK(t, ds_tokenizer_n_vocab(ds_model_tokenizer(m)) == TINY_VOCAB, "tokenizer");
    /* 2 layers of q, k, v, o, gate, up, down F32 matrices and two norms, plus the tied output */
    DS_CHECK(t, ds_model_weight_bytes(m) == 4ull * (TINY_LAYER * (64 * 64 * 2 + 32 * 64 * 2 + 3 * 64 * 128 + 2 * 64) + 64 + TINY_VOCAB * 64),
             "weight bytes %llu", (unsigned long long)ds_model_weight_bytes(m));
    DS_CHECK(t, ds_model_chat_template(m, &tmpl) == DS_OK && tmpl == DS_CHAT_CHATML, "ChatML found from <|im_start|> in the vocabulary");
    ds_model_free(m);
}

/* a model missing one tensor or holding one of the wrong shape fails, naming it */
static void test_bad_tensors(ds_test_ctx *t) {
    tiny_model m;
    ds_model *model = NULL;
    char path[600];
    ds_status s;
    tiny_make(&m, DS_TYPE_F32, 1234);
    snprintf(path, sizeof path, "%s.bad", tiny_path(DS_TYPE_F32));
    snprintf(m.t[m.n - 3].name, sizeof m.t[0].name, "blk.1.ffn_upp.weight");   /* ffn_up renamed */
    DS_REQUIRE(t, tiny_write(&m, path) == DS_OK, "write");
    s = ds_model_load(path, NULL, &model);
    DS_CHECK(t, s == DS_ERR_FORMAT && strstr(ds_last_error(), "blk.1.ffn_up.weight"), "missing: %s %s", ds_status_str(s), ds_last_error());
    snprintf(m.t[m.n - 3].name, sizeof m.t[0].name, "blk.1.ffn_up.weight");
    m.t[m.n - 3].ne[0] = TINY_EMBD / 2;   /* (64, 128) written as (32, 256) */
    m.t[m.n - 3].ne[1] = TINY_FF * 2;
    DS_REQUIRE(t, tiny_write(&m, path) == DS_OK, "write");
    s = ds_model_load(path, NULL, &model);
    DS_CHECK(t, s == DS_ERR_FORMAT && strstr(ds_last_error(), "blk.1.ffn_up.weight") && strstr(ds_last_error(), "shape"), "shape: %s %s", ds_status_str(s), ds_last_error());
    DS_CHECK(t, ds_model_load("/nonexistent.gguf", NULL, &model) == DS_ERR_IO, "no file");
    remove(path);
    tiny_free(&m);
}

/* ---- the forward ------------------------------------------------------------------------------- */
static void check_against_reference(ds_test_ctx *t, ds_type type, float tol) {
    enum { N = 40 };
    tiny_model tm;
    ds_model *m = tiny_load(t, type, &tm);
    ds_session *s;
    int32_t tok[N];
    float *ours = (float *)malloc(sizeof(float) * N * TINY_VOCAB), *ref = (float *)malloc(sizeof(float) * N * TINY_VOCAB);
    if (m) {
        some_tokens(tok, N, 7);
        ref_forward(&tm, tok, N, ref);
        s = new_session(m, 64, 0, 2);
        DS_CHECK(t, s && ds_session_eval_all(s, tok, N, ours) == DS_OK, "eval_all: %s", ds_last_error());
        DS_CHECK(t, max_diff(ours, ref, (size_t)N * TINY_VOCAB) <= tol, "max |ours - reference| = %g > %g", max_diff(ours, ref, (size_t)N * TINY_VOCAB), tol);
        ds_session_free(s);
        ds_model_free(m);
    }
    tiny_free(&tm);
    free(ours);
    free(ref);
}
/* F32 weights: the only loose ends are the f16 roundings, where a last-bit difference in a
   probability before rounding moves it by one f16 step (5e-4 relative); such flips reach the
   logits (range about 20) at up to ~2e-3. A wrong rope pairing or head mapping is off by O(1). */
static void test_forward_f32_matches_reference(ds_test_ctx *t) { check_against_reference(t, DS_TYPE_F32, 5e-3f); }
/* the same with every SIMD path off: the scalar attention products and conversions */
static void test_forward_scalar_matches_reference(ds_test_ctx *t) {
    ds_cpu_set_mask(0);
    check_against_reference(t, DS_TYPE_F32, 5e-3f);
    ds_cpu_set_mask(~0u);
}
/* Q8_0 weights: activations are quantized to 8 bits on the way into every matrix, so only
   close: within 5% of the logits' range (about 20); a miswired path is off by the whole range */
static void test_forward_q8_0_close_to_reference(ds_test_ctx *t) { check_against_reference(t, DS_TYPE_Q8_0, 1.0f); }

/* the same tokens give the same logits whether fed at once, in chunks or one by one */
static void check_batching(ds_test_ctx *t, ds_type type) {
    enum { N = 37 };
    ds_model *m = tiny_load(t, type, NULL);
    ds_session *a, *b, *c;
    int32_t tok[N];
    float *all = (float *)malloc(sizeof(float) * N * TINY_VOCAB), *one = (float *)malloc(sizeof(float) * N * TINY_VOCAB);
    float *chunked = (float *)malloc(sizeof(float) * N * TINY_VOCAB), last[TINY_VOCAB];
    int i;
    if (!m) return;
    some_tokens(tok, N, 11);
    a = new_session(m, 64, 0, 2);
    b = new_session(m, 64, 0, 1);
    c = new_session(m, 64, 5, 2);   /* prefill in chunks of 5 */
    DS_REQUIRE(t, a && b && c, "sessions");
    DS_CHECK(t, ds_session_eval_all(a, tok, N, all) == DS_OK, "eval_all");
    for (i = 0; i < N; i++) DS_CHECK(t, ds_session_eval(b, tok + i, 1, one + (size_t)i * TINY_VOCAB) == DS_OK, "eval %d", i);
    DS_CHECK(t, ds_session_eval_all(c, tok, N, chunked) == DS_OK, "chunked");
    /* a batch and a single token sum attention in different orders (as llama.cpp's do): logits
       of magnitude ~20 agree to rounding, not to the bit */
    DS_CHECK(t, max_diff(all, one, (size_t)N * TINY_VOCAB) <= 1e-3f, "batched vs one by one: %g", max_diff(all, one, (size_t)N * TINY_VOCAB));
    DS_CHECK(t, max_diff(all, chunked, (size_t)N * TINY_VOCAB) <= 1e-3f, "batched vs chunks of 5: %g", max_diff(all, chunked, (size_t)N * TINY_VOCAB));
    DS_CHECK(t, ds_session_pos(a) == N && ds_session_pos(b) == N && ds_session_pos(c) == N, "positions");
    /* eval gives the last row of eval_all */
    ds_session_rewind(a, 0);
    DS_CHECK(t, ds_session_eval(a, tok, N, last) == DS_OK, "eval");
    DS_CHECK(t, max_diff(last, all + (size_t)(N - 1) * TINY_VOCAB, TINY_VOCAB) <= 1e-5f, "eval vs eval_all: %g", max_diff(last, all + (size_t)(N - 1) * TINY_VOCAB, TINY_VOCAB));
    ds_session_free(a);
    ds_session_free(b);
    ds_session_free(c);
    ds_model_free(m);
    free(all);
    free(one);
    free(chunked);
}
/* Every kernel level computes in one float order (llama.cpp's; deepseek.h design notes,
   "numerics"), so logits are bit-identical whichever instructions run: a batch, then single
   tokens (the two attention orders), for the integer-dot weight types */
static void check_isa_identical(ds_test_ctx *t, ds_type type) {
    enum { N = 29, D = 3 };
    static const unsigned masks[] = {0u, DS_CPU_AVX2 | DS_CPU_FMA | DS_CPU_F16C, DS_CPU_AVX2 | DS_CPU_FMA | DS_CPU_F16C | DS_CPU_AVXVNNI, DS_CPU_NEON};
    ds_model *m = tiny_load(t, type, NULL);
    float *ref = (float *)malloc(sizeof(float) * (D + 1) * TINY_VOCAB), *got = (float *)malloc(sizeof(float) * (D + 1) * TINY_VOCAB);
    int32_t tok[N + D];
    unsigned k;
    int i, levels = 0;
    if (!m) return;
    some_tokens(tok, N + D, 5);
    for (k = 0; k <= sizeof masks / sizeof masks[0] && !t->failed; k++) {
        unsigned mask = k == 0 ? ~0u : masks[k - 1];
        float *out = k == 0 ? ref : got;
        ds_session *s;
        ds_cpu_set_mask(mask);
        if (k > 0 && ds_cpu_features() != mask) continue; /* a level this CPU lacks */
        s = new_session(m, 64, 0, 2);
        DS_REQUIRE(t, s != NULL, "session");
        DS_CHECK(t, ds_session_eval(s, tok, N, out) == DS_OK, "eval");
        for (i = 0; i < D; i++) DS_CHECK(t, ds_session_eval(s, tok + N + i, 1, out + (size_t)(i + 1) * TINY_VOCAB) == DS_OK, "eval %d", i);
        ds_session_free(s);
        if (k > 0) {
            DS_CHECK(t, memcmp(ref, got, sizeof(float) * (D + 1) * TINY_VOCAB) == 0, "%s: logits with features %#x differ from all features' (max %g)",
                     ds_type_name(type), mask, max_diff(ref, got, (size_t)(D + 1) * TINY_VOCAB));
            levels++;
        }
    }
    ds_cpu_set_mask(~0u);
    if (!t->failed && !levels) DS_SKIP(t, "no kernel level below this CPU's best to compare with");
    ds_model_free(m);
    free(ref);
    free(got);
}
static void test_isa_identical_q4_1(ds_test_ctx *t) { check_isa_identical(t, DS_TYPE_Q4_1); }
static void test_isa_identical_q8_0(ds_test_ctx *t) { check_isa_identical(t, DS_TYPE_Q8_0); }

static void test_batched_equals_one_by_one_f32(ds_test_ctx *t) { check_batching(t, DS_TYPE_F32); }
static void test_batched_equals_one_by_one_q8_0(ds_test_ctx *t) { check_batching(t, DS_TYPE_Q8_0); }

/* rewinding and evaluating other tokens then the first ones again gives the first logits */
static void test_rewind(ds_test_ctx *t) {
    enum { N = 30, K = 12 };
    ds_model *m = tiny_load(t, DS_TYPE_Q8_0, NULL);
    ds_session *s;
    int32_t tok[N], other[N];
    float first[TINY_VOCAB], again[TINY_VOCAB];
    if (!m) return;
    some_tokens(tok, N, 3);
    some_tokens(other, N, 4);
    s = new_session(m, 64, 0, 2);
    DS_REQUIRE(t, s != NULL, "session");
    DS_CHECK(t, ds_session_eval(s, tok, K, NULL) == DS_OK && ds_session_eval(s, tok + K, N - K, first) == DS_OK, "eval");
    DS_CHECK(t, ds_session_rewind(s, K) == DS_OK && ds_session_pos(s) == K, "rewind");
    DS_CHECK(t, ds_session_eval(s, other + K, N - K, NULL) == DS_OK, "other tokens");
    DS_CHECK(t, ds_session_rewind(s, K) == DS_OK && ds_session_eval(s, tok + K, N - K, again) == DS_OK, "again");
    DS_CHECK(t, memcmp(first, again, sizeof first) == 0, "logits differ after rewind: %g", max_diff(first, again, TINY_VOCAB));
    DS_CHECK(t, memcmp(ds_session_tokens(s), tok, sizeof tok) == 0, "token history");
    DS_CHECK(t, ds_session_rewind(s, N + 1) == DS_ERR_INVALID_ARG && ds_session_pos(s) == N, "rewind forward refused");
    DS_CHECK(t, ds_session_rewind(s, 0) == DS_OK && ds_session_pos(s) == 0, "reset");
    ds_session_free(s);
    ds_model_free(m);
}

static void test_bad_inputs(ds_test_ctx *t) {
    ds_model *m = tiny_load(t, DS_TYPE_F32, NULL);
    ds_session *s;
    int32_t tok[20] = {1, 2, 3}, bad_hi[2] = {5, TINY_VOCAB}, bad_lo[1] = {-1};
    float lg[TINY_VOCAB];
    ds_status st;
    if (!m) return;
    s = new_session(m, 16, 0, 1);
    DS_REQUIRE(t, s != NULL, "session");
    st = ds_session_eval(s, bad_hi, 2, lg);
    DS_CHECK(t, st == DS_ERR_INVALID_ARG && strstr(ds_last_error(), "258"), "id = n_vocab: %s %s", ds_status_str(st), ds_last_error());
    DS_CHECK(t, ds_session_eval(s, bad_lo, 1, lg) == DS_ERR_INVALID_ARG, "negative id");
    DS_CHECK(t, ds_session_eval(s, tok, 0, lg) == DS_ERR_INVALID_ARG, "n = 0");
    DS_CHECK(t, ds_session_eval_all(s, tok, 1, NULL) == DS_ERR_INVALID_ARG, "eval_all without logits");
    DS_CHECK(t, ds_session_pos(s) == 0, "nothing evaluated");
    DS_CHECK(t, ds_session_eval(s, tok, 10, NULL) == DS_OK, "10 of 16");
    st = ds_session_eval(s, tok, 7, lg);
    DS_CHECK(t, st == DS_ERR_STATE && ds_session_pos(s) == 10, "context exceeded: %s, pos %d", ds_status_str(st), ds_session_pos(s));
    DS_CHECK(t, ds_session_eval(s, tok, 6, lg) == DS_OK && ds_session_pos(s) == 16, "exactly full");
    DS_CHECK(t, ds_session_create(NULL, NULL, &s) == DS_ERR_INVALID_ARG, "NULL model");
    ds_session_free(s);
    ds_model_free(m);
}

/* ---- generation ------------------------------------------------------------------------------- */
typedef struct stream_log {
    char text[4096];
    size_t len;
    int calls, cancel_after;
} stream_log;
static int stream_collect(void *user, int32_t token, const char *text, size_t len) {
    stream_log *l = (stream_log *)user;
    (void)token;
    if (l->len + len < sizeof l->text) memcpy(l->text + l->len, text, len);
    l->len += len;
    l->calls++;
    return l->cancel_after && l->calls >= l->cancel_after;
}

static ds_status greedy_text(ds_session *s, const char *prompt, int n, const char *const *stop, int n_stop, stream_log *log, ds_generate_result *r) {
    ds_generate_config gc;
    memset(&gc, 0, sizeof gc);
    memset(log, 0, sizeof *log);
    gc.max_tokens = n;
    gc.stop = stop;
    gc.n_stop = n_stop;
    gc.on_token = stream_collect;
    gc.user = log;
    return ds_generate(s, prompt, &gc, r);
}

/* A stop string cut from a free run's text ends a second run right before it; nothing of it
   (nor of a partial match) reaches the stream. */
static void test_generate_stop_string(ds_test_ctx *t) {
    ds_model *m = tiny_load(t, DS_TYPE_F32, NULL);
    ds_session *s;
    stream_log free_run, stopped;
    ds_generate_result r;
    char stop[8];
    const char *stops[2];
    size_t at;
    if (!m) return;
    s = new_session(m, 128, 0, 2);
    DS_REQUIRE(t, greedy_text(s, "the cat", 40, NULL, 0, &free_run, &r) == DS_OK, "free run: %s", ds_last_error());
    DS_REQUIRE(t, r.state == DS_GEN_MAX_TOKENS && r.n_generated == 40 && free_run.len >= 12, "free run: state %d, %d tokens, %zu bytes", r.state, r.n_generated, free_run.len);
    at = free_run.len / 2;
    memcpy(stop, free_run.text + at, 3);
    stop[3] = 0;
    stops[0] = "\x01never";
    stops[1] = stop;
    DS_REQUIRE(t, greedy_text(s, "the cat", 40, stops, 2, &stopped, &r) == DS_OK, "stopped run");
    DS_CHECK(t, r.state == DS_GEN_STOP_STRING, "state %d", r.state);
    {
        char *first = strstr(free_run.text, stop);
        size_t want = first ? (size_t)(first - free_run.text) : at;
        DS_CHECK(t, stopped.len == want && memcmp(stopped.text, free_run.text, want) == 0, "stopped text is %zu bytes, want %zu", stopped.len, want);
    }
    DS_CHECK(t, r.n_reused == 6, "the second run reused the prompt's 7 tokens but the last: %d", r.n_reused);
    ds_session_free(s);
    ds_model_free(m);
}

static void test_generate_cancel_and_budget(ds_test_ctx *t) {
    ds_model *m = tiny_load(t, DS_TYPE_F32, NULL);
    ds_session *s;
    ds_generator *g;
    ds_generate_config gc;
    ds_generate_result r;
    stream_log log;
    const char *text;
    size_t len;
    int calls = 0;
    if (!m) return;
    s = new_session(m, 128, 0, 2);
    memset(&log, 0, sizeof log);
    memset(&gc, 0, sizeof gc);
    gc.on_token = stream_collect;
    gc.user = &log;
    log.cancel_after = 5;
    DS_CHECK(t, ds_generate(s, "hello", &gc, &r) == DS_OK && r.state == DS_GEN_CANCELLED && r.n_generated == 5, "cancel: state %d after %d", r.state, r.n_generated);
    DS_CHECK(t, ds_session_pos(s) == 5 + 5, "the session holds the prompt and the 5 tokens: %d", ds_session_pos(s));
    /* token budget: exactly 3 per step until max_tokens */
    memset(&log, 0, sizeof log);
    gc.max_tokens = 10;
    DS_REQUIRE(t, ds_generator_create(s, "hello", &gc, &g) == DS_OK, "create");
    DS_CHECK(t, ds_generator_state(g) == DS_GEN_RUNNING && ds_generator_result(g)->n_generated == 0, "no work at create");
    while (ds_generator_state(g) == DS_GEN_RUNNING && calls < 20) {
        int before = ds_generator_result(g)->n_generated;
        DS_CHECK(t, ds_generator_step(g, 3, 0) == DS_OK, "step");
        DS_CHECK(t, ds_generator_result(g)->n_generated - before == (before < 9 ? 3 : 1), "tokens in step %d: %d", calls, ds_generator_result(g)->n_generated - before);
        calls++;
    }
    DS_CHECK(t, ds_generator_state(g) == DS_GEN_MAX_TOKENS && calls == 4, "state %d after %d steps", ds_generator_state(g), calls);
    text = ds_generator_text(g, &len);
    DS_CHECK(t, len == log.len && memcmp(text, log.text, len) == 0, "streamed text equals the generator's text");
    ds_generator_free(g);
    /* a time budget far below one token's work still makes progress: one piece of work per call */
    gc.max_tokens = 4;
    DS_REQUIRE(t, ds_generator_create(s, "hello there", &gc, &g) == DS_OK, "create");
    calls = 0;
    while (ds_generator_state(g) == DS_GEN_RUNNING && calls < 100) {
        int before = ds_generator_result(g)->n_generated, pre = ds_generator_result(g)->n_prompt;
        ds_generator_step(g, 0, 1e-9);
        DS_CHECK(t, ds_generator_result(g)->n_generated - before <= 1, "one token per tiny step");
        DS_CHECK(t, ds_generator_result(g)->n_generated == before || ds_generator_result(g)->n_prompt == pre, "a prompt chunk or a token, not both");
        calls++;
    }
    DS_CHECK(t, ds_generator_state(g) == DS_GEN_MAX_TOKENS && ds_generator_result(g)->n_generated == 4, "finished");
    ds_generator_free(g);
    ds_session_free(s);
    ds_model_free(m);
}

/* a full context ends the generation with a state, not an error */
static void test_generate_context_full(ds_test_ctx *t) {
    ds_model *m = tiny_load(t, DS_TYPE_F32, NULL);
    ds_session *s;
    ds_generate_config gc;
    ds_generate_result r;
    if (!m) return;
    s = new_session(m, 12, 0, 1);
    memset(&gc, 0, sizeof gc);
    DS_CHECK(t, ds_generate(s, "abcd", &gc, &r) == DS_OK && r.state == DS_GEN_CONTEXT_FULL && ds_session_pos(s) == 12, "state %d pos %d", r.state, ds_session_pos(s));
    DS_CHECK(t, ds_generate(s, "a prompt longer than twelve", &gc, &r) == DS_ERR_STATE, "a prompt over n_ctx is refused");
    ds_session_free(s);
    ds_model_free(m);
}

/* the cache's f16 row conversions: the F16C path gives the scalar reference's bits */
static void test_f16_rows(ds_test_ctx *t) {
    enum { N = 1003 };
    static float x[N], a[N], b[N];
    static uint16_t ha[N], hb[N];
    ds__ops cpu, ref;
    int i;
    tiny_rng = 99;
    for (i = 0; i < N; i++) x[i] = (float)(tiny_uniform() * pow(2.0, 40.0 * tiny_uniform()));   /* subnormal to overflow */
    x[0] = 65520.0f;   /* rounds to inf */
    x[1] = -0.0f;
    x[2] = 2.98023224e-08f;   /* half the smallest subnormal: ties to even, 0 */
    ds__ops_init(&cpu, DS_BACKEND_CPU);
    ds__ops_init(&ref, DS_BACKEND_REF);
    cpu.f32_to_f16(ha, x, N);
    memcpy(a, x, sizeof x);
    cpu.f16_round(a, N);
    ref.f32_to_f16(hb, x, N);
    memcpy(b, x, sizeof x);
    ref.f16_round(b, N);
    DS_CHECK(t, memcmp(ha, hb, sizeof ha) == 0 && memcmp(a, b, sizeof a) == 0, "f32 -> f16 differs from the scalar path");
    cpu.f16_to_f32(a, ha, N);
    ref.f16_to_f32(b, ha, N);
    DS_CHECK(t, memcmp(a, b, sizeof a) == 0, "f16 -> f32 differs from the scalar path");
}

/* ---- chat templates ------------------------------------------------------------------------------ */
static void test_chat_templates(ds_test_ctx *t) {
    ds_chat_message msgs[3] = {{"system", "Be brief.", 0}, {"user", " Hi!\n", 0}, {"assistant", "Hello.", 0}};
    char buf[512];
    size_t len = 0;
    DS_CHECK(t, ds_chat_apply(NULL, DS_CHAT_CHATML, msgs, 3, 1, buf, sizeof buf, &len) == DS_OK, "chatml");
    DS_CHECK(t, !strcmp(buf, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi!\n<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>assistant\n") && len == strlen(buf), "chatml: %s", buf);
    DS_CHECK(t, ds_chat_apply(NULL, DS_CHAT_LLAMA3, msgs, 2, 1, buf, sizeof buf, &len) == DS_OK, "llama3");
    DS_CHECK(t, !strcmp(buf, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"), "llama3: %s", buf);
    DS_CHECK(t, ds_chat_apply(NULL, DS_CHAT_CHATML, msgs, 1, 0, buf, 10, &len) == DS_ERR_BOUNDS && len == strlen("<|im_start|>system\nBe brief.<|im_end|>\n"), "too small: len %zu", len);
    DS_CHECK(t, ds_chat_apply(NULL, DS_CHAT_AUTO, msgs, 1, 0, buf, sizeof buf, &len) == DS_ERR_INVALID_ARG, "auto needs a model");
}

/* ---- the real model (a few short checks) ------------------------------------------------------------ */
static void test_real_model(ds_test_ctx *t) {
    const char *path = ds_test_env_file("DS_TEST_MODEL");
    ds_model *m;
    ds_session *s;
    ds_generate_config gc;
    ds_generate_result r;
    stream_log log;
    const ds_model_config *c;
    ds_chat_template tmpl = DS_CHAT_AUTO;
    if (!path) DS_SKIP(t, "DS_TEST_MODEL is not set or missing");
    if (getenv("DS_TEST_SANITIZED")) DS_SKIP(t, "the real model is too slow under the sanitizers (the tiny model covers the same code)");
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load: %s", ds_last_error());
    c = ds_model_get_config(m);
    DS_CHECK(t, c->n_layer == 30 && c->n_embd == 576 && c->n_head == 9 && c->n_head_kv == 3 && c->head_dim == 64 && c->n_ff == 1536 && c->n_vocab == 49152, "SmolLM2-135M shape");
    DS_CHECK(t, c->tied_output && fabsf(c->rope_base - 100000.0f) < 1 && c->n_ctx == 8192, "tied, rope base 1e5");
    DS_CHECK(t, ds_model_chat_template(m, &tmpl) == DS_OK && tmpl == DS_CHAT_CHATML, "ChatML from tokenizer.chat_template");
    s = new_session(m, 256, 0, 2);
    DS_REQUIRE(t, s != NULL, "session");
    memset(&gc, 0, sizeof gc);
    memset(&log, 0, sizeof log);
    gc.max_tokens = 6;
    gc.on_token = stream_collect;
    gc.user = &log;
    DS_CHECK(t, ds_generate(s, "The capital of France is", &gc, &r) == DS_OK, "generate: %s", ds_last_error());
    log.text[log.len < sizeof log.text ? log.len : sizeof log.text - 1] = 0;
    DS_CHECK(t, strstr(log.text, "Paris") != NULL, "greedy completion '%.200s' names Paris", log.text);
    /* a chat turn ends on <|im_end|>: the model's end of generation */
    memset(&log, 0, sizeof log);
    gc.max_tokens = 40;
    DS_CHECK(t, ds_generate(s, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                               "<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n", &gc, &r) == DS_OK, "chat");
    DS_CHECK(t, r.state == DS_GEN_EOS && log.len > 0, "the reply ends with EOS (state %d, %zu bytes)", r.state, log.len);
    ds_session_free(s);
    ds_model_free(m);
}

DS_TEST_MAIN(DS_T(test_tiny_config), DS_T(test_bad_tensors), DS_T(test_forward_f32_matches_reference), DS_T(test_forward_scalar_matches_reference),
             DS_T(test_forward_q8_0_close_to_reference), DS_T(test_batched_equals_one_by_one_f32),
             DS_T(test_batched_equals_one_by_one_q8_0), DS_T(test_isa_identical_q4_1), DS_T(test_isa_identical_q8_0), DS_T(test_rewind), DS_T(test_bad_inputs),
             DS_T(test_generate_stop_string), DS_T(test_generate_cancel_and_budget), DS_T(test_generate_context_full),
             DS_T(test_f16_rows), DS_T(test_chat_templates), DS_T(test_real_model))
