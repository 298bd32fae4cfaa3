/* test_deepseek2_tiny.c - DeepSeek's architecture (MLA + DeepSeekMoE) against llama.cpp on tiny
   random deepseek2 models.

   Each variant is written by our GGUF writer (metadata through ds_model_config_write_deepseek2)
   from a fixed-seed generator with F32 weights and a byte-level BPE vocabulary llama.cpp
   accepts (256 byte tokens, 63 merges, <|endoftext|>). The variants cover query compression on
   and off (V2-Lite has none), softmax and sigmoid gating, the selection bias, group-limited
   routing, renormalised and scaled weights, shared experts, leading dense layers, and both MLA
   tensor layouts (attn_kv_b, and the split attn_k_b / attn_v_b). A fixed 256-token sequence is
   evaluated in one batch and compared at every position with llama.cpp's logits for the same
   file, committed in tests/fixtures/deepseek2/<variant>.bin by tests/make_ref_deepseek2.py:
       char magic[8] = "DSDKREF1"; u64 content hash; u32 n_pos; u32 n_vocab;
       i32 tokens[n_pos]; f32 logits[n_pos * n_vocab]      (little-endian)
   The content hash (FNV-1a 64 over every tensor's bytes and the token ids) ties a fixture to
   the generator. The model, its input (magic "DSDKIN01", no logits) and our logits (magic
   "DSDKOUR1") are written to $DS_DEEPSEEK2_OUT (else $BUILD, else build/) as <variant>.gguf,
   <variant>_input.bin and <variant>_ours.bin for tests/check_deepseek2.py and the fixture
   script.

   Also: the absorbed MLA path against the naive one (one batch and token by token), the KV
   bytes formula, and the config checks. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"
#include <stdint.h>

#define N_VOCAB 320
#define N_MERGES 63
#define N_POS 256
#define MAX_ABS_DIFF 1e-2
#define MAX_REL_DIFF_PATHS 1e-4
#define PATH_POS 96   /* positions of the absorbed-vs-naive comparison */

typedef struct variant {
    const char *name;
    int q_lora, split, gating, bias, groups, groups_used, norm, shared, lead;
    float scale;
    uint64_t seed;
    float yarn;   /* YaRN factor (0: none), over an original context of 64 */
} variant;

/* 3 layers, width 64, 4 heads (Dn 16, Dr 8, Dv 16), latent 32; 8 experts of width 32, 2 used */
static const variant VARIANTS[] = {
    {"v2_softmax", 48, 0, DS_GATING_SOFTMAX, 0, 0, 0, 0, 1, 1, 1.0f, 11, 0.0f},
    {"lite_sigmoid_split", 0, 1, DS_GATING_SIGMOID, 1, 4, 2, 1, 2, 1, 2.5f, 12, 0.0f},
    {"v3_sigmoid", 48, 0, DS_GATING_SIGMOID, 1, 0, 0, 1, 1, 0, 1.5f, 13, 0.0f},
    {"v2_yarn", 48, 0, DS_GATING_SOFTMAX, 0, 0, 0, 1, 1, 1, 1.0f, 14, 4.0f},
};

static void make_config(const variant *v, ds_model_config *c) {
    int i;
    memset(c, 0, sizeof *c);
    strcpy(c->arch, "deepseek2");
    c->n_vocab = N_VOCAB;
    c->n_ctx = 512;
    c->n_embd = 64;
    c->n_layer = 3;
    c->n_head = c->n_head_kv = 4;
    c->n_ff = 128;
    c->norm_eps = 1e-6f;
    c->rope_base = 10000.0f;
    c->q_lora_rank = v->q_lora;
    c->kv_lora_rank = 32;
    c->qk_nope_dim = 16;
    c->qk_rope_dim = 8;
    c->v_head_dim = 16;
    c->head_dim = 24;
    c->n_expert = 8;
    c->n_expert_used = 2;
    c->n_expert_shared = v->shared;
    c->n_ff_expert = 32;
    c->n_expert_groups = v->groups;
    c->n_groups_used = v->groups_used;
    c->gating = (ds_gating)v->gating;
    c->routed_scale = v->scale;
    c->norm_topk = v->norm;
    c->mla_kv_b_split = v->split;
    c->rope_yarn_factor = v->yarn;
    c->rope_yarn_orig_ctx = v->yarn > 0 ? 64 : 0;
    c->rope_yarn_log_mul = v->yarn > 0 ? 0.707f : 0.0f;
    for (i = 0; i < c->n_layer; i++) {
        c->layers[i].attn = DS_ATTN_MLA;
        c->layers[i].ffn = i < v->lead ? DS_FFN_DENSE : DS_FFN_MOE;
    }
}

/* ---- deterministic generator ---------------------------------------------------------------- */
static uint64_t g_rng;
static uint64_t splitmix64(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float uniform(void) { return (float)((double)(splitmix64() >> 11) / 4503599627370496.0 - 1.0); }

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

#define MAX_TENSORS 64
typedef struct tiny_model {
    char names[MAX_TENSORS][48];
    float *data[MAX_TENSORS];
    int64_t ne[MAX_TENSORS][3];
    int n_dims[MAX_TENSORS], n;
    char vocab[N_VOCAB][16];
    char merges[N_MERGES][8];
    uint64_t hash;
} tiny_model;

static int add_tensor(tiny_model *m, const char *name, int64_t ne0, int64_t ne1, int64_t ne2, float base, float scale) {
    int64_t i, n = ne0 * ne1 * ne2;
    float *d = (float *)malloc((size_t)n * sizeof *d);
    if (!d || m->n >= MAX_TENSORS) {
        free(d);
        return 0;
    }
    for (i = 0; i < n; i++) d[i] = base + scale * uniform();
    snprintf(m->names[m->n], sizeof m->names[0], "%s", name);
    m->data[m->n] = d;
    m->ne[m->n][0] = ne0;
    m->ne[m->n][1] = ne1;
    m->ne[m->n][2] = ne2;
    m->n_dims[m->n] = ne2 > 1 ? 3 : ne1 > 1 ? 2 : 1;
    m->hash = fnv1a(m->hash, d, (size_t)n * sizeof *d);
    m->n++;
    return 1;
}

static float fan_in_scale(int64_t fan_in) { return (float)sqrt(3.0 / (double)fan_in); }

static int make_weights(tiny_model *m, const ds_model_config *c) {
    int l, ok = 1;
    char name[48];
    const int64_t C = c->n_embd, H = c->n_head, Dn = c->qk_nope_dim, Dr = c->qk_rope_dim, Dv = c->v_head_dim, Dq = Dn + Dr;
    const int64_t R = c->kv_lora_rank, Rq = c->q_lora_rank, E = c->n_expert, F = c->n_ff_expert, SF = F * c->n_expert_shared;
    ok &= add_tensor(m, "token_embd.weight", C, N_VOCAB, 1, 0, 1.7f);
    for (l = 0; l < c->n_layer; l++) {
#define T(suffix, a, b, d, base, scale) (snprintf(name, sizeof name, "blk.%d.%s", l, suffix), add_tensor(m, name, a, b, d, base, scale))
        ok &= T("attn_norm.weight", C, 1, 1, 1.0f, 0.2f);
        if (Rq) {
            ok &= T("attn_q_a.weight", C, Rq, 1, 0, fan_in_scale(C));
            ok &= T("attn_q_a_norm.weight", Rq, 1, 1, 1.0f, 0.2f);
            ok &= T("attn_q_b.weight", Rq, H * Dq, 1, 0, fan_in_scale(Rq));
        } else {
            ok &= T("attn_q.weight", C, H * Dq, 1, 0, fan_in_scale(C));
        }
        ok &= T("attn_kv_a_mqa.weight", C, R + Dr, 1, 0, fan_in_scale(C));
        ok &= T("attn_kv_a_norm.weight", R, 1, 1, 1.0f, 0.2f);
        if (c->mla_kv_b_split) {
            ok &= T("attn_k_b.weight", Dn, R, H, 0, fan_in_scale(R));
            ok &= T("attn_v_b.weight", R, Dv, H, 0, fan_in_scale(R));
        } else {
            ok &= T("attn_kv_b.weight", R, H * (Dn + Dv), 1, 0, fan_in_scale(R));
        }
        ok &= T("attn_output.weight", H * Dv, C, 1, 0, fan_in_scale(H * Dv));
        ok &= T("ffn_norm.weight", C, 1, 1, 1.0f, 0.2f);
        if (c->layers[l].ffn == DS_FFN_DENSE) {
            ok &= T("ffn_gate.weight", C, c->n_ff, 1, 0, fan_in_scale(C));
            ok &= T("ffn_up.weight", C, c->n_ff, 1, 0, fan_in_scale(C));
            ok &= T("ffn_down.weight", c->n_ff, C, 1, 0, fan_in_scale(c->n_ff));
            continue;
        }
        ok &= T("ffn_gate_inp.weight", C, E, 1, 0, 2.0f * fan_in_scale(C));
        if (c->gating == DS_GATING_SIGMOID) ok &= T("exp_probs_b.bias", E, 1, 1, 0, 0.3f);
        ok &= T("ffn_gate_exps.weight", C, F, E, 0, fan_in_scale(C));
        ok &= T("ffn_up_exps.weight", C, F, E, 0, fan_in_scale(C));
        ok &= T("ffn_down_exps.weight", F, C, E, 0, fan_in_scale(F));
        if (SF) {
            ok &= T("ffn_gate_shexp.weight", C, SF, 1, 0, fan_in_scale(C));
            ok &= T("ffn_up_shexp.weight", C, SF, 1, 0, fan_in_scale(C));
            ok &= T("ffn_down_shexp.weight", SF, C, 1, 0, fan_in_scale(SF));
        }
#undef T
    }
    ok &= add_tensor(m, "output_norm.weight", C, 1, 1, 1.0f, 0.2f);
    ok &= add_tensor(m, "output.weight", C, N_VOCAB, 1, 0, 8.0f * fan_in_scale(C));
    return ok;
}

/* GPT-2's byte-to-character map, as UTF-8 */
static void byte_token(int b, char *out) {
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    int cp = b, i;
    if (!printable) {
        cp = 256;
        for (i = 0; i < b; i++)
            if (!((i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF))) cp++;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static void make_vocab(tiny_model *m) {
    static const char letters[] = "etaoinshr";
    int b, i;
    for (b = 0; b < 256; b++) byte_token(b, m->vocab[b]);
    for (i = 0; i < N_MERGES; i++) {
        char x = letters[i / 9], y = letters[i % 9];
        snprintf(m->merges[i], sizeof m->merges[0], "%c %c", x, y);
        snprintf(m->vocab[256 + i], sizeof m->vocab[0], "%c%c", x, y);
    }
    snprintf(m->vocab[N_VOCAB - 1], sizeof m->vocab[0], "<|endoftext|>");
}

static void free_model(tiny_model *m) {
    int i;
    for (i = 0; i < m->n; i++) free(m->data[i]);
    m->n = 0;
}

static ds_status write_gguf(const tiny_model *m, const ds_model_config *c, const char *path) {
    ds_gguf_writer *w = NULL;
    const char *vocab[N_VOCAB], *merges[N_MERGES];
    int32_t types[N_VOCAB];
    int i;
    ds_status s = ds_gguf_writer_create(&w);
    for (i = 0; i < N_VOCAB; i++) {
        vocab[i] = m->vocab[i];
        types[i] = i == N_VOCAB - 1 ? 3 : 1;
    }
    for (i = 0; i < N_MERGES; i++) merges[i] = m->merges[i];
    if (s == DS_OK) s = ds_model_config_write_deepseek2(c, w);
    if (s == DS_OK) s = ds_gguf_writer_set_str(w, "general.name", "tiny random deepseek2");
    if (s == DS_OK) s = ds_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (s == DS_OK) s = ds_gguf_writer_set_str(w, "tokenizer.ggml.pre", "qwen2");
    if (s == DS_OK) s = ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", vocab, N_VOCAB);
    if (s == DS_OK) s = ds_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", DS_GGUF_I32, types, N_VOCAB);
    if (s == DS_OK) s = ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, N_MERGES);
    if (s == DS_OK) s = ds_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", N_VOCAB - 1);
    if (s == DS_OK) s = ds_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", N_VOCAB - 1);
    for (i = 0; i < m->n && s == DS_OK; i++) s = ds_gguf_writer_add_tensor(w, m->names[i], DS_TYPE_F32, m->n_dims[i], m->ne[i], m->data[i]);
    if (s == DS_OK) s = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    return s;
}

/* ---- our forward ------------------------------------------------------------------------------ */
/* One layer on the residual stream x (T, C) as the session's ds__layer_forward runs it (MLA,
   then the layer's FFN kind), with the MLA path chosen. */
static void run_layer(ds_pool *pool, const ds_model_config *c, const ds__layer *L, int il, float *x, float *xn, float *y, int T, int pos0, float *cache, int naive, ds__dsk_scratch *s) {
    int t, C = c->n_embd;
    for (t = 0; t < T; t++) s->ops.rmsnorm(xn + (size_t)t * C, x + (size_t)t * C, L->attn_norm, C, c->norm_eps);
    ds__mla_forward(pool, c, &L->mla, xn, T, pos0, cache, naive, y, s);
    for (t = 0; t < T * C; t++) x[t] += y[t];
    for (t = 0; t < T; t++) s->ops.rmsnorm(xn + (size_t)t * C, x + (size_t)t * C, L->ffn_norm, C, c->norm_eps);
    if (c->layers[il].ffn == DS_FFN_MOE) ds__moe_forward(pool, c, &L->moe, xn, T, y, s);
    else ds__swiglu_ffn(pool, &L->ffn.gate, &L->ffn.up, &L->ffn.down, 0, 0, c->n_ff, C, xn, T, y, s);
    for (t = 0; t < T * C; t++) x[t] += y[t];
}

/* The library's path is run_session (logits_record.h). The same blocks driven directly, to choose the MLA path: logits (n, N_VOCAB) of the first n
   tokens fed `step` at a time (n: one batch), naive or absorbed. */
static ds_status run_ours(const char *path, const int32_t *tokens, int n, int step, int naive, float *logits, ds_model_config *cfg) {
    ds_gguf *g = NULL;
    ds__layer layers[8];
    ds__dsk_scratch sc;
    ds_pool *pool = NULL;
    ds_pool_config pc;
    const ds_gguf_tensor *emb, *out, *onorm;
    float *x = NULL, *xn = NULL, *y = NULL, *cache = NULL;
    int il, t, pos, C, row;
    uint64_t bytes = 0;
    ds_status s = ds_gguf_open(path, &g);
    memset(&sc, 0, sizeof sc);
    memset(&pc, 0, sizeof pc);
    pc.n_threads = 2;
    if (s == DS_OK) s = ds__deepseek2_read_config(g, cfg);
    if (s == DS_OK && cfg->n_layer > 8) s = DS_ERR_UNSUPPORTED;
    for (il = 0; s == DS_OK && il < cfg->n_layer; il++) s = ds__deepseek2_load_layer(g, cfg, il, &layers[il], &bytes);
    if (s == DS_OK) s = ds_pool_create(&pc, &pool);
    if (s == DS_OK) s = ds__dsk_scratch_alloc(cfg, step, N_POS, naive, 8, &sc);
    if (s != DS_OK) goto done;
    C = cfg->n_embd;
    row = ds__mla_cache_row(cfg);
    emb = ds_gguf_find_tensor(g, "token_embd.weight");
    out = ds_gguf_find_tensor(g, "output.weight");
    onorm = ds_gguf_find_tensor(g, "output_norm.weight");
    x = (float *)malloc((size_t)step * C * sizeof *x);
    xn = (float *)malloc((size_t)step * C * sizeof *xn);
    y = (float *)malloc((size_t)step * C * sizeof *y);
    cache = (float *)calloc((size_t)cfg->n_layer * N_POS * row, sizeof *cache);
    if (!emb || !out || !onorm || !x || !xn || !y || !cache) {
        s = DS_ERR_NO_MEMORY;
        goto done;
    }
    for (pos = 0; pos + step <= n; pos += step) {
        sc.ops.embed(x, emb->type, emb->data, tokens + pos, step, C);
        for (il = 0; il < cfg->n_layer; il++) run_layer(pool, cfg, &layers[il], il, x, xn, y, step, pos, cache + (size_t)il * N_POS * row, naive, &sc);
        for (t = 0; t < step; t++) sc.ops.rmsnorm(xn + (size_t)t * C, x + (size_t)t * C, (const float *)onorm->data, C, cfg->norm_eps);
        ds__matmul(&sc.ops, pool, logits + (size_t)pos * N_VOCAB, xn, step, out->data, out->type, N_VOCAB, C, sc.ws);
    }
done:
    free(x);
    free(xn);
    free(y);
    free(cache);
    ds__dsk_scratch_free(&sc);
    ds_pool_free(pool);
    ds_gguf_free(g);
    return s;
}

/* ---- files ------------------------------------------------------------------------------------ */
#include "logits_record.h"

static void out_path(char *buf, size_t cap, const char *variant, const char *suffix) {
    const char *dir = getenv("DS_DEEPSEEK2_OUT");
    if (!dir || !*dir) dir = getenv("BUILD");
    if (!dir || !*dir) dir = "build";
    snprintf(buf, cap, "%s/%s%s", dir, variant, suffix);
}

/* Writes variant v's model and input; fills tokens and the content hash. */
static const char *make_variant(const variant *v, ds_model_config *c, int32_t *tokens, uint64_t *hash, char *gguf_path, size_t cap) {
    static tiny_model m;
    char input_path[512];
    int i, ok;
    memset(&m, 0, sizeof m);
    g_rng = v->seed;
    m.hash = 0xcbf29ce484222325ull;
    make_config(v, c);
    make_vocab(&m);
    ok = make_weights(&m, c);
    for (i = 0; i < N_POS; i++) tokens[i] = (int32_t)(splitmix64() % (N_VOCAB - 1));
    m.hash = fnv1a(m.hash, tokens, N_POS * sizeof *tokens);
    *hash = m.hash;
    out_path(gguf_path, cap, v->name, ".gguf");
    out_path(input_path, sizeof input_path, v->name, "_input.bin");
    if (ok && write_gguf(&m, c, gguf_path) != DS_OK) ok = 0;
    if (ok) ok = write_record(input_path, "DSDKIN01", m.hash, tokens, NULL);
    free_model(&m);
    return ok ? "" : "cannot make or write the model";
}

/* ---- tests ------------------------------------------------------------------------------------- */
static void check_variant(ds_test_ctx *t, const variant *v) {
    int32_t tokens[N_POS];
    float *ours = (float *)malloc((size_t)N_POS * N_VOCAB * sizeof(float));
    char gguf_path[512], ours_path[512], fixture[512];
    ds_model_config c, got;
    logits_file ref;
    uint64_t hash;
    const char *why;
    ds_status e;
    int i, same = 0, first_bad = -1;
    double max_diff = 0, min_gap = 1e30;
    DS_REQUIRE(t, ours != NULL, "out of memory");
    why = make_variant(v, &c, tokens, &hash, gguf_path, sizeof gguf_path);
    DS_CHECK(t, !*why, "%s: %s", why, ds_last_error());
    if (!t->failed) {
        e = run_session(gguf_path, tokens, ours, &got);
        DS_CHECK(t, e == DS_OK, "running %s: %s", gguf_path, ds_last_error());
    }
    if (!t->failed) {
        DS_CHECK(t, got.q_lora_rank == c.q_lora_rank && got.mla_kv_b_split == c.mla_kv_b_split && got.gating == c.gating && got.norm_topk == c.norm_topk &&
                        got.n_expert_shared == c.n_expert_shared && got.n_expert_groups == c.n_expert_groups && got.layers[0].ffn == c.layers[0].ffn &&
                        got.layers[2].ffn == DS_FFN_MOE && got.qk_nope_dim == 16 && got.v_head_dim == 16 && fabsf(got.routed_scale - c.routed_scale) < 1e-6f,
                 "config read back differs from the one written");
        out_path(ours_path, sizeof ours_path, v->name, "_ours.bin");
        DS_CHECK(t, write_record(ours_path, "DSDKOUR1", hash, tokens, ours), "cannot write %s", ours_path);
    }
    if (t->failed) {
        free(ours);
        return;
    }
    snprintf(fixture, sizeof fixture, "tests/fixtures/deepseek2/%s.bin", v->name);
    why = read_logits(fixture, "DSDKREF1", &ref, "cannot read the fixture (run from the repository root; make it with tests/make_ref_deepseek2.py)");
    if (*why) {
        free(ours);
        DS_REQUIRE(t, 0, "%s: %s", fixture, why);
    }
    DS_CHECK(t, ref.hash == hash && !memcmp(ref.tokens, tokens, sizeof tokens),
             "%s was made from another model (hash %016llx, ours %016llx): rerun tests/make_ref_deepseek2.py", fixture, (unsigned long long)ref.hash, (unsigned long long)hash);
    for (i = 0; i < N_POS && !t->failed; i++) {
        const float *a = ours + (size_t)i * N_VOCAB, *b = ref.logits + (size_t)i * N_VOCAB;
        int j, top = argmax(b, N_VOCAB);
        double second = -1e30;
        for (j = 0; j < N_VOCAB; j++) {
            double d = fabs((double)a[j] - b[j]);
            if (d > max_diff) max_diff = d;
            if (j != top && b[j] > second) second = b[j];
        }
        if (b[top] - second < min_gap) min_gap = b[top] - second;
        if (argmax(a, N_VOCAB) == top) same++;
        else if (first_bad < 0) first_bad = i;
    }
    fprintf(stderr, "deepseek2 %s: top-1 equal to llama.cpp's at %d/%d positions, max |logit difference| %.3g, llama.cpp's smallest top-2 gap %.3g\n", v->name, same, N_POS, max_diff, min_gap);
    DS_CHECK(t, same == N_POS, "top-1 differs from llama.cpp's at %d of %d positions (first at %d)", N_POS - same, N_POS, first_bad);
    DS_CHECK(t, max_diff <= MAX_ABS_DIFF, "max |logit difference| %.3g > %g", max_diff, MAX_ABS_DIFF);
    free(ref.logits);
    free(ours);
}

static void deepseek2_v2_softmax_matches_llama_cpp(ds_test_ctx *t) { check_variant(t, &VARIANTS[0]); }
static void deepseek2_lite_sigmoid_split_matches_llama_cpp(ds_test_ctx *t) { check_variant(t, &VARIANTS[1]); }
static void deepseek2_v3_sigmoid_matches_llama_cpp(ds_test_ctx *t) { check_variant(t, &VARIANTS[2]); }
static void deepseek2_v2_yarn_matches_llama_cpp(ds_test_ctx *t) { check_variant(t, &VARIANTS[3]); }

static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, m = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / (m > 0 ? m : 1);
}

/* the absorbed path (batch and one token at a time) against the naive decompressing one */
static void mla_absorbed_equals_naive(ds_test_ctx *t) {
    size_t n = (size_t)PATH_POS * N_VOCAB;
    float *naive = (float *)malloc(n * sizeof(float)), *batch = (float *)malloc(n * sizeof(float)), *decode = (float *)malloc(n * sizeof(float));
    int32_t tokens[N_POS];
    char gguf_path[512];
    ds_model_config c, got;
    uint64_t hash;
    int vi;
    DS_REQUIRE(t, naive && batch && decode, "out of memory");
    for (vi = 0; vi < 2 && !t->failed; vi++) {
        const char *why = make_variant(&VARIANTS[vi], &c, tokens, &hash, gguf_path, sizeof gguf_path);
        double r1, r2;
        DS_CHECK(t, !*why, "%s", why);
        DS_CHECK(t, run_ours(gguf_path, tokens, PATH_POS, PATH_POS, 1, naive, &got) == DS_OK, "naive: %s", ds_last_error());
        DS_CHECK(t, run_ours(gguf_path, tokens, PATH_POS, PATH_POS, 0, batch, &got) == DS_OK, "absorbed: %s", ds_last_error());
        DS_CHECK(t, run_ours(gguf_path, tokens, PATH_POS, 1, 0, decode, &got) == DS_OK, "absorbed decode: %s", ds_last_error());
        if (t->failed) break;
        r1 = rel_diff(batch, naive, n);
        r2 = rel_diff(decode, naive, n);
        fprintf(stderr, "MLA %s: absorbed vs naive max relative logit difference %.3g (one batch), %.3g (token by token)\n", VARIANTS[vi].name, r1, r2);
        DS_CHECK(t, r1 <= MAX_REL_DIFF_PATHS && r2 <= MAX_REL_DIFF_PATHS, "%s: relative differences %.3g, %.3g > %g", VARIANTS[vi].name, r1, r2, MAX_REL_DIFF_PATHS);
    }
    free(naive);
    free(batch);
    free(decode);
}

static void kv_bytes_per_token_formula(ds_test_ctx *t) {
    ds_model_config c;
    size_t mla, dense;
    int i;
    make_config(&VARIANTS[0], &c);
    mla = ds_model_kv_bytes_per_token(&c, 2);
    DS_CHECK(t, mla == (size_t)(32 + 8) * 3 * 2, "MLA: %zu bytes per token, formula (R + Dr) * layers * 2 = %d", mla, (32 + 8) * 3 * 2);
    for (i = 0; i < c.n_layer; i++) c.layers[i].attn = DS_ATTN_DENSE;
    c.head_dim = 16;
    dense = ds_model_kv_bytes_per_token(&c, 2);
    DS_CHECK(t, dense == (size_t)2 * 4 * 16 * 3 * 2, "dense: %zu bytes per token, formula 2 * Hkv * D * layers * 2 = %d", dense, 2 * 4 * 16 * 3 * 2);
}

static void config_check_names_impossible_fields(ds_test_ctx *t) {
    ds_model_config c;
    make_config(&VARIANTS[1], &c);
    DS_CHECK(t, ds_model_config_check_deepseek(&c) == DS_OK, "a valid config is refused: %s", ds_last_error());
    c.n_expert_used = 9;
    DS_CHECK(t, ds_model_config_check_deepseek(&c) == DS_ERR_INVALID_ARG && strstr(ds_last_error(), "n_expert_used"), "9 of 8 experts accepted: %s", ds_last_error());
    make_config(&VARIANTS[1], &c);
    c.n_groups_used = 1;   /* one group of 2 experts */
    c.n_expert_used = 3;
    DS_CHECK(t, ds_model_config_check_deepseek(&c) == DS_ERR_INVALID_ARG && strstr(ds_last_error(), "groups"), "3 experts from 1 group of 2 accepted: %s", ds_last_error());
    make_config(&VARIANTS[1], &c);
    c.qk_rope_dim = 7;
    DS_CHECK(t, ds_model_config_check_deepseek(&c) == DS_ERR_INVALID_ARG && strstr(ds_last_error(), "qk_rope_dim"), "odd qk_rope_dim accepted: %s", ds_last_error());
    make_config(&VARIANTS[1], &c);
    c.layers[2].ffn = DS_FFN_DENSE;
    {
        ds_gguf_writer *w = NULL;
        DS_REQUIRE(t, ds_gguf_writer_create(&w) == DS_OK, "writer");
        DS_CHECK(t, ds_model_config_write_deepseek2(&c, w) == DS_ERR_UNSUPPORTED, "a dense layer after MoE layers was written as deepseek2");
        ds_gguf_writer_free(w);
    }
}

DS_TEST_MAIN(DS_T(deepseek2_v2_softmax_matches_llama_cpp), DS_T(deepseek2_lite_sigmoid_split_matches_llama_cpp), DS_T(deepseek2_v3_sigmoid_matches_llama_cpp),
             DS_T(deepseek2_v2_yarn_matches_llama_cpp),
             DS_T(mla_absorbed_equals_naive), DS_T(kv_bytes_per_token_formula), DS_T(config_check_names_impossible_fields))
