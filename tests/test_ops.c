/* test_ops.c - the op layer (deepseek.h >>backend): model and trainer code reach kernels only
   through a ds__ops table, and the reference backend runs the same models and training steps
   through the same code as the CPU backend.

   - model_code_calls_no_kernel: from // >>model to the end of the implementation no line calls
     a kernel variant (_ref, _avx2, _avx512, _neon, ...), uses an intrinsic or asks for CPU
     features: those live in >>kernels and >>backend only.
   - llama / deepseek2 inference: a tiny model (trained a few steps, exported as GGUF) gives the
     same top-1 token everywhere on both backends, its logits close (the f32 matmuls sum in
     another order; everything else is bit-identical by the kernels' promise).
   - dense and MLA + MoE training steps: the same losses to rounding on both backends.
   - SmolLM2 (DS_TEST_MODEL) on the reference backend: bit-identical logits to the CPU
     backend's (its matmuls are integer-dot types), or the same top-1 where a weight type is not. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"

/* ---- the grep: what model code must not contain ------------------------------------------ */
static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

static void model_code_calls_no_kernel(ds_test_ctx *t) {
    static const char *const banned[] = {"_ref(", "_avx2(", "_avxvnni(", "_avx512(", "_avx512bf16(", "_zmm(", "_neon(",
                                         "ds_cpu_features", "DS_CPU_", "target(", "_mm256_", "_mm512_", "_mm_",
                                         "DS__X86_SIMD", "DS__NEON", "DS__EW", "ds__mm_pick", "DS__HAS("};
    char *src = read_text("deepseek.h"), *begin, *end, *line;
    int lineno, hits = 0;
    size_t i;
    if (!src) src = read_text("../deepseek.h");
    DS_REQUIRE(t, src != NULL, "cannot read deepseek.h (run from the repository root)");
    begin = strstr(src, "\n// >>model\n");
    end = strstr(src, "#endif /* DEEPSEEK_IMPLEMENTATION */");
    DS_REQUIRE(t, begin && end && begin < end, "anchors // >>model and the implementation's end not found");
    DS_CHECK(t, strstr(src, "\n// >>backend\n") && strstr(src, "\n// >>backend\n") < begin, ">>backend must come before the model code");
    lineno = 1;
    for (line = src; line < begin; line++) lineno += *line == '\n';
    for (line = begin + 1; line < end && !t->failed;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        lineno++;
        for (i = 0; i < sizeof banned / sizeof banned[0]; i++) {
            const char *hit = strstr(line, banned[i]);
            if (hit && hit < line + len) {
                DS_CHECK(t, 0, "deepseek.h:%d: model code uses '%s': %.*s", lineno, banned[i], (int)DS__MIN(len, 160), line);
                hits++;
            }
        }
        if (!nl) break;
        line = nl + 1;
    }
    free(src);
    (void)hits;
}

/* ---- tiny models through both backends ------------------------------------------------------ */
static float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0.0f;
    size_t i;
    for (i = 0; i < n; i++) m = DS__MAX(m, fabsf(a[i] - b[i]));
    return m;
}
static int argmax_of(const float *x, int n) {
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* logits (n + 2 rows) of a batch of n tokens, then two single tokens (the decode path) */
static ds_status eval_on(const ds_model *m, ds_backend b, const int32_t *tok, int n, float *logits) {
    ds_session_config sp;
    ds_session *s = NULL;
    ds_status st;
    int V = ds_model_get_config(m)->n_vocab;
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = n + 2;
    sp.n_threads = 2;
    sp.backend = b;
    if ((st = ds_session_create(m, &sp, &s)) != DS_OK) return st;
    st = ds_session_eval_all(s, tok, n, logits);
    if (st == DS_OK) st = ds_session_eval(s, tok + n, 1, logits + (size_t)n * V);
    if (st == DS_OK) st = ds_session_eval(s, tok + n + 1, 1, logits + (size_t)(n + 1) * V);
    ds_session_free(s);
    return st;
}

/* rows of logits: the same top-1 in every row, and either the same bits or within tol */
static void compare_backends(ds_test_ctx *t, const char *what, const ds_model *m, const int32_t *tok, int n, int bits, float tol) {
    int V = ds_model_get_config(m)->n_vocab, r;
    float *a = (float *)malloc(sizeof(float) * (size_t)(n + 2) * V), *b = (float *)malloc(sizeof(float) * (size_t)(n + 2) * V);
    DS_REQUIRE(t, a && b, "out of memory");
    DS_CHECK(t, eval_on(m, DS_BACKEND_CPU, tok, n, a) == DS_OK, "%s: CPU backend: %s", what, ds_last_error());
    DS_CHECK(t, eval_on(m, DS_BACKEND_REF, tok, n, b) == DS_OK, "%s: reference backend: %s", what, ds_last_error());
    for (r = 0; r < n + 2 && !t->failed; r++)
        DS_CHECK(t, argmax_of(a + (size_t)r * V, V) == argmax_of(b + (size_t)r * V, V), "%s: row %d: top-1 %d (CPU) vs %d (reference)", what, r,
                 argmax_of(a + (size_t)r * V, V), argmax_of(b + (size_t)r * V, V));
    if (bits) DS_CHECK(t, !memcmp(a, b, sizeof(float) * (size_t)(n + 2) * V), "%s: logits not bit-identical (max diff %g)", what, max_abs_diff(a, b, (size_t)(n + 2) * V));
    else DS_CHECK(t, max_abs_diff(a, b, (size_t)(n + 2) * V) <= tol, "%s: logits differ by %g", what, max_abs_diff(a, b, (size_t)(n + 2) * V));
    fprintf(stderr, "%s: CPU vs reference backend, max |logit difference| %.3g over %d rows\n", what, max_abs_diff(a, b, (size_t)(n + 2) * V), n + 2);
    free(a);
    free(b);
}

static const char *const dense_cfg = "n_vocab = 260\n n_embd = 64\n n_layer = 2\n n_head = 4\n n_head_kv = 2\n n_ff = 96\n n_ctx = 32\n"
                                     "batch = 2\n seq_len = 16\n lr = 3e-3\n seed = 5\n threads = 2\n";
static const char *const mla_moe_cfg = "n_vocab = 260\n n_embd = 32\n n_layer = 2\n n_head = 2\n n_ff = 64\n n_ctx = 32\n batch = 2\n seq_len = 16\n"
                                       "lr = 1e-2\n seed = 3\n threads = 2\n layers.attn = mla\n layer.1.ffn = moe\n kv_lora_rank = 16\n"
                                       "qk_nope_dim = 8\n qk_rope_dim = 4\n v_head_dim = 8\n n_expert = 4\n n_expert_used = 2\n"
                                       "n_expert_shared = 1\n n_ff_expert = 16\n gating = sigmoid\n norm_topk = 1\n";

static void tokens_for(int32_t *tok, int32_t *tgt, int n, int V) {
    int i;
    for (i = 0; i < n; i++) {
        tok[i] = (i * 7 + i / 5) % V;
        if (tgt) tgt[i] = ((i + 1) * 7 + (i + 1) / 5) % V;
    }
}

/* trains cfg for a few steps on backend b; losses gets the step losses, path (if any) the model */
static void train_steps(ds_test_ctx *t, const char *cfg, ds_backend b, int steps, float *losses, const char *path) {
    ds_model_config mc;
    ds_train_config tc;
    ds_trainer *tr = NULL;
    ds_train_step_info info;
    int32_t tok[32], tgt[32];
    int s;
    memset(&mc, 0, sizeof mc);
    memset(&tc, 0, sizeof tc);
    DS_REQUIRE(t, ds_model_config_parse(cfg, &mc, &tc, "test") == DS_OK, "parse: %s", ds_last_error());
    tc.backend = b;
    DS_REQUIRE(t, ds_trainer_create(&mc, &tc, &tr) == DS_OK, "create: %s", ds_last_error());
    tokens_for(tok, tgt, 32, mc.n_vocab);
    for (s = 0; s < steps && !t->failed; s++) {
        DS_CHECK(t, ds_trainer_step_tokens(tr, tok, tgt, &info) == DS_OK, "step: %s", ds_last_error());
        losses[s] = info.loss;
    }
    if (path) DS_CHECK(t, ds_trainer_save_model(tr, path, NULL) == DS_OK, "export: %s", ds_last_error());
    ds_trainer_free(tr);
}

static void check_training(ds_test_ctx *t, const char *cfg, const char *what) {
    enum { STEPS = 4 };
    float a[STEPS], b[STEPS];
    int s;
    train_steps(t, cfg, DS_BACKEND_CPU, STEPS, a, NULL);
    train_steps(t, cfg, DS_BACKEND_REF, STEPS, b, NULL);
    for (s = 0; s < STEPS && !t->failed; s++)
        DS_CHECK(t, fabsf(a[s] - b[s]) <= 1e-4f * fabsf(a[s]), "%s: step %d loss %.9g (CPU) vs %.9g (reference)", what, s, a[s], b[s]);
    fprintf(stderr, "%s: CPU vs reference backend losses %.7f %.7f ... %.7f %.7f\n", what, a[0], b[0], a[STEPS - 1], b[STEPS - 1]);
}
static void dense_training_step_on_both_backends(ds_test_ctx *t) { check_training(t, dense_cfg, "dense training"); }
static void mla_moe_training_step_on_both_backends(ds_test_ctx *t) { check_training(t, mla_moe_cfg, "MLA + MoE training"); }

static void check_inference(ds_test_ctx *t, const char *cfg, const char *path, const char *what) {
    float losses[3];
    ds_model *m = NULL;
    int32_t tok[18];
    train_steps(t, cfg, DS_BACKEND_CPU, 3, losses, path);
    if (t->failed) return;
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load %s: %s", path, ds_last_error());
    tokens_for(tok, NULL, 18, ds_model_get_config(m)->n_vocab);
    compare_backends(t, what, m, tok, 16, 0, 1e-3f);
    ds_model_free(m);
}
static void llama_inference_on_both_backends(ds_test_ctx *t) { check_inference(t, dense_cfg, "build/test_ops_llama.gguf", "llama"); }
static void deepseek2_inference_on_both_backends(ds_test_ctx *t) { check_inference(t, mla_moe_cfg, "build/test_ops_deepseek2.gguf", "deepseek2"); }

/* ---- SmolLM2 on the reference backend ------------------------------------------------------- */
static void smollm2_on_reference_backend(ds_test_ctx *t) {
    const char *path = ds_test_env_file("DS_TEST_MODEL");
    ds_model *m = NULL;
    int32_t tok[18];
    int il, bits;
    if (!path) DS_SKIP(t, "DS_TEST_MODEL (SmolLM2-135M-Instruct Q4_1 GGUF) is not set or missing");
    DS_REQUIRE(t, ds_model_load(path, NULL, &m) == DS_OK, "load %s: %s", path, ds_last_error());
    {
        static const char text[] = "The quick brown fox jumps over the lazy dog, and then it runs away into the woods";
        size_t n = 0;
        DS_REQUIRE(t, ds_tokenize(ds_model_tokenizer(m), text, strlen(text), 0, tok, 18, &n) == DS_OK && n >= 18, "tokenize: %s", ds_last_error());
    }
    /* bit-identical when every matmul weight has an integer-dot type (the kernels' promise) */
    bits = 1;
    for (il = 0; il < m->cfg.n_layer && m->layers; il++) {
        const ds__layer *L = &m->layers[il];
        const ds__mat *ws[7];
        int k;
        ws[0] = &L->gqa.wq; ws[1] = &L->gqa.wk; ws[2] = &L->gqa.wv; ws[3] = &L->gqa.wo; ws[4] = &L->ffn.gate; ws[5] = &L->ffn.up; ws[6] = &L->ffn.down;
        for (k = 0; k < 7; k++) bits &= ws[k]->type == DS_TYPE_Q4_0 || ws[k]->type == DS_TYPE_Q4_1 || ws[k]->type == DS_TYPE_Q8_0;
    }
    bits &= m->output.type == DS_TYPE_Q4_0 || m->output.type == DS_TYPE_Q4_1 || m->output.type == DS_TYPE_Q8_0;
    compare_backends(t, bits ? "SmolLM2 (bit-identical)" : "SmolLM2 (same top-1)", m, tok, 16, bits, 0.5f);
    ds_model_free(m);
}

/* a backend id neither backend knows is an error, not a silent default */
static void unknown_backend_is_refused(ds_test_ctx *t) {
    ds_model_config mc;
    ds_train_config tc;
    ds_trainer *tr = NULL;
    ds_model *m = NULL;
    ds_session *s = NULL;
    ds_session_config sp;
    float losses[1];
    memset(&mc, 0, sizeof mc);
    memset(&tc, 0, sizeof tc);
    DS_REQUIRE(t, ds_model_config_parse(dense_cfg, &mc, &tc, "test") == DS_OK, "parse: %s", ds_last_error());
    tc.backend = (ds_backend)7;
    DS_CHECK(t, ds_trainer_create(&mc, &tc, &tr) == DS_ERR_INVALID_ARG && tr == NULL, "trainer with backend 7");
    train_steps(t, dense_cfg, DS_BACKEND_CPU, 1, losses, "build/test_ops_backend.gguf");
    DS_REQUIRE(t, ds_model_load("build/test_ops_backend.gguf", NULL, &m) == DS_OK, "load: %s", ds_last_error());
    memset(&sp, 0, sizeof sp);
    sp.backend = (ds_backend)7;
    DS_CHECK(t, ds_session_create(m, &sp, &s) == DS_ERR_INVALID_ARG && s == NULL, "session with backend 7");
    ds_model_free(m);
}

DS_TEST_MAIN(DS_T(model_code_calls_no_kernel), DS_T(unknown_backend_is_refused), DS_T(dense_training_step_on_both_backends), DS_T(mla_moe_training_step_on_both_backends),
             DS_T(llama_inference_on_both_backends), DS_T(deepseek2_inference_on_both_backends), DS_T(smollm2_on_reference_backend))
