/* LoRA adapters at inference: the safetensors reader and writer, adapter files (GGUF and PEFT)
   and their validation, a session's low-rank products against a model whose weights the test
   merges itself (W + scale * alpha / r * B A, in double), and ds_lora_merge.
   The formats are checked against llama.cpp and the safetensors package in tests/check_lora.py. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"

#define C_ 64     /* width */
#define H_ 4      /* heads of 16 */
#define HKV_ 2
#define F_ 128
#define L_ 2
#define V_ 64
#define R_ 4

static uint64_t rng = 42;
static float frand(void) {   /* uniform in [-1, 1) */
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2 - 1);
}

static const char *bpath(const char *file) {
    static char buf[8][512];
    static int k;
    const char *dir = getenv("BUILD");
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/lora_%s", dir && *dir ? dir : "build", file);
    return buf[k];
}

/* the base's matrices, in ggml order: name, ne0 (in), ne1 (out) */
static const struct { const char *name; int in, out; } mats[] = {
    {"attn_q", C_, H_ * 16}, {"attn_k", C_, HKV_ * 16}, {"attn_v", C_, HKV_ * 16}, {"attn_output", H_ * 16, C_},
    {"ffn_gate", C_, F_}, {"ffn_up", C_, F_}, {"ffn_down", F_, C_}};

typedef struct weights {
    float *w[L_][7];
    float *emb, *norm[L_][2], *out_norm;
} weights;

static void weights_make(weights *m) {
    int l, k, i;
    rng = 7;
    m->emb = (float *)malloc(sizeof(float) * C_ * V_);
    for (i = 0; i < C_ * V_; i++) m->emb[i] = frand();
    for (l = 0; l < L_; l++) {
        for (k = 0; k < 7; k++) {
            int n = mats[k].in * mats[k].out;
            m->w[l][k] = (float *)malloc(sizeof(float) * (size_t)n);
            for (i = 0; i < n; i++) m->w[l][k][i] = 0.3f * frand();
        }
        for (k = 0; k < 2; k++) {
            m->norm[l][k] = (float *)malloc(sizeof(float) * C_);
            for (i = 0; i < C_; i++) m->norm[l][k][i] = 1 + 0.2f * frand();
        }
    }
    m->out_norm = (float *)malloc(sizeof(float) * C_);
    for (i = 0; i < C_; i++) m->out_norm[i] = 1 + 0.2f * frand();
}
static void weights_free(weights *m) {
    int l, k;
    for (l = 0; l < L_; l++) {
        for (k = 0; k < 7; k++) free(m->w[l][k]);
        free(m->norm[l][0]);
        free(m->norm[l][1]);
    }
    free(m->emb);
    free(m->out_norm);
}

static ds_status model_write(const weights *m, const char *path, const char *arch) {
    static char vocab[V_][8];
    const char *tokens[V_];
    int32_t types[V_];
    ds_gguf_writer *w;
    ds_status s;
    char key[64];
    int i, l, k;
    int64_t ne[2];
    for (i = 0; i < V_; i++) {
        vocab[i][0] = (char)('0' + i);   /* printable, distinct */
        vocab[i][1] = 0;
        tokens[i] = vocab[i];
        types[i] = 1;
    }
    if ((s = ds_gguf_writer_create(&w)) != DS_OK) return s;
    ds_gguf_writer_set_str(w, "general.architecture", arch);
#define KEY(k_, v_) (snprintf(key, sizeof key, "%s.%s", arch, k_), ds_gguf_writer_set_u32(w, key, v_))
    KEY("context_length", 64);
    KEY("embedding_length", C_);
    KEY("block_count", L_);
    KEY("feed_forward_length", F_);
    KEY("attention.head_count", H_);
    KEY("attention.head_count_kv", HKV_);
#undef KEY
    ds_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tokens, V_);
    ds_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", DS_GGUF_I32, types, V_);
    ne[0] = C_;
    ne[1] = V_;
    s = ds_gguf_writer_add_tensor(w, "token_embd.weight", DS_TYPE_F32, 2, ne, m->emb);
    for (l = 0; l < L_ && s == DS_OK; l++) {
        static char names[L_][9][40];
        for (k = 0; k < 7 && s == DS_OK; k++) {
            snprintf(names[l][k], 40, "blk.%d.%s.weight", l, mats[k].name);
            ne[0] = mats[k].in;
            ne[1] = mats[k].out;
            s = ds_gguf_writer_add_tensor(w, names[l][k], DS_TYPE_F32, 2, ne, m->w[l][k]);
        }
        ne[0] = C_;
        snprintf(names[l][7], 40, "blk.%d.attn_norm.weight", l);
        snprintf(names[l][8], 40, "blk.%d.ffn_norm.weight", l);
        if (s == DS_OK) s = ds_gguf_writer_add_tensor(w, names[l][7], DS_TYPE_F32, 1, ne, m->norm[l][0]);
        if (s == DS_OK) s = ds_gguf_writer_add_tensor(w, names[l][8], DS_TYPE_F32, 1, ne, m->norm[l][1]);
    }
    ne[0] = C_;
    if (s == DS_OK) s = ds_gguf_writer_add_tensor(w, "output_norm.weight", DS_TYPE_F32, 1, ne, m->out_norm);
    if (s == DS_OK) s = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    return s;
}

/* an adapter: A (r, in), B (out, r) per adapted matrix of each layer */
typedef struct adapter {
    float *a[L_][7], *b[L_][7];
    int use[7];
    int r;
    float alpha;
} adapter;

static void adapter_make(adapter *ad, uint64_t seed, int r, float alpha, const int *use, float b_scale) {
    int l, k, i;
    memset(ad, 0, sizeof *ad);
    rng = seed;
    ad->r = r;
    ad->alpha = alpha;
    for (k = 0; k < 7; k++) ad->use[k] = use[k];
    for (l = 0; l < L_; l++)
        for (k = 0; k < 7; k++) {
            if (!use[k]) continue;
            ad->a[l][k] = (float *)malloc(sizeof(float) * (size_t)(r * mats[k].in));
            ad->b[l][k] = (float *)malloc(sizeof(float) * (size_t)(r * mats[k].out));
            for (i = 0; i < r * mats[k].in; i++) ad->a[l][k][i] = 0.3f * frand();
            for (i = 0; i < r * mats[k].out; i++) ad->b[l][k][i] = b_scale * frand();
        }
}
static void adapter_free(adapter *ad) {
    int l, k;
    for (l = 0; l < L_; l++)
        for (k = 0; k < 7; k++) {
            free(ad->a[l][k]);
            free(ad->b[l][k]);
        }
}

/* llama.cpp's layout; hostile != NULL names one defect to write */
static ds_status adapter_write(const adapter *ad, const char *path, const char *arch, const char *hostile) {
    ds_gguf_writer *w;
    ds_status s;
    int l, k;
    static char names[L_ * 7 * 2][64];
    static float big[16 * (F_ + 32)];   /* data of the "shape" defect's wider lora_a */
    int nn = 0;
    if ((s = ds_gguf_writer_create(&w)) != DS_OK) return s;
    ds_gguf_writer_set_str(w, "general.architecture", arch);
    ds_gguf_writer_set_str(w, "general.type", "adapter");
    ds_gguf_writer_set_str(w, "adapter.type", "lora");
    ds_gguf_writer_set_f32(w, "adapter.lora.alpha", hostile && !strcmp(hostile, "alpha") ? -1.0f : ad->alpha);
    for (l = 0; l < L_ && s == DS_OK; l++)
        for (k = 0; k < 7 && s == DS_OK; k++) {
            int64_t ne[2];
            int r = ad->r;
            if (!ad->use[k]) continue;
            snprintf(names[nn], 64, "blk.%d.%s.weight.lora_a", l, hostile && !strcmp(hostile, "target") && l == 1 && k == 0 ? "attn_qq" : mats[k].name);
            ne[0] = mats[k].in + (hostile && !strcmp(hostile, "shape") && l == 1 && k == 2 ? 32 : 0);
            ne[1] = r;
            s = ds_gguf_writer_add_tensor(w, names[nn++], DS_TYPE_F32, 2, ne, ne[0] > mats[k].in ? big : ad->a[l][k]);
            if (hostile && !strcmp(hostile, "partner") && l == 1) continue;
            snprintf(names[nn], 64, "blk.%d.%s.weight.lora_b", l, hostile && !strcmp(hostile, "target") && l == 1 && k == 0 ? "attn_qq" : mats[k].name);
            ne[0] = hostile && !strcmp(hostile, "rmismatch") && l == 1 ? r - 1 : r;
            ne[1] = mats[k].out;
            if (s == DS_OK) s = ds_gguf_writer_add_tensor(w, names[nn++], DS_TYPE_F32, 2, ne, ad->b[l][k]);
        }
    if (s == DS_OK) s = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    return s;
}

/* base weights plus sum_i scale_i * alpha_i / r_i * B_i A_i, computed in double */
static void weights_merge(weights *out, const weights *base, const adapter *const *ads, const float *scales, int n) {
    int l, k, i, o, c, q;
    *out = *base;
    for (l = 0; l < L_; l++)
        for (k = 0; k < 7; k++) {
            int in = mats[k].in, nout = mats[k].out;
            out->w[l][k] = (float *)malloc(sizeof(float) * (size_t)(in * nout));
            for (o = 0; o < nout; o++)
                for (c = 0; c < in; c++) {
                    double v = base->w[l][k][o * in + c];
                    for (i = 0; i < n; i++) {
                        const adapter *ad = ads[i];
                        double f = (double)scales[i] * ad->alpha / ad->r, d = 0;
                        if (!ad->use[k]) continue;
                        for (q = 0; q < ad->r; q++) d += (double)ad->b[l][k][o * ad->r + q] * ad->a[l][k][q * in + c];
                        v += f * d;
                    }
                    out->w[l][k][o * in + c] = (float)v;
                }
        }
}
static void weights_free_merged(weights *m) {
    int l, k;
    for (l = 0; l < L_; l++)
        for (k = 0; k < 7; k++) free(m->w[l][k]);
}

static const int32_t toks[] = {1, 5, 9, 33, 2, 60, 17, 8, 40, 11, 3, 0};
#define NT_ ((int)(sizeof toks / sizeof toks[0]))

/* all logits of toks (NT_ * V_); the session is reset first */
static ds_status logits_of(ds_session *s, float *out) {
    ds_status st = ds_session_rewind(s, 0);
    return st != DS_OK ? st : ds_session_eval_all(s, toks, NT_, out);
}

static double max_rel(const float *a, const float *b, int n) {
    double m = 0, scale = 0;
    int i;
    for (i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m / (scale > 0 ? scale : 1);
}

static ds_model *load(ds_test_ctx *t, const char *path) {
    ds_model *m = NULL;
    ds_status s = ds_model_load(path, NULL, &m);
    DS_CHECK(t, s == DS_OK, "load %s: %s", path, ds_last_error());
    return m;
}
static ds_session *session(const ds_model *m, int n_batch) {
    ds_session_config p;
    ds_session *s = NULL;
    memset(&p, 0, sizeof p);
    p.n_ctx = 64;
    p.n_batch = n_batch;
    p.n_threads = 2;
    return ds_session_create(m, &p, &s) == DS_OK ? s : NULL;
}

static const int all7[7] = {1, 1, 1, 1, 1, 1, 1};
static const int some[7] = {1, 0, 1, 0, 0, 1, 1};

/* ---- safetensors ---------------------------------------------------------------------------- */
static void test_safetensors_roundtrip(ds_test_ctx *t) {
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[4] = {0x3c00, 0x4000, 0xbc00, 0};
    ds_st_write w[2];
    const char *meta[4] = {"format", "pt", "k\"ey", "v\\al"};
    ds_safetensors *st = NULL;
    const ds_st_tensor *x;
    ds_status s;
    memset(w, 0, sizeof w);
    w[0].name = "zeta.weight";
    w[0].type = DS_TYPE_F32;
    w[0].n_dims = 2;
    w[0].shape[0] = 2;
    w[0].shape[1] = 3;
    w[0].data = a;
    w[1].name = "alpha";
    w[1].type = DS_TYPE_F16;
    w[1].n_dims = 1;
    w[1].shape[0] = 4;
    w[1].data = h;
    s = ds_safetensors_write(bpath("st.safetensors"), w, 2, meta, 2);
    DS_REQUIRE(t, s == DS_OK, "write: %s", ds_last_error());
    s = ds_safetensors_open(bpath("st.safetensors"), &st);
    DS_REQUIRE(t, s == DS_OK, "open: %s", ds_last_error());
    DS_CHECK(t, ds_safetensors_n_tensors(st) == 2, "%lld tensors", (long long)ds_safetensors_n_tensors(st));
    x = ds_safetensors_find(st, "zeta.weight");
    DS_CHECK(t, x && x->type == DS_TYPE_F32 && x->n_dims == 2 && x->shape[0] == 2 && x->shape[1] == 3 && x->nbytes == 24 && !memcmp(x->data, a, 24), "zeta.weight read back wrong");
    x = ds_safetensors_find(st, "alpha");
    DS_CHECK(t, x && x->type == DS_TYPE_F16 && !strcmp(x->dtype, "F16") && x->nbytes == 8 && !memcmp(x->data, h, 8), "alpha read back wrong");
    DS_CHECK(t, ds_safetensors_meta(st, "k\"ey") && !strcmp(ds_safetensors_meta(st, "k\"ey"), "v\\al"), "metadata with escapes");
    DS_CHECK(t, !ds_safetensors_find(st, "nope") && !ds_safetensors_meta(st, "nope"), "absent names found");
    ds_safetensors_free(st);
}

/* an in-memory file: 8-byte length, header, data */
static ds_status st_try(const char *header, size_t data_len, size_t cut) {
    static uint8_t buf[1024];
    size_t hl = strlen(header), i;
    ds_safetensors *st = NULL;
    ds_status s;
    for (i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    memset(buf + 8 + hl, 0, data_len);
    s = ds_safetensors_open_memory(buf, DS__MIN(8 + hl + data_len, cut), &st);
    ds_safetensors_free(st);
    return s;
}

static void test_safetensors_hostile(ds_test_ctx *t) {
    static const struct { const char *h; size_t data; ds_status want; const char *what; } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, DS_OK, "valid"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, DS_ERR_BOUNDS, "data past the end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16, DS_ERR_FORMAT, "size != shape x dtype"},
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, DS_ERR_UNSUPPORTED, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, DS_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, DS_ERR_FORMAT, "duplicate"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, DS_ERR_FORMAT, "negative dim"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, DS_ERR_FORMAT, "reversed offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, DS_ERR_OVERFLOW, "overflow"},
        {"{\"__metadata__\":{\"x\":1}}", 0, DS_ERR_FORMAT, "metadata not strings"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, DS_ERR_FORMAT, "bad JSON"},
        {"[1,2]", 0, DS_ERR_FORMAT, "not an object"},
    };
    size_t i;
    uint8_t big[12] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}', ' ', ' '};
    ds_safetensors *st = NULL;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ds_status s = st_try(cases[i].h, cases[i].data, (size_t)-1);
        DS_CHECK(t, s == cases[i].want, "%s: %s, wanted %s (%s)", cases[i].what, ds_status_str(s), ds_status_str(cases[i].want), ds_last_error());
    }
    DS_CHECK(t, st_try("{}", 0, 5) == DS_ERR_FORMAT, "5 bytes accepted");
    DS_CHECK(t, ds_safetensors_open_memory(big, sizeof big, &st) == DS_ERR_BOUNDS && !st, "a header length past the file accepted");
    DS_CHECK(t, st_try("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 30) == DS_ERR_BOUNDS, "a header cut off accepted");
}

/* ---- adapters ------------------------------------------------------------------------------- */
static void test_lora_runtime_matches_merged_weights(ds_test_ctx *t) {
    weights base, merged;
    adapter a1, a2;
    const adapter *ads[2];
    float scales[2] = {0.5f, -1.5f};
    ds_model *mb = NULL, *mm = NULL;
    ds_session *s = NULL, *sm = NULL;
    ds_lora_adapter *la[2] = {NULL, NULL};
    float *lb = (float *)malloc(sizeof(float) * NT_ * V_), *lm = (float *)malloc(sizeof(float) * NT_ * V_);
    float *lx = (float *)malloc(sizeof(float) * NT_ * V_);
    ds_status st;
    int batch;
    weights_make(&base);
    adapter_make(&a1, 11, R_, 8.0f, all7, 0.2f);
    adapter_make(&a2, 12, 2, 3.0f, some, 0.2f);
    ads[0] = &a1;
    ads[1] = &a2;
    weights_merge(&merged, &base, ads, scales, 2);
    DS_REQUIRE(t, model_write(&base, bpath("base.gguf"), "llama") == DS_OK && model_write(&merged, bpath("ref_merged.gguf"), "llama") == DS_OK, "write: %s", ds_last_error());
    DS_REQUIRE(t, adapter_write(&a1, bpath("a1.gguf"), "llama", NULL) == DS_OK && adapter_write(&a2, bpath("a2.gguf"), "llama", NULL) == DS_OK, "write: %s", ds_last_error());
    mb = load(t, bpath("base.gguf"));
    mm = load(t, bpath("ref_merged.gguf"));
    if (mb && mm) {
        st = ds_lora_adapter_load(bpath("a1.gguf"), mb, &la[0]);
        DS_CHECK(t, st == DS_OK, "load a1: %s", ds_last_error());
        st = ds_lora_adapter_load(bpath("a2.gguf"), NULL, &la[1]);
        DS_CHECK(t, st == DS_OK, "load a2: %s", ds_last_error());
    }
    for (batch = 1; batch <= 16 && !t->failed; batch += 15) {   /* decode-sized and prefill chunks */
        s = session(mb, batch);
        sm = session(mm, batch);
        DS_REQUIRE(t, s && sm, "sessions");
        DS_CHECK(t, logits_of(sm, lm) == DS_OK, "merged eval");
        DS_CHECK(t, ds_session_set_lora(s, la, scales, 2) == DS_OK, "set_lora: %s", ds_last_error());
        DS_CHECK(t, logits_of(s, lx) == DS_OK, "adapted eval");
        DS_CHECK(t, max_rel(lx, lm, NT_ * V_) < 1e-4, "batch %d: adapted logits differ from the merged weights' by %g (relative)", batch, max_rel(lx, lm, NT_ * V_));
        DS_CHECK(t, ds_session_set_lora(s, NULL, NULL, 0) == DS_OK && logits_of(s, lb) == DS_OK, "detach");
        DS_CHECK(t, max_rel(lb, lm, NT_ * V_) > 1e-3, "the adapters change nothing (%g)", max_rel(lb, lm, NT_ * V_));
        ds_session_free(s);
        ds_session_free(sm);
    }
    /* ds_lora_merge of the F32 base gives the test's own merged weights, and the same logits */
    if (!t->failed) {
        ds_model *mx = NULL;
        st = ds_lora_merge(bpath("base.gguf"), la, scales, 2, bpath("merged.gguf"), NULL);
        DS_CHECK(t, st == DS_OK, "merge: %s", ds_last_error());
        if (st == DS_OK && (mx = load(t, bpath("merged.gguf"))) != NULL) {
            s = session(mx, 16);
            DS_CHECK(t, s && logits_of(s, lx) == DS_OK, "merged model eval");
            DS_CHECK(t, max_rel(lx, lm, NT_ * V_) < 1e-4, "ds_lora_merge's logits differ from the reference merge's by %g", max_rel(lx, lm, NT_ * V_));
            ds_session_free(s);
            ds_model_free(mx);
        }
    }
    ds_lora_adapter_free(la[0]);
    ds_lora_adapter_free(la[1]);
    ds_model_free(mb);
    ds_model_free(mm);
    weights_free_merged(&merged);
    weights_free(&base);
    adapter_free(&a1);
    adapter_free(&a2);
    free(lb);
    free(lm);
    free(lx);
}

static void test_lora_zero_b_and_scale_zero_are_the_base(ds_test_ctx *t) {
    weights base;
    adapter z, a;
    ds_model *m;
    ds_session *s;
    ds_lora_adapter *lz = NULL, *la = NULL;
    float zero = 0.0f, one = 1.0f;
    float *l0 = (float *)malloc(sizeof(float) * NT_ * V_), *l1 = (float *)malloc(sizeof(float) * NT_ * V_);
    weights_make(&base);
    adapter_make(&z, 3, R_, 16.0f, all7, 0.0f);
    adapter_make(&a, 4, R_, 16.0f, all7, 0.2f);
    DS_REQUIRE(t, model_write(&base, bpath("base0.gguf"), "llama") == DS_OK && adapter_write(&z, bpath("zero.gguf"), "llama", NULL) == DS_OK &&
                      adapter_write(&a, bpath("a.gguf"), "llama", NULL) == DS_OK, "write: %s", ds_last_error());
    m = load(t, bpath("base0.gguf"));
    s = m ? session(m, 8) : NULL;
    DS_REQUIRE(t, s, "session");
    DS_CHECK(t, ds_lora_adapter_load(bpath("zero.gguf"), m, &lz) == DS_OK && ds_lora_adapter_load(bpath("a.gguf"), m, &la) == DS_OK, "load: %s", ds_last_error());
    DS_CHECK(t, logits_of(s, l0) == DS_OK, "base eval");
    DS_CHECK(t, ds_session_set_lora(s, &lz, &one, 1) == DS_OK && logits_of(s, l1) == DS_OK, "B = 0: %s", ds_last_error());
    DS_CHECK(t, !memcmp(l0, l1, sizeof(float) * NT_ * V_), "B = 0 changes the logits");
    DS_CHECK(t, ds_session_set_lora(s, &la, &zero, 1) == DS_OK && logits_of(s, l1) == DS_OK, "scale 0: %s", ds_last_error());
    DS_CHECK(t, !memcmp(l0, l1, sizeof(float) * NT_ * V_), "scale 0 changes the logits");
    /* the cache: a change rewinds, the same set keeps it */
    DS_CHECK(t, ds_session_rewind(s, 0) == DS_OK && ds_session_eval(s, toks, 3, NULL) == DS_OK && ds_session_pos(s) == 3, "eval");
    DS_CHECK(t, ds_session_set_lora(s, &la, &zero, 1) == DS_OK && ds_session_pos(s) == 3, "the same adapters rewound the session");
    DS_CHECK(t, ds_session_set_lora(s, &la, &one, 1) == DS_OK && ds_session_pos(s) == 0, "a new scale kept a stale cache");
    ds_session_free(s);
    ds_lora_adapter_free(lz);
    ds_lora_adapter_free(la);
    ds_model_free(m);
    weights_free(&base);
    adapter_free(&z);
    adapter_free(&a);
    free(l0);
    free(l1);
}

/* GGUF -> PEFT -> GGUF keeps every number, llama q / k rows included */
static void test_lora_formats_roundtrip(ds_test_ctx *t) {
    weights base;
    adapter a;
    ds_model *m;
    ds_lora_adapter *g = NULL, *p = NULL, *p_nobase = NULL, *g2 = NULL;
    ds_gguf *f1 = NULL, *f2 = NULL;
    ds_safetensors *st = NULL;
    char dir[512];
    int64_t i;
    weights_make(&base);
    adapter_make(&a, 5, R_, 8.0f, all7, 0.2f);
    DS_REQUIRE(t, model_write(&base, bpath("base1.gguf"), "llama") == DS_OK && adapter_write(&a, bpath("fmt.gguf"), "llama", NULL) == DS_OK, "write");
    m = load(t, bpath("base1.gguf"));
    DS_REQUIRE(t, m, "model");
    DS_CHECK(t, ds_lora_adapter_load(bpath("fmt.gguf"), m, &g) == DS_OK, "load: %s", ds_last_error());
    snprintf(dir, sizeof dir, "%s", bpath("peft"));
    DS_CHECK(t, g && ds_lora_adapter_save(g, dir, DS_LORA_PEFT) == DS_OK, "save PEFT: %s", ds_last_error());
    DS_CHECK(t, ds_lora_adapter_load(dir, m, &p) == DS_OK, "load PEFT: %s", ds_last_error());
    DS_CHECK(t, p && ds_lora_adapter_save(p, bpath("back.gguf"), DS_LORA_GGUF) == DS_OK, "save GGUF: %s", ds_last_error());
    DS_CHECK(t, ds_lora_adapter_load(dir, NULL, &p_nobase) == DS_OK, "load PEFT without a base: %s", ds_last_error());
    DS_CHECK(t, p_nobase && ds_lora_adapter_check(p_nobase, m) == DS_ERR_STATE, "a llama PEFT adapter without its head counts was accepted");
    DS_CHECK(t, p && ds_lora_adapter_alpha(p) == 8.0f && ds_lora_adapter_rank(p) == R_ && ds_lora_adapter_n_pairs(p) == 14, "alpha %g rank %d pairs %d", (double)ds_lora_adapter_alpha(p), ds_lora_adapter_rank(p), ds_lora_adapter_n_pairs(p));
    /* the PEFT file holds the Hugging Face layout: lora_B of v_proj (not permuted) is B itself */
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/adapter_model.safetensors");
    if (ds_safetensors_open(dir, &st) == DS_OK) {
        const ds_st_tensor *x = ds_safetensors_find(st, "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
        DS_CHECK(t, x && x->shape[0] == HKV_ * 16 && x->shape[1] == R_ && !memcmp(x->data, a.b[1][2], sizeof(float) * R_ * HKV_ * 16), "v_proj lora_B differs");
        x = ds_safetensors_find(st, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
        DS_CHECK(t, x && memcmp(x->data, a.b[0][0], sizeof(float) * R_ * H_ * 16), "q_proj lora_B was not permuted");
        ds_safetensors_free(st);
    } else {
        DS_CHECK(t, 0, "open %s: %s", dir, ds_last_error());
    }
    if (ds_gguf_open(bpath("fmt.gguf"), &f1) == DS_OK && ds_gguf_open(bpath("back.gguf"), &f2) == DS_OK) {
        DS_CHECK(t, ds_gguf_n_tensors(f1) == ds_gguf_n_tensors(f2), "tensor counts differ");
        for (i = 0; i < ds_gguf_n_tensors(f1) && !t->failed; i++) {
            const ds_gguf_tensor *x = ds_gguf_tensor_at(f1, i), *y;
            char name[80];
            snprintf(name, sizeof name, "%.*s", (int)x->name.len, x->name.ptr);
            y = ds_gguf_find_tensor(f2, name);
            DS_CHECK(t, y && y->nbytes == x->nbytes && !memcmp(x->data, y->data, x->nbytes), "%s changed through PEFT", name);
        }
    } else {
        DS_CHECK(t, 0, "open: %s", ds_last_error());
    }
    ds_gguf_free(f1);
    ds_gguf_free(f2);
    ds_lora_adapter_free(g);
    ds_lora_adapter_free(g2);
    ds_lora_adapter_free(p);
    ds_lora_adapter_free(p_nobase);
    ds_model_free(m);
    weights_free(&base);
    adapter_free(&a);
}

static void test_lora_hostile_adapters(ds_test_ctx *t) {
    static const struct { const char *defect, *arch, *in_msg; ds_status want; } cases[] = {
        {"alpha", "llama", "adapter.lora.alpha", DS_ERR_FORMAT},
        {"target", "llama", "attn_qq", DS_ERR_UNSUPPORTED},
        {"partner", "llama", "blk.1.attn_q.weight.lora_a", DS_ERR_FORMAT},
        {"rmismatch", "llama", "r mismatch", DS_ERR_FORMAT},
        {"shape", "llama", "blk.1.attn_v.weight", DS_ERR_FORMAT},
        {NULL, "qwen2", "qwen2", DS_ERR_FORMAT},
    };
    weights base;
    adapter a, r0;
    ds_model *m;
    ds_lora_adapter *x = NULL;
    ds_status s;
    size_t i;
    FILE *f;
    char buf[4096];
    size_t n;
    weights_make(&base);
    adapter_make(&a, 6, R_, 8.0f, all7, 0.2f);
    DS_REQUIRE(t, model_write(&base, bpath("base2.gguf"), "llama") == DS_OK, "write: %s", ds_last_error());
    m = load(t, bpath("base2.gguf"));
    DS_REQUIRE(t, m, "model");
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        DS_CHECK(t, adapter_write(&a, bpath("bad.gguf"), cases[i].arch, cases[i].defect) == DS_OK, "write %s: %s", cases[i].defect ? cases[i].defect : "arch", ds_last_error());
        s = ds_lora_adapter_load(bpath("bad.gguf"), m, &x);
        DS_CHECK(t, s == cases[i].want && !x, "%s: %s (%s), wanted %s", cases[i].defect ? cases[i].defect : "arch", ds_status_str(s), ds_last_error(), ds_status_str(cases[i].want));
        DS_CHECK(t, strstr(ds_last_error(), cases[i].in_msg) && strstr(ds_last_error(), "bad.gguf"), "the message '%s' does not name '%s' and the file", ds_last_error(), cases[i].in_msg);
    }
    /* wrong architecture, found when attaching an adapter loaded without a base */
    DS_CHECK(t, adapter_write(&a, bpath("bad.gguf"), "qwen2", NULL) == DS_OK && ds_lora_adapter_load(bpath("bad.gguf"), NULL, &x) == DS_OK, "load");
    if (x) {
        ds_session *se = session(m, 4);
        DS_CHECK(t, se && ds_session_set_lora(se, &x, NULL, 1) == DS_ERR_FORMAT && strstr(ds_last_error(), "qwen2"), "another architecture attached: %s", ds_last_error());
        ds_session_free(se);
        ds_lora_adapter_free(x);
        x = NULL;
    }
    /* rank 0: the GGUF reader or ours refuses it */
    adapter_make(&r0, 7, 0, 8.0f, some, 0.2f);
    DS_CHECK(t, adapter_write(&r0, bpath("bad.gguf"), "llama", NULL) == DS_OK, "write");
    s = ds_lora_adapter_load(bpath("bad.gguf"), m, &x);
    DS_CHECK(t, s != DS_OK && !x, "rank 0 accepted");
    adapter_free(&r0);
    /* truncated */
    DS_CHECK(t, adapter_write(&a, bpath("good.gguf"), "llama", NULL) == DS_OK, "write");
    f = fopen(bpath("good.gguf"), "rb");
    n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    f = fopen(bpath("bad.gguf"), "wb");
    if (f) {
        fwrite(buf, 1, n / 2, f);
        fclose(f);
    }
    s = ds_lora_adapter_load(bpath("bad.gguf"), m, &x);
    DS_CHECK(t, s != DS_OK && !x && strstr(ds_last_error(), "bad.gguf"), "a truncated adapter: %s (%s)", ds_status_str(s), ds_last_error());
    /* a PEFT config with alpha <= 0 or r = 0 */
    {
        static const char *cfgs[] = {"{\"r\": 4, \"lora_alpha\": 0}", "{\"r\": 0, \"lora_alpha\": 8}", "{\"r\": 4, \"lora_alpha\": 8, \"use_dora\": true}"};
        ds_lora_adapter *g = NULL;
        char dir[512], path[600];
        snprintf(dir, sizeof dir, "%s", bpath("peft_bad"));
        DS_CHECK(t, ds_lora_adapter_load(bpath("good.gguf"), m, &g) == DS_OK && ds_lora_adapter_save(g, dir, DS_LORA_PEFT) == DS_OK, "save: %s", ds_last_error());
        for (i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/adapter_config.json", dir);
            f = fopen(path, "wb");
            if (f) {
                fputs(cfgs[i], f);
                fclose(f);
            }
            s = ds_lora_adapter_load(dir, m, &x);
            DS_CHECK(t, s != DS_OK && !x && strstr(ds_last_error(), "adapter_config.json"), "config %s: %s (%s)", cfgs[i], ds_status_str(s), ds_last_error());
        }
        ds_lora_adapter_free(g);
    }
    ds_model_free(m);
    weights_free(&base);
    adapter_free(&a);
}

/* a quantized base keeps its type through a merge; the merged weights are the re-quantized sum */
static void test_lora_merge_quantized(ds_test_ctx *t) {
    weights base;
    adapter a;
    ds_lora_adapter *la = NULL;
    ds_quantize_config qc;
    ds_gguf *g = NULL;
    ds_status s;
    int64_t i;
    weights_make(&base);
    adapter_make(&a, 8, R_, 8.0f, all7, 0.2f);
    DS_REQUIRE(t, model_write(&base, bpath("base3.gguf"), "llama") == DS_OK && adapter_write(&a, bpath("q.gguf"), "llama", NULL) == DS_OK, "write");
    memset(&qc, 0, sizeof qc);
    qc.type = "Q8_0";
    qc.pure = 1;
    DS_REQUIRE(t, ds_quantize_model(bpath("base3.gguf"), bpath("base3_q8.gguf"), &qc) == DS_OK, "quantize: %s", ds_last_error());
    DS_REQUIRE(t, ds_lora_adapter_load(bpath("q.gguf"), NULL, &la) == DS_OK, "load: %s", ds_last_error());
    s = ds_lora_merge(bpath("base3_q8.gguf"), &la, NULL, 1, bpath("merged_q8.gguf"), NULL);
    DS_CHECK(t, s == DS_OK, "merge: %s", ds_last_error());
    if (s == DS_OK && ds_gguf_open(bpath("merged_q8.gguf"), &g) == DS_OK) {
        const ds_gguf_tensor *x = ds_gguf_find_tensor(g, "blk.1.ffn_up.weight");
        float row[C_];
        double want, err = 0;
        int c, q;
        for (i = 0; i < ds_gguf_n_tensors(g); i++) {
            const ds_gguf_tensor *y = ds_gguf_tensor_at(g, i);
            DS_CHECK(t, y->type == (y->n_dims == 2 ? DS_TYPE_Q8_0 : DS_TYPE_F32), "a tensor changed type");
        }
        /* row 5 of ffn_up: within Q8_0's rounding (half a step of amax / 127) of W + alpha / r B A */
        ds__dequantize_row(DS_TYPE_Q8_0, (const uint8_t *)x->data + 5 * ds__row_bytes(DS_TYPE_Q8_0, C_), row, C_);
        for (c = 0; c < C_; c++) {
            want = base.w[1][5][5 * C_ + c];
            for (q = 0; q < R_; q++) want += 8.0 / R_ * a.b[1][5][5 * R_ + q] * a.a[1][5][q * C_ + c];
            err = fmax(err, fabs(want - row[c]));
        }
        DS_CHECK(t, err < 0.01 && err > 0, "merged Q8_0 row off by %g", err);
        ds_gguf_free(g);
    }
    ds_lora_adapter_free(la);
    weights_free(&base);
    adapter_free(&a);
}

DS_TEST_MAIN(DS_T(test_safetensors_roundtrip), DS_T(test_safetensors_hostile), DS_T(test_lora_runtime_matches_merged_weights),
             DS_T(test_lora_zero_b_and_scale_zero_are_the_base), DS_T(test_lora_formats_roundtrip), DS_T(test_lora_hostile_adapters),
             DS_T(test_lora_merge_quantized))
