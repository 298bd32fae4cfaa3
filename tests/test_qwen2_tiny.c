/* test_qwen2_tiny.c - the qwen2 path against llama.cpp on a tiny random model.

   The model is written by our GGUF writer from a fixed-seed generator: F32 weights, biases on
   Q, K and V, an output matrix of its own (not tied), grouped-query attention (4 query heads, 2
   KV heads), NEOX rope, and a byte-level BPE vocabulary llama.cpp accepts (the 256 byte tokens,
   63 merges, <|endoftext|>; pre-tokenizer "qwen2"). We evaluate a fixed 256-token sequence in
   one batch and compare every position with llama.cpp's logits for the same file (same top-1
   everywhere, max |logit difference| <= 0.02), committed in tests/fixtures/qwen2/llama.bin by
   tests/make_ref_qwen2.py:
       char magic[8] = "DSQWREF1"; u64 content hash; u32 n_pos; u32 n_vocab;
       i32 tokens[n_pos]; f32 logits[n_pos * n_vocab]      (little-endian)
   The content hash (FNV-1a 64 over every tensor's bytes and the token ids, in write order)
   ties the fixture to the generator: if the generator changes, the test says so.

   The model, its input and our logits are also written out (to $DS_QWEN2_OUT, else $BUILD,
   else build/) as qwen2_tiny.gguf, qwen2_tiny_input.bin (the fixture's layout without logits,
   magic "DSQWIN01") and qwen2_tiny_ours.bin (the fixture's layout, magic "DSQWOUR1"), so that
   tests/check_qwen2.py can run the live llama.cpp on the very same file and
   tests/make_ref_qwen2.py can make the fixture. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"
#include <stdint.h>

#define N_VOCAB 320      /* 256 bytes + 63 merges + <|endoftext|> */
#define N_MERGES 63
#define N_EMBD 64
#define N_HEAD 4
#define N_HEAD_KV 2
#define HEAD_DIM 16
#define N_FF 128
#define N_LAYER 2
#define N_POS 256
/* Both sides keep K and V in f16 (llama.cpp also rounds Q and the attention weights to f16 for
   its f16 products), so logits of std ~8 differ by a few 1e-3; top-1 margins here are >= 0.015. */
#define MAX_ABS_DIFF 2e-2

/* ---- deterministic generator ---------------------------------------------------------------- */
#define SEED 3u   /* a seed whose top-1 margins in llama.cpp are all >= 0.015 */
static uint64_t g_rng = SEED;
static uint64_t splitmix64(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* uniform in [-1, 1) */
static float uniform(void) { return (float)((double)(splitmix64() >> 11) / 4503599627370496.0 - 1.0); }

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

/* ---- the model -------------------------------------------------------------------------------- */
#define MAX_TENSORS (3 + 12 * N_LAYER)
typedef struct tiny_model {
    char names[MAX_TENSORS][48];
    float *data[MAX_TENSORS];
    int64_t ne[MAX_TENSORS][2];
    int n_dims[MAX_TENSORS], n;
    char vocab[N_VOCAB][16];
    char merges[N_MERGES][8];
    uint64_t hash;
} tiny_model;

/* A tensor of ne0 x ne1 (ggml order: ne0 is the row length) filled with base + scale * U(-1, 1). */
static int add_tensor(tiny_model *m, const char *name, int64_t ne0, int64_t ne1, float base, float scale) {
    int64_t i, n = ne0 * ne1;
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
    m->n_dims[m->n] = ne1 > 1 ? 2 : 1;
    m->hash = fnv1a(m->hash, d, (size_t)n * sizeof *d);
    m->n++;
    return 1;
}

/* weights with unit-variance outputs: U(-a, a) has variance a^2 / 3 */
static float fan_in_scale(int64_t fan_in) { return (float)sqrt(3.0 / (double)fan_in); }

static int make_weights(tiny_model *m) {
    int l, ok = 1;
    char name[48];
    const int q = N_HEAD * HEAD_DIM, kv = N_HEAD_KV * HEAD_DIM;
    ok &= add_tensor(m, "token_embd.weight", N_EMBD, N_VOCAB, 0, 1.7f);
    for (l = 0; l < N_LAYER; l++) {
#define T(suffix, ne0, ne1, base, scale) \
    (snprintf(name, sizeof name, "blk.%d.%s", l, suffix), add_tensor(m, name, ne0, ne1, base, scale))
        ok &= T("attn_norm.weight", N_EMBD, 1, 1.0f, 0.2f);
        ok &= T("attn_q.weight", N_EMBD, q, 0, fan_in_scale(N_EMBD));
        ok &= T("attn_q.bias", q, 1, 0, 0.2f);
        ok &= T("attn_k.weight", N_EMBD, kv, 0, fan_in_scale(N_EMBD));
        ok &= T("attn_k.bias", kv, 1, 0, 0.2f);
        ok &= T("attn_v.weight", N_EMBD, kv, 0, fan_in_scale(N_EMBD));
        ok &= T("attn_v.bias", kv, 1, 0, 0.2f);
        ok &= T("attn_output.weight", q, N_EMBD, 0, fan_in_scale(q));
        ok &= T("ffn_norm.weight", N_EMBD, 1, 1.0f, 0.2f);
        ok &= T("ffn_gate.weight", N_EMBD, N_FF, 0, fan_in_scale(N_EMBD));
        ok &= T("ffn_up.weight", N_EMBD, N_FF, 0, fan_in_scale(N_EMBD));
        ok &= T("ffn_down.weight", N_FF, N_EMBD, 0, fan_in_scale(N_FF));
#undef T
    }
    ok &= add_tensor(m, "output_norm.weight", N_EMBD, 1, 1.0f, 0.2f);
    ok &= add_tensor(m, "output.weight", N_EMBD, N_VOCAB, 0, 8.0f * fan_in_scale(N_EMBD));   /* logits of std ~8: clear top-1 margins */
    return ok;
}

/* GPT-2's byte-to-character map: printable Latin-1 bytes stand for themselves, the others are
   moved to U+0100 upwards in byte order. Writes the character's UTF-8 into out. */
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

/* bytes, then merges of two frequent letters ("e t" -> "et"), then <|endoftext|> */
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
}

static ds_status write_gguf(const tiny_model *m, const char *path) {
    ds_gguf_writer *w = NULL;
    const char *vocab[N_VOCAB], *merges[N_MERGES];
    int32_t types[N_VOCAB];
    int i;
    ds_status s = ds_gguf_writer_create(&w);
    for (i = 0; i < N_VOCAB; i++) {
        vocab[i] = m->vocab[i];
        types[i] = i == N_VOCAB - 1 ? 3 : 1;   /* control, normal */
    }
    for (i = 0; i < N_MERGES; i++) merges[i] = m->merges[i];
    if (s == DS_OK) s = ds_gguf_writer_set_str(w, "general.architecture", "qwen2");
    if (s == DS_OK) s = ds_gguf_writer_set_str(w, "general.name", "tiny random qwen2");
    if (s == DS_OK) s = ds_gguf_writer_set_u32(w, "qwen2.context_length", 512);
    if (s == DS_OK) s = ds_gguf_writer_set_u32(w, "qwen2.embedding_length", N_EMBD);
    if (s == DS_OK) s = ds_gguf_writer_set_u32(w, "qwen2.block_count", N_LAYER);
    if (s == DS_OK) s = ds_gguf_writer_set_u32(w, "qwen2.feed_forward_length", N_FF);
    if (s == DS_OK) s = ds_gguf_writer_set_u32(w, "qwen2.attention.head_count", N_HEAD);
    if (s == DS_OK) s = ds_gguf_writer_set_u32(w, "qwen2.attention.head_count_kv", N_HEAD_KV);
    if (s == DS_OK) s = ds_gguf_writer_set_f32(w, "qwen2.rope.freq_base", 10000.0f);
    if (s == DS_OK) s = ds_gguf_writer_set_f32(w, "qwen2.attention.layer_norm_rms_epsilon", 1e-6f);
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

/* ---- reference file -------------------------------------------------------------------------- */
#include "logits_record.h"

static void out_path(char *buf, size_t cap, const char *file) {
    const char *dir = getenv("DS_QWEN2_OUT");
    if (!dir || !*dir) dir = getenv("BUILD");
    if (!dir || !*dir) dir = "build";
    snprintf(buf, cap, "%s/%s", dir, file);
}

/* ---- the test ----------------------------------------------------------------------------------- */

static void qwen2_tiny_matches_llama_cpp(ds_test_ctx *t) {
    static tiny_model m;
    int32_t tokens[N_POS];
    float *ours = (float *)malloc((size_t)N_POS * N_VOCAB * sizeof(float));
    char gguf_path[512], ours_path[512], input_path[512];
    logits_file ref;
    ds_model_config cfg;
    const char *why;
    ds_status e;
    int i, same = 0, first_bad = -1;
    double max_diff = 0, min_gap = 1e30;
    memset(&m, 0, sizeof m);
    g_rng = SEED;
    m.hash = 0xcbf29ce484222325ull;
    make_vocab(&m);
    DS_CHECK(t, ours && make_weights(&m), "out of memory");
    for (i = 0; i < N_POS; i++) tokens[i] = (int32_t)(splitmix64() % (N_VOCAB - 1));
    m.hash = fnv1a(m.hash, tokens, sizeof tokens);
    out_path(gguf_path, sizeof gguf_path, "qwen2_tiny.gguf");
    out_path(ours_path, sizeof ours_path, "qwen2_tiny_ours.bin");
    out_path(input_path, sizeof input_path, "qwen2_tiny_input.bin");
    if (!t->failed) {
        e = write_gguf(&m, gguf_path);
        DS_CHECK(t, e == DS_OK, "writing %s: %s", gguf_path, ds_last_error());
        DS_CHECK(t, write_record(input_path, "DSQWIN01", m.hash, tokens, NULL), "cannot write %s", input_path);
    }
    if (!t->failed) {
        e = run_session(gguf_path, tokens, ours, &cfg);
        DS_CHECK(t, e == DS_OK, "running %s: %s", gguf_path, ds_last_error());
    }
    free_model(&m);
    if (!t->failed) {
        DS_CHECK(t, !strcmp(cfg.arch, "qwen2") && cfg.qkv_bias && cfg.rope_neox && !cfg.tied_output && cfg.n_head_kv == N_HEAD_KV,
                 "config read back: arch '%s', qkv_bias %d, rope_neox %d, tied_output %d, n_head_kv %d", cfg.arch, cfg.qkv_bias, cfg.rope_neox, cfg.tied_output, cfg.n_head_kv);
        DS_CHECK(t, write_record(ours_path, "DSQWOUR1", m.hash, tokens, ours), "cannot write %s", ours_path);
    }
    if (t->failed) {
        free(ours);
        return;
    }
    why = read_logits("tests/fixtures/qwen2/llama.bin", "DSQWREF1", &ref, "cannot read tests/fixtures/qwen2/llama.bin (run from the repository root)");
    if (*why) {
        free(ours);
        DS_REQUIRE(t, 0, "%s", why);
    }
    DS_CHECK(t, ref.hash == m.hash && !memcmp(ref.tokens, tokens, sizeof tokens),
             "the fixture was made from another model (hash %016llx, ours %016llx): rerun tests/make_ref_qwen2.py", (unsigned long long)ref.hash, (unsigned long long)m.hash);
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
    fprintf(stderr, "qwen2 tiny: top-1 equal to llama.cpp's at %d/%d positions, max |logit difference| %.3g, llama.cpp's smallest top-2 gap %.3g\n", same, N_POS, max_diff, min_gap);
    DS_CHECK(t, same == N_POS, "top-1 differs from llama.cpp's at %d of %d positions (first at %d)", N_POS - same, N_POS, first_bad);
    DS_CHECK(t, max_diff <= MAX_ABS_DIFF, "max |logit difference| %.3g > %g", max_diff, MAX_ABS_DIFF);
    free(ref.logits);
    free(ours);
}

DS_TEST_MAIN(DS_T(qwen2_tiny_matches_llama_cpp))
